//! `k8up operator` as a separate OS process on a sandbox's kubeconfig: started and awaited on `/readyz`,
//! probed on its metrics port, stopped cleanly (SIGINT) or killed (SIGKILL). The benchmarks measure its
//! memory this way; the fault suites kill it at random points. A process that cannot start fails the calling
//! test or bench by panicking, like an assertion does.

#![allow(clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cluster::wait_for;

/// How long a started operator may take to answer `/readyz` (a deadline against hangs).
const READY_LIMIT: Duration = Duration::from_secs(120);
/// How long a stopped operator may take to exit after SIGINT before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Where [`operator_binary`] found the `k8up` binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinarySource {
    /// `$K8UP_BINARY`.
    Env,
    /// The profile directory of the running executable (`target/<profile>/k8up` beside
    /// `target/<profile>/deps/<this binary>`).
    ProfileDir,
    /// The workspace's `target/debug/k8up`.
    Debug,
}

/// The `k8up` binary to run: `$K8UP_BINARY`, else `k8up` in the profile directory of the running test or
/// bench binary, else the workspace's `target/debug/k8up`; `None` when none exists.
pub fn operator_binary() -> Option<(PathBuf, BinarySource)> {
    if let Some(p) = std::env::var_os("K8UP_BINARY") {
        return Some((PathBuf::from(p), BinarySource::Env));
    }
    // Test and bench binaries run as target/<profile dir>/deps/<name>-<hash>.
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("k8up")));
    if let Some(p) = beside.filter(|p| p.exists()) {
        return Some((p, BinarySource::ProfileDir));
    }
    let debug = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/k8up");
    debug.exists().then_some((debug, BinarySource::Debug))
}

/// Resident memory of a process, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// `VmRSS`.
    pub rss: u64,
    /// The anonymous part of `rss` (heap and stacks; the rest is mapped files, mostly the binary).
    pub anon: u64,
    /// The peak of `rss` (`VmHWM`).
    pub hwm: u64,
}

/// A `k8up operator` subprocess on a kubeconfig, leader election off, its metrics and health endpoints on
/// a free port of 127.0.0.1, stdout and stderr appended to a log file. Dropping it kills the process.
#[derive(Debug)]
pub struct OperatorProcess {
    child: tokio::process::Child,
    pid: u32,
    port: u16,
    log: PathBuf,
}

impl OperatorProcess {
    /// Starts `binary operator <flags>` with `KUBECONFIG=kubeconfig` and waits until it answers `/readyz`
    /// (panicking with the log when it never does).
    pub async fn start(binary: &Path, kubeconfig: &Path, flags: &[&str], log: PathBuf) -> Self {
        let process = Self::spawn(binary, kubeconfig, flags, log);
        process.wait_ready().await;
        process
    }

    /// Starts the process without waiting for it to be ready.
    pub fn spawn(binary: &Path, kubeconfig: &Path, flags: &[&str], log: PathBuf) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("failed to pick a free port: {e}"));
        // Appended: a restarted operator keeps writing after the previous one's lines.
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("failed to open {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("failed to share {}: {e}", log.display()));
        let child = tokio::process::Command::new(binary)
            .arg("operator")
            .args(flags)
            .arg("--enable-leader-election=false")
            .arg(format!("--metrics-bindaddress=127.0.0.1:{port}"))
            .env("KUBECONFIG", kubeconfig)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {}: {e}", binary.display()));
        let pid = child
            .id()
            .unwrap_or_else(|| panic!("{} exited at once", binary.display()));
        OperatorProcess {
            child,
            pid,
            port,
            log,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The log file (shared by every process started on it).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Waits until `/readyz` answers `200 OK`; panics with the log after two minutes.
    pub async fn wait_ready(&self) {
        let ready = wait_for("the operator's /readyz", READY_LIMIT, || async {
            Ok::<_, std::io::Error>(self.readyz().await.then_some(()))
        })
        .await;
        if let Err(e) = ready {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("{e}\noperator log:\n{log}");
        }
    }

    /// Whether `/readyz` answers `200 OK`.
    pub async fn readyz(&self) -> bool {
        self.get("/readyz").await.is_some()
    }

    /// The body of a `200 OK` answer to `GET path` on the metrics port.
    pub async fn get(&self, path: &str) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .ok()?;
        // HTTP/1.0: the answer is never chunked.
        let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.ok()?;
        let (head, body) = answer.split_once("\r\n\r\n")?;
        let status = head.split(' ').nth(1)?;
        (status == "200").then(|| body.to_string())
    }

    /// The process's resident memory, from `/proc/<pid>/status`.
    pub fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .unwrap_or_else(|e| panic!("failed to read /proc/{}/status: {e}", self.pid));
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/{}/status", self.pid))
                * 1024
        };
        Memory {
            rss: field("VmRSS:"),
            anon: field("RssAnon:"),
            hwm: field("VmHWM:"),
        }
    }

    /// The sum of `k8up_schedules_gauge` on `/metrics`: the scheduled actions in its Schedule cache.
    pub async fn scheduled_actions(&self) -> Option<usize> {
        let body = self.get("/metrics").await?;
        let sum: f64 = body
            .lines()
            .filter(|l| l.starts_with("k8up_schedules_gauge{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        Some(sum as usize)
    }

    fn signal(&self, signal: Signal) {
        let Ok(pid) = i32::try_from(self.pid) else {
            return;
        };
        // ESRCH: it exited already, which is what the caller wants.
        let _ = kill(Pid::from_raw(pid), signal);
    }

    /// SIGINT (a clean stop), then SIGKILL if it does not exit within 10 s.
    pub async fn stop(mut self) {
        self.signal(Signal::SIGINT);
        if tokio::time::timeout(STOP_GRACE, self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }

    /// SIGKILL, as the kernel's OOM killer or a node failure ends it: no shutdown code runs. Returns once
    /// the process has exited (and was reaped), with how it exited.
    pub async fn kill(mut self) -> std::io::Result<std::process::ExitStatus> {
        self.signal(Signal::SIGKILL);
        self.child.wait().await
    }
}
