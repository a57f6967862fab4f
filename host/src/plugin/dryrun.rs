//! The dry-run commands' library side: `k8up plan` (validate -> request -> engine -> check -> build, the
//! operator's own path, without a single API write), `k8up plugin inspect` and `k8up plugin run`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use kube::{Resource as _, ResourceExt};

use super::engine::{Limits, PluginEngine};
use super::error::Error;
use super::planner::PluginPlanner;
use super::request::build_request;
use super::state::{State, StateError, documents, kind_of, observed_from_state};
use super::types::{JobPlan, PlanRequest};
use crate::crd::{Archive, Backup, Check, Prune, Restore};
use crate::operator::driver::apply::finish_job;
use crate::operator::driver::observe::{self, Observed, Wants};
use crate::operator::driver::validate::{InvalidSpec, validate};
use crate::operator::kinds::ActionKind;
use crate::operator::settings::OperatorSettings;

/// The uid a resource without one is planned with (the Jobs' owner reference shows it).
pub const PLACEHOLDER_UID: &str = "00000000-0000-0000-0000-000000000000";

/// Why a dry run failed.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    /// A file could not be read.
    #[error("failed to read {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The resource or state file is not what it should be.
    #[error(transparent)]
    Parse(#[from] StateError),
    /// The resource file holds no document, or several.
    #[error("the resource file must hold exactly one document, it holds {0}")]
    ResourceCount(usize),
    /// The resource is not an action.
    #[error("the resource is a {0:?}; k8up plan takes a Backup, Restore, Archive, Check or Prune")]
    NotAnAction(String),
    /// The resource is invalid (what the operator would report as `InvalidSpec`).
    #[error("the resource is invalid: {0}")]
    InvalidSpec(#[source] InvalidSpec),
    /// Reading the cluster failed.
    #[error("failed to observe the cluster")]
    Observe(#[source] crate::operator::driver::Error),
    /// No client could be made from the kubeconfig.
    #[error("failed to use the kubeconfig {}", path.display())]
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The plugin host failed (load, call, check).
    #[error(transparent)]
    Plugin(#[from] Error),
    /// A plan request file is not the contract's JSON.
    #[error("failed to parse the plan request {}", path.display())]
    ParseRequest {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// One action resource read from YAML.
#[derive(Debug, Clone)]
pub enum Resource {
    /// A Backup.
    Backup(Box<Backup>),
    /// A Restore.
    Restore(Box<Restore>),
    /// An Archive.
    Archive(Box<Archive>),
    /// A Check.
    Check(Box<Check>),
    /// A Prune.
    Prune(Box<Prune>),
}

/// Calls a generic function with the typed object of a [`Resource`].
macro_rules! with_object {
    ($resource:expr, |$o:ident| $body:expr) => {
        match $resource {
            Resource::Backup($o) => $body,
            Resource::Restore($o) => $body,
            Resource::Archive($o) => $body,
            Resource::Check($o) => $body,
            Resource::Prune($o) => $body,
        }
    };
}

impl Resource {
    /// Parses one action manifest; a missing namespace becomes `default` and a missing uid
    /// [`PLACEHOLDER_UID`], as if the API server had stored it.
    pub fn parse(text: &str) -> Result<Resource, DryRunError> {
        const WHAT: &str = "the resource";
        let docs = documents(text, WHAT)?;
        let [doc] = docs.as_slice() else {
            return Err(DryRunError::ResourceCount(docs.len()));
        };
        let kind = kind_of(doc);
        let err = |source| StateError::ParseDocument {
            what: WHAT,
            index: 1,
            kind: kind.clone(),
            source,
        };
        let doc = doc.clone();
        let mut resource = match kind.as_str() {
            "Backup" => Resource::Backup(serde_yaml::from_value(doc).map_err(err)?),
            "Restore" => Resource::Restore(serde_yaml::from_value(doc).map_err(err)?),
            "Archive" => Resource::Archive(serde_yaml::from_value(doc).map_err(err)?),
            "Check" => Resource::Check(serde_yaml::from_value(doc).map_err(err)?),
            "Prune" => Resource::Prune(serde_yaml::from_value(doc).map_err(err)?),
            _ => return Err(DryRunError::NotAnAction(kind)),
        };
        with_object!(&mut resource, |o| {
            let meta = o.meta_mut();
            meta.namespace.get_or_insert_with(|| "default".to_string());
            meta.uid.get_or_insert_with(|| PLACEHOLDER_UID.to_string());
        });
        Ok(resource)
    }

    /// The resource's namespace and name.
    pub fn key(&self) -> (String, String) {
        with_object!(self, |o| (o.namespace().unwrap_or_default(), o.name_any()))
    }
}

/// Where the dry run reads the cluster from.
#[derive(Clone, Copy)]
pub enum Cluster<'a> {
    /// A state file's objects.
    State(&'a State),
    /// A real cluster, read-only.
    Client(&'a kube::Client),
}

impl std::fmt::Debug for Cluster<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Cluster::State(_) => "Cluster::State",
            Cluster::Client(_) => "Cluster::Client",
        })
    }
}

/// What a dry run produced.
#[derive(Debug, Clone)]
pub struct DryRun {
    /// The plan request the plugin got (or would get).
    pub request: PlanRequest,
    /// The Jobs the operator would create (empty when only the request was asked for, or nothing is to do).
    pub jobs: Vec<Job>,
    /// The plugin's note.
    pub message: Option<String>,
}

/// Plans `resource` like the operator: validate, observe (from `cluster`), request, plan, check, build, and
/// the driver's own finishing touches (owner reference, identity labels). With `request_only` the plugin is
/// not called.
pub async fn plan_resource(
    planner: &PluginPlanner,
    resource: &Resource,
    settings: &Arc<OperatorSettings>,
    cluster: Cluster<'_>,
    request_only: bool,
) -> Result<DryRun, DryRunError> {
    with_object!(resource, |o| plan_object(
        planner,
        o.as_ref(),
        settings,
        cluster,
        request_only
    )
    .await)
}

async fn plan_object<K: ActionKind>(
    planner: &PluginPlanner,
    object: &K,
    settings: &Arc<OperatorSettings>,
    cluster: Cluster<'_>,
    request_only: bool,
) -> Result<DryRun, DryRunError> {
    let action = validate(object, settings).map_err(DryRunError::InvalidSpec)?;
    let observed: Observed = match cluster {
        Cluster::State(state) => observed_from_state(
            state,
            action.job_type,
            &action.namespace,
            &action.spec,
            action.runnable.pod_config_ref.as_ref().map(|r| r.name.as_str()),
        ),
        Cluster::Client(client) => observe::observe(
            client,
            object,
            Wants {
                plan_inputs: true,
                reports: false,
            },
        )
        .await
        .map_err(DryRunError::Observe)?,
    };
    let request = build_request(&action, &observed);
    if request_only {
        return Ok(DryRun {
            request,
            jobs: Vec::new(),
            message: None,
        });
    }
    let plan = planner.plan_action(&action, &observed).await?;
    Ok(DryRun {
        request,
        jobs: plan
            .jobs
            .into_iter()
            .map(|job| finish_job(&action, job))
            .collect(),
        message: plan.message,
    })
}

/// A read-only client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client, DryRunError> {
    let wrap = |source: Box<dyn std::error::Error + Send + Sync>| DryRunError::Kubeconfig {
        path: path.to_path_buf(),
        source,
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| wrap(Box::new(e)))?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| wrap(Box::new(e)))?;
    kube::Client::try_from(config).map_err(|e| wrap(Box::new(e)))
}

/// Reads a file, naming it on failure.
pub fn read(path: &Path) -> Result<Vec<u8>, DryRunError> {
    std::fs::read(path).map_err(|source| DryRunError::ReadFile {
        path: path.to_path_buf(),
        source,
    })
}

/// What `k8up plugin inspect` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// Declared name.
    pub name: String,
    /// Declared version.
    pub version: String,
    /// Declared description.
    pub description: String,
    /// The contract version (`k8up:plugin@0.1.0`).
    pub wit: String,
    /// The actions it serves.
    pub actions: Vec<String>,
    /// Size in bytes.
    pub size: usize,
    /// Lowercase hex sha256 (what `spec.plugin.sha256` pins).
    pub sha256: String,
}

impl std::fmt::Display for Inspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "name: {}", self.name)?;
        writeln!(f, "version: {}", self.version)?;
        writeln!(f, "description: {}", self.description)?;
        writeln!(f, "wit: {}", self.wit)?;
        writeln!(f, "actions: {}", self.actions.join(", "))?;
        writeln!(f, "size: {}", self.size)?;
        writeln!(f, "sha256: {}", self.sha256)
    }
}

/// Loads (compiles, version-checks, describes) the component in `path`.
pub fn inspect(path: &Path, limits: Limits) -> Result<Inspection, DryRunError> {
    let bytes = read(path)?;
    let engine = PluginEngine::new(limits)?;
    let plugin = engine.load(&path.display().to_string(), &bytes)?;
    Ok(Inspection {
        name: plugin.name().to_string(),
        version: plugin.version().to_string(),
        description: plugin.info().description.clone(),
        wit: format!("k8up:plugin@{}", plugin.wit_version()),
        actions: plugin
            .info()
            .actions
            .iter()
            .map(|a| super::error::action_name(*a).to_string())
            .collect(),
        size: plugin.size(),
        sha256: plugin.digest().to_string(),
    })
}

/// Calls the `plan` of the component in `path` with the request (the contract's JSON) in `request`. The
/// answer is the plugin's raw plan: not checked, no Jobs built.
pub fn run_plugin(path: &Path, request: &Path, limits: Limits) -> Result<JobPlan, DryRunError> {
    let json = read(request)?;
    let request: PlanRequest = serde_json::from_slice(&json).map_err(|source| DryRunError::ParseRequest {
        path: request.to_path_buf(),
        source,
    })?;
    let bytes = read(path)?;
    let engine = PluginEngine::new(limits)?;
    let plugin = engine.load(&path.display().to_string(), &bytes)?;
    Ok(engine.plan(&plugin, &request)?)
}
