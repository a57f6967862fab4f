//! Validate step (pure, no client): an action object plus the operator settings become a
//! [`ValidatedAction`], or an [`InvalidSpec`] whose message tells a person what to change.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::repository::{self, Repository};
use crate::crd::{JobType, RunnableSpec};
use crate::operator::kinds::ActionKind;
use crate::operator::settings::OperatorSettings;

/// Label on every k8up Job (and its pods): `k8upjob=true`.
pub const LABEL_K8UP_JOB: &str = "k8upjob";
/// Label with the job type.
pub const LABEL_TYPE: &str = "k8up.io/type";
/// Label `<type>_<name>` by which the driver finds the Jobs of an action.
pub const LABEL_OWNED_BY: &str = "k8up.io/owned-by";
/// Label with the hash of the repository (for the per-repository locker).
pub const LABEL_REPOSITORY_HASH: &str = "k8up.io/repository-hash";

/// A spec the operator cannot run; waits for the user to change the object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("; "))]
pub struct InvalidSpec {
    /// Every problem found, each phrased as what to change.
    pub problems: Vec<String>,
}

/// History limits after the fallbacks (field -> `keepJobs` -> operator setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveHistory {
    /// Successful objects kept among siblings.
    pub successful: u32,
    /// Failed objects kept among siblings.
    pub failed: u32,
}

/// An action with defaults and settings merged: what the plan, apply and status steps work from.
#[derive(Debug, Clone)]
pub struct ValidatedAction {
    /// The kind.
    pub job_type: JobType,
    /// Object name.
    pub name: String,
    /// Object namespace.
    pub namespace: String,
    /// Object UID.
    pub uid: String,
    /// `metadata.generation` (for `observedGeneration` of conditions).
    pub generation: Option<i64>,
    /// Object labels.
    pub labels: BTreeMap<String, String>,
    /// Object annotations.
    pub annotations: BTreeMap<String, String>,
    /// The `k8up.io/owned-by` value of its Jobs: `<type>_<name>`.
    pub owned_by: String,
    /// The controller owner reference every Job gets.
    pub owner: OwnerReference,
    /// The whole spec as JSON (the planner's escape hatch).
    pub spec: serde_json::Value,
    /// The inlined `RunnableSpec`.
    pub runnable: RunnableSpec,
    /// The resolved repository.
    pub repository: Repository,
    /// Effective history limits.
    pub history: EffectiveHistory,
    /// Operator settings.
    pub settings: Arc<OperatorSettings>,
}

impl ValidatedAction {
    /// The identity labels the driver puts on every Job of this action.
    pub fn identity_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_K8UP_JOB.to_string(), "true".to_string()),
            (LABEL_TYPE.to_string(), self.job_type.as_str().to_string()),
            (LABEL_OWNED_BY.to_string(), self.owned_by.clone()),
        ])
    }

    /// The repository-hash label value: the first 63 hex characters of sha256(repository).
    pub fn repository_hash(&self) -> String {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(self.repository.url.as_bytes()));
        digest[..63].to_string()
    }
}

/// Validates `object` against the settings. Pure.
pub fn validate<K: ActionKind>(
    object: &K,
    settings: &Arc<OperatorSettings>,
) -> Result<ValidatedAction, InvalidSpec> {
    let meta = object.meta();
    let mut problems = Vec::new();
    let name = meta.name.clone().unwrap_or_default();
    let namespace = meta.namespace.clone().unwrap_or_default();
    let uid = meta.uid.clone().unwrap_or_default();
    if name.is_empty() || namespace.is_empty() || uid.is_empty() {
        problems.push("the object has no name, namespace or uid yet".to_string());
    }
    // Job names are `<type>-<name>[-<suffix>]` and also a label value (at most 63 characters).
    let prefix_len = K::JOB_TYPE.as_str().len() + 1 + name.len();
    if prefix_len > 52 {
        problems.push(format!(
            "the name is {} characters long; use at most {} so that its Job names fit in 63 characters",
            name.len(),
            52 - K::JOB_TYPE.as_str().len() - 1
        ));
    }
    let runnable = object.runnable().clone();
    if let Some(backend) = &runnable.backend
        && let Err(e) = backend.validate()
    {
        problems.push(format!("spec.backend: {e}"));
    }
    problems.extend(object.check_spec().into_iter().map(|e| e.to_string()));
    let spec = object.spec_json();
    problems.extend(crate::operator::lint::spec(&spec));
    let repository = match repository::resolve(runnable.backend.as_ref(), &settings.repository) {
        Ok(r) => Some(r),
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    let has_password = runnable
        .backend
        .as_ref()
        .is_some_and(|b| b.repo_password_secret_ref.is_some())
        || settings.repository.password.is_some();
    if !has_password {
        problems.push(
            "no repository password: set spec.backend.repoPasswordSecretRef or the operator's global password (BACKUP_GLOBALREPOPASSWORD)"
                .to_string(),
        );
    }
    let owner = object.controller_owner_ref(&());
    let (Some(repository), Some(owner), true) = (repository, owner, problems.is_empty()) else {
        if problems.is_empty() {
            problems.push("the object has no name or uid yet".to_string());
        }
        return Err(InvalidSpec { problems });
    };
    let limits = object.history();
    let history = EffectiveHistory {
        successful: limits.successful().unwrap_or(settings.history.successful),
        failed: limits.failed().unwrap_or(settings.history.failed),
    };
    Ok(ValidatedAction {
        job_type: K::JOB_TYPE,
        owned_by: format!("{}_{}", K::JOB_TYPE.as_str(), name),
        name,
        namespace,
        uid,
        generation: meta.generation,
        labels: meta.labels.clone().unwrap_or_default(),
        annotations: meta.annotations.clone().unwrap_or_default(),
        owner,
        spec,
        runnable,
        repository,
        history,
        settings: settings.clone(),
    })
}
