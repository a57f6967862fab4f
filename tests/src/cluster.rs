//! The assembled sandbox cluster: the API server (in-process, HTTP and HTTPS), the controller
//! manager, the simulated kubelet for all nodes, a kubeconfig and a scratch directory; shutdown
//! stops every process it started and removes the scratch directory.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use k8up_tests::cluster::{Sandbox, SandboxConfig, wait_job_finished};
//! let sandbox = Sandbox::start(SandboxConfig::default()).await?;
//! let client = sandbox.client(); // admin, in-process; or use sandbox.kubeconfig_path() (HTTPS)
//! // ... create a Job with kube-rs ...
//! let job = wait_job_finished(&client, "default", "my-job", std::time::Duration::from_secs(60)).await?;
//! # let _ = job;
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! What runs where: pods run as local processes on this host (see [`crate::runtime`] for the
//! mount namespace layout and [`crate::runtime::images`] for what an image runs as), scheduled to
//! simulated nodes (`node-a`, `node-b`, `node-c` by default) by [`crate::controllers`]; every pod
//! has IP 127.0.0.1 and reaches the API server at `KUBERNETES_SERVICE_HOST:PORT` over HTTPS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::api::{ApiConfig, ApiServer};
use crate::controllers::{ControllerConfig, ControllerManager};
use crate::kubelet::prepare::ServiceEndpoint;
use crate::kubelet::{Kubelet, KubeletConfig, TokenSource};
use crate::runtime::images::{HostPrograms, which};

/// Names of the simulated nodes by default.
pub const DEFAULT_NODES: [&str; 3] = ["node-a", "node-b", "node-c"];

/// How to start a [`Sandbox`].
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Scratch directory (created; removed on shutdown). `None`: a fresh temporary directory.
    pub scratch_dir: Option<PathBuf>,
    /// Where to write the admin kubeconfig. `None`: `<scratch>/kubeconfig`.
    pub kubeconfig_path: Option<PathBuf>,
    /// The `k8up` binary that `k8up` images run. `None`: `$K8UP_BINARY`, else the workspace's
    /// `target/debug/k8up` when it exists.
    pub k8up_binary: Option<PathBuf>,
    /// The `restic` binary bound into `k8up` containers. `None`: `restic` on `PATH`, if any.
    pub restic_binary: Option<PathBuf>,
    /// Simulated node names.
    pub nodes: Vec<String>,
    /// Plain HTTP listener (port 0 picks a free port).
    pub http_addr: SocketAddr,
    /// HTTPS listener (port 0 picks a free port); pods reach the API server here.
    pub https_addr: SocketAddr,
    /// API server settings (fault injection, namespaces, ...).
    pub api: ApiConfig,
    /// Upper bound for a pod's termination grace period.
    pub max_grace: Duration,
    /// First delay before a container restart (doubles per restart).
    pub restart_backoff: Duration,
    /// First delay before a Job replaces a failed pod (doubles per failure).
    pub job_backoff: Duration,
}

/// The `k8up` binary the sandbox runs in `k8up` images (and tests may run themselves): `$K8UP_BINARY`, else
/// the workspace's `target/debug/k8up` when it exists.
pub fn default_k8up_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("K8UP_BINARY") {
        return Some(PathBuf::from(p));
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/k8up");
    p.exists().then_some(p)
}

impl Default for SandboxConfig {
    fn default() -> Self {
        let localhost = SocketAddr::from(([127, 0, 0, 1], 0));
        SandboxConfig {
            scratch_dir: None,
            kubeconfig_path: None,
            k8up_binary: None,
            restic_binary: None,
            nodes: DEFAULT_NODES.iter().map(|s| s.to_string()).collect(),
            http_addr: localhost,
            https_addr: localhost,
            api: ApiConfig::default(),
            max_grace: Duration::from_secs(5),
            restart_backoff: Duration::from_millis(200),
            job_backoff: Duration::from_millis(200),
        }
    }
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The scratch directory or kubeconfig could not be written.
    #[error("failed to prepare {path:?}")]
    Prepare {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The API server did not start.
    #[error("failed to start the API server")]
    StartApi(#[from] crate::api::Error),
}

/// A running sandbox cluster.
pub struct Sandbox {
    server: Arc<ApiServer>,
    kubelet: Kubelet,
    controllers: Option<ControllerManager>,
    scratch: PathBuf,
    kubeconfig: PathBuf,
    http: SocketAddr,
    https: SocketAddr,
    stopped: bool,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("scratch", &self.scratch)
            .field("https", &self.https)
            .finish_non_exhaustive()
    }
}

fn prepare(path: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir_all(path).map_err(|source| SandboxError::Prepare {
        path: path.to_path_buf(),
        source,
    })
}

impl Sandbox {
    /// Starts the API server (HTTP + HTTPS), writes the kubeconfig, creates the nodes and starts
    /// the controllers and the kubelet.
    pub async fn start(cfg: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let scratch = match &cfg.scratch_dir {
            Some(d) => d.clone(),
            None => {
                let d = tempfile::Builder::new()
                    .prefix("k8up-sandbox-")
                    .tempdir()
                    .map_err(|source| SandboxError::Prepare {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                d.keep()
            }
        };
        prepare(&scratch)?;
        let server = ApiServer::new(cfg.api.clone())?;
        let http = server.serve(cfg.http_addr).await?;
        let https = server.serve_tls(cfg.https_addr).await?;
        let kubeconfig = cfg
            .kubeconfig_path
            .clone()
            .unwrap_or_else(|| scratch.join("kubeconfig"));
        if let Some(parent) = kubeconfig.parent() {
            prepare(parent)?;
        }
        let yaml = server.kubeconfig_yaml(&format!("https://{https}"));
        std::fs::write(&kubeconfig, yaml).map_err(|source| SandboxError::Prepare {
            path: kubeconfig.clone(),
            source,
        })?;

        // A weak reference: the server holds the kubelet as its node agent, so a strong one would
        // keep both alive forever.
        let weak: Weak<ApiServer> = Arc::downgrade(&server);
        let tokens: TokenSource =
            Arc::new(move |ns: &str, sa: &str| weak.upgrade().map(|s| s.service_account_token(ns, sa)));
        let programs = HostPrograms {
            k8up: cfg.k8up_binary.clone().or_else(default_k8up_binary),
            restic: cfg.restic_binary.clone().or_else(|| which("restic")),
        };
        let kubelet = Kubelet::new(
            server.client(),
            KubeletConfig {
                nodes: cfg.nodes.clone(),
                dir: scratch.join("kubelet"),
                programs,
                endpoint: ServiceEndpoint {
                    host: https.ip().to_string(),
                    port: https.port(),
                },
                ca_pem: server.ca_pem().to_string(),
                tokens,
                max_grace: cfg.max_grace,
                restart_backoff: cfg.restart_backoff,
            },
        );
        server.set_node_agent(Arc::new(kubelet.clone()));
        let controllers = ControllerManager::start(
            server.client(),
            ControllerConfig {
                nodes: cfg.nodes.clone(),
                volumes_dir: scratch.join("volumes"),
                job_backoff: cfg.job_backoff,
            },
        );
        kubelet.start();
        Ok(Sandbox {
            server,
            kubelet,
            controllers: Some(controllers),
            scratch,
            kubeconfig,
            http,
            https,
            stopped: false,
        })
    }

    /// An admin client talking to the API server in-process.
    pub fn client(&self) -> kube::Client {
        self.server.client()
    }

    /// The API server (tokens, fault injection, store).
    pub fn server(&self) -> &Arc<ApiServer> {
        &self.server
    }

    /// The kubelet (for tests inspecting processes).
    pub fn kubelet(&self) -> &Kubelet {
        &self.kubelet
    }

    /// The admin kubeconfig (HTTPS with the sandbox CA).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// `http://127.0.0.1:PORT`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// `https://127.0.0.1:PORT`.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.https)
    }

    /// The scratch directory (removed on shutdown).
    pub fn scratch_dir(&self) -> &Path {
        &self.scratch
    }

    /// Stops controllers and kubelet (every pod process, gracefully), the API server, and removes
    /// the scratch directory.
    pub async fn shutdown(mut self) {
        if let Some(c) = self.controllers.take() {
            c.shutdown().await;
        }
        self.kubelet.shutdown().await;
        self.server.shutdown();
        remove_scratch(&self.scratch);
        self.stopped = true;
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        // Safety net when a test panics before `shutdown`: no graceful period here.
        self.kubelet.kill_all_now();
        self.server.shutdown();
        remove_scratch(&self.scratch);
    }
}

/// Mount points of this (the host's) mount namespace at or under `dir`.
pub fn host_mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// Removes the scratch directory, unless something is mounted under it in the host namespace
/// (which the runtime never does): deleting through a bind mount would delete the host's files.
fn remove_scratch(dir: &Path) {
    let mounts = host_mounts_under(dir);
    if !mounts.is_empty() {
        tracing::error!(
            ?mounts,
            "not removing the sandbox scratch dir: host mounts under it"
        );
        return;
    }
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, dir = %dir.display(), "failed to remove the sandbox scratch dir");
    }
}

/// A wait that ran out of time.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {timeout:?} waiting for {what}; last seen: {last}")]
pub struct WaitTimeout {
    /// What was awaited.
    pub what: String,
    /// The limit.
    pub timeout: Duration,
    /// Debug rendering of the last observation.
    pub last: String,
}

/// Polls `probe` every 100 ms until it yields `Ok(Some(_))`, up to `timeout`. `Err` observations
/// (API errors) are retried like `None` and reported in the timeout.
pub async fn wait_for<T, E, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T, WaitTimeout>
where
    E: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, E>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last;
    loop {
        match probe().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => last = "not yet".into(),
            Err(e) => last = format!("{e:?}"),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(WaitTimeout {
                what: what.to_string(),
                timeout,
                last,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until Job `namespace/name` has a `Complete` or `Failed` condition and returns it.
pub async fn wait_job_finished(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<k8s_openapi::api::batch::v1::Job, WaitTimeout> {
    let api: kube::Api<k8s_openapi::api::batch::v1::Job> = kube::Api::namespaced(client.clone(), namespace);
    wait_for(&format!("job {namespace}/{name} to finish"), timeout, || async {
        let j = api.get(name).await?;
        let done = j
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
            });
        Ok::<_, kube::Error>(done.then_some(j))
    })
    .await
}

/// Creates `object` through `api`, retrying failed attempts (injected faults) up to `timeout`; an
/// `AlreadyExists` means an earlier attempt landed.
pub async fn create_retrying<K>(api: &kube::Api<K>, object: &K, timeout: Duration) -> Result<(), WaitTimeout>
where
    K: Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    wait_for("create to succeed", timeout, || async {
        match api.create(&kube::api::PostParams::default(), object).await {
            Ok(_) => Ok(Some(())),
            Err(kube::Error::Api(s)) if s.reason == "AlreadyExists" => Ok(Some(())),
            Err(e) => Err(e),
        }
    })
    .await
}
