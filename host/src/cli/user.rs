//! `k8up cli restore|backup|snapshots`: the user CLI, which creates a Restore or a one-off Backup and lists
//! the Snapshot resources of a namespace through the Kubernetes API.
//!
//! `restore` keeps K8up's flags and environment variables but fixes its two bugs: everything happens in
//! `--namespace` (K8up always used `default`), and the snapshot resolved from the namespace's Snapshot
//! resources is written into `spec.snapshot` (K8up left it out, so the operator restored the latest one).
//!
//! Only this file talks to the API. Each command checks its flags first ([`restore_method`]), then: restore
//! lists the Snapshots ([`resolve_snapshot`]) and creates the Restore ([`restore_object`]), backup creates
//! the Backup ([`backup_object`]) and with `--wait` watches it ([`verdict`]), snapshots lists the Snapshots
//! ([`snapshot_table`]).

mod args;
mod objects;
mod snapshots;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use clap::Subcommand;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};

pub use args::{
    BackupArgs, ClusterArgs, DryRunArgs, OutputFormat, RepositoryArgs, RestoreArgs, RestoreMethodArg,
    RestoreToS3Args, SnapshotsArgs,
};
pub use objects::{Verdict, backup_object, restore_method, restore_object, verdict};
pub use snapshots::{resolve_snapshot, snapshot_table, sort_newest_first};

use objects::generated_name;
use snapshots::{describe, snapshot_list};

use crate::crd::{Backup, Snapshot};
use crate::errors::kube_message;

/// `k8up cli` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum UserCliCommand {
    /// Create a Restore of a snapshot (K8up's `k8up cli restore`, in `--namespace` and with the resolved
    /// snapshot id in `spec.snapshot`).
    Restore(RestoreArgs),
    /// Create a one-off Backup of the namespace, optionally waiting until it completes.
    Backup(BackupArgs),
    /// List the snapshots of a namespace (its Snapshot resources), newest first.
    Snapshots(SnapshotsArgs),
}

/// Why a `k8up cli` command failed. API failures carry the API server's message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Flags that the chosen options need are missing.
    #[error("missing {}: {purpose}", .flags.join(", "))]
    MissingFlags {
        /// The missing flags.
        flags: Vec<&'static str>,
        /// What they are needed for.
        purpose: &'static str,
    },
    /// No client could be made from the kubeconfig given.
    #[error(transparent)]
    Kubeconfig(crate::plugin::dryrun::DryRunError),
    /// No client could be made from the default kubeconfig or the in-cluster service account.
    #[error(
        "failed to find the cluster (no --kubeconfig: tried ~/.kube/config and the in-cluster service \
         account)"
    )]
    InferConfig(#[source] kube::Error),
    /// The Snapshot resources could not be listed.
    #[error("failed to list the Snapshot resources {scope}: {message}")]
    ListSnapshots {
        /// `in namespace X` or `in all namespaces`.
        scope: String,
        /// The API server's message.
        message: String,
    },
    /// `--snapshot latest` and the namespace has no snapshot.
    #[error(
        "no Snapshot resources in namespace {namespace}: run a backup first (the operator mirrors the \
         repository's snapshots into the namespace) or check --namespace"
    )]
    NoSnapshots {
        /// The namespace.
        namespace: String,
    },
    /// `--snapshot latest --claimName X` and no snapshot has path `/data/X`.
    #[error("no snapshot of {path} in namespace {namespace}; snapshots there: {candidates}")]
    NoSnapshotOfPath {
        /// The namespace.
        namespace: String,
        /// `/data/<claimName>`.
        path: String,
        /// The snapshots of the namespace.
        candidates: String,
    },
    /// No snapshot id starts with the prefix given.
    #[error("no snapshot in namespace {namespace} matches id prefix {prefix}; candidates: {candidates}")]
    NoMatchingSnapshot {
        /// The namespace.
        namespace: String,
        /// `--snapshot`.
        prefix: String,
        /// The snapshots of the namespace.
        candidates: String,
    },
    /// More than one snapshot id starts with the prefix given.
    #[error(
        "id prefix {prefix} matches {count} snapshots in namespace {namespace}; give more characters of one \
         of: {candidates}"
    )]
    AmbiguousSnapshot {
        /// The namespace.
        namespace: String,
        /// `--snapshot`.
        prefix: String,
        /// How many snapshots match.
        count: usize,
        /// The matching snapshots.
        candidates: String,
    },
    /// The Restore or Backup could not be created.
    #[error("failed to create the {kind} {namespace}/{name}: {message}")]
    Create {
        /// `Restore` or `Backup`.
        kind: String,
        /// The namespace.
        namespace: String,
        /// The object's name.
        name: String,
        /// The API server's message.
        message: String,
    },
    /// Watching the Backup failed.
    #[error("failed to watch the Backup {namespace}/{name}: {message}")]
    WatchBackup {
        /// The namespace.
        namespace: String,
        /// The Backup's name.
        name: String,
        /// The watch error.
        message: String,
    },
    /// The Backup completed and failed, or the operator rejected its spec.
    #[error("the Backup {namespace}/{name} failed ({reason}): {message}")]
    BackupFailed {
        /// The namespace.
        namespace: String,
        /// The Backup's name.
        name: String,
        /// The condition reason (`Failed`, `InvalidSpec`, ...).
        reason: String,
        /// The condition message.
        message: String,
    },
    /// The Backup disappeared while waiting for it.
    #[error("the Backup {namespace}/{name} was deleted before it completed")]
    BackupDeleted {
        /// The namespace.
        namespace: String,
        /// The Backup's name.
        name: String,
    },
    /// `--wait-timeout` passed.
    #[error(
        "the Backup {namespace}/{name} did not complete within {}; it keeps running (kubectl -n {namespace} \
         get backups.k8up.io {name})", humantime::format_duration(*.timeout)
    )]
    WaitTimeout {
        /// The namespace.
        namespace: String,
        /// The Backup's name.
        name: String,
        /// `--wait-timeout`.
        timeout: Duration,
    },
    /// An object could not be rendered as YAML.
    #[error("failed to render YAML")]
    RenderYaml(#[source] serde_yaml::Error),
    /// An object could not be rendered as JSON.
    #[error("failed to render JSON")]
    RenderJson(#[source] serde_json::Error),
    /// Standard output could not be written.
    #[error("failed to write to standard output")]
    WriteOutput(#[source] std::io::Error),
    /// The async runtime could not be started.
    #[error("failed to start the async runtime")]
    Runtime(#[source] std::io::Error),
}

/// `k8up cli …`: runs one user command. Results go to `out`, progress notes (`--wait`) to `notes`.
pub fn user(command: UserCliCommand, out: &mut impl Write, notes: &mut impl Write) -> Result<(), Error> {
    // A few sequential requests: one thread is plenty, and nothing else competes for stdout/stderr.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        match command {
            UserCliCommand::Restore(args) => restore(&args, out).await,
            UserCliCommand::Backup(args) => backup(&args, out, notes).await,
            UserCliCommand::Snapshots(args) => snapshots(&args, out).await,
        }
    })
}

/// A client from `--kubeconfig` (the same loader as `k8up plan --kubeconfig`), else kube's defaults.
async fn client(kubeconfig: Option<&Path>) -> Result<Client, Error> {
    match kubeconfig {
        Some(path) => crate::plugin::dryrun::client_from_kubeconfig(path)
            .await
            .map_err(Error::Kubeconfig),
        None => Client::try_default().await.map_err(Error::InferConfig),
    }
}

async fn restore(args: &RestoreArgs, out: &mut impl Write) -> Result<(), Error> {
    // Flags first: a mistake costs no round trip and creates nothing.
    let method = restore_method(args)?;
    let namespace = &args.cluster.namespace;
    let client = client(args.cluster.kubeconfig.as_deref()).await?;
    let snapshots = list_snapshots(&client, Some(namespace)).await?;
    let (id, snapshot) = resolve_snapshot(namespace, &snapshots, &args.snapshot, args.claim_name.as_deref())?;
    let name = args
        .restore_name
        .clone()
        .unwrap_or_else(|| generated_name("cli-restore"));
    let object = restore_object(args, &name, method, id);
    if args.output.dry_run {
        return write_yaml(out, &object);
    }
    create(&client, &object).await?;
    let text = format!(
        "created Restore {namespace}/{name}\nsnapshot: {id} ({})\nfollow it: kubectl -n {namespace} get \
         restores.k8up.io {name}\n",
        describe(snapshot)
    );
    out.write_all(text.as_bytes()).map_err(Error::WriteOutput)
}

async fn backup(args: &BackupArgs, out: &mut impl Write, notes: &mut impl Write) -> Result<(), Error> {
    let namespace = args.cluster.namespace.clone();
    let name = args.name.clone().unwrap_or_else(|| generated_name("cli-backup"));
    let object = backup_object(args, &name);
    if args.output.dry_run {
        return write_yaml(out, &object);
    }
    let client = client(args.cluster.kubeconfig.as_deref()).await?;
    create(&client, &object).await?;
    writeln!(out, "created Backup {namespace}/{name}").map_err(Error::WriteOutput)?;
    if !args.wait {
        return Ok(());
    }
    // Progress is not a result: it goes to `notes`, so that stdout stays the facts a script reads.
    let _ = writeln!(notes, "waiting for Backup {namespace}/{name} to complete");
    let finished = |b: Option<&Backup>| b.is_none_or(|b| verdict(b.status.as_ref()).is_some());
    let api = Api::<Backup>::namespaced(client, &namespace);
    let watch = kube::runtime::wait::await_condition(api, &name, finished);
    let result = match args.wait_timeout {
        Some(timeout) => tokio::time::timeout(timeout, watch)
            .await
            .map_err(|_| Error::WaitTimeout {
                namespace: namespace.clone(),
                name: name.clone(),
                timeout,
            })?,
        None => watch.await,
    };
    let backup = result.map_err(|e| Error::WatchBackup {
        namespace: namespace.clone(),
        name: name.clone(),
        message: watch_message(&e),
    })?;
    match backup.as_ref().and_then(|b| verdict(b.status.as_ref())) {
        None => Err(Error::BackupDeleted { namespace, name }),
        Some(Verdict::Succeeded { message }) => {
            writeln!(out, "Backup {namespace}/{name} succeeded: {message}").map_err(Error::WriteOutput)
        }
        Some(Verdict::Failed { reason, message }) => Err(Error::BackupFailed {
            namespace,
            name,
            reason,
            message,
        }),
    }
}

async fn snapshots(args: &SnapshotsArgs, out: &mut impl Write) -> Result<(), Error> {
    let client = client(args.cluster.kubeconfig.as_deref()).await?;
    let namespace = (!args.all_namespaces).then_some(args.cluster.namespace.as_str());
    let mut items = list_snapshots(&client, namespace).await?;
    sort_newest_first(&mut items);
    match args.output {
        OutputFormat::Table => out
            .write_all(snapshot_table(&items, args.all_namespaces).as_bytes())
            .map_err(Error::WriteOutput),
        OutputFormat::Json => {
            let json = serde_json::to_string_pretty(&snapshot_list(items)).map_err(Error::RenderJson)?;
            writeln!(out, "{json}").map_err(Error::WriteOutput)
        }
        OutputFormat::Yaml => write_yaml(out, &snapshot_list(items)),
    }
}

/// Creates `object` in its namespace; a refusal carries the API server's message.
async fn create<K>(client: &Client, object: &K) -> Result<(), Error>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let meta = object.meta();
    let namespace = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    Api::<K>::namespaced(client.clone(), &namespace)
        .create(&PostParams::default(), object)
        .await
        .map_err(|e| Error::Create {
            kind: K::kind(&()).into_owned(),
            namespace,
            name,
            message: kube_message(&e),
        })?;
    Ok(())
}

/// The Snapshot resources of `namespace`, or of all namespaces.
async fn list_snapshots(client: &Client, namespace: Option<&str>) -> Result<Vec<Snapshot>, Error> {
    let api: Api<Snapshot> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    api.list(&ListParams::default())
        .await
        .map(|list| list.items)
        .map_err(|e| {
            let mut message = kube_message(&e);
            if matches!(&e, kube::Error::Api(s) if s.code == 404) {
                message.push_str(" (are the k8up CRDs installed in this cluster?)");
            }
            Error::ListSnapshots {
                scope: namespace.map_or_else(
                    || "in all namespaces".to_owned(),
                    |ns| format!("in namespace {ns}"),
                ),
                message,
            }
        })
}

/// A failed watch as a person reads it: the API server's message rather than kube's dump of it.
fn watch_message(error: &kube::runtime::wait::Error) -> String {
    use kube::runtime::watcher::Error as Watch;
    let kube::runtime::wait::Error::ProbeFailed(watch) = error;
    match watch {
        Watch::InitialListFailed(e) | Watch::WatchStartFailed(e) | Watch::WatchFailed(e) => kube_message(e),
        Watch::WatchError(status) => kube_message(&kube::Error::Api(status.clone())),
        Watch::NoResourceVersion => watch.to_string(),
    }
}

fn write_yaml(out: &mut impl Write, value: &impl serde::Serialize) -> Result<(), Error> {
    let yaml = serde_yaml::to_string(value).map_err(Error::RenderYaml)?;
    out.write_all(yaml.as_bytes()).map_err(Error::WriteOutput)
}

/// `k8up cli <args>` (split at whitespace) parsed as on a machine without environment variables: a
/// `NAMESPACE` or `KUBECONFIG` where the tests run must not change the defaults they check.
#[cfg(test)]
fn parse_without_env(args: &str) -> Result<UserCliCommand, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    fn no_env(command: clap::Command) -> clap::Command {
        command
            .mut_args(|arg| arg.env(None::<&str>))
            .mut_subcommands(no_env)
    }
    let argv = ["k8up", "cli"].into_iter().chain(args.split_whitespace());
    let matches = no_env(crate::cli::Cli::command()).try_get_matches_from(argv)?;
    match crate::cli::Cli::from_arg_matches(&matches)?.command {
        crate::cli::Command::Cli(command) => Ok(command),
        other => panic!("parsed as {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::restore_without_the_secrets_k8up_requires(
        "restore --claimName app",
        &["--secretRef", "--s3secretRef"]
    )]
    #[case::an_unknown_restore_method(
        "restore --secretRef r --s3secretRef s --restoreMethod tape",
        &["tape", "pvc", "s3"]
    )]
    #[case::wait_timeout_not_a_duration("backup --wait --wait-timeout soon", &["--wait-timeout", "soon"])]
    fn bad_flags_are_rejected_naming_what_to_fix(#[case] args: &str, #[case] named: &[&str]) {
        let err = parse_without_env(args).unwrap_err().to_string();
        for word in named {
            assert!(err.contains(word), "{word} missing: {err}");
        }
    }

    #[test]
    fn every_command_defaults_to_namespace_default_and_k8ups_restore_defaults() {
        let Ok(UserCliCommand::Restore(restore)) = parse_without_env("restore --secretRef r --s3secretRef s")
        else {
            panic!("not a restore");
        };
        assert_eq!(restore.cluster.namespace, "default");
        assert_eq!(restore.cluster.kubeconfig, None);
        assert_eq!(restore.snapshot, "latest");
        assert_eq!(restore.restore_method, RestoreMethodArg::Pvc);
        let repository = &restore.repository;
        let keys = [
            &repository.secret_ref_key,
            &repository.s3_username_key,
            &repository.s3_password_key,
        ];
        assert_eq!(keys, ["password", "username", "password"]);
        let target = &restore.s3_target;
        assert_eq!(
            [&target.username_key, &target.password_key],
            ["username", "password"]
        );

        let Ok(UserCliCommand::Snapshots(snapshots)) = parse_without_env("snapshots -A -o yaml") else {
            panic!("not snapshots");
        };
        assert!(snapshots.all_namespaces);
        assert_eq!(snapshots.output, OutputFormat::Yaml);
        let Ok(UserCliCommand::Backup(backup)) = parse_without_env("backup") else {
            panic!("not a backup");
        };
        assert_eq!(backup.cluster.namespace, "default");
        assert!(backup.name.is_none() && backup.tags.is_empty() && !backup.wait);
    }
}
