//! The sandbox's Kubernetes API server: generic JSON storage with resourceVersions and watches,
//! the verbs kube-rs and kubectl use, discovery, CRDs with schema validation, RBAC for
//! ServiceAccount tokens, garbage collection, `pods/exec`/`pods/log` handed to a [`NodeAgent`],
//! and fault injection. Served in-process (tower) and on 127.0.0.1 over HTTP and HTTPS.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use k8up_tests::api::{ApiConfig, ApiServer};
//! let server = ApiServer::new(ApiConfig::default())?;
//! let client = server.client(); // admin, in-process
//! let https = server.serve_tls("127.0.0.1:0".parse()?).await?;
//! let kubeconfig = server.kubeconfig_yaml(&format!("https://{https}"));
//! # let _ = (client, kubeconfig); Ok(()) }
//! ```

mod auth;
mod exec;
mod faults;
mod gc;
mod handler;
pub mod objects;
pub mod patch;
pub mod resources;
pub mod schema;
pub mod selectors;
pub mod status;
pub mod store;
mod tls;
mod transport;
mod watch;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use auth::User;
pub use faults::{FaultConfig, Faults};
pub use objects::{DeleteOptions, Propagation};
pub use resources::{Registry, ResourceInfo};
pub use status::{ApiError, Cause};
pub use store::{EventType, ObjKey, Store, StoreEvent};
pub use transport::ApiService;

use crate::node::NodeAgent;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Generating the CA or serving certificate failed.
    #[error("failed to generate the sandbox certificates")]
    GenerateCertificate(#[source] rcgen::Error),
    /// Building the TLS configuration failed.
    #[error("failed to configure TLS")]
    ConfigureTls(#[source] rustls::Error),
    /// Binding a listening socket failed.
    #[error("failed to bind {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Settings of an [`ApiServer`].
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// How many change events are kept for watches resuming from a resourceVersion; older
    /// resourceVersions get `410 Gone`.
    pub watch_history: usize,
    /// The admin bearer token (random when `None`).
    pub admin_token: Option<String>,
    /// Fault injection at start (off by default; can be changed at runtime via [`ApiServer::faults`]).
    pub faults: FaultConfig,
    /// `gitVersion` answered on `/version`.
    pub git_version: String,
    /// Interval between watch bookmarks (when the client allows them).
    pub bookmark_interval: std::time::Duration,
    /// Namespaces created at start (besides nothing else; `default` SA included in each).
    pub namespaces: Vec<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            watch_history: 10_000,
            admin_token: None,
            faults: FaultConfig::default(),
            git_version: "v1.33.0".to_string(),
            bookmark_interval: std::time::Duration::from_secs(5),
            namespaces: ["default", "kube-system", "kube-public", "kube-node-lease"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// The API server. Create with [`ApiServer::new`] inside a Tokio runtime.
pub struct ApiServer {
    pub(crate) config: ApiConfig,
    pub(crate) store: Arc<Store>,
    pub(crate) registry: Registry,
    pub(crate) admin_token: String,
    pub(crate) secret: [u8; 32],
    pub(crate) faults: Arc<Faults>,
    pub(crate) node: RwLock<Option<Arc<dyn NodeAgent>>>,
    pub(crate) tls: tls::TlsMaterial,
    pub(crate) gc: Arc<Notify>,
    pub(crate) shutdown: CancellationToken,
    /// Last configuration applied per (object uid, field manager), for server-side apply.
    pub(crate) applied: Mutex<HashMap<(String, String), Value>>,
    pub(crate) https_addr: Mutex<Option<SocketAddr>>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer").finish_non_exhaustive()
    }
}

impl ApiServer {
    /// Start a server (storage, garbage collector, TLS material). Must run inside a Tokio runtime.
    pub fn new(config: ApiConfig) -> Result<Arc<Self>, Error> {
        let tls = tls::TlsMaterial::generate()?;
        let admin_token = config
            .admin_token
            .clone()
            .unwrap_or_else(|| format!("admin-{}", hex::encode(rand::random::<[u8; 16]>())));
        let server = Arc::new(Self {
            store: Arc::new(Store::new(config.watch_history)),
            registry: Registry::new(),
            admin_token,
            secret: rand::random(),
            faults: Arc::new(Faults::new(config.faults.clone())),
            node: RwLock::new(None),
            tls,
            gc: Arc::new(Notify::new()),
            shutdown: CancellationToken::new(),
            applied: Mutex::new(HashMap::new()),
            https_addr: Mutex::new(None),
            config,
        });
        if let Some(ns) = server.registry.by_plural("", "namespaces") {
            for name in server.config.namespaces.clone() {
                let body = serde_json::json!({"metadata": {"name": name}});
                // A fresh store cannot already hold them; any error would be a bug in defaults.
                if let Err(e) = server.create_object(&ns, "v1", "", body, false) {
                    tracing::warn!(error = %e, "failed to create a default namespace");
                }
            }
        }
        gc::spawn(&server);
        Ok(server)
    }

    /// The object store (direct access for controllers living in the same process).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The resource registry (built-ins and served CRDs).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The fault-injection handle.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// The admin bearer token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The PEM of the CA that signed the HTTPS serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.tls.ca_pem
    }

    /// Route `pods/exec` and `pods/log` to this node agent.
    pub fn set_node_agent(&self, agent: Arc<dyn NodeAgent>) {
        *self.node.write().unwrap_or_else(|e| e.into_inner()) = Some(agent);
    }

    pub(crate) fn node_agent(&self) -> Option<Arc<dyn NodeAgent>> {
        self.node.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stop serving: listeners stop accepting, watches end, the garbage collector stops.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Resolves once [`ApiServer::shutdown`] was called.
    pub async fn stopped(&self) {
        self.shutdown.cancelled().await;
    }
}
