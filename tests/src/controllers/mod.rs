//! The sandbox's controller manager: nodes, PVC binding, scheduling, Deployments, Jobs and the pod
//! garbage of deleted owners. Every controller is level-triggered: one loop lists the objects and
//! reconciles all of them, woken by watch events and by a short tick (so it also works while a watch
//! is down, e.g. under fault injection).

pub mod deployments;
pub mod jobs;
pub mod nodes;
pub mod scheduler;
pub mod volumes;

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::watcher;
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How the controllers run.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Names of the simulated nodes (each gets a Node object).
    pub nodes: Vec<String>,
    /// Directory under which provisioned PVs get their local directories.
    pub volumes_dir: PathBuf,
    /// First delay before a Job recreates a failed pod (doubles per failure, at most 10 s).
    pub job_backoff: Duration,
}

/// Why a reconcile pass failed (logged; the next pass retries).
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// An API call failed.
    #[error("failed to {action}")]
    Api {
        action: String,
        #[source]
        source: kube::Error,
    },
    /// A local directory could not be created or removed.
    #[error("failed to prepare volume directory {path:?}")]
    VolumeDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn api_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> ControllerError {
    let action = action.into();
    move |source| ControllerError::Api { action, source }
}

/// Whether a kube error is a 404 or 409 (the object went away or changed meanwhile: harmless).
pub(crate) fn is_benign(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404 || s.code == 409)
}

/// The current time as a Kubernetes `Time` JSON value.
pub(crate) fn now_json() -> serde_json::Value {
    serde_json::to_value(Time(Timestamp::now())).unwrap_or(serde_json::Value::Null)
}

/// The uid of the controller owner of an object, if any.
pub(crate) fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
}

/// Whether a pod has finished for good.
pub(crate) fn pod_terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Whether a pod reports the Ready condition.
pub(crate) fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A merged snapshot of what the controllers look at, read once per pass.
pub struct World {
    /// All pods.
    pub pods: Vec<Pod>,
    /// All PVCs.
    pub pvcs: Vec<PersistentVolumeClaim>,
    /// All PVs.
    pub pvs: Vec<PersistentVolume>,
    /// All Jobs.
    pub jobs: Vec<Job>,
    /// All Deployments.
    pub deployments: Vec<Deployment>,
    /// All Nodes.
    pub nodes: Vec<k8s_openapi::api::core::v1::Node>,
}

async fn list_all<K>(client: &Client) -> Result<Vec<K>, ControllerError>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::all(client.clone());
    let what = K::plural(&K::DynamicType::default()).to_string();
    Ok(api
        .list(&Default::default())
        .await
        .map_err(api_err(format!("list {what}")))?
        .items)
}

async fn list_cluster<K>(client: &Client) -> Result<Vec<K>, ControllerError>
where
    K: kube::Resource<Scope = kube::core::ClusterResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::all(client.clone());
    let what = K::plural(&K::DynamicType::default()).to_string();
    Ok(api
        .list(&Default::default())
        .await
        .map_err(api_err(format!("list {what}")))?
        .items)
}

impl World {
    async fn read(client: &Client) -> Result<World, ControllerError> {
        // Pods are listed before their owners so a pod whose owner is missing from the later lists
        // really lost its owner (see `jobs::collect_orphans`).
        let pods = list_all::<Pod>(client).await?;
        Ok(World {
            pods,
            pvcs: list_all(client).await?,
            pvs: list_cluster(client).await?,
            jobs: list_all(client).await?,
            deployments: list_all(client).await?,
            nodes: list_cluster(client).await?,
        })
    }
}

/// The running controller manager.
#[derive(Debug)]
pub struct ControllerManager {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

fn spawn_watch<K>(client: &Client, trigger: std::sync::Arc<Notify>, stop: CancellationToken) -> JoinHandle<()>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::all(client.clone());
    tokio::spawn(async move {
        let mut events = watcher(api, watcher::Config::default()).boxed();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                ev = events.next() => match ev {
                    Some(Ok(_)) => trigger.notify_one(),
                    Some(Err(_)) => tokio::time::sleep(Duration::from_millis(500)).await,
                    None => return,
                },
            }
        }
    })
}

impl ControllerManager {
    /// Creates the Node objects and starts the reconcile loop.
    pub fn start(client: Client, cfg: ControllerConfig) -> ControllerManager {
        let stop = CancellationToken::new();
        let trigger = std::sync::Arc::new(Notify::new());
        let mut tasks = vec![
            spawn_watch::<Pod>(&client, trigger.clone(), stop.clone()),
            spawn_watch::<Job>(&client, trigger.clone(), stop.clone()),
            spawn_watch::<Deployment>(&client, trigger.clone(), stop.clone()),
            spawn_watch::<PersistentVolumeClaim>(&client, trigger.clone(), stop.clone()),
        ];
        let s = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut state = State::default();
            loop {
                if let Err(e) = pass(&client, &cfg, &mut state).await {
                    tracing::debug!(error = %crate::kubelet::error_chain(&e), "controller pass failed");
                }
                tokio::select! {
                    _ = s.cancelled() => return,
                    _ = trigger.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }));
        ControllerManager { stop, tasks }
    }

    /// Stops every loop and waits for them.
    pub async fn shutdown(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Memory the controllers keep between passes (progress clocks, backoff).
#[derive(Default)]
pub(crate) struct State {
    pub deployments: deployments::Memory,
    pub jobs: jobs::Memory,
}

async fn pass(client: &Client, cfg: &ControllerConfig, state: &mut State) -> Result<(), ControllerError> {
    let world = World::read(client).await?;
    nodes::ensure(client, cfg, &world).await?;
    volumes::reconcile(client, cfg, &world).await?;
    // PVCs bound in this pass are scheduled in the next one (woken by the PVC watch).
    scheduler::reconcile(client, &world).await?;
    deployments::reconcile(client, &world, &mut state.deployments).await?;
    jobs::reconcile(client, cfg, &world, &mut state.jobs).await?;
    jobs::collect_orphans(client, &world).await?;
    Ok(())
}

/// A condition JSON object that keeps the previous `lastTransitionTime` when its status is unchanged
/// (`prev` is the object's current `status.conditions`).
pub(crate) fn condition(
    prev: Option<&serde_json::Value>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
) -> serde_json::Value {
    let status = if status { "True" } else { "False" };
    let old = prev
        .and_then(|v| v.as_array())
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_));
    let now = now_json();
    let transition = match old {
        Some(c) if c["status"] == status => c.get("lastTransitionTime").cloned().unwrap_or(now.clone()),
        _ => now.clone(),
    };
    let unchanged =
        old.is_some_and(|c| c["status"] == status && c["reason"] == reason && c["message"] == message);
    let update = match old {
        Some(c) if unchanged => c
            .get("lastUpdateTime")
            .or(c.get("lastProbeTime"))
            .cloned()
            .unwrap_or(now.clone()),
        _ => now,
    };
    serde_json::json!({
        "type": type_, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": transition, "lastUpdateTime": update,
    })
}
