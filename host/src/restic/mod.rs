//! `k8up restic`: the wrapper around the restic binary that runs inside every Job.
//!
//! Pipeline: [`args`] (flags) -> [`config`] (validated) -> [`command`] (pure argv) -> [`runner`] (processes with
//! deadlines) -> the flows ([`backup`], [`prune`], [`check`], [`restore`], [`archive`]) -> [`report`] (the
//! termination message the operator reads). The wrapper never writes to the cluster: it only lists pods and
//! execs into them.

pub mod archive;
pub mod args;
pub mod backup;
pub mod check;
pub mod command;
pub mod config;
pub mod exec;
pub mod json;
pub mod locks;
pub mod notify;
pub mod prune;
pub mod report;
pub mod restore;
pub mod runner;
pub mod s3;
pub mod startup;

pub use args::ResticArgs;
pub use report::ResticReport;

use config::{Config, Mode};
use report::ReportError;
use runner::{ResticError, Runner};

/// Exit status of `k8up restic` when the failure is permanent ([`Error::is_permanent`]: invalid
/// configuration, no matching snapshot, a wrong password, an integrity failure): retrying without a change
/// cannot help. With `restartPolicy: Never` the operator's Jobs carry a `podFailurePolicy` that fails the
/// Job at once on this status instead of retrying up to `backoffLimit` (78 is `EX_CONFIG` of sysexits.h).
pub const PERMANENT_FAILURE_EXIT_CODE: u8 = 78;

/// Why a `k8up restic` run failed. The variant name is reported as the failure reason.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Flags or environment are invalid.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Preparing the local environment (client certificate PEM, temp files) failed.
    #[error("failed to prepare {what}: {source}")]
    Prepare {
        /// What was being prepared.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The first call of the start-up (`restic unlock`) found no usable repository: wrong password, refused
    /// access.
    #[error("failed to open the repository: {0}")]
    Open(#[source] ResticError),
    /// `restic init`.
    #[error("failed to initialise the repository: {0}")]
    Init(#[source] ResticError),
    /// The repository did not appear while waiting for another Job to initialise it.
    #[error("the repository was not initialised by another job within {waited}: {source}")]
    AwaitRepository {
        /// How long this Job waited (`--awaitRepository`).
        waited: String,
        /// The last `restic cat config` failure.
        #[source]
        source: ResticError,
    },
    /// `restic snapshots`.
    #[error("failed to list snapshots: {0}")]
    ListSnapshots(#[source] ResticError),
    /// A folder backup.
    #[error("failed to back up {path}: {source}")]
    Backup {
        /// The directory.
        path: String,
        /// Cause.
        source: ResticError,
    },
    /// An application dump (exec into a pod piped into `restic backup --stdin`).
    #[error("failed to back up the dump of {target}: {message}")]
    Dump {
        /// `<pod>/<container>` or the local source.
        target: String,
        /// What went wrong.
        message: String,
    },
    /// Listing pods for the backup commands.
    #[error("failed to list pods in {namespace}: {message}")]
    ListPods {
        /// Namespace.
        namespace: String,
        /// The API server's answer, short ([`kube_message`]).
        message: String,
    },
    /// `restic forget --prune`.
    #[error("failed to prune: {0}")]
    Prune(#[source] ResticError),
    /// `restic check`.
    #[error("repository check failed: {0}")]
    Check(#[source] ResticError),
    /// Another client's lock outlived the wait deadline.
    #[error("gave up waiting for the repository lock after {waited}: {lock}")]
    LockTimeout {
        /// How long we waited.
        waited: String,
        /// The lock (id, host, pid, age).
        lock: String,
    },
    /// Listing or reading locks.
    #[error("failed to inspect repository locks: {0}")]
    Locks(#[source] ResticError),
    /// No snapshot matched the restore selection.
    #[error("no snapshot matches: {0}")]
    NoSnapshot(String),
    /// A folder restore.
    #[error("failed to restore snapshot {snapshot}: {message}")]
    Restore {
        /// Snapshot ID.
        snapshot: String,
        /// What went wrong.
        message: String,
    },
    /// A restored dump differs from what was recorded at backup time.
    #[error("integrity check failed for snapshot {snapshot}: {message}")]
    Integrity {
        /// Snapshot ID.
        snapshot: String,
        /// Expected vs actual.
        message: String,
    },
    /// Uploading to the S3 restore/archive target.
    #[error("failed to upload snapshot {snapshot} to S3: {message}")]
    Upload {
        /// Snapshot ID.
        snapshot: String,
        /// What went wrong.
        message: String,
    },
    /// SIGTERM/SIGINT: restic was killed.
    #[error("cancelled by a signal")]
    Cancelled,
}

impl Error {
    /// The variant name (the failure reason the operator shows).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidConfig(_) => "InvalidConfig",
            Error::Prepare { .. } => "Prepare",
            Error::Open(_) => "Open",
            Error::Init(_) => "Init",
            Error::AwaitRepository { .. } => "AwaitRepository",
            Error::ListSnapshots(_) => "ListSnapshots",
            Error::Backup { .. } => "Backup",
            Error::Dump { .. } => "Dump",
            Error::ListPods { .. } => "ListPods",
            Error::Prune(_) => "Prune",
            Error::Check(_) => "Check",
            Error::LockTimeout { .. } => "LockTimeout",
            Error::Locks(_) => "Locks",
            Error::NoSnapshot(_) => "NoSnapshot",
            Error::Restore { .. } => "Restore",
            Error::Integrity { .. } => "Integrity",
            Error::Upload { .. } => "Upload",
            Error::Cancelled => "Cancelled",
        }
    }

    /// True when retrying without a change cannot help.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::InvalidConfig(_) | Error::NoSnapshot(_) | Error::Integrity { .. } => true,
            Error::Open(e)
            | Error::Init(e)
            | Error::ListSnapshots(e)
            | Error::Prune(e)
            | Error::Check(e)
            | Error::Locks(e)
            | Error::Backup { source: e, .. } => e.is_permanent(),
            _ => false,
        }
    }
}

/// The context every flow gets: validated settings, the restic runner, and the cluster (when reachable).
pub struct Ctx {
    /// Validated settings.
    pub cfg: Config,
    /// Runs restic.
    pub runner: Runner,
    /// Read-only cluster access (pod listing, exec); `None` outside a cluster.
    pub kube: Option<kube::Client>,
    /// Webhook and Pushgateway.
    pub notifier: notify::Notifier,
}

/// Runs `k8up restic`: validates the flags, runs the requested modes, writes the report to the termination
/// message file and stdout, and returns it (or the error, which the report also describes).
pub async fn run(args: ResticArgs) -> Result<ResticReport, Error> {
    let termination_log = args.termination_log.clone();
    let host = args.hostname.clone().unwrap_or_default();
    let mut report = ResticReport {
        version: 1,
        host,
        ..ResticReport::default()
    };
    let result = match Config::from_args(&args) {
        Ok(cfg) => {
            report.actions = cfg.modes.iter().map(|m| m.as_str().to_owned()).collect();
            let kube = connect_kube(&cfg).await;
            run_with(cfg, kube, &mut report).await
        }
        Err(e) => Err(e),
    };
    finish(report, result, &termination_log)
}

/// Like [`run`] with an explicit cluster client (tests pass `None` to run without a cluster).
pub async fn run_with(
    mut cfg: Config,
    kube: Option<kube::Client>,
    report: &mut ResticReport,
) -> Result<(), Error> {
    if let Some((cert, key)) = cfg.client_cert_pair.clone() {
        cfg.globals.tls_client_cert = Some(startup::write_client_pem(&cfg.var_dir, &cert, &key)?);
    }
    let runner = cfg.runner();
    let notifier = notify::Notifier::new(&cfg);
    let ctx = Ctx {
        cfg,
        runner,
        kube,
        notifier,
    };
    let work = async {
        startup::prepare(&ctx).await?;
        for mode in ctx.cfg.modes.clone() {
            match mode {
                Mode::Backup => backup::run(&ctx, report).await?,
                Mode::Prune => prune::run(&ctx, report).await?,
                Mode::Check => check::run(&ctx, report).await?,
                Mode::Restore => restore::run(&ctx, report).await?,
                Mode::Archive => archive::run(&ctx, report).await?,
            }
        }
        Ok(())
    };
    // Dropping `work` kills the running restic (kill_on_drop), so a signal never leaves it running.
    tokio::select! {
        r = work => r,
        _ = shutdown_signal() => Err(Error::Cancelled),
    }
}

fn finish(
    mut report: ResticReport,
    result: Result<(), Error>,
    termination_log: &std::path::Path,
) -> Result<ResticReport, Error> {
    let redactor = runner::Redactor::from_env(&[]);
    match &result {
        Ok(()) => report.success = true,
        Err(e) => {
            report.success = false;
            report.error = Some(ReportError {
                reason: e.reason().to_owned(),
                message: redactor.redact(&error_chain(e)),
                permanent: e.is_permanent(),
            });
        }
    }
    let json = report.write_termination_message(termination_log);
    println!("{json}");
    result.map(|()| report)
}

pub use crate::errors::{error_chain, kube_message};

async fn connect_kube(cfg: &Config) -> Option<kube::Client> {
    if !cfg.modes.contains(&Mode::Backup) && !cfg.modes.iter().any(|m| matches!(m, Mode::Prune | Mode::Check))
    {
        return None;
    }
    let client = match &cfg.kubeconfig {
        Some(path) if path.exists() => {
            let kc = kube::config::Kubeconfig::read_from(path).ok()?;
            let conf = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .ok()?;
            kube::Client::try_from(conf).ok()
        }
        _ => kube::Client::try_default().await.ok(),
    };
    if client.is_none() {
        tracing::info!(
            "no cluster credentials: skipping backup commands of pods and pod-based lock recovery"
        );
    }
    client
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
