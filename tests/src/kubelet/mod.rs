//! The simulated kubelet: one agent for all simulated nodes. It runs the pods scheduled to its nodes
//! as local processes (see [`crate::runtime`]), reports their status, kills the processes of deleted
//! pods, and serves `pods/exec` and `pods/log` to the API server as its [`NodeAgent`].

pub mod logs;
pub mod prepare;
pub mod state;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use nix::sys::signal::Signal;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::node::{ExecExit, ExecProcess, ExecRequest, LogRequest, NodeAgent, NodeError};
use crate::runtime::images::HostPrograms;
use crate::runtime::{self, ContainerSpec, ExecStdio, RootLayout};
use prepare::{PodVolumes, PrepareError, ServiceEndpoint};
use state::{ContainerRecord, Phase, Terminated};

/// Returns the token of a ServiceAccount: `(namespace, name) -> token`.
pub type TokenSource = Arc<dyn Fn(&str, &str) -> Option<String> + Send + Sync>;

/// How the kubelet runs.
#[derive(Clone)]
pub struct KubeletConfig {
    /// Names of the nodes whose pods this agent runs.
    pub nodes: Vec<String>,
    /// Scratch directory for pods (volumes, roots, logs).
    pub dir: PathBuf,
    /// Host programs images map to.
    pub programs: HostPrograms,
    /// The HTTPS endpoint pods reach the API server at.
    pub endpoint: ServiceEndpoint,
    /// PEM of the CA that signed the API server's certificate (becomes `ca.crt`).
    pub ca_pem: String,
    /// ServiceAccount tokens.
    pub tokens: TokenSource,
    /// Upper bound of `terminationGracePeriodSeconds` (keeps shutdowns short).
    pub max_grace: Duration,
    /// First delay before restarting a container (doubles per restart, at most 10 s).
    pub restart_backoff: Duration,
}

impl std::fmt::Debug for KubeletConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeletConfig")
            .field("nodes", &self.nodes)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

struct PodEntry {
    namespace: String,
    name: String,
    records: Arc<Mutex<Vec<ContainerRecord>>>,
    start_time: Timestamp,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
    last_status: Option<serde_json::Value>,
    deleting: bool,
}

struct Inner {
    client: Client,
    cfg: KubeletConfig,
    pods: Mutex<HashMap<String, PodEntry>>,
    /// Tasks of pods that are gone from the API and are being stopped.
    dying: Mutex<Vec<JoinHandle<()>>>,
    changed: Notify,
}

/// The running kubelet; cheap to clone. Implements [`NodeAgent`].
#[derive(Clone)]
pub struct Kubelet {
    inner: Arc<Inner>,
    stop: CancellationToken,
}

impl std::fmt::Debug for Kubelet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubelet")
            .field("nodes", &self.inner.cfg.nodes)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Kubelet {
    /// A kubelet that does nothing until [`Kubelet::start`]; created first so the API server can be
    /// given it as its [`NodeAgent`] before the client exists.
    pub fn new(client: Client, cfg: KubeletConfig) -> Self {
        let inner = Arc::new(Inner {
            client,
            cfg,
            pods: Mutex::new(HashMap::new()),
            dying: Mutex::new(Vec::new()),
            changed: Notify::new(),
        });
        Kubelet {
            inner,
            stop: CancellationToken::new(),
        }
    }

    /// Starts the sync loop in the background.
    pub fn start(&self) -> JoinHandle<()> {
        tokio::spawn(run(self.inner.clone(), self.stop.clone()))
    }

    /// Stops the loop and every pod's processes, and waits for them to end.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let tasks: Vec<JoinHandle<()>> = {
            let mut pods = lock(&self.inner.pods);
            pods.values_mut()
                .filter_map(|p| {
                    p.cancel.cancel();
                    p.task.take()
                })
                .collect()
        };
        let dying: Vec<JoinHandle<()>> = lock(&self.inner.dying).drain(..).collect();
        for t in tasks.into_iter().chain(dying) {
            let _ = t.await;
        }
    }

    /// Kills every container and exec process group at once, without grace (for `Drop`).
    pub fn kill_all_now(&self) {
        self.stop.cancel();
        let pods = lock(&self.inner.pods);
        for p in pods.values() {
            p.cancel.cancel();
            for c in lock(&p.records).iter() {
                if let Phase::Running { pid, .. } = c.phase {
                    runtime::signal_group(pid, Signal::SIGKILL);
                }
                for g in &c.exec_groups {
                    runtime::signal_group(*g, Signal::SIGKILL);
                }
            }
        }
    }

    /// Host pids of the running containers (for tests that check nothing survives).
    pub fn container_pids(&self) -> Vec<u32> {
        let pods = lock(&self.inner.pods);
        pods.values()
            .flat_map(|p| {
                lock(&p.records)
                    .iter()
                    .filter_map(|c| match c.phase {
                        Phase::Running { pid, .. } => Some(pid),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

async fn run(inner: Arc<Inner>, stop: CancellationToken) {
    let trigger = Arc::new(Notify::new());
    let watch = {
        let trigger = trigger.clone();
        let api: Api<Pod> = Api::all(inner.client.clone());
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default()).boxed();
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    ev = events.next() => match ev {
                        Some(Ok(_)) => trigger.notify_one(),
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "kubelet pod watch failed; polling meanwhile");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        None => return,
                    },
                }
            }
        })
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = trigger.notified() => {}
            _ = inner.changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if let Err(e) = sync_pods(&inner).await {
            tracing::debug!(error = %e, "kubelet failed to list pods");
        }
        sync_statuses(&inner).await;
    }
    watch.abort();
}

async fn sync_pods(inner: &Arc<Inner>) -> Result<(), kube::Error> {
    let api: Api<Pod> = Api::all(inner.client.clone());
    let pods = api.list(&ListParams::default()).await?;
    let mine: Vec<Pod> = pods
        .items
        .into_iter()
        .filter(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some_and(|n| inner.cfg.nodes.contains(n))
        })
        .collect();
    let live: HashSet<String> = mine.iter().filter_map(|p| p.metadata.uid.clone()).collect();
    let mut to_delete = Vec::new();
    {
        let mut map = lock(&inner.pods);
        for pod in &mine {
            let Some(uid) = pod.metadata.uid.clone() else {
                continue;
            };
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            if pod.metadata.deletion_timestamp.is_some() {
                match map.get_mut(&uid) {
                    Some(e) if !e.deleting => {
                        e.deleting = true;
                        e.cancel.cancel();
                        let task = e.task.take();
                        to_delete.push((ns, name, uid.clone(), task));
                    }
                    Some(_) => {}
                    None => to_delete.push((ns, name, uid.clone(), None)),
                }
                continue;
            }
            if map.contains_key(&uid) {
                continue;
            }
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or("Pending");
            if matches!(phase, "Succeeded" | "Failed") {
                continue;
            }
            map.insert(uid.clone(), start_pod(inner, pod.clone(), &uid));
        }
        let gone: Vec<String> = map.keys().filter(|u| !live.contains(*u)).cloned().collect();
        for uid in gone {
            if let Some(mut e) = map.remove(&uid) {
                e.cancel.cancel();
                if let Some(t) = e.task.take() {
                    lock(&inner.dying).push(t);
                }
            }
        }
    }
    for (ns, name, uid, task) in to_delete {
        // Graceful deletion: the pod object goes once its processes are gone, as the kubelet does.
        let owner = inner.clone();
        let t = tokio::spawn(async move {
            if let Some(t) = task {
                let _ = t.await;
            }
            let api: Api<Pod> = Api::namespaced(owner.client.clone(), &ns);
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: None,
                ..Default::default()
            };
            if let Err(e) = api.delete(&name, &dp).await {
                tracing::debug!(error = %e, pod = %name, "kubelet failed to finish pod deletion");
            }
            lock(&owner.pods).remove(&uid);
        });
        lock(&inner.dying).push(t);
    }
    lock(&inner.dying).retain(|t| !t.is_finished());
    Ok(())
}

async fn sync_statuses(inner: &Arc<Inner>) {
    let pending: Vec<(String, String, String, serde_json::Value)> = {
        let map = lock(&inner.pods);
        map.iter()
            .filter(|(_, e)| !e.deleting)
            .filter_map(|(uid, e)| {
                let status = state::pod_status(&lock(&e.records), e.start_time);
                let v = serde_json::to_value(&status).ok()?;
                (e.last_status.as_ref() != Some(&v))
                    .then(|| (uid.clone(), e.namespace.clone(), e.name.clone(), v))
            })
            .collect()
    };
    for (uid, ns, name, v) in pending {
        let api: Api<Pod> = Api::namespaced(inner.client.clone(), &ns);
        let patch = serde_json::json!({ "status": v });
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                if let Some(e) = lock(&inner.pods).get_mut(&uid) {
                    e.last_status = Some(v);
                }
            }
            Err(e) => tracing::debug!(error = %e, pod = %name, "kubelet failed to update pod status"),
        }
    }
}

fn start_pod(inner: &Arc<Inner>, pod: Pod, uid: &str) -> PodEntry {
    let spec = pod.spec.clone().unwrap_or_default();
    let pod_dir = inner.cfg.dir.join("pods").join(uid);
    let mut records = Vec::new();
    for (c, init) in spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| (c, true))
        .chain(spec.containers.iter().map(|c| (c, false)))
    {
        records.push(ContainerRecord::new(
            &c.name,
            c.image.as_deref().unwrap_or(""),
            init,
            pod_dir.join("logs").join(&c.name),
        ));
    }
    let records = Arc::new(Mutex::new(records));
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run_pod(
        inner.clone(),
        pod.clone(),
        pod_dir,
        records.clone(),
        cancel.clone(),
    ));
    PodEntry {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        records,
        start_time: Timestamp::now(),
        cancel,
        task: Some(task),
        last_status: None,
        deleting: false,
    }
}

fn set_phase(
    inner: &Inner,
    records: &Mutex<Vec<ContainerRecord>>,
    idx: usize,
    f: impl FnOnce(&mut ContainerRecord),
) {
    if let Some(r) = lock(records).get_mut(idx) {
        f(r);
    }
    inner.changed.notify_one();
}

/// Retries `attempt` every second until it succeeds (showing the error as the waiting reason of the
/// given containers) or the pod is cancelled.
async fn until_configured<T, F, Fut>(
    inner: &Inner,
    records: &Mutex<Vec<ContainerRecord>>,
    idxs: &[usize],
    cancel: &CancellationToken,
    mut attempt: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PrepareError>>,
{
    loop {
        match attempt().await {
            Ok(v) => return Some(v),
            Err(e) => {
                let msg = error_chain(&e);
                for &i in idxs {
                    set_phase(inner, records, i, |r| {
                        r.phase = Phase::Waiting {
                            reason: "CreateContainerConfigError".into(),
                            message: Some(msg.clone()),
                        };
                    });
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return None,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// An error and its sources, joined with ": ".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

async fn run_pod(
    inner: Arc<Inner>,
    pod: Pod,
    pod_dir: PathBuf,
    records: Arc<Mutex<Vec<ContainerRecord>>>,
    cancel: CancellationToken,
) {
    let spec = pod.spec.clone().unwrap_or_default();
    let all: Vec<usize> = (0..lock(&records).len()).collect();
    let volumes = until_configured(&inner, &records, &all, &cancel, || {
        prepare::prepare_volumes(&inner.client, &inner.cfg, &pod, &pod_dir)
    })
    .await;
    let Some(volumes) = volumes else { return };
    let inits: Vec<&Container> = spec.init_containers.iter().flatten().collect();
    for (i, c) in inits.iter().enumerate() {
        let code = run_container(&inner, &pod, &pod_dir, &volumes, &records, i, c, &cancel).await;
        if code != Some(0) {
            // A failed init container fails the pod (or the pod was cancelled).
            return;
        }
    }
    let n = inits.len();
    let mains = spec
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| run_container(&inner, &pod, &pod_dir, &volumes, &records, n + i, c, &cancel));
    futures::future::join_all(mains).await;
}

fn read_termination_message(path: &std::path::Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let bytes = &bytes[..bytes.len().min(4096)];
    (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes).into_owned())
}

fn log_tail(path: &std::path::Path) -> Option<String> {
    let data = std::fs::read(path).ok()?;
    let mut off = logs::tail_offset(&data, 80);
    if data.len() - off > 2048 {
        off = data.len() - 2048;
    }
    (off < data.len()).then(|| String::from_utf8_lossy(&data[off..]).into_owned())
}

/// Runs one container with its restarts; returns its final exit code (`None` when cancelled).
#[allow(clippy::too_many_arguments)]
async fn run_container(
    inner: &Inner,
    pod: &Pod,
    pod_dir: &std::path::Path,
    volumes: &PodVolumes,
    records: &Mutex<Vec<ContainerRecord>>,
    idx: usize,
    c: &Container,
    cancel: &CancellationToken,
) -> Option<i32> {
    let spec = pod.spec.clone().unwrap_or_default();
    let init = lock(records).get(idx).map(|r| r.init).unwrap_or(false);
    let policy = spec.restart_policy.clone().unwrap_or_else(|| "Always".into());
    let endpoint = inner.cfg.endpoint.clone();
    let prepared = until_configured(inner, records, &[idx], cancel, || async {
        let env = prepare::container_env(&inner.client, pod, c, &endpoint).await?;
        let (argv, mut mounts) = prepare::container_program(c, &env, &inner.cfg.programs)?;
        mounts.extend(prepare::container_mounts(volumes, c)?);
        Ok((env, argv, mounts))
    })
    .await;
    let (env, argv, mounts) = prepared?;
    set_phase(inner, records, idx, |r| r.env = env.clone());
    let ctr_dir = pod_dir.join("containers").join(&c.name);
    let grace = Duration::from_secs(spec.termination_grace_period_seconds.unwrap_or(30).max(0) as u64)
        .min(inner.cfg.max_grace);
    let hostname = spec
        .hostname
        .clone()
        .unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
    let term_path = c
        .termination_message_path
        .clone()
        .unwrap_or_else(|| "/dev/termination-log".into());
    let fallback_to_logs = c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError");
    loop {
        let attempt = lock(records).get(idx).map(|r| r.restart_count).unwrap_or(0);
        let log_path = lock(records)
            .get(idx)
            .map(|r| r.log_path(attempt))
            .unwrap_or_default();
        if let Some(dir) = log_path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let spec = ContainerSpec {
            argv: argv.clone(),
            env: env.clone(),
            mounts: mounts.clone(),
            layout: RootLayout {
                root: ctr_dir.join("root"),
                tmp: ctr_dir.join("tmp"),
                stash: ctr_dir.join("stash"),
                ready_marker: ctr_dir.join("ready"),
                hostname: hostname.clone(),
                working_dir: c
                    .working_dir
                    .clone()
                    .filter(|w| !w.is_empty())
                    .unwrap_or_else(|| "/".into()),
            },
            log_path: log_path.clone(),
            termination_log: Some((ctr_dir.join("termination-log"), term_path.clone())),
        };
        let started = Timestamp::now();
        let (code, cancelled, start_error) = match runtime::spawn_container(&spec) {
            Err(e) => (128, false, Some(error_chain(&e))),
            Ok(mut child) => {
                let pgid = child.id().unwrap_or(0);
                let outcome = tokio::select! {
                    _ = cancel.cancelled() => None,
                    s = async {
                        if runtime::wait_ready(&spec.layout.ready_marker, &mut child).await {
                            set_phase(inner, records, idx, |r| r.phase = Phase::Running { started, pid: pgid });
                        }
                        child.wait().await
                    } => Some(s),
                };
                let status = match outcome {
                    Some(s) => s.ok(),
                    None => runtime::stop_group(&mut child, grace).await,
                };
                runtime::signal_group(pgid, Signal::SIGKILL);
                let execs: Vec<u32> = lock(records)
                    .get_mut(idx)
                    .map(|r| r.exec_groups.drain(..).collect())
                    .unwrap_or_default();
                for g in execs {
                    runtime::signal_group(g, Signal::SIGKILL);
                }
                (
                    status.map(|s| runtime::exit_code(&s)).unwrap_or(137),
                    cancel.is_cancelled(),
                    None,
                )
            }
        };
        let mut message = start_error.or_else(|| read_termination_message(&ctr_dir.join("termination-log")));
        if message.is_none() && code != 0 && fallback_to_logs {
            message = log_tail(&log_path);
        }
        let reason = if code == 0 { "Completed" } else { "Error" };
        let term = Terminated {
            exit_code: code,
            reason: reason.into(),
            message,
            started,
            finished: Timestamp::now(),
        };
        let restart = !cancelled
            && match policy.as_str() {
                "Always" if !init => true,
                "Never" => false,
                _ => code != 0,
            };
        if !restart {
            set_phase(inner, records, idx, |r| {
                r.phase = Phase::Terminated(term);
                r.done = true;
            });
            return if cancelled { None } else { Some(code) };
        }
        let delay = inner
            .cfg
            .restart_backoff
            .saturating_mul(1 << attempt.clamp(0, 6))
            .min(Duration::from_secs(10));
        set_phase(inner, records, idx, |r| {
            r.last_terminated = Some(term.clone());
            r.restart_count += 1;
            r.phase = Phase::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some(format!("back-off {delay:?} restarting failed container")),
            };
        });
        tokio::select! {
            _ = cancel.cancelled() => {
                set_phase(inner, records, idx, |r| {
                    r.phase = Phase::Terminated(term);
                    r.done = true;
                });
                return None;
            }
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

impl Inner {
    /// The live pod entry `namespace/name` and the index of the wanted container.
    fn find(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
    ) -> Result<(Arc<Mutex<Vec<ContainerRecord>>>, usize), NodeError> {
        let pods = lock(&self.pods);
        let entry = pods
            .values()
            .filter(|e| e.namespace == namespace && e.name == pod)
            .min_by_key(|e| e.deleting)
            .ok_or_else(|| {
                NodeError::NotFound(format!("pod {namespace}/{pod} is not running on any node"))
            })?;
        let records = lock(&entry.records);
        let idx = match container {
            Some(c) => records.iter().position(|r| r.name == c),
            None => records.iter().position(|r| !r.init),
        }
        .ok_or_else(|| {
            NodeError::BadRequest(format!(
                "container {} is not valid for pod {pod}",
                container.unwrap_or("")
            ))
        })?;
        Ok((entry.records.clone(), idx))
    }
}

impl NodeAgent for Kubelet {
    fn exec(&self, req: ExecRequest) -> BoxFuture<'static, Result<ExecProcess, NodeError>> {
        let inner = self.inner.clone();
        async move {
            let (records, idx) = inner.find(&req.namespace, &req.pod, req.container.as_deref())?;
            let (pid, env) = {
                let r = lock(&records);
                let c = &r[idx];
                match c.phase {
                    Phase::Running { pid, .. } => (pid, c.env.clone()),
                    _ => {
                        return Err(NodeError::BadRequest(format!(
                            "container {} of pod {}/{} is not running",
                            c.name, req.namespace, req.pod
                        )));
                    }
                }
            };
            if req.command.is_empty() {
                return Err(NodeError::BadRequest(
                    "you must specify at least one command for the container".into(),
                ));
            }
            let stdio = ExecStdio {
                stdin: req.stdin,
                stdout: req.stdout,
                stderr: req.stderr,
            };
            let mut child = runtime::spawn_exec(pid, &req.command, &env, stdio)
                .map_err(|e| NodeError::Internal(error_chain(&e)))?;
            if let Some(g) = child.id()
                && let Some(r) = lock(&records).get_mut(idx)
            {
                r.exec_groups.push(g);
            }
            let stdin = child.stdin.take().map(|s| Box::pin(s) as _);
            let stdout = child.stdout.take().map(|s| Box::pin(s) as _);
            let stderr = child.stderr.take().map(|s| Box::pin(s) as _);
            let exit = async move {
                match child.wait().await {
                    Ok(s) => match s.code() {
                        Some(c) => ExecExit::Code(c),
                        None => ExecExit::Failed(format!("command terminated by signal ({s})")),
                    },
                    Err(e) => ExecExit::Failed(e.to_string()),
                }
            }
            .boxed();
            Ok(ExecProcess {
                stdin,
                stdout,
                stderr,
                exit,
            })
        }
        .boxed()
    }

    fn logs(
        &self,
        req: LogRequest,
    ) -> BoxFuture<
        'static,
        Result<futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>, NodeError>,
    > {
        let inner = self.inner.clone();
        async move {
            let (records, idx) = inner.find(&req.namespace, &req.pod, req.container.as_deref())?;
            let (path, attempt, waiting) = {
                let r = lock(&records);
                let c = &r[idx];
                let attempt = if req.previous {
                    c.restart_count - 1
                } else {
                    c.restart_count
                };
                if attempt < 0 {
                    return Err(NodeError::BadRequest(format!(
                        "previous terminated container {:?} in pod {:?} not found",
                        c.name, req.pod
                    )));
                }
                (
                    c.log_path(attempt),
                    attempt,
                    matches!(c.phase, Phase::Waiting { .. }) && c.restart_count == attempt,
                )
            };
            if !path.exists() {
                if waiting {
                    return Err(NodeError::BadRequest(format!(
                        "container in pod {:?} is waiting to start",
                        req.pod
                    )));
                }
                return Ok(futures::stream::empty().boxed());
            }
            logs::stream(&path, records, idx, attempt, req.follow, req.tail_lines)
                .await
                .map_err(|e| NodeError::Internal(format!("failed to read log: {e}")))
        }
        .boxed()
    }
}
