//! Pure restic command lines: validated settings in, the exact argv and environment out (no process, no I/O).

use std::path::PathBuf;

/// How long a call may run: short metadata calls and long data calls get different deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// init, unlock, snapshots, ls, lock listing: seconds to minutes.
    Meta,
    /// backup, restore, forget --prune, check, dump: may take hours.
    Data,
}

/// One restic invocation: arguments after the binary, extra environment, and its deadline class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResticCommand {
    /// Arguments after the binary name.
    pub args: Vec<String>,
    /// Environment set on top of the inherited one. May hold secrets: never log it.
    pub env: Vec<(String, String)>,
    /// Deadline class.
    pub kind: CallKind,
}

impl ResticCommand {
    /// The sub-command words (for logs and error messages; never contains secrets).
    pub fn name(&self) -> String {
        self.args
            .iter()
            .take_while(|a| !a.starts_with('-'))
            .take(2)
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Settings shared by every call: repository, password, `--option`s and repository TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Globals {
    /// `RESTIC_REPOSITORY` (in the environment, never on argv: it may contain credentials).
    pub repository: String,
    /// `RESTIC_PASSWORD` when given explicitly; otherwise restic inherits it from our environment.
    pub password: Option<String>,
    /// `k=v` items, each becomes `--option k=v`.
    pub options: Vec<String>,
    /// `--cacert`.
    pub cacert: Option<PathBuf>,
    /// `--tls-client-cert` (a PEM holding certificate and key).
    pub tls_client_cert: Option<PathBuf>,
    /// Set `RESTIC_PROGRESS_FPS` (K8up sets 1/60 unless the user did).
    pub progress_fps: Option<String>,
}

/// Filters of `restic snapshots` and `restic forget`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotFilter {
    /// `--host` per entry.
    pub hosts: Vec<String>,
    /// `--tag` per entry (restic ORs them).
    pub tags: Vec<String>,
    /// `--path` per entry.
    pub paths: Vec<String>,
}

/// Flags of a backup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupOptions {
    /// `--host` (the namespace).
    pub host: String,
    /// `--tag` per entry.
    pub tags: Vec<String>,
    /// `--exclude` per entry.
    pub exclude: Vec<String>,
    /// `--exclude-caches`.
    pub exclude_caches: bool,
    /// `--exclude-file` per entry.
    pub exclude_file: Vec<String>,
    /// `--exclude-if-present` per entry.
    pub exclude_if_present: Vec<String>,
    /// `--exclude-larger-than`.
    pub exclude_larger_than: Option<String>,
    /// `--files-from` per entry.
    pub files_from: Vec<String>,
    /// `--files-from-raw` per entry.
    pub files_from_raw: Vec<String>,
    /// `--files-from-verbatim` per entry.
    pub files_from_verbatim: Vec<String>,
    /// `--iexclude` per entry.
    pub iexclude: Vec<String>,
    /// `--iexclude-file` per entry.
    pub iexclude_file: Vec<String>,
    /// `--one-file-system`.
    pub one_file_system: bool,
}

/// The retention policy of `restic forget`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// `--keep-last`.
    pub keep_last: Option<u32>,
    /// `--keep-hourly`.
    pub keep_hourly: Option<u32>,
    /// `--keep-daily`.
    pub keep_daily: Option<u32>,
    /// `--keep-weekly`.
    pub keep_weekly: Option<u32>,
    /// `--keep-monthly`.
    pub keep_monthly: Option<u32>,
    /// `--keep-yearly`.
    pub keep_yearly: Option<u32>,
    /// `--keep-tag` per entry.
    pub keep_tags: Vec<String>,
    /// `--keep-within`.
    pub keep_within: Option<String>,
    /// `--keep-within-hourly`.
    pub keep_within_hourly: Option<String>,
    /// `--keep-within-daily`.
    pub keep_within_daily: Option<String>,
    /// `--keep-within-weekly`.
    pub keep_within_weekly: Option<String>,
    /// `--keep-within-monthly`.
    pub keep_within_monthly: Option<String>,
    /// `--keep-within-yearly`.
    pub keep_within_yearly: Option<String>,
}

impl Retention {
    /// True when no keep rule is set (restic would then remove nothing).
    pub fn is_empty(&self) -> bool {
        self == &Retention::default()
    }
}

/// What `restic restore` restores where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// Snapshot ID, optionally with `:<sub path>` (trimmed restore).
    pub snapshot: String,
    /// `--target`.
    pub target: PathBuf,
    /// `--include`.
    pub include: Option<String>,
    /// `--verify`.
    pub verify: bool,
    /// `--delete` (restic 0.17+).
    pub delete: bool,
}

impl Globals {
    fn command(&self, kind: CallKind, words: &[&str]) -> ResticCommand {
        let mut args: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        for o in &self.options {
            args.push("--option".to_owned());
            args.push(o.clone());
        }
        if let Some(ca) = &self.cacert {
            args.push("--cacert".to_owned());
            args.push(ca.display().to_string());
        }
        if let Some(pem) = &self.tls_client_cert {
            args.push("--tls-client-cert".to_owned());
            args.push(pem.display().to_string());
        }
        let mut env = vec![("RESTIC_REPOSITORY".to_owned(), self.repository.clone())];
        if let Some(p) = &self.password {
            env.push(("RESTIC_PASSWORD".to_owned(), p.clone()));
        }
        if let Some(fps) = &self.progress_fps {
            env.push(("RESTIC_PROGRESS_FPS".to_owned(), fps.clone()));
        }
        ResticCommand { args, env, kind }
    }

    /// `restic init`.
    pub fn init(&self) -> ResticCommand {
        self.command(CallKind::Meta, &["init"])
    }

    /// `restic cat config --no-lock`: succeeds once the repository is initialised.
    pub fn cat_config(&self) -> ResticCommand {
        let mut c = self.command(CallKind::Meta, &["cat", "config"]);
        c.args.push("--no-lock".to_owned());
        c
    }

    /// `restic unlock` (stale locks only) or `restic unlock --remove-all`.
    pub fn unlock(&self, remove_all: bool) -> ResticCommand {
        let mut c = self.command(CallKind::Meta, &["unlock"]);
        if remove_all {
            c.args.push("--remove-all".to_owned());
        }
        c
    }

    /// `restic snapshots --json` with filters.
    pub fn snapshots(&self, filter: &SnapshotFilter) -> ResticCommand {
        let mut c = self.command(CallKind::Meta, &["snapshots"]);
        c.args.push("--json".to_owned());
        push_filter(&mut c.args, filter);
        c
    }

    /// `restic backup <dir> --host <ns> --json` with tags and exclude/files-from flags.
    pub fn backup_folder(&self, opts: &BackupOptions, dir: &str) -> ResticCommand {
        let mut c = self.command(CallKind::Data, &["backup", dir]);
        push_backup(&mut c.args, opts, true);
        c
    }

    /// `restic backup --stdin --stdin-filename <name> --host <ns> --json` with tags.
    pub fn backup_stdin(&self, opts: &BackupOptions, filename: &str) -> ResticCommand {
        let mut c = self.command(CallKind::Data, &["backup"]);
        c.args.push("--stdin".to_owned());
        c.args.push("--stdin-filename".to_owned());
        c.args.push(filename.to_owned());
        push_backup(&mut c.args, opts, false);
        c
    }

    /// `restic forget --prune --json` with the retention policy and host/tag filters.
    pub fn forget_prune(&self, keep: &Retention, filter: &SnapshotFilter) -> ResticCommand {
        let mut c = self.command(CallKind::Data, &["forget"]);
        c.args.push("--prune".to_owned());
        c.args.push("--json".to_owned());
        let counts = [
            ("--keep-last", keep.keep_last),
            ("--keep-hourly", keep.keep_hourly),
            ("--keep-daily", keep.keep_daily),
            ("--keep-weekly", keep.keep_weekly),
            ("--keep-monthly", keep.keep_monthly),
            ("--keep-yearly", keep.keep_yearly),
        ];
        for (flag, n) in counts {
            if let Some(n) = n.filter(|n| *n > 0) {
                c.args.push(flag.to_owned());
                c.args.push(n.to_string());
            }
        }
        let withins = [
            ("--keep-within", &keep.keep_within),
            ("--keep-within-hourly", &keep.keep_within_hourly),
            ("--keep-within-daily", &keep.keep_within_daily),
            ("--keep-within-weekly", &keep.keep_within_weekly),
            ("--keep-within-monthly", &keep.keep_within_monthly),
            ("--keep-within-yearly", &keep.keep_within_yearly),
        ];
        for (flag, d) in withins {
            if let Some(d) = d {
                c.args.push(flag.to_owned());
                c.args.push(d.clone());
            }
        }
        for t in &keep.keep_tags {
            c.args.push("--keep-tag".to_owned());
            c.args.push(t.clone());
        }
        push_filter(&mut c.args, filter);
        c
    }

    /// `restic forget <id>…` (no prune): withdraws snapshots that must not claim success.
    pub fn forget_ids(&self, ids: &[String]) -> ResticCommand {
        let mut c = self.command(CallKind::Meta, &["forget"]);
        c.args.extend(ids.iter().cloned());
        c
    }

    /// `restic tag --add … --remove … <id>`.
    pub fn tag(&self, id: &str, add: &[String], remove: &[String]) -> ResticCommand {
        let mut c = self.command(CallKind::Meta, &["tag"]);
        for t in add {
            c.args.push("--add".to_owned());
            c.args.push(t.clone());
        }
        for t in remove {
            c.args.push("--remove".to_owned());
            c.args.push(t.clone());
        }
        c.args.push(id.to_owned());
        c
    }

    /// `restic check [--read-data-subset <subset>]`.
    pub fn check(&self, read_data_subset: Option<&str>) -> ResticCommand {
        let mut c = self.command(CallKind::Data, &["check"]);
        if let Some(s) = read_data_subset {
            c.args.push(format!("--read-data-subset={s}"));
        }
        c
    }

    /// `restic restore <id>[:<path>] --target <dir> [--include f] [--verify] [--delete]`.
    pub fn restore(&self, opts: &RestoreOptions) -> ResticCommand {
        let mut c = self.command(CallKind::Data, &["restore", &opts.snapshot]);
        c.args.push("--target".to_owned());
        c.args.push(opts.target.display().to_string());
        if let Some(i) = &opts.include {
            c.args.push("--include".to_owned());
            c.args.push(i.clone());
        }
        if opts.verify {
            c.args.push("--verify".to_owned());
        }
        if opts.delete {
            c.args.push("--delete".to_owned());
        }
        c
    }

    /// `restic ls --json <id>`.
    pub fn ls(&self, id: &str) -> ResticCommand {
        let mut c = self.command(CallKind::Meta, &["ls", id]);
        c.args.push("--json".to_owned());
        c
    }

    /// `restic dump <id> <path>` (a tar stream for a directory, the file's bytes for a file).
    pub fn dump(&self, id: &str, path: &str) -> ResticCommand {
        self.command(CallKind::Data, &["dump", id, path])
    }

    /// `restic list locks --no-lock` (one lock ID per line).
    pub fn list_locks(&self) -> ResticCommand {
        let mut c = self.command(CallKind::Meta, &["list", "locks"]);
        c.args.push("--no-lock".to_owned());
        c
    }

    /// `restic cat lock <id> --no-lock` (the lock as JSON).
    pub fn cat_lock(&self, id: &str) -> ResticCommand {
        let mut c = self.command(CallKind::Meta, &["cat", "lock", id]);
        c.args.push("--no-lock".to_owned());
        c
    }
}

fn push_filter(args: &mut Vec<String>, f: &SnapshotFilter) {
    for h in &f.hosts {
        args.push("--host".to_owned());
        args.push(h.clone());
    }
    for t in &f.tags {
        args.push("--tag".to_owned());
        args.push(t.clone());
    }
    for p in &f.paths {
        args.push("--path".to_owned());
        args.push(p.clone());
    }
}

fn push_backup(args: &mut Vec<String>, o: &BackupOptions, folder: bool) {
    args.push("--host".to_owned());
    args.push(o.host.clone());
    args.push("--json".to_owned());
    for t in &o.tags {
        args.push("--tag".to_owned());
        args.push(t.clone());
    }
    if !folder {
        // Excludes and files-from select files of a directory; they make no sense for one stdin stream.
        return;
    }
    let lists: [(&str, &Vec<String>); 7] = [
        ("--exclude", &o.exclude),
        ("--exclude-file", &o.exclude_file),
        ("--exclude-if-present", &o.exclude_if_present),
        ("--files-from", &o.files_from),
        ("--files-from-raw", &o.files_from_raw),
        ("--files-from-verbatim", &o.files_from_verbatim),
        ("--iexclude", &o.iexclude),
    ];
    for (flag, values) in lists {
        for v in values {
            args.push(flag.to_owned());
            args.push(v.clone());
        }
    }
    for v in &o.iexclude_file {
        args.push("--iexclude-file".to_owned());
        args.push(v.clone());
    }
    if o.exclude_caches {
        args.push("--exclude-caches".to_owned());
    }
    if let Some(s) = &o.exclude_larger_than {
        args.push("--exclude-larger-than".to_owned());
        args.push(s.clone());
    }
    if o.one_file_system {
        args.push("--one-file-system".to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use rstest::rstest;

    fn g() -> Globals {
        Globals {
            repository: "s3:http://s3/bucket".into(),
            password: Some("pw".into()),
            ..Globals::default()
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn global_flags_follow_the_sub_command_and_the_repository_goes_to_the_environment() {
        let globals = Globals {
            options: s(&["s3.storage-class=STANDARD", "s3.region=eu"]),
            cacert: Some("/certs/ca.pem".into()),
            tls_client_cert: Some("/k8up/restic.repo.abc.pem".into()),
            progress_fps: Some("0.016666".into()),
            ..g()
        };
        let c = globals.init();
        assert_eq!(
            c.args,
            s(&[
                "init",
                "--option",
                "s3.storage-class=STANDARD",
                "--option",
                "s3.region=eu",
                "--cacert",
                "/certs/ca.pem",
                "--tls-client-cert",
                "/k8up/restic.repo.abc.pem"
            ])
        );
        assert_eq!(
            c.env,
            vec![
                ("RESTIC_REPOSITORY".to_owned(), "s3:http://s3/bucket".to_owned()),
                ("RESTIC_PASSWORD".to_owned(), "pw".to_owned()),
                ("RESTIC_PROGRESS_FPS".to_owned(), "0.016666".to_owned()),
            ]
        );
        assert!(
            !c.args.iter().any(|a| a.contains("s3:http")),
            "repository leaked to argv"
        );
    }

    #[rstest]
    #[case::stale_only(false, &["unlock"])]
    #[case::remove_all(true, &["unlock", "--remove-all"])]
    fn unlock_removes_all_locks_only_when_asked(#[case] all: bool, #[case] want: &[&str]) {
        assert_eq!(g().unlock(all).args, s(want));
    }

    #[rstest]
    #[case::no_filter(SnapshotFilter::default(), &["snapshots", "--json"])]
    #[case::all_filters(
        SnapshotFilter { hosts: s(&["ns"]), tags: s(&["a", "b"]), paths: s(&["/data/pvc"]) },
        &["snapshots", "--json", "--host", "ns", "--tag", "a", "--tag", "b", "--path", "/data/pvc"]
    )]
    fn snapshot_listing_applies_host_tag_and_path_filters(#[case] f: SnapshotFilter, #[case] want: &[&str]) {
        assert_eq!(g().snapshots(&f).args, s(want));
    }

    #[rstest]
    #[case::plain(BackupOptions { host: "ns".into(), ..Default::default() }, &["backup", "/data/pvc", "--host", "ns", "--json"])]
    #[case::everything(
        BackupOptions {
            host: "ns".into(),
            tags: s(&["daily"]),
            exclude: s(&["*.tmp"]),
            exclude_caches: true,
            exclude_file: s(&["/ex"]),
            exclude_if_present: s(&[".nobackup"]),
            exclude_larger_than: Some("1G".into()),
            files_from: s(&["/ff"]),
            files_from_raw: s(&["/ffr"]),
            files_from_verbatim: s(&["/ffv"]),
            iexclude: s(&["*.LOG"]),
            iexclude_file: s(&["/iex"]),
            one_file_system: true,
        },
        &["backup", "/data/pvc", "--host", "ns", "--json", "--tag", "daily", "--exclude", "*.tmp",
          "--exclude-file", "/ex", "--exclude-if-present", ".nobackup", "--files-from", "/ff",
          "--files-from-raw", "/ffr", "--files-from-verbatim", "/ffv", "--iexclude", "*.LOG",
          "--iexclude-file", "/iex", "--exclude-caches", "--exclude-larger-than", "1G", "--one-file-system"]
    )]
    fn folder_backups_carry_host_json_tags_and_selection_flags(
        #[case] o: BackupOptions,
        #[case] want: &[&str],
    ) {
        let c = g().backup_folder(&o, "/data/pvc");
        assert_eq!(c.args, s(want));
        assert_eq!(c.kind, CallKind::Data);
    }

    #[test]
    fn stdin_backups_name_the_file_and_skip_folder_selection_flags() {
        let o = BackupOptions {
            host: "ns".into(),
            tags: s(&["k8up.io/dump-pending"]),
            exclude: s(&["*.tmp"]),
            one_file_system: true,
            ..Default::default()
        };
        assert_eq!(
            g().backup_stdin(&o, "/ns-mysql.sql").args,
            s(&[
                "backup",
                "--stdin",
                "--stdin-filename",
                "/ns-mysql.sql",
                "--host",
                "ns",
                "--json",
                "--tag",
                "k8up.io/dump-pending"
            ])
        );
    }

    #[rstest]
    #[case::defaults_only_filters(
        Retention::default(),
        SnapshotFilter { hosts: s(&["ns"]), ..Default::default() },
        &["forget", "--prune", "--json", "--host", "ns"]
    )]
    #[case::zero_counts_are_omitted(
        Retention { keep_last: Some(0), keep_daily: Some(14), ..Default::default() },
        SnapshotFilter { hosts: s(&["ns"]), ..Default::default() },
        &["forget", "--prune", "--json", "--keep-daily", "14", "--host", "ns"]
    )]
    #[case::everything(
        Retention {
            keep_last: Some(1), keep_hourly: Some(2), keep_daily: Some(3), keep_weekly: Some(4),
            keep_monthly: Some(5), keep_yearly: Some(6), keep_tags: s(&["keep", "gold"]),
            keep_within: Some("2y5m7d3h".into()), keep_within_hourly: Some("1d".into()),
            keep_within_daily: Some("7d".into()), keep_within_weekly: Some("1m".into()),
            keep_within_monthly: Some("1y".into()), keep_within_yearly: Some("10y".into()),
        },
        SnapshotFilter { hosts: s(&["ns", "other"]), tags: s(&["daily"]), paths: vec![] },
        &["forget", "--prune", "--json", "--keep-last", "1", "--keep-hourly", "2", "--keep-daily", "3",
          "--keep-weekly", "4", "--keep-monthly", "5", "--keep-yearly", "6", "--keep-within", "2y5m7d3h",
          "--keep-within-hourly", "1d", "--keep-within-daily", "7d", "--keep-within-weekly", "1m",
          "--keep-within-monthly", "1y", "--keep-within-yearly", "10y", "--keep-tag", "keep", "--keep-tag", "gold",
          "--host", "ns", "--host", "other", "--tag", "daily"]
    )]
    fn forget_prune_carries_each_keep_rule_and_filter(
        #[case] keep: Retention,
        #[case] f: SnapshotFilter,
        #[case] want: &[&str],
    ) {
        assert_eq!(g().forget_prune(&keep, &f).args, s(want));
    }

    #[rstest]
    #[case::plain(None, &["check"])]
    #[case::subset(Some("10%"), &["check", "--read-data-subset=10%"])]
    #[case::nth(Some("1/5"), &["check", "--read-data-subset=1/5"])]
    fn check_reads_a_data_subset_when_asked(#[case] subset: Option<&str>, #[case] want: &[&str]) {
        assert_eq!(g().check(subset).args, s(want));
    }

    #[rstest]
    #[case::trimmed(
        RestoreOptions { snapshot: "abc:/data/pvc".into(), target: "/restore".into(), ..Default::default() },
        &["restore", "abc:/data/pvc", "--target", "/restore"]
    )]
    #[case::all_flags(
        RestoreOptions { snapshot: "abc".into(), target: "/restore".into(), include: Some("/x".into()), verify: true, delete: true },
        &["restore", "abc", "--target", "/restore", "--include", "/x", "--verify", "--delete"]
    )]
    fn restore_targets_the_snapshot_path_with_optional_flags(
        #[case] o: RestoreOptions,
        #[case] want: &[&str],
    ) {
        assert_eq!(g().restore(&o).args, s(want));
    }

    #[rstest]
    #[case::ls(g().ls("abc"), &["ls", "abc", "--json"], CallKind::Meta)]
    #[case::dump(g().dump("abc", "/ns-db.sql"), &["dump", "abc", "/ns-db.sql"], CallKind::Data)]
    #[case::list_locks(g().list_locks(), &["list", "locks", "--no-lock"], CallKind::Meta)]
    #[case::cat_lock(g().cat_lock("f00"), &["cat", "lock", "f00", "--no-lock"], CallKind::Meta)]
    #[case::forget_ids(g().forget_ids(&s(&["a", "b"])), &["forget", "a", "b"], CallKind::Meta)]
    #[case::tag(
        g().tag("abc", &s(&["k8up.io/dump-bytes=3"]), &s(&["k8up.io/dump-pending"])),
        &["tag", "--add", "k8up.io/dump-bytes=3", "--remove", "k8up.io/dump-pending", "abc"],
        CallKind::Meta
    )]
    fn small_commands_have_their_exact_argv(
        #[case] c: ResticCommand,
        #[case] want: &[&str],
        #[case] kind: CallKind,
    ) {
        assert_eq!(c.args, s(want));
        assert_eq!(c.kind, kind);
    }

    #[test]
    fn the_command_name_is_the_sub_command_words() {
        assert_eq!(g().list_locks().name(), "list locks");
        assert_eq!(g().init().name(), "init");
    }
}
