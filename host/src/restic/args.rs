//! The flags and environment variables of `k8up restic` (K8up's names, REFERENCE.md 4.1) and their validation.

use std::path::PathBuf;
use std::time::Duration;

use clap::ArgAction;

/// Flags and environment of `k8up restic` (REFERENCE.md 4.1), with K8up's names.
///
/// Without a mode flag (`--check`, `--prune`, `--restore`, `--archive`) the wrapper runs a backup. Several mode
/// flags run in K8up's order: prune, check, restore, archive.
#[derive(Debug, Clone, clap::Args)]
pub struct ResticArgs {
    // ---- modes ----
    /// Run `restic check`.
    #[arg(long, help_heading = "Mode")]
    pub check: bool,
    /// Run `restic forget --prune` with the retention policy.
    #[arg(long, help_heading = "Mode")]
    pub prune: bool,
    /// Restore a snapshot (see `--restoreType`).
    #[arg(long, help_heading = "Mode")]
    pub restore: bool,
    /// Upload snapshots to the S3 restore target as `.tar.gz` archives.
    #[arg(long, help_heading = "Mode")]
    pub archive: bool,

    // ---- repository ----
    /// The restic repository (`s3:…`, `rest:…`, a path, …). Passed to restic in its environment, never on argv.
    #[arg(
        long = "resticRepository",
        env = "RESTIC_REPOSITORY",
        hide_env_values = true,
        help_heading = "Repository"
    )]
    pub restic_repository: Option<String>,
    /// The repository password. Prefer the environment variable: restic reads it from there anyway.
    #[arg(
        long = "resticPassword",
        env = "RESTIC_PASSWORD",
        hide_env_values = true,
        hide = true
    )]
    pub restic_password: Option<String>,
    /// Path of the restic binary.
    #[arg(
        long = "resticBin",
        env = "RESTIC_BINARY",
        default_value = "/usr/local/bin/restic",
        help_heading = "Repository"
    )]
    pub restic_bin: PathBuf,
    /// Extra restic options `k=v,k2=v2`, each passed as `--option k=v` on every restic call.
    #[arg(
        long = "resticOptions",
        env = "RESTIC_OPTIONS",
        value_delimiter = ',',
        help_heading = "Repository"
    )]
    pub restic_options: Vec<String>,
    /// CA certificate (PEM file) for the repository's TLS (`restic --cacert`).
    #[arg(long = "caCert", env = "CA_CERT_FILE", help_heading = "Repository")]
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM file) for the repository's TLS; needs `--clientKey`.
    #[arg(long = "clientCert", env = "CLIENT_CERT_FILE", help_heading = "Repository")]
    pub client_cert: Option<PathBuf>,
    /// Client key (PEM file) for the repository's TLS; needs `--clientCert`.
    #[arg(long = "clientKey", env = "CLIENT_KEY_FILE", help_heading = "Repository")]
    pub client_key: Option<PathBuf>,
    /// Directory where the combined client certificate + key PEM for restic is written.
    #[arg(
        long = "varDir",
        env = "K8UP_VAR_DIR",
        default_value = "/k8up",
        help_heading = "Repository"
    )]
    pub var_dir: PathBuf,
    /// Deadline of one long restic call (backup, restore, prune, check, dump); the process is killed on expiry.
    /// restic-style or Go-style duration (`24h`, `90m`).
    #[arg(
        long = "resticTimeout",
        env = "RESTIC_TIMEOUT",
        default_value = "24h",
        help_heading = "Repository"
    )]
    pub restic_timeout: String,
    /// Deadline of one short restic call (init, unlock, snapshots, ls, locks). A wrong S3 secret makes restic
    /// retry forever, so every call has one.
    #[arg(
        long = "resticMetaTimeout",
        env = "RESTIC_META_TIMEOUT",
        default_value = "10m",
        help_heading = "Repository"
    )]
    pub restic_meta_timeout: String,

    // ---- identity ----
    /// The namespace: restic `--host` of every snapshot, the namespace whose pods are backed up.
    #[arg(long, env = "HOSTNAME", hide = true)]
    pub hostname: Option<String>,
    /// Kubeconfig used when not running inside a cluster.
    #[arg(long, env = "KUBECONFIG", hide = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Seconds or duration (`30s`, `2m`) to sleep before the first restic call.
    #[arg(long = "sleepDuration", env = "SLEEP_DURATION", default_value = "0s")]
    pub sleep_duration: String,
    /// Wait up to this long (`10m`) for another Job to initialise the repository instead of initialising
    /// it (`0s`: initialise it when missing). The operator sets it on all but the first of several Jobs
    /// started together on a repository not known to exist: concurrent `restic init` runs of one new
    /// repository can leave it with keys but no config.
    #[arg(long = "awaitRepository", env = "K8UP_AWAIT_REPOSITORY", default_value = "0s")]
    pub await_repository: String,
    /// File the result report is written to (the container's termination message).
    #[arg(
        long = "terminationLog",
        env = "K8UP_TERMINATION_LOG",
        default_value = "/dev/termination-log"
    )]
    pub termination_log: PathBuf,

    // ---- snapshot filters ----
    /// Tags: added to every backup snapshot; filters for prune, restore and archive. Repeatable.
    #[arg(long = "tag", help_heading = "Snapshot filters")]
    pub tags: Vec<String>,
    /// Snapshot path filter for restore and archive (repeatable, comma-separated).
    #[arg(long = "path", value_delimiter = ',', help_heading = "Snapshot filters")]
    pub paths: Vec<String>,
    /// Hosts whose snapshots prune, restore and archive consider (repeatable, comma-separated). Default: the
    /// namespace (`--hostname`).
    #[arg(
        long = "hostnameFilter",
        env = "HOSTNAME_FILTER",
        value_delimiter = ',',
        help_heading = "Snapshot filters"
    )]
    pub hostname_filter: Vec<String>,

    // ---- backup ----
    /// Root whose sub-directories are each backed up as one snapshot.
    #[arg(
        long = "backupDir",
        env = "BACKUP_DIR",
        default_value = "/data",
        help_heading = "Backup"
    )]
    pub backup_dir: PathBuf,
    /// Pod annotation holding the backup command.
    #[arg(
        long = "backupCommandAnnotation",
        env = "BACKUPCOMMAND_ANNOTATION",
        default_value = "k8up.io/backupcommand",
        help_heading = "Backup"
    )]
    pub backup_command_annotation: String,
    /// Pod annotation holding the file extension of the dump.
    #[arg(
        long = "fileExtensionAnnotation",
        env = "FILEEXTENSION_ANNOTATION",
        default_value = "k8up.io/file-extension",
        help_heading = "Backup"
    )]
    pub file_extension_annotation: String,
    /// Pod annotation naming the container the command runs in (default: the first container).
    #[arg(
        long = "backupContainerAnnotation",
        alias = "backucontainerannotation",
        env = "BACKUP_CONTAINERANNOTATION",
        default_value = "k8up.io/backupcommand-container",
        help_heading = "Backup"
    )]
    pub backup_container_annotation: String,
    /// Do not run the backup commands of annotated pods.
    #[arg(long = "skipPreBackup", env = "SKIP_PREBACKUP", help_heading = "Backup")]
    pub skip_pre_backup: bool,
    /// Accepted for compatibility: the wrapper never writes Snapshot resources, the operator does.
    #[arg(
        long = "skipSnapshotSync",
        env = "BACKUP_SKIP_SNAPSHOT_SYNC",
        help_heading = "Backup"
    )]
    pub skip_snapshot_sync: bool,
    /// Only exec into these pods (comma-separated names).
    #[arg(
        long = "targetPods",
        env = "TARGET_PODS",
        value_delimiter = ',',
        help_heading = "Backup"
    )]
    pub target_pods: Vec<String>,
    /// Accepted for compatibility; exec always uses WebSockets (SPDY could corrupt dumps).
    #[arg(
        long = "insecure-allow-podexec-spdy-fallback",
        env = "INSECURE_ALLOW_PODEXEC_SPDY_FALLBACK",
        help_heading = "Backup"
    )]
    pub insecure_allow_podexec_spdy_fallback: bool,
    /// restic `--exclude` patterns (repeatable, comma-separated in the env).
    #[arg(long, env = "RESTIC_EXCLUDE", value_delimiter = ',', help_heading = "Backup")]
    pub exclude: Vec<String>,
    /// restic `--exclude-caches`.
    #[arg(
        long = "excludeCaches",
        env = "RESTIC_EXCLUDE_CACHES",
        help_heading = "Backup"
    )]
    pub exclude_caches: bool,
    /// restic `--exclude-file`.
    #[arg(long = "excludeFile", env = "RESTIC_EXCLUDE_FILE", help_heading = "Backup")]
    pub exclude_file: Vec<String>,
    /// restic `--exclude-if-present`.
    #[arg(
        long = "excludeIfPresent",
        env = "RESTIC_EXCLUDE_IF_PRESENT",
        help_heading = "Backup"
    )]
    pub exclude_if_present: Vec<String>,
    /// restic `--exclude-larger-than` (e.g. `1G`).
    #[arg(
        long = "excludeLargerThan",
        env = "RESTIC_EXCLUDE_LARGER_THAN",
        help_heading = "Backup"
    )]
    pub exclude_larger_than: Option<String>,
    /// K8up's misspelt environment name for `--excludeLargerThan`.
    #[arg(long = "excludeLargerThat", env = "RESTIC_EXCLUDE_LARGER_THAT", hide = true)]
    pub exclude_larger_that: Option<String>,
    /// restic `--files-from`.
    #[arg(long = "filesFrom", env = "RESTIC_FILES_FROM", help_heading = "Backup")]
    pub files_from: Vec<String>,
    /// restic `--files-from-raw`.
    #[arg(long = "filesFromRaw", env = "RESTIC_FILES_FROM_RAW", help_heading = "Backup")]
    pub files_from_raw: Vec<String>,
    /// restic `--files-from-verbatim`.
    #[arg(
        long = "filesFromVerbatim",
        env = "RESTIC_FILES_FROM_VERBATIM",
        help_heading = "Backup"
    )]
    pub files_from_verbatim: Vec<String>,
    /// restic `--iexclude` patterns.
    #[arg(
        long = "iExclude",
        env = "RESTIC_IEXCLUDE",
        value_delimiter = ',',
        help_heading = "Backup"
    )]
    pub i_exclude: Vec<String>,
    /// restic `--iexclude-file`.
    #[arg(long = "iExcludeFile", env = "RESTIC_IEXCLUDE_FILE", help_heading = "Backup")]
    pub i_exclude_file: Vec<String>,
    /// restic `--one-file-system`.
    #[arg(
        long = "oneFileSystem",
        env = "RESTIC_ONE_FILESYSTEM",
        help_heading = "Backup"
    )]
    pub one_file_system: bool,

    // ---- notifications ----
    /// Prometheus Pushgateway URL for the backup gauges.
    #[arg(long = "promURL", env = "PROM_URL", help_heading = "Notifications")]
    pub prom_url: Option<String>,
    /// Value of the `cluster` grouping label on the Pushgateway.
    #[arg(long = "clusterName", env = "CLUSTER_NAME", help_heading = "Notifications")]
    pub cluster_name: Option<String>,
    /// Webhook receiving JSON results (backup stats, snapshot lists, restores).
    #[arg(
        long = "webhookURL",
        alias = "statsURL",
        env = "STATS_URL",
        help_heading = "Notifications"
    )]
    pub webhook_url: Option<String>,

    // ---- restore ----
    /// Folder-restore target.
    #[arg(
        long = "restoreDir",
        env = "RESTORE_DIR",
        default_value = "/data",
        help_heading = "Restore"
    )]
    pub restore_dir: PathBuf,
    /// restic `restore --include` filter (folder restore).
    #[arg(long = "restoreFilter", help_heading = "Restore")]
    pub restore_filter: Option<String>,
    /// Prefix of the snapshot time `YYYY-MM-DD hh:mm:ss`; the newest matching snapshot is restored.
    #[arg(long = "restoreTimeFilter", help_heading = "Restore")]
    pub restore_time_filter: Option<String>,
    /// Snapshot ID or a prefix of it (default: chosen by the filters, else the latest).
    #[arg(long = "restoreSnap", help_heading = "Restore")]
    pub restore_snap: Option<String>,
    /// Without a snapshot ID: restore the newest snapshot of this path when one exists (e.g. `/data/<pvc>`).
    #[arg(long = "preferPath", env = "RESTORE_PREFER_PATH", help_heading = "Restore")]
    pub prefer_path: Option<String>,
    /// `folder` or `s3` (case-insensitive).
    #[arg(long = "restoreType", help_heading = "Restore")]
    pub restore_type: Option<String>,
    /// Access key of the S3 restore/archive target.
    #[arg(
        long = "restoreS3AccessKey",
        env = "RESTORE_ACCESSKEYID",
        hide_env_values = true,
        help_heading = "Restore"
    )]
    pub restore_s3_access_key: Option<String>,
    /// Secret key of the S3 restore/archive target.
    #[arg(
        long = "restoreS3SecretKey",
        env = "RESTORE_SECRETACCESSKEY",
        hide_env_values = true,
        help_heading = "Restore"
    )]
    pub restore_s3_secret_key: Option<String>,
    /// S3 restore/archive target `http(s)://host[:port]/bucket`.
    #[arg(
        long = "restoreS3Endpoint",
        env = "RESTORE_S3ENDPOINT",
        help_heading = "Restore"
    )]
    pub restore_s3_endpoint: Option<String>,
    /// CA certificate (PEM) of the S3 restore target.
    #[arg(
        long = "restoreCaCert",
        env = "RESTORE_CA_CERT_FILE",
        help_heading = "Restore"
    )]
    pub restore_ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for the S3 restore target.
    #[arg(
        long = "restoreClientCert",
        env = "RESTORE_CLIENT_CERT_FILE",
        help_heading = "Restore"
    )]
    pub restore_client_cert: Option<PathBuf>,
    /// Client key (PEM) for the S3 restore target.
    #[arg(
        long = "restoreClientKey",
        env = "RESTORE_CLIENT_KEY_FILE",
        help_heading = "Restore"
    )]
    pub restore_client_key: Option<PathBuf>,
    /// restic `restore --verify`.
    #[arg(long = "verifyRestore", help_heading = "Restore")]
    pub verify_restore: bool,
    /// Restore `<id>:<snapshot path>` so the files land at the target root.
    #[arg(long = "trimRestorePath", env = "TRIM_RESTOREPATH", action = ArgAction::Set, default_value_t = true, help_heading = "Restore")]
    pub trim_restore_path: bool,
    /// restic `restore --delete` (make the target identical to the snapshot; restic 0.17+).
    #[arg(long, help_heading = "Restore")]
    pub delete: bool,
    /// Archive every matching snapshot instead of the latest one per host and path.
    #[arg(
        long = "allSnapshots",
        env = "ARCHIVE_ALL_SNAPSHOTS",
        help_heading = "Restore"
    )]
    pub all_snapshots: bool,

    // ---- prune / check ----
    /// restic `--keep-last`.
    #[arg(
        long = "keepLatest",
        alias = "keepLast",
        env = "KEEP_LAST",
        help_heading = "Retention"
    )]
    pub keep_latest: Option<u32>,
    /// K8up's alternative environment name for `--keepLatest`.
    #[arg(long = "keepLatestEnv", env = "KEEP_LATEST", hide = true)]
    pub keep_latest_alias: Option<u32>,
    /// restic `--keep-hourly`.
    #[arg(long = "keepHourly", env = "KEEP_HOURLY", help_heading = "Retention")]
    pub keep_hourly: Option<u32>,
    /// restic `--keep-daily`.
    #[arg(long = "keepDaily", env = "KEEP_DAILY", help_heading = "Retention")]
    pub keep_daily: Option<u32>,
    /// restic `--keep-weekly`.
    #[arg(long = "keepWeekly", env = "KEEP_WEEKLY", help_heading = "Retention")]
    pub keep_weekly: Option<u32>,
    /// restic `--keep-monthly`.
    #[arg(long = "keepMonthly", env = "KEEP_MONTHLY", help_heading = "Retention")]
    pub keep_monthly: Option<u32>,
    /// restic `--keep-yearly`.
    #[arg(long = "keepYearly", env = "KEEP_YEARLY", help_heading = "Retention")]
    pub keep_yearly: Option<u32>,
    /// Keep snapshots carrying these tags (comma-separated; one restic `--keep-tag` each).
    #[arg(
        long = "keepTags",
        env = "KEEP_TAGS",
        value_delimiter = ',',
        help_heading = "Retention"
    )]
    pub keep_tags: Vec<String>,
    /// K8up's alternative environment name for `--keepTags`.
    #[arg(long = "keepTagsEnv", env = "KEEP_TAG", value_delimiter = ',', hide = true)]
    pub keep_tags_alias: Vec<String>,
    /// restic `--keep-within` (restic duration such as `2y5m7d3h`).
    #[arg(long = "keepWithin", env = "KEEP_WITHIN", help_heading = "Retention")]
    pub keep_within: Option<String>,
    /// restic `--keep-within-hourly`.
    #[arg(
        long = "keepWithinHourly",
        env = "KEEP_WITHIN_HOURLY",
        help_heading = "Retention"
    )]
    pub keep_within_hourly: Option<String>,
    /// restic `--keep-within-daily`.
    #[arg(
        long = "keepWithinDaily",
        env = "KEEP_WITHIN_DAILY",
        help_heading = "Retention"
    )]
    pub keep_within_daily: Option<String>,
    /// restic `--keep-within-weekly`.
    #[arg(
        long = "keepWithinWeekly",
        env = "KEEP_WITHIN_WEEKLY",
        help_heading = "Retention"
    )]
    pub keep_within_weekly: Option<String>,
    /// restic `--keep-within-monthly`.
    #[arg(
        long = "keepWithinMonthly",
        env = "KEEP_WITHIN_MONTHLY",
        help_heading = "Retention"
    )]
    pub keep_within_monthly: Option<String>,
    /// restic `--keep-within-yearly`.
    #[arg(
        long = "keepWithinYearly",
        env = "KEEP_WITHIN_YEARLY",
        help_heading = "Retention"
    )]
    pub keep_within_yearly: Option<String>,
    /// restic `check --read-data-subset` (`n/m`, `x%` or a size such as `1G`).
    #[arg(
        long = "readDataSubset",
        env = "CHECK_READ_DATA_SUBSET",
        help_heading = "Retention"
    )]
    pub read_data_subset: Option<String>,
    /// How long prune and check wait for other clients' locks before failing (`10m`).
    #[arg(
        long = "lockWait",
        env = "LOCK_WAIT",
        default_value = "10m",
        help_heading = "Retention"
    )]
    pub lock_wait: String,
    /// A lock not refreshed for this long whose owner pod no longer exists is treated as orphaned. restic
    /// refreshes live locks every 5 minutes, so keep this above 10m.
    #[arg(
        long = "lockOrphanAfter",
        env = "LOCK_ORPHAN_AFTER",
        default_value = "15m",
        help_heading = "Retention"
    )]
    pub lock_orphan_after: String,
}

impl ResticArgs {
    /// Parses `k8up restic` flags (without the sub-command name in `args[0]`'s place: pass any program name
    /// first), reading unset values from the environment like the real command line.
    pub fn try_parse_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{Args, FromArgMatches};
        let cmd = Self::augment_args(clap::Command::new("restic"));
        let matches = cmd.try_get_matches_from(args)?;
        Self::from_arg_matches(&matches)
    }
}

/// A restic duration (`--keep-within`): one or more `<number><unit>` with units `y`, `m` (months), `d`, `h`.
pub fn validate_restic_duration(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("empty duration".to_owned());
    }
    let mut digits = 0usize;
    let mut any_nonzero = false;
    let mut number = String::new();
    for c in value.chars() {
        if c.is_ascii_digit() {
            digits += 1;
            number.push(c);
        } else if matches!(c, 'y' | 'm' | 'd' | 'h') {
            if digits == 0 {
                return Err(format!("unit '{c}' without a number in {value:?}"));
            }
            if number.chars().any(|d| d != '0') {
                any_nonzero = true;
            }
            digits = 0;
            number.clear();
        } else {
            return Err(format!(
                "invalid character '{c}' in {value:?} (expected e.g. 2y5m7d3h; units y, m, d, h)"
            ));
        }
    }
    if digits != 0 {
        return Err(format!("number without unit at the end of {value:?}"));
    }
    if !any_nonzero {
        return Err(format!("duration {value:?} must be positive"));
    }
    Ok(())
}

/// A Go- or humantime-style duration (`10m`, `1h30m`, `90s`); a bare number is seconds.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(Duration::ZERO);
    }
    if let Ok(secs) = v.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(v).map_err(|e| format!("invalid duration {value:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};
    use rstest::rstest;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: ResticArgs,
    }

    #[test]
    fn the_flag_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[rstest]
    #[case("2y5m7d3h")]
    #[case("7d")]
    #[case("12h")]
    #[case("1y")]
    fn restic_durations_with_day_and_year_units_are_accepted(#[case] d: &str) {
        assert_eq!(validate_restic_duration(d), Ok(()));
    }

    #[rstest]
    #[case("")]
    #[case("-1d")]
    #[case("3")]
    #[case("d")]
    #[case("5s")]
    #[case("0d")]
    fn malformed_or_non_positive_restic_durations_are_rejected(#[case] d: &str) {
        assert!(validate_restic_duration(d).is_err(), "{d} accepted");
    }

    #[rstest]
    #[case("10m", 600)]
    #[case("1h30m", 5400)]
    #[case("45", 45)]
    #[case("0s", 0)]
    fn go_style_durations_parse(#[case] d: &str, #[case] secs: u64) {
        assert_eq!(parse_duration(d), Ok(Duration::from_secs(secs)));
    }

    #[test]
    fn k8up_flag_names_parse_into_the_fields() {
        let cli = Cli::try_parse_from([
            "x",
            "--prune",
            "--keepLatest",
            "3",
            "--keepTags",
            "a,b",
            "--keepWithinDaily",
            "2y5m7d3h",
            "--tag",
            "t1",
            "--tag",
            "t2",
            "--path",
            "/data/a,/data/b",
            "--trimRestorePath",
            "false",
            "--hostname",
            "ns",
            "--backucontainerannotation",
            "c",
            "--statsURL",
            "http://w",
        ]);
        let args = match cli {
            Ok(c) => c.args,
            Err(e) => panic!("{e}"),
        };
        assert!(args.prune);
        assert_eq!(args.keep_latest, Some(3));
        assert_eq!(args.keep_tags, vec!["a", "b"]);
        assert_eq!(args.keep_within_daily.as_deref(), Some("2y5m7d3h"));
        assert_eq!(args.tags, vec!["t1", "t2"]);
        assert_eq!(args.paths, vec!["/data/a", "/data/b"]);
        assert!(!args.trim_restore_path);
        assert_eq!(args.backup_container_annotation, "c");
        assert_eq!(args.webhook_url.as_deref(), Some("http://w"));
    }
}
