//! The flags of `k8up cli restore|backup|snapshots` (K8up's names and environment variables for `restore`
//! and the repository; `K8UP_CLI_*` for the additions).

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{BoolishValueParser, NonEmptyStringValueParser};
use clap::{ArgAction, Args, ValueEnum};

/// The cluster and namespace a `k8up cli` command works in.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Cluster")]
pub struct ClusterArgs {
    /// Kubeconfig file (a single file). Unset: `~/.kube/config`, else the pod's service account.
    #[arg(long = "kubeconfig", value_name = "FILE", env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Namespace to work in: its Snapshots are read, the Restore or Backup is created there.
    #[arg(
        long = "namespace",
        short = 'n',
        value_name = "NAMESPACE",
        env = "NAMESPACE",
        default_value = "default",
        value_parser = NonEmptyStringValueParser::new()
    )]
    pub namespace: String,
}

/// The restic repository flags (K8up's names): an S3 bucket and the Secrets with its credentials and the
/// repository password. Unset fields fall back to the operator's global settings.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Repository")]
pub struct RepositoryArgs {
    /// Secret holding the restic repository password (`backend.repoPasswordSecretRef`). Required by
    /// `restore`.
    #[arg(long = "secretRef", value_name = "SECRET", env = "SECRET_REF")]
    pub secret_ref: Option<String>,

    /// Key of the repository password in `--secretRef`.
    #[arg(
        long = "secretRefKey",
        value_name = "KEY",
        env = "SECRETREFKEY",
        default_value = "password"
    )]
    pub secret_ref_key: String,

    /// S3 endpoint URL of the repository (`backend.s3.endpoint`). Unset: the operator's global endpoint.
    #[arg(long = "s3endpoint", value_name = "URL", env = "S3ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// S3 bucket of the repository (`backend.s3.bucket`). Unset: the operator's global bucket.
    #[arg(long = "s3bucket", value_name = "BUCKET", env = "S3BUCKET")]
    pub s3_bucket: Option<String>,

    /// Secret holding the S3 access key id and secret access key of the repository. Required by `restore`.
    #[arg(long = "s3secretRef", value_name = "SECRET", env = "S3SECRETREF")]
    pub s3_secret_ref: Option<String>,

    /// Key of the S3 access key id in `--s3secretRef`.
    #[arg(
        long = "S3SecretRefUsernameKey",
        value_name = "KEY",
        env = "S3SECRETREFUSERNAMEKEY",
        default_value = "username"
    )]
    pub s3_username_key: String,

    /// Key of the S3 secret access key in `--s3secretRef`.
    #[arg(
        long = "S3SecretRefPasswordKey",
        value_name = "KEY",
        env = "S3SECRETREFPASSWORDKEY",
        default_value = "password"
    )]
    pub s3_password_key: String,
}

/// Where `k8up cli restore` puts the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RestoreMethodArg {
    /// Into the PVC `--claimName` (`restoreMethod.folder`).
    Pvc,
    /// As a tarball into the bucket `--restoreToS3Bucket` (`restoreMethod.s3`).
    S3,
}

/// Flags of `k8up cli restore`.
// K8up requires both Secrets for a restore; `backup` shares the flags but may rely on the operator's globals.
#[derive(Debug, Clone, Args)]
#[command(
    mut_arg("secret_ref", |a| a.required(true)),
    mut_arg("s3_secret_ref", |a| a.required(true))
)]
pub struct RestoreArgs {
    /// Cluster and namespace.
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// The repository to restore from.
    #[command(flatten)]
    pub repository: RepositoryArgs,

    /// Snapshot to restore: `latest` (the newest Snapshot resource of the namespace; with `--claimName`, the
    /// newest of path `/data/<claimName>`) or a prefix of a snapshot id (e.g. the 8 characters `kubectl get
    /// snapshots` shows) that matches exactly one snapshot.
    #[arg(
        long = "snapshot",
        value_name = "ID",
        env = "SNAPSHOT",
        default_value = "latest",
        value_parser = NonEmptyStringValueParser::new(),
        help_heading = "Restore"
    )]
    pub snapshot: String,

    /// Where the snapshot goes.
    #[arg(
        long = "restoreMethod",
        value_name = "METHOD",
        env = "RESTOREMETHOD",
        value_enum,
        default_value_t = RestoreMethodArg::Pvc,
        help_heading = "Restore"
    )]
    pub restore_method: RestoreMethodArg,

    /// PVC to restore into (required with `--restoreMethod pvc`). Also restricts `--snapshot latest` to the
    /// snapshots of path `/data/<claimName>`.
    #[arg(
        long = "claimName",
        value_name = "PVC",
        env = "CLAIMNAME",
        help_heading = "Restore"
    )]
    pub claim_name: Option<String>,

    /// Name of the Restore. Unset: `cli-restore-<5 random characters>`.
    #[arg(
        long = "restoreName",
        value_name = "NAME",
        env = "RESTORENAME",
        help_heading = "Restore"
    )]
    pub restore_name: Option<String>,

    /// User id the restore job runs as (`podSecurityContext.runAsUser`). Unset: the operator's default.
    #[arg(
        long = "runAsUser",
        value_name = "UID",
        env = "RUNASUSER",
        help_heading = "Restore"
    )]
    pub run_as_user: Option<i64>,

    /// The S3 target of `--restoreMethod s3`.
    #[command(flatten)]
    pub s3_target: RestoreToS3Args,

    /// Dry run.
    #[command(flatten)]
    pub output: DryRunArgs,
}

/// Flags of `k8up cli backup`.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// Cluster and namespace.
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// The repository to back up to. Without any of these flags the Backup has no `backend` and the
    /// operator's global repository settings apply.
    #[command(flatten)]
    pub repository: RepositoryArgs,

    /// Name of the Backup. Unset: `cli-backup-<5 random characters>`.
    #[arg(
        long = "name",
        value_name = "NAME",
        env = "K8UP_CLI_BACKUP_NAME",
        help_heading = "Backup"
    )]
    pub name: Option<String>,

    /// Tag added to every snapshot of the backup; repeat the flag or separate tags with commas.
    #[arg(
        long = "tags",
        visible_alias = "tag",
        value_name = "TAG",
        env = "K8UP_CLI_BACKUP_TAGS",
        action = ArgAction::Append,
        value_delimiter = ',',
        help_heading = "Backup"
    )]
    pub tags: Vec<String>,

    /// Wait until the Backup completes; exit non-zero with its message when it fails.
    #[arg(
        long = "wait",
        env = "K8UP_CLI_BACKUP_WAIT",
        action = ArgAction::SetTrue,
        value_parser = BoolishValueParser::new(),
        help_heading = "Backup"
    )]
    pub wait: bool,

    /// With `--wait`: give up waiting after this long (e.g. `30m`); the Backup keeps running. Unset: no
    /// limit.
    #[arg(
        long = "wait-timeout",
        value_name = "DURATION",
        env = "K8UP_CLI_BACKUP_WAIT_TIMEOUT",
        value_parser = humantime::parse_duration,
        help_heading = "Backup"
    )]
    pub wait_timeout: Option<Duration>,

    /// Dry run.
    #[command(flatten)]
    pub output: DryRunArgs,
}

/// Flags of `k8up cli snapshots`.
#[derive(Debug, Clone, Args)]
pub struct SnapshotsArgs {
    /// Cluster and namespace.
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// List the snapshots of every namespace (ignores `--namespace`; adds a NAMESPACE column).
    #[arg(
        long = "all-namespaces",
        short = 'A',
        env = "K8UP_CLI_ALL_NAMESPACES",
        action = ArgAction::SetTrue,
        value_parser = BoolishValueParser::new(),
        help_heading = "Output"
    )]
    pub all_namespaces: bool,

    /// Output format: a table, or the Snapshot resources as a `kind: List` in JSON or YAML.
    #[arg(
        long = "output",
        short = 'o',
        value_name = "FORMAT",
        env = "K8UP_CLI_OUTPUT",
        value_enum,
        default_value_t = OutputFormat::Table,
        help_heading = "Output"
    )]
    pub output: OutputFormat,
}

/// Output formats of `k8up cli snapshots`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Columns ID, DATE, HOST, PATHS, TAGS, REPOSITORY.
    Table,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// Where `--restoreMethod s3` uploads the snapshot as a tarball (K8up's `--restoreToS3*` flags).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Restore to S3")]
pub struct RestoreToS3Args {
    /// S3 endpoint URL the tarball is uploaded to (required with `--restoreMethod s3`).
    #[arg(long = "restoreToS3Endpoint", value_name = "URL", env = "RESTORETOS3ENDPOINT")]
    pub endpoint: Option<String>,

    /// Bucket the tarball is uploaded to (required with `--restoreMethod s3`).
    #[arg(long = "restoreToS3Bucket", value_name = "BUCKET", env = "RESTORETOS3BUCKET")]
    pub bucket: Option<String>,

    /// Secret with the credentials of the upload bucket (required with `--restoreMethod s3`).
    #[arg(long = "restoreToS3Secret", value_name = "SECRET", env = "RESTORETOS3SECRET")]
    pub secret: Option<String>,

    /// Key of the access key id in `--restoreToS3Secret`.
    #[arg(
        long = "RestoreToS3SecretUsernameKey",
        value_name = "KEY",
        env = "RESTORETOS3SECRETUSERNAMEKEY",
        default_value = "username"
    )]
    pub username_key: String,

    /// Key of the secret access key in `--restoreToS3Secret`.
    #[arg(
        long = "RestoreToS3SecretPasswordKey",
        value_name = "KEY",
        env = "RESTORETOS3SECRETPASSWORDKEY",
        default_value = "password"
    )]
    pub password_key: String,
}

/// `--dry-run` of the commands that create an object.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Output")]
pub struct DryRunArgs {
    /// Print the object as YAML instead of creating it (`restore` still looks its snapshot up in the
    /// cluster).
    #[arg(
        long = "dry-run",
        env = "K8UP_CLI_DRY_RUN",
        action = ArgAction::SetTrue,
        value_parser = BoolishValueParser::new()
    )]
    pub dry_run: bool,
}
