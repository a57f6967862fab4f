//! Validation: turns the raw flags into a `Config` (defaults merged, aliases resolved, durations parsed).

use std::path::PathBuf;
use std::time::Duration;

use super::Error;
use super::args::{ResticArgs, parse_duration, validate_restic_duration};
use super::command::{BackupOptions, Globals, Retention, SnapshotFilter};
use super::runner::{Redactor, Runner};

/// One thing the wrapper does; several run in K8up's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Folder and application-dump backup (the default).
    Backup,
    /// `forget --prune`.
    Prune,
    /// `check`.
    Check,
    /// Restore one snapshot.
    Restore,
    /// Upload snapshots to S3.
    Archive,
}

impl Mode {
    /// Lower-case name used in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Backup => "backup",
            Mode::Prune => "prune",
            Mode::Check => "check",
            Mode::Restore => "restore",
            Mode::Archive => "archive",
        }
    }
}

/// An S3 restore/archive target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Target {
    /// `http(s)://host[:port]` (without the bucket).
    pub endpoint: url::Url,
    /// Bucket name (last path segment of `RESTORE_S3ENDPOINT`).
    pub bucket: String,
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// CA certificate (PEM).
    pub ca_cert: Option<PathBuf>,
    /// Client certificate and key (PEM files).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// Where a restore goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreTarget {
    /// Into a directory.
    Folder(PathBuf),
    /// As `.tar.gz` to S3.
    S3,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Modes in execution order.
    pub modes: Vec<Mode>,
    /// The namespace (restic `--host`).
    pub host: String,
    /// restic binary.
    pub restic_bin: PathBuf,
    /// Repository, password, options, TLS.
    pub globals: Globals,
    /// Client certificate and key to concatenate into `globals.tls_client_cert` at start-up.
    pub client_cert_pair: Option<(PathBuf, PathBuf)>,
    /// Where the PEM goes.
    pub var_dir: PathBuf,
    /// Deadline of short calls.
    pub meta_timeout: Duration,
    /// Deadline of long calls.
    pub data_timeout: Duration,
    /// Sleep before the first call.
    pub sleep: Duration,
    /// Wait this long for another Job to initialise the repository instead of initialising it (zero: init).
    pub await_repository: Duration,
    /// Kubeconfig outside a cluster.
    pub kubeconfig: Option<PathBuf>,
    /// Tags (backup) / tag filter (others).
    pub tags: Vec<String>,
    /// Path filter (restore, archive).
    pub paths: Vec<String>,
    /// Hosts considered by prune/restore/archive (default: `[host]`).
    pub hosts: Vec<String>,
    /// Whether the user set `--hostnameFilter` (restore then always filters by host).
    pub hosts_explicit: bool,
    /// Backup flags (host and tags included).
    pub backup: BackupOptions,
    /// Root of the folder backups.
    pub backup_dir: PathBuf,
    /// Run backup commands of annotated pods.
    pub pre_backup: bool,
    /// Annotation with the command.
    pub command_annotation: String,
    /// Annotation with the file extension.
    pub extension_annotation: String,
    /// Annotation with the container name.
    pub container_annotation: String,
    /// Pod names to exec into (empty = all).
    pub target_pods: Vec<String>,
    /// Retention for prune.
    pub retention: Retention,
    /// `check --read-data-subset`.
    pub read_data_subset: Option<String>,
    /// Wait for foreign locks before prune/check.
    pub lock_wait: Duration,
    /// Age after which a lock of a vanished pod is orphaned.
    pub lock_orphan_after: Duration,
    /// Restore target.
    pub restore_target: Option<RestoreTarget>,
    /// S3 target of restore/archive.
    pub s3: Option<S3Target>,
    /// `restore --include`.
    pub restore_filter: Option<String>,
    /// Time prefix filter.
    pub restore_time_filter: Option<String>,
    /// Snapshot ID prefix.
    pub restore_snap: Option<String>,
    /// Path preferred without a snapshot ID.
    pub prefer_path: Option<String>,
    /// `restore --verify`.
    pub verify_restore: bool,
    /// Restore `<id>:<path>`.
    pub trim_restore_path: bool,
    /// `restore --delete`.
    pub delete: bool,
    /// Archive all snapshots instead of the latest per host and path.
    pub all_snapshots: bool,
    /// Webhook URL.
    pub webhook_url: Option<String>,
    /// Pushgateway URL.
    pub prom_url: Option<String>,
    /// `cluster` label.
    pub cluster_name: String,
    /// Values to redact from logs and the report.
    pub redactor: Redactor,
}

impl Config {
    /// Validates the flags (K8up's rules plus ours) into a `Config`.
    pub fn from_args(a: &ResticArgs) -> Result<Self, Error> {
        let invalid = |m: String| Error::InvalidConfig(m);
        let host = a
            .hostname
            .clone()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("--hostname (HOSTNAME) is required: it is the namespace".into()))?;
        let repository = a
            .restic_repository
            .clone()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| invalid("--resticRepository (RESTIC_REPOSITORY) is required".into()))?;

        let mut modes = Vec::new();
        if a.prune {
            modes.push(Mode::Prune);
        }
        if a.check {
            modes.push(Mode::Check);
        }
        if a.restore {
            modes.push(Mode::Restore);
        }
        if a.archive {
            modes.push(Mode::Archive);
        }
        if modes.is_empty() {
            modes.push(Mode::Backup);
        }

        for o in &a.restic_options {
            if !o.contains('=') {
                return Err(invalid(format!(
                    "restic option {o:?} is not of the form key=value"
                )));
            }
        }
        let client_cert_pair = match (&a.client_cert, &a.client_key) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "--clientCert and --clientKey must be given together".into(),
                ));
            }
        };

        let dur = |name: &str, v: &str| parse_duration(v).map_err(|e| invalid(format!("{name}: {e}")));
        let meta_timeout = dur("--resticMetaTimeout", &a.restic_meta_timeout)?;
        let data_timeout = dur("--resticTimeout", &a.restic_timeout)?;
        if meta_timeout.is_zero() || data_timeout.is_zero() {
            return Err(invalid("restic timeouts must be positive".into()));
        }

        let keep_tags: Vec<String> = a
            .keep_tags
            .iter()
            .chain(&a.keep_tags_alias)
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        let retention = Retention {
            keep_last: a.keep_latest.or(a.keep_latest_alias),
            keep_hourly: a.keep_hourly,
            keep_daily: a.keep_daily,
            keep_weekly: a.keep_weekly,
            keep_monthly: a.keep_monthly,
            keep_yearly: a.keep_yearly,
            keep_tags,
            keep_within: a.keep_within.clone(),
            keep_within_hourly: a.keep_within_hourly.clone(),
            keep_within_daily: a.keep_within_daily.clone(),
            keep_within_weekly: a.keep_within_weekly.clone(),
            keep_within_monthly: a.keep_within_monthly.clone(),
            keep_within_yearly: a.keep_within_yearly.clone(),
        };
        for (name, v) in [
            ("--keepWithin", &retention.keep_within),
            ("--keepWithinHourly", &retention.keep_within_hourly),
            ("--keepWithinDaily", &retention.keep_within_daily),
            ("--keepWithinWeekly", &retention.keep_within_weekly),
            ("--keepWithinMonthly", &retention.keep_within_monthly),
            ("--keepWithinYearly", &retention.keep_within_yearly),
        ] {
            if let Some(v) = v {
                validate_restic_duration(v).map_err(|e| invalid(format!("{name}: {e}")))?;
            }
        }

        let restore_target = if a.restore {
            match a.restore_type.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("folder") => Some(RestoreTarget::Folder(a.restore_dir.clone())),
                Some("s3") => Some(RestoreTarget::S3),
                Some(other) => {
                    return Err(invalid(format!("unknown --restoreType {other:?} (folder or s3)")));
                }
                None => return Err(invalid("--restore needs --restoreType folder or s3".into())),
            }
        } else {
            None
        };
        let needs_s3 = a.archive || restore_target == Some(RestoreTarget::S3);
        let s3 = if needs_s3 { Some(s3_target(a)?) } else { None };

        let hosts_explicit = !a.hostname_filter.is_empty();
        let hosts = if hosts_explicit {
            a.hostname_filter.clone()
        } else {
            vec![host.clone()]
        };

        let backup = BackupOptions {
            host: host.clone(),
            tags: a.tags.clone(),
            exclude: a.exclude.clone(),
            exclude_caches: a.exclude_caches,
            exclude_file: a.exclude_file.clone(),
            exclude_if_present: a.exclude_if_present.clone(),
            exclude_larger_than: a
                .exclude_larger_than
                .clone()
                .or_else(|| a.exclude_larger_that.clone()),
            files_from: a.files_from.clone(),
            files_from_raw: a.files_from_raw.clone(),
            files_from_verbatim: a.files_from_verbatim.clone(),
            iexclude: a.i_exclude.clone(),
            iexclude_file: a.i_exclude_file.clone(),
            one_file_system: a.one_file_system,
        };

        let mut secrets: Vec<&str> = Vec::new();
        if let Some(p) = &a.restic_password {
            secrets.push(p);
        }
        if let Some(s) = &a.restore_s3_secret_key {
            secrets.push(s);
        }
        let redactor = Redactor::from_env(&secrets).with_url_credentials(&repository);

        let progress_fps = if std::env::var_os("RESTIC_PROGRESS_FPS").is_none() {
            Some((1.0f64 / 60.0).to_string())
        } else {
            None
        };

        Ok(Config {
            modes,
            host,
            restic_bin: a.restic_bin.clone(),
            globals: Globals {
                repository,
                password: a.restic_password.clone(),
                options: a.restic_options.clone(),
                cacert: a.ca_cert.clone(),
                tls_client_cert: None,
                progress_fps,
            },
            client_cert_pair,
            var_dir: a.var_dir.clone(),
            meta_timeout,
            data_timeout,
            sleep: dur("--sleepDuration", &a.sleep_duration)?,
            await_repository: dur("--awaitRepository", &a.await_repository)?,
            kubeconfig: a.kubeconfig.clone(),
            tags: a.tags.clone(),
            paths: a.paths.iter().filter(|p| !p.is_empty()).cloned().collect(),
            hosts,
            hosts_explicit,
            backup,
            backup_dir: a.backup_dir.clone(),
            pre_backup: !a.skip_pre_backup,
            command_annotation: a.backup_command_annotation.clone(),
            extension_annotation: a.file_extension_annotation.clone(),
            container_annotation: a.backup_container_annotation.clone(),
            target_pods: a
                .target_pods
                .iter()
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect(),
            retention,
            read_data_subset: a.read_data_subset.clone().filter(|s| !s.is_empty()),
            lock_wait: dur("--lockWait", &a.lock_wait)?,
            lock_orphan_after: dur("--lockOrphanAfter", &a.lock_orphan_after)?,
            restore_target,
            s3,
            restore_filter: a.restore_filter.clone().filter(|s| !s.is_empty()),
            restore_time_filter: a.restore_time_filter.clone().filter(|s| !s.is_empty()),
            restore_snap: a.restore_snap.clone().filter(|s| !s.is_empty() && s != "latest"),
            prefer_path: a.prefer_path.clone().filter(|s| !s.is_empty()),
            verify_restore: a.verify_restore,
            trim_restore_path: a.trim_restore_path,
            delete: a.delete,
            all_snapshots: a.all_snapshots,
            webhook_url: a.webhook_url.clone().filter(|s| !s.is_empty()),
            prom_url: a.prom_url.clone().filter(|s| !s.is_empty()),
            cluster_name: a.cluster_name.clone().unwrap_or_default(),
            redactor,
        })
    }

    /// A runner with this configuration's binary, deadlines and redaction.
    pub fn runner(&self) -> Runner {
        Runner::new(
            self.restic_bin.clone(),
            self.meta_timeout,
            self.data_timeout,
            self.redactor.clone(),
        )
    }

    /// The host/tag/path filter for prune, restore and archive.
    pub fn filter(&self, with_paths: bool) -> SnapshotFilter {
        SnapshotFilter {
            hosts: self.hosts.clone(),
            tags: self.tags.clone(),
            paths: if with_paths {
                self.paths.clone()
            } else {
                Vec::new()
            },
        }
    }

    /// Basename of the repository (K8up's `bucket_name` in webhooks).
    pub fn bucket_name(&self) -> String {
        let r = self.globals.repository.trim_end_matches('/');
        r.rsplit(['/', ':']).next().unwrap_or(r).to_owned()
    }
}

fn s3_target(a: &ResticArgs) -> Result<S3Target, Error> {
    let invalid = |m: String| Error::InvalidConfig(m);
    let raw = a
        .restore_s3_endpoint
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("the S3 target needs --restoreS3Endpoint (RESTORE_S3ENDPOINT)".into()))?;
    let access_key = a
        .restore_s3_access_key
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("the S3 target needs --restoreS3AccessKey (RESTORE_ACCESSKEYID)".into()))?;
    let secret_key = a
        .restore_s3_secret_key
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            invalid("the S3 target needs --restoreS3SecretKey (RESTORE_SECRETACCESSKEY)".into())
        })?;
    let (endpoint, bucket) = split_endpoint(&raw).map_err(invalid)?;
    let client_cert = match (&a.restore_client_cert, &a.restore_client_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (None, None) => None,
        _ => {
            return Err(invalid(
                "--restoreClientCert and --restoreClientKey must be given together".into(),
            ));
        }
    };
    Ok(S3Target {
        endpoint,
        bucket,
        access_key,
        secret_key,
        ca_cert: a.restore_ca_cert.clone(),
        client_cert,
    })
}

/// Splits `http(s)://host[:port][/prefix]/bucket` into the endpoint and the bucket.
pub fn split_endpoint(raw: &str) -> Result<(url::Url, String), String> {
    let url =
        url::Url::parse(raw.trim_end_matches('/')).map_err(|e| format!("RESTORE_S3ENDPOINT {raw:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "RESTORE_S3ENDPOINT {raw:?} needs an http or https scheme"
        ));
    }
    let mut segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    let bucket = segments
        .pop()
        .ok_or_else(|| format!("RESTORE_S3ENDPOINT {raw:?} names no bucket (http(s)://host/bucket)"))?
        .to_owned();
    let mut endpoint = url.clone();
    // A trailing slash, so that joining the bucket keeps a path prefix.
    let prefix = segments.join("/");
    endpoint.set_path(&if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    });
    Ok((endpoint, bucket))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn cfg(extra: &[&str]) -> Result<Config, Error> {
        let mut argv = vec!["restic", "--hostname", "ns", "--resticRepository", "/repo"];
        argv.extend_from_slice(extra);
        let args = ResticArgs::try_parse_from(argv).map_err(|e| Error::InvalidConfig(e.to_string()))?;
        Config::from_args(&args)
    }

    #[test]
    fn no_mode_flag_means_backup_and_mode_flags_run_in_k8up_order() {
        assert_eq!(cfg(&[]).map(|c| c.modes).ok(), Some(vec![Mode::Backup]));
        let modes = cfg(&["--check", "--prune"]).map(|c| c.modes).ok();
        assert_eq!(modes, Some(vec![Mode::Prune, Mode::Check]));
    }

    #[rstest]
    #[case::bad_within(&["--prune", "--keepWithin", "30s"])]
    #[case::restore_without_type(&["--restore"])]
    #[case::unknown_type(&["--restore", "--restoreType", "tape"])]
    #[case::s3_without_keys(&["--restore", "--restoreType", "s3", "--restoreS3Endpoint", "http://s3/b"])]
    #[case::half_client_cert(&["--clientCert", "/c.pem"])]
    #[case::bad_option(&["--resticOptions", "novalue"])]
    #[case::archive_without_bucket(&["--archive", "--restoreS3Endpoint", "http://s3", "--restoreS3AccessKey", "a", "--restoreS3SecretKey", "b"])]
    fn invalid_settings_are_rejected_before_restic_runs(#[case] extra: &[&str]) {
        assert!(matches!(cfg(extra), Err(Error::InvalidConfig(_))));
    }

    #[test]
    fn keep_tags_split_into_one_keep_tag_each_and_keep_last_has_an_alias() {
        let c = cfg(&[
            "--prune",
            "--keepTags",
            "a,b",
            "--keepTagsEnv",
            "c",
            "--keepLatestEnv",
            "4",
        ]);
        let r = c.map(|c| c.retention).ok();
        assert_eq!(
            r.as_ref().map(|r| r.keep_tags.clone()),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(r.and_then(|r| r.keep_last), Some(4));
    }

    #[test]
    fn the_host_filter_defaults_to_the_namespace() {
        assert_eq!(cfg(&[]).map(|c| c.hosts).ok(), Some(vec!["ns".to_owned()]));
        let c = cfg(&["--hostnameFilter", "a,b"]).ok();
        assert_eq!(
            c.map(|c| (c.hosts, c.hosts_explicit)),
            Some((vec!["a".into(), "b".into()], true))
        );
    }

    #[rstest]
    #[case("http://127.0.0.1:8333/restore", "http://127.0.0.1:8333/", "restore")]
    #[case("https://s3.example.com/bucket/", "https://s3.example.com/", "bucket")]
    #[case("http://minio:9000/prefix/bucket", "http://minio:9000/prefix/", "bucket")]
    fn s3_endpoints_split_into_endpoint_and_bucket(
        #[case] raw: &str,
        #[case] ep: &str,
        #[case] bucket: &str,
    ) {
        let (e, b) = split_endpoint(raw).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((e.as_str(), b.as_str()), (ep, bucket));
    }

    #[test]
    fn the_bucket_name_is_the_repository_basename() {
        let args = ResticArgs::try_parse_from([
            "restic",
            "--hostname",
            "ns",
            "--resticRepository",
            "s3:http://minio:9000/backups",
        ])
        .unwrap();
        let c = Config::from_args(&args).unwrap();
        assert_eq!(c.bucket_name(), "backups");
    }
}
