//! `k8up operator`: the controller manager. [`run`] starts one controller per action kind (all driven by
//! the generic [`driver`]) and the HTTP endpoints (`/metrics`, `/healthz`, `/readyz`).

pub mod controller;
pub mod decoded;
pub mod driver;
pub mod http;
pub mod kinds;
pub mod leader;
pub mod lint;
pub mod metrics;
pub mod schedule;
pub mod scheduler;
pub mod settings;
pub mod snapshots;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use controller::Controllers;
pub use driver::{JobPlan, PlanError, PlanRequest, Planner};

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No Kubernetes client could be configured (kubeconfig or in-cluster environment).
    #[error("failed to configure the Kubernetes client")]
    Client(#[source] kube::Error),
    /// An HTTP listener could not be bound.
    #[error("failed to listen on {addr}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The plugin engine or the built-in plugins could not be set up.
    #[error("failed to set up the planning plugins")]
    Plugins(#[source] crate::plugin::Error),
    /// Waiting for the shutdown signal failed.
    #[error("failed to wait for the shutdown signal")]
    Signal(#[source] std::io::Error),
}

/// Run the operator with validated settings until it is told to stop (Ctrl-C / SIGINT).
///
/// Jobs are planned by the WASM plugins under the configured limits: the embedded built-ins, and the
/// plugins registered by ConfigMaps in the plugin namespace, reloaded without a restart
/// ([`crate::plugin::Registry`]). Use [`run_with_planner`] to supply another planner.
pub async fn run(settings: settings::OperatorSettings) -> Result<(), Error> {
    use crate::plugin::{Builtins, PluginEngine, PluginPlanner, Registry, planner};
    let client = kube::Client::try_default().await.map_err(Error::Client)?;
    let metrics = Arc::new(metrics::Metrics::new());
    let engine = PluginEngine::new(planner::limits(&settings.plugins)).map_err(Error::Plugins)?;
    let builtins = Builtins::load_blocking(&engine).await.map_err(Error::Plugins)?;
    planner::log_builtins(&builtins);
    let registry = Arc::new(Registry::new(
        engine.clone(),
        builtins,
        settings.plugins.namespace.clone(),
    ));
    tracing::info!(namespace = registry.namespace(), "watching plugin ConfigMaps");
    let watch = registry.watch(client.clone(), metrics.clone());
    let planner = Arc::new(PluginPlanner::new(engine, registry));
    let result = serve(settings, client, metrics, planner).await;
    watch.abort();
    result
}

/// Run the operator with the given planner until Ctrl-C.
pub async fn run_with_planner(
    settings: settings::OperatorSettings,
    planner: Arc<dyn Planner>,
) -> Result<(), Error> {
    let client = kube::Client::try_default().await.map_err(Error::Client)?;
    serve(settings, client, Arc::new(metrics::Metrics::new()), planner).await
}

async fn serve(
    settings: settings::OperatorSettings,
    client: kube::Client,
    metrics: Arc<metrics::Metrics>,
    planner: Arc<dyn Planner>,
) -> Result<(), Error> {
    tracing::info!(
        namespace = %settings.operator_namespace,
        leader_election = settings.leader_election.enabled,
        "starting the operator"
    );
    let ready = Arc::new(AtomicBool::new(false));
    let state = http::HttpState {
        metrics: metrics.clone(),
        ready: ready.clone(),
    };
    let mut servers = Vec::new();
    let addrs = [
        settings.metrics.bind_address,
        settings.metrics.health_bind_address,
    ];
    for addr in addrs.into_iter().flatten() {
        let (bound, task) = http::serve(addr, http::router(state.clone()))
            .await
            .map_err(|source| Error::Listen { addr, source })?;
        tracing::info!(%bound, "serving /metrics, /healthz and /readyz");
        servers.push(task);
    }
    let token = tokio_util::sync::CancellationToken::new();
    let settings = Arc::new(settings);
    let controllers = if settings.leader_election.enabled {
        let elector = leader::Elector::new(
            client.clone(),
            &settings.operator_namespace,
            leader::default_identity(),
            settings.leader_election.clone(),
        );
        tracing::info!(
            lease = %settings.leader_election.lease_name,
            identity = elector.identity(),
            "leader election enabled"
        );
        tokio::spawn(leader::lead_while_elected(elector, token.clone(), move || {
            Controllers::start(client.clone(), settings.clone(), planner.clone(), metrics.clone())
        }))
    } else {
        let controllers = Controllers::start(client, settings, planner, metrics);
        let token = token.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            controllers.shutdown().await;
        })
    };
    // Ready means serving: a replica waiting for the Lease is ready to take over.
    ready.store(true, Ordering::Relaxed);
    let signal = tokio::signal::ctrl_c().await.map_err(Error::Signal);
    tracing::info!("stopping the controllers");
    token.cancel();
    if let Err(e) = controllers.await {
        tracing::warn!(error = %e, "the controllers ended abnormally");
    }
    for server in servers {
        server.abort();
    }
    signal
}
