//! Cluster state from YAML (`k8up plan --state`): the objects the observe step would read, written as a
//! multi-document YAML file (or `kind: List`, as `kubectl get pvc,pv,pods -o yaml` prints it).

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use serde::Deserialize;

use crate::crd::{PodConfig, PreBackupPod};
use crate::operator::driver::observe::{Observed, restore_claim};

/// Why a state or resource file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A document is not valid YAML or not the object its `kind` says.
    #[error("failed to parse document {index} ({kind}) of {what}")]
    ParseDocument {
        /// Which file (`the resource`, `the state`).
        what: &'static str,
        /// 1-based position of the document.
        index: usize,
        /// The document's kind, or `?`.
        kind: String,
        /// The YAML error.
        #[source]
        source: serde_yaml::Error,
    },
    /// A document has a kind the state cannot hold.
    #[error(
        "document {index} of {what} is a {kind}; expected PersistentVolumeClaim, PersistentVolume, Pod, \
         PreBackupPod, PodConfig or List"
    )]
    UnexpectedKind {
        /// Which file.
        what: &'static str,
        /// 1-based position of the document.
        index: usize,
        /// The kind found.
        kind: String,
    },
}

/// The objects of a state file.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// PersistentVolumeClaims.
    pub pvcs: Vec<PersistentVolumeClaim>,
    /// PersistentVolumes.
    pub pvs: Vec<PersistentVolume>,
    /// Pods.
    pub pods: Vec<Pod>,
    /// PreBackupPods.
    pub pre_backup_pods: Vec<PreBackupPod>,
    /// PodConfigs.
    pub pod_configs: Vec<PodConfig>,
}

/// Every YAML document of `text` as a value, skipping empty documents.
pub fn documents(text: &str, what: &'static str) -> Result<Vec<serde_yaml::Value>, StateError> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = serde_yaml::Value::deserialize(doc).map_err(|source| StateError::ParseDocument {
            what,
            index: i + 1,
            kind: "?".to_string(),
            source,
        })?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

/// The `kind` of a document, or an empty string.
pub fn kind_of(value: &serde_yaml::Value) -> String {
    value
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or_default()
        .to_string()
}

/// Parses a state file.
pub fn parse_state(text: &str) -> Result<State, StateError> {
    const WHAT: &str = "the state";
    let mut state = State::default();
    let mut queue: Vec<(usize, serde_yaml::Value)> = documents(text, WHAT)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| (i + 1, v))
        .collect();
    queue.reverse();
    while let Some((index, value)) = queue.pop() {
        let kind = kind_of(&value);
        let parse_err = |source| StateError::ParseDocument {
            what: WHAT,
            index,
            kind: kind.clone(),
            source,
        };
        match kind.as_str() {
            "List" => {
                let items = value.get("items").and_then(|i| i.as_sequence()).cloned();
                for item in items.unwrap_or_default().into_iter().rev() {
                    queue.push((index, item));
                }
            }
            "PersistentVolumeClaim" => state.pvcs.push(serde_yaml::from_value(value).map_err(parse_err)?),
            "PersistentVolume" => state.pvs.push(serde_yaml::from_value(value).map_err(parse_err)?),
            "Pod" => state.pods.push(serde_yaml::from_value(value).map_err(parse_err)?),
            "PreBackupPod" => state
                .pre_backup_pods
                .push(serde_yaml::from_value(value).map_err(parse_err)?),
            "PodConfig" => state
                .pod_configs
                .push(serde_yaml::from_value(value).map_err(parse_err)?),
            _ => {
                return Err(StateError::UnexpectedKind {
                    what: WHAT,
                    index,
                    kind: if kind.is_empty() {
                        "document without kind".into()
                    } else {
                        kind
                    },
                });
            }
        }
    }
    Ok(state)
}

/// What the observe step would have read for an action of `job_type` in `namespace` from this state: the
/// namespace's objects (objects without a namespace count as in it), PVs, the folder Restore's PVC, and the
/// PodConfig named by `pod_config_ref`.
pub fn observed_from_state(
    state: &State,
    job_type: crate::crd::JobType,
    namespace: &str,
    spec: &serde_json::Value,
    pod_config_ref: Option<&str>,
) -> Observed {
    use crate::crd::JobType;
    let here = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        meta.namespace.as_deref().is_none_or(|ns| ns == namespace)
    };
    let mut observed = Observed::default();
    match job_type {
        JobType::Backup => {
            observed.pvcs = state.pvcs.iter().filter(|o| here(&o.metadata)).cloned().collect();
            observed.pvs = state.pvs.clone();
            observed.pods = state.pods.iter().filter(|o| here(&o.metadata)).cloned().collect();
            observed.pre_backup_pods = state
                .pre_backup_pods
                .iter()
                .filter(|o| here(&o.metadata))
                .cloned()
                .collect();
        }
        JobType::Restore => {
            let claim = restore_claim(spec);
            observed.pvcs = state
                .pvcs
                .iter()
                .filter(|o| here(&o.metadata) && claim.is_some() && o.metadata.name == claim)
                .cloned()
                .collect();
        }
        JobType::Archive | JobType::Check | JobType::Prune => {}
    }
    observed.pod_config = pod_config_ref.and_then(|name| {
        state
            .pod_configs
            .iter()
            .find(|pc| here(&pc.metadata) && pc.metadata.name.as_deref() == Some(name))
            .cloned()
    });
    observed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_file_holds_documents_and_lists_of_the_known_kinds() {
        let text = r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: a}
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: p}
    spec: {containers: [{name: app}]}
  - apiVersion: v1
    kind: PersistentVolume
    metadata: {name: pv}
---
"#;
        let state = parse_state(text).unwrap_or_default();
        assert_eq!((state.pvcs.len(), state.pods.len(), state.pvs.len()), (1, 1, 1));
    }

    #[test]
    fn an_unexpected_kind_is_named_with_its_position() {
        let err = parse_state("kind: PersistentVolumeClaim\nmetadata: {name: a}\n---\nkind: Secret\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("document 2") && err.contains("Secret"), "{err}");
    }

    #[test]
    fn a_malformed_document_names_its_kind_and_position() {
        let err = parse_state("kind: Pod\nmetadata: {name: [not, a, string]}\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("document 1 (Pod)"), "{err}");
    }
}
