//! The process runner: starts one container as a local process group in its own mount and UTS
//! namespaces (see [`mounts`] for the layout), stops it gracefully, and runs `exec` commands inside it.

pub mod expand;
pub mod images;
pub mod mounts;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

pub use mounts::{BindMount, RootLayout};

/// `unshare`, `nsenter` and the shell used by the runner.
const UNSHARE: &str = "/usr/bin/unshare";
const NSENTER: &str = "/usr/bin/nsenter";
const SH: &str = "/bin/sh";

/// Default `PATH` of a container, as most images set it.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A fully resolved container: what to run, with which environment and mounts.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// argv of the container's program.
    pub argv: Vec<String>,
    /// The complete environment (nothing is inherited from the sandbox process).
    pub env: Vec<(String, String)>,
    /// Volumes and program binds.
    pub mounts: Vec<BindMount>,
    /// Root, tmp, stash, hostname and working directory.
    pub layout: RootLayout,
    /// Host file receiving stdout and stderr (appended).
    pub log_path: PathBuf,
    /// (host file, container path) of the termination message file.
    pub termination_log: Option<(PathBuf, String)>,
}

/// Why a process could not be run.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Preparing the container's directories or log file failed.
    #[error("failed to prepare {path:?}")]
    Prepare {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The mount plan is invalid.
    #[error("failed to plan mounts")]
    PlanMounts(#[from] mounts::MountError),
    /// The process could not be spawned.
    #[error("failed to spawn {0}")]
    Spawn(String, #[source] std::io::Error),
}

fn prepare_dir(p: &Path) -> Result<(), RuntimeError> {
    std::fs::create_dir_all(p).map_err(|source| RuntimeError::Prepare {
        path: p.to_path_buf(),
        source,
    })
}

/// Starts a container. The returned child is the container's main process and the leader of its
/// own process group (so [`stop_group`] reaches everything it started).
pub fn spawn_container(spec: &ContainerSpec) -> Result<Child, RuntimeError> {
    prepare_dir(&spec.layout.root)?;
    prepare_dir(&spec.layout.tmp)?;
    prepare_dir(&spec.layout.stash)?;
    let _ = std::fs::remove_file(&spec.layout.ready_marker);
    if let Some((host, _)) = &spec.termination_log {
        std::fs::write(host, b"").map_err(|source| RuntimeError::Prepare {
            path: host.clone(),
            source,
        })?;
    }
    let term = spec
        .termination_log
        .as_ref()
        .map(|(h, c)| (h.as_path(), c.as_str()));
    let script = mounts::setup_script(&spec.layout, &spec.mounts, term)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log_path)
        .map_err(|source| RuntimeError::Prepare {
            path: spec.log_path.clone(),
            source,
        })?;
    let log_err = log.try_clone().map_err(|source| RuntimeError::Prepare {
        path: spec.log_path.clone(),
        source,
    })?;
    let mut cmd = Command::new(UNSHARE);
    cmd.args([
        "--mount",
        "--uts",
        "--propagation",
        "private",
        "--",
        SH,
        "-c",
        &script,
        "sh",
    ])
    .args(&spec.argv)
    .env_clear()
    .envs(spec.env.iter().map(|(k, v)| (k, v)))
    .stdin(Stdio::null())
    .stdout(Stdio::from(log))
    .stderr(Stdio::from(log_err))
    .process_group(0)
    .kill_on_drop(true);
    cmd.spawn()
        .map_err(|e| RuntimeError::Spawn(spec.argv.join(" "), e))
}

/// Waits until the container's namespace is set up (its ready marker exists) or the child exited.
pub async fn wait_ready(marker: &Path, child: &mut Child) -> bool {
    loop {
        if marker.exists() {
            return true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return marker.exists();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `signal` to a process group, ignoring groups that are already gone.
pub fn signal_group(pgid: u32, signal: Signal) {
    if let Ok(pid) = i32::try_from(pgid) {
        let _ = killpg(Pid::from_raw(pid), signal);
    }
}

/// Stops a container: SIGTERM to its group, SIGKILL after `grace`; returns the exit status.
pub async fn stop_group(child: &mut Child, grace: Duration) -> Option<std::process::ExitStatus> {
    let Some(pgid) = child.id() else {
        return child.wait().await.ok();
    };
    signal_group(pgid, Signal::SIGTERM);
    let status = match tokio::time::timeout(grace, child.wait()).await {
        Ok(s) => s.ok(),
        Err(_) => {
            signal_group(pgid, Signal::SIGKILL);
            child.wait().await.ok()
        }
    };
    // Whatever the main process left behind in its group dies with it, as in a pid namespace.
    signal_group(pgid, Signal::SIGKILL);
    status
}

/// Kubernetes' exit code of a finished process: the code, or 128 + signal number.
pub fn exit_code(status: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// Stdio wiring of an exec.
#[derive(Debug, Clone, Copy)]
pub struct ExecStdio {
    /// Pipe stdin (otherwise /dev/null).
    pub stdin: bool,
    /// Pipe stdout.
    pub stdout: bool,
    /// Pipe stderr.
    pub stderr: bool,
}

/// Runs `argv` inside the mount and UTS namespaces and root of process `pid`, with `env` and the
/// container's working directory, in a process group of its own.
pub fn spawn_exec(
    pid: u32,
    argv: &[String],
    env: &[(String, String)],
    stdio: ExecStdio,
) -> Result<Child, RuntimeError> {
    let pipe = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    let mut cmd = Command::new(NSENTER);
    cmd.arg("--target")
        .arg(pid.to_string())
        .args(["--mount", "--uts", "--root", "--wd", "--"])
        .args(argv)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(pipe(stdio.stdin))
        .stdout(pipe(stdio.stdout))
        .stderr(pipe(stdio.stderr))
        .process_group(0)
        .kill_on_drop(true);
    cmd.spawn().map_err(|e| RuntimeError::Spawn(argv.join(" "), e))
}

#[cfg(test)]
mod tests;
