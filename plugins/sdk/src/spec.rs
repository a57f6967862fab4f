//! Reading the object's spec from `spec-json`, and small shared spec shapes.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::{EnvVar, KeyRef, PlanRequest, PluginError, ValueSource, VolumeMount};

/// Parses `spec-json` into a plugin's own struct (declare only the fields you need; unknown
/// fields are ignored by serde unless you ask otherwise). An empty string counts as `{}`.
pub fn parse_spec<T: DeserializeOwned>(req: &PlanRequest) -> Result<T, PluginError> {
    let json = if req.spec_json.trim().is_empty() {
        "{}"
    } else {
        req.spec_json.as_str()
    };
    serde_json::from_str(json)
        .map_err(|err| PluginError::InvalidSpec(format!("failed to read the spec: {err}")))
}

/// A `SecretKeySelector` as written in a spec (`name`, `key`, `optional`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct SecretKeySelector {
    /// The Secret's name.
    #[serde(default)]
    pub name: String,
    /// The key inside the Secret.
    #[serde(default)]
    pub key: String,
    /// Whether the Secret or key may be missing.
    #[serde(default)]
    pub optional: Option<bool>,
}

impl SecretKeySelector {
    /// An environment variable read from this Secret key.
    pub fn to_env(&self, name: &str) -> EnvVar {
        EnvVar {
            name: name.to_string(),
            value: ValueSource::SecretKey(KeyRef {
                name: self.name.clone(),
                key: self.key.clone(),
                optional: self.optional.unwrap_or(false),
            }),
        }
    }
}

/// A `VolumeMount` as written in a spec (`restoreMethod.volumeMounts`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecVolumeMount {
    /// Name of a volume in `spec.volumes`.
    #[serde(default)]
    pub name: String,
    /// Where to mount it.
    #[serde(default)]
    pub mount_path: String,
    /// Read-only mount.
    #[serde(default)]
    pub read_only: bool,
    /// Mount only this path of the volume.
    #[serde(default)]
    pub sub_path: Option<String>,
}

impl SpecVolumeMount {
    /// The contract's shape of this mount.
    pub fn to_mount(&self) -> VolumeMount {
        VolumeMount {
            name: self.name.clone(),
            mount_path: self.mount_path.clone(),
            read_only: self.read_only,
            sub_path: self.sub_path.clone().filter(|p| !p.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Action;
    use crate::testing::request;

    #[derive(Debug, Deserialize)]
    struct Small {
        #[serde(default)]
        tags: Vec<String>,
    }

    #[test]
    fn unknown_fields_are_ignored_and_an_empty_spec_is_an_empty_object() {
        let mut req = request(Action::Backup);
        req.spec_json = r#"{"tags":["a"],"somethingNew":{"x":1}}"#.into();
        assert_eq!(
            parse_spec::<Small>(&req).map(|s| s.tags),
            Ok(vec!["a".to_string()])
        );
        req.spec_json = String::new();
        assert_eq!(parse_spec::<Small>(&req).map(|s| s.tags), Ok(vec![]));
    }

    #[test]
    fn a_malformed_spec_is_an_invalid_spec_error() {
        let mut req = request(Action::Backup);
        req.spec_json = r#"{"tags":"not-a-list"}"#.into();
        match parse_spec::<Small>(&req) {
            Err(PluginError::InvalidSpec(message)) => {
                assert!(message.contains("failed to read the spec"), "{message}")
            }
            other => unreachable!("expected invalid-spec, got {other:?}"),
        }
    }

    #[test]
    fn spec_shapes_convert_to_the_contract() {
        let secret: SecretKeySelector = serde_json::from_str(r#"{"name":"s","key":"k"}"#).unwrap_or_default();
        assert_eq!(
            secret.to_env("X").value,
            ValueSource::SecretKey(KeyRef {
                name: "s".into(),
                key: "k".into(),
                optional: false
            })
        );
        let mount: SpecVolumeMount =
            serde_json::from_str(r#"{"name":"certs","mountPath":"/certs","readOnly":true,"subPath":""}"#)
                .unwrap_or_default();
        assert_eq!(
            mount.to_mount(),
            VolumeMount {
                name: "certs".into(),
                mount_path: "/certs".into(),
                read_only: true,
                sub_path: None
            }
        );
    }
}
