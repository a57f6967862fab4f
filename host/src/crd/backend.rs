//! `Backend`: where the restic repository lives (one storage type) and how restic reaches it.

use k8s_openapi::api::core::v1::{EnvFromSource, SecretKeySelector, VolumeMount};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validation::ValidationError;

/// The restic repository of an action and its credentials.
///
/// At most one storage type (`azure`, `b2`, `gcs`, `local`, `rest`, `s3`, `swift`) may be set. The CRD
/// enforces this with a CEL rule; the operator checks it again with [`Backend::validate`] because CEL is not
/// evaluated everywhere (the sandbox API server skips it). With none set, the operator's global S3 settings
/// are used.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "(has(self.azure) ? 1 : 0) + (has(self.b2) ? 1 : 0) + (has(self.gcs) ? 1 : 0) + (has(self.local) ? 1 : 0) + (has(self.rest) ? 1 : 0) + (has(self.s3) ? 1 : 0) + (has(self.swift) ? 1 : 0) <= 1",
    "message": "set at most one storage type: azure, b2, gcs, local, rest, s3 or swift",
}]))]
pub struct Backend {
    /// Secret key holding the restic repository password (job env `RESTIC_PASSWORD`). Falls back to the
    /// operator's global repository password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_password_secret_ref: Option<SecretKeySelector>,

    /// Environment sources added verbatim to the job container, e.g. a Secret with OpenStack `OS_*`
    /// variables for Swift or `CA_CERT_FILE` for a custom CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_from: Option<Vec<EnvFromSource>>,

    /// A repository on a path inside the job pod (mount it with `volumes` and `volumeMounts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalSpec>,

    /// An S3-compatible bucket (repository `s3:<endpoint>/<bucket>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Spec>,

    /// A Google Cloud Storage bucket (repository `gs:<bucket>:/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcs: Option<GcsSpec>,

    /// An Azure Blob Storage container (repository `azure:<container>:<path>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureSpec>,

    /// An OpenStack Swift container (repository `swift:<container>:<path>`); credentials come from `envFrom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swift: Option<SwiftSpec>,

    /// A Backblaze B2 bucket (repository `b2:<bucket>:<path>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b2: Option<B2Spec>,

    /// A restic REST server (repository `rest:<scheme>://$(USER):$(PASSWORD)@<host/path>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest: Option<RestServerSpec>,

    /// TLS files (paths inside the job pod) used to reach the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_options: Option<TlsOptions>,

    /// Extra mounts of the job container, typically of a volume declared in `volumes` (certificates, a
    /// local repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_mounts: Option<Vec<VolumeMount>>,
}

/// The storage type of a [`Backend`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKind {
    /// Azure Blob Storage.
    Azure,
    /// Backblaze B2.
    B2,
    /// Google Cloud Storage.
    Gcs,
    /// A local path.
    Local,
    /// A restic REST server.
    Rest,
    /// S3 or compatible.
    S3,
    /// OpenStack Swift.
    Swift,
}

impl BackendKind {
    /// The JSON field name of this storage type in `backend`.
    pub fn field_name(self) -> &'static str {
        match self {
            Self::Azure => "azure",
            Self::B2 => "b2",
            Self::Gcs => "gcs",
            Self::Local => "local",
            Self::Rest => "rest",
            Self::S3 => "s3",
            Self::Swift => "swift",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.field_name())
    }
}

impl Backend {
    /// Every storage type that is set, in K8up's precedence order (azure, b2, gcs, local, rest, s3, swift).
    pub fn kinds(&self) -> Vec<BackendKind> {
        [
            (self.azure.is_some(), BackendKind::Azure),
            (self.b2.is_some(), BackendKind::B2),
            (self.gcs.is_some(), BackendKind::Gcs),
            (self.local.is_some(), BackendKind::Local),
            (self.rest.is_some(), BackendKind::Rest),
            (self.s3.is_some(), BackendKind::S3),
            (self.swift.is_some(), BackendKind::Swift),
        ]
        .into_iter()
        .filter_map(|(set, kind)| set.then_some(kind))
        .collect()
    }

    /// The storage type in use: the first one set in K8up's precedence order, `None` when no storage type is
    /// set (the operator then uses its global S3 settings).
    pub fn kind(&self) -> Option<BackendKind> {
        self.kinds().into_iter().next()
    }

    /// Check the rules the CRD also states as CEL: at most one storage type, and no conflicting REST
    /// password references. Returns the first broken rule with a message meant for the user.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let kinds = self.kinds();
        if kinds.len() > 1 {
            return Err(ValidationError::MultipleBackends {
                kinds: kinds.into_iter().map(BackendKind::field_name).collect(),
            });
        }
        if let Some(rest) = &self.rest {
            rest.validate()?;
        }
        Ok(())
    }
}

/// A repository on a path inside the job pod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalSpec {
    /// Path of the repository inside the job pod (the repository string is the path itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,
}

/// An S3-compatible bucket. Also used as the upload target of `restoreMethod.s3`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Spec {
    /// Endpoint URL with scheme, e.g. `https://s3.example.com` (a trailing `/` is ignored). Empty: the
    /// operator's global endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,

    /// Bucket name. Empty: the operator's global bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,

    /// Secret key holding the access key id (job env `AWS_ACCESS_KEY_ID`).
    #[serde(
        default,
        rename = "accessKeyIDSecretRef",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_key_id_secret_ref: Option<SecretKeySelector>,

    /// Secret key holding the secret access key (job env `AWS_SECRET_ACCESS_KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key_secret_ref: Option<SecretKeySelector>,
}

/// A Google Cloud Storage bucket.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcsSpec {
    /// Bucket name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,

    /// Secret key holding the project id (job env `GOOGLE_PROJECT_ID`).
    #[serde(
        default,
        rename = "projectIDSecretRef",
        skip_serializing_if = "Option::is_none"
    )]
    pub project_id_secret_ref: Option<SecretKeySelector>,

    /// Secret key holding an OAuth access token (job env `GOOGLE_ACCESS_TOKEN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_secret_ref: Option<SecretKeySelector>,
}

/// An Azure Blob Storage container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureSpec {
    /// Container name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,

    /// Path inside the container (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,

    /// Secret key holding the storage account name (job env `AZURE_ACCOUNT_NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name_secret_ref: Option<SecretKeySelector>,

    /// Secret key holding the storage account key (job env `AZURE_ACCOUNT_KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_key_secret_ref: Option<SecretKeySelector>,
}

/// An OpenStack Swift container. Credentials are passed as `OS_*` variables through `backend.envFrom`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SwiftSpec {
    /// Container name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,

    /// Path inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A Backblaze B2 bucket.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct B2Spec {
    /// Bucket name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,

    /// Path inside the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,

    /// Secret key holding the account id (job env `B2_ACCOUNT_ID`).
    #[serde(
        default,
        rename = "accountIDSecretRef",
        skip_serializing_if = "Option::is_none"
    )]
    pub account_id_secret_ref: Option<SecretKeySelector>,

    /// Secret key holding the account key (job env `B2_ACCOUNT_KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_key_secret_ref: Option<SecretKeySelector>,
}

/// A restic REST server.
///
/// K8up names the password field `passwordSecretReg` (a typo that is its real JSON name). Both that name and
/// the correct `passwordSecretRef` are accepted; [`RestServerSpec::password_secret_ref`] returns the one in
/// effect, preferring the correct name.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.passwordSecretRef) || !has(self.passwordSecretReg) || self.passwordSecretRef == self.passwordSecretReg",
    "message": "passwordSecretRef and passwordSecretReg (K8up's misspelling) differ; keep only passwordSecretRef",
}]))]
pub struct RestServerSpec {
    /// Server URL with scheme, e.g. `https://rest.example.com/repo`. User and password are inserted from
    /// the secrets below (job env `USER` and `PASSWORD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,

    /// Secret key holding the user name (job env `USER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_secret_ref: Option<SecretKeySelector>,

    /// Secret key holding the password (job env `PASSWORD`). Preferred over `passwordSecretReg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeySelector>,

    /// K8up's misspelt name of `passwordSecretRef`, accepted so that K8up manifests apply unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_reg: Option<SecretKeySelector>,
}

impl RestServerSpec {
    /// The password reference in effect: `passwordSecretRef`, else K8up's `passwordSecretReg`.
    pub fn password_secret_ref(&self) -> Option<&SecretKeySelector> {
        self.password_secret_ref
            .as_ref()
            .or(self.password_secret_reg.as_ref())
    }

    /// Reject two different password references (which one the user meant is unknown).
    pub fn validate(&self) -> Result<(), ValidationError> {
        match (&self.password_secret_ref, &self.password_secret_reg) {
            (Some(correct), Some(typo)) if correct != typo => Err(ValidationError::ConflictingRestPassword),
            _ => Ok(()),
        }
    }
}

/// TLS files used by restic to reach a server; the paths are inside the job pod (mount them with
/// `volumes` and `volumeMounts`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsOptions {
    /// Path of a CA certificate file that signs the server's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,

    /// Path of a client certificate file for mutual TLS (used only together with `clientKey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,

    /// Path of the client private key file for mutual TLS (used only together with `clientCert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, key: &str) -> SecretKeySelector {
        SecretKeySelector {
            name: name.to_owned(),
            key: key.to_owned(),
            optional: None,
        }
    }

    #[test]
    fn rest_password_prefers_the_correct_field_name() {
        let rest = RestServerSpec {
            password_secret_ref: Some(secret("right", "password")),
            password_secret_reg: Some(secret("typo", "password")),
            ..Default::default()
        };
        assert_eq!(rest.password_secret_ref().map(|s| s.name.as_str()), Some("right"));
    }

    #[test]
    fn rest_password_falls_back_to_k8ups_misspelt_field() {
        let rest = RestServerSpec {
            password_secret_reg: Some(secret("typo", "pw")),
            ..Default::default()
        };
        assert_eq!(rest.password_secret_ref().map(|s| s.name.as_str()), Some("typo"));
        assert_eq!(rest.validate(), Ok(()));
    }

    #[test]
    fn rest_password_fields_that_differ_are_rejected_but_equal_ones_pass() {
        let mut rest = RestServerSpec {
            password_secret_ref: Some(secret("a", "pw")),
            password_secret_reg: Some(secret("b", "pw")),
            ..Default::default()
        };
        assert_eq!(rest.validate(), Err(ValidationError::ConflictingRestPassword));
        rest.password_secret_reg = Some(secret("a", "pw"));
        assert_eq!(rest.validate(), Ok(()));
    }

    #[test]
    fn backend_kind_is_detected_in_k8ups_precedence_order() {
        let backend = Backend {
            s3: Some(S3Spec::default()),
            b2: Some(B2Spec::default()),
            ..Default::default()
        };
        assert_eq!(backend.kinds(), vec![BackendKind::B2, BackendKind::S3]);
        assert_eq!(backend.kind(), Some(BackendKind::B2));
        assert_eq!(Backend::default().kind(), None);
        let local = Backend {
            local: Some(LocalSpec::default()),
            ..Default::default()
        };
        assert_eq!(local.kind(), Some(BackendKind::Local));
    }

    #[test]
    fn backend_with_two_storage_types_fails_validation_naming_both() {
        let backend = Backend {
            s3: Some(S3Spec::default()),
            rest: Some(RestServerSpec::default()),
            ..Default::default()
        };
        let error = backend.validate().err();
        assert_eq!(
            error,
            Some(ValidationError::MultipleBackends {
                kinds: vec!["rest", "s3"]
            })
        );
        let message = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("(rest, s3)"), "{message}");
    }

    #[test]
    fn backend_with_one_or_no_storage_type_is_valid() {
        assert_eq!(Backend::default().validate(), Ok(()));
        let gcs = Backend {
            gcs: Some(GcsSpec::default()),
            ..Default::default()
        };
        assert_eq!(gcs.validate(), Ok(()));
    }

    #[test]
    fn backend_validation_reaches_into_the_rest_spec() {
        let backend = Backend {
            rest: Some(RestServerSpec {
                password_secret_ref: Some(secret("a", "pw")),
                password_secret_reg: Some(secret("b", "pw")),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(backend.validate(), Err(ValidationError::ConflictingRestPassword));
    }
}
