//! The data path of `k8up restic` against bare `restic` doing the same work, as wall-time ratios (and the
//! peak memory of each side) printed as a table with each goal in brackets. No assertion on time: timing
//! goals live here, not in tests.
//!
//! Run: `cargo bench --workspace --bench datapath` (1 GiB; takes some minutes). Options after `--`:
//! `--quick` (or `K8UP_BENCH_QUICK=1`) for 64 MiB, `folder` or `dump` to run one part only. The size is
//! `K8UP_BENCH_BYTES` (e.g. `268435456` or `256M`), the repetitions `K8UP_BENCH_REPEATS` (3).
//!
//! Compared, each with a fresh, empty local repository per run (initialised by the bench before the clock
//! starts, for both sides; the wrapper's own start-up calls, which find it initialised, are in its wall):
//!
//! 1. **folder backup** [goal ≤ 1.03×]: the built `k8up restic` with a Job's environment (`BACKUP_DIR` with
//!    one sub-folder per PVC, `HOSTNAME`, `RESTIC_REPOSITORY`, `RESTIC_PASSWORD`; no cluster, so no backup
//!    commands) on a generated tree of about 1,000 files of mixed sizes and incompressible seeded
//!    pseudo-random content, against `restic backup <dir> --host ns --json` with the argv and environment the
//!    wrapper's command builder produces.
//! 2. **dump through exec** [goal ≤ 1.15×]: the wrapper in a sandbox cluster, where the annotated pod's
//!    backup command `cat`s a generated pseudo-random file to stdout, streamed over WebSocket exec into
//!    `restic backup --stdin`, against the local pipe `cat <same file> | restic backup --stdin …`.
//!
//! Sides alternate A/B, B/A, … so that drift of a noisy machine cancels; the figures are medians. Beside the
//! walls: CPU time (user + system) of the processes run and of the bench process, which hosts the sandbox's
//! API server and kubelet; peak RSS (`VmHWM`, sampled) of the wrapper itself and of restic on each side. To
//! tell the transport from the wrapper, the dump part also times the exec stream alone (the same `cat`
//! through the sandbox's exec, read by an in-process kube client over HTTPS and discarded), once with the
//! wrapper's `AttachParams` and once with a stdout buffer of the wrapper's copy chunk. After the timed runs
//! one traced wrapper run (JSON logs, the runner at debug) shows where the wrapper's wall goes: each restic
//! call it makes, from its start to the start of the next.
//!
//! The wrapper measured is `K8UP_BINARY`, else `target/release/k8up`, else `target/debug/k8up`, which
//! distorts the figures (the bench says so, and when the binary is older than `host/src`). `--bench datapath`
//! does not build the binary (it belongs to another package): first run
//! `cargo build --workspace --profile bench --bin k8up` (the bench profile writes to `target/release`).
//! `restic` is `RESTIC_BINARY`, else the one on `PATH`.

// A benchmark binary: failing to set up is a crash with the reason, like a test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8up::restic::ResticReport;
use k8up::restic::command::{BackupOptions, Globals, ResticCommand};
use k8up::restic::json::BackupMessage;
use k8up::restic::report::DUMP_PENDING_TAG;
use k8up_tests::cluster::{Sandbox, SandboxConfig, wait_for};
use kube::Api;
use kube::api::{AttachParams, PostParams};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

const FOLDER_GOAL: f64 = 1.03;
const DUMP_GOAL: f64 = 1.15;
const FULL_BYTES: u64 = 1 << 30;
const QUICK_BYTES: u64 = 64 << 20;
const FILES: usize = 1000;
const REPEATS: usize = 3;
const SEED: u64 = 0x6b38_7570_6461_7461;
const PASSWORD: &str = "datapath-bench-password";
/// The folder part's namespace (restic `--host`); the sandbox part uses the namespace its pod lives in.
const FOLDER_HOST: &str = "ns";
const DUMP_NS: &str = "default";
const DUMP_POD: &str = "db";
/// The wrapper names the dump `/<namespace>-<container><extension>`.
const DUMP_FILENAME: &str = "/default-db.sql";
const SETUP_LIMIT: Duration = Duration::from_secs(120);

fn main() {
    let opts = Options::parse();
    let tools = Tools::locate();
    println!(
        "datapath: k8up restic vs bare restic, {}, {} runs per side (order A/B, B/A, …), medians",
        human_bytes(opts.bytes),
        opts.repeats
    );
    println!("k8up:   {}", tools.k8up_note);
    println!("restic: {} ({})", tools.restic.display(), tools.restic_version);
    let mut rows = Vec::new();
    if opts.folder {
        rows.push(folder_backup(&opts, &tools));
    }
    if opts.dump {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rows.push(rt.block_on(dump_through_exec(&opts, &tools)));
    }
    print_table(&rows);
}

/// What to run, from the command line and the environment.
struct Options {
    bytes: u64,
    repeats: usize,
    folder: bool,
    dump: bool,
}

impl Options {
    fn parse() -> Self {
        // `cargo bench` passes `--bench`; other `--` flags of the harness protocol are ignored likewise.
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick")
            || std::env::var("K8UP_BENCH_QUICK").is_ok_and(|v| v == "1" || v == "true");
        let bytes = match std::env::var("K8UP_BENCH_BYTES") {
            Ok(v) => parse_bytes(&v).unwrap_or_else(|| panic!("K8UP_BENCH_BYTES={v:?} is not a size")),
            Err(_) if quick => QUICK_BYTES,
            Err(_) => FULL_BYTES,
        };
        let repeats = std::env::var("K8UP_BENCH_REPEATS")
            .ok()
            .map(|v| v.parse().expect("K8UP_BENCH_REPEATS is a number"))
            .unwrap_or(REPEATS);
        assert!(repeats > 0, "K8UP_BENCH_REPEATS must be at least 1");
        let parts: Vec<&str> = args
            .iter()
            .filter(|a| !a.starts_with('-'))
            .map(String::as_str)
            .collect();
        for p in &parts {
            assert!(
                matches!(*p, "folder" | "dump"),
                "unknown part {p:?} (folder, dump)"
            );
        }
        Options {
            bytes,
            repeats,
            folder: parts.is_empty() || parts.contains(&"folder"),
            dump: parts.is_empty() || parts.contains(&"dump"),
        }
    }
}

/// `123`, `64K`, `256M`, `1G` (binary units).
fn parse_bytes(v: &str) -> Option<u64> {
    let v = v.trim();
    let (digits, shift) = match v.chars().last()?.to_ascii_uppercase() {
        'K' => (&v[..v.len() - 1], 10),
        'M' => (&v[..v.len() - 1], 20),
        'G' => (&v[..v.len() - 1], 30),
        _ => (v, 0),
    };
    digits.parse::<u64>().ok().filter(|n| *n > 0).map(|n| n << shift)
}

/// The two binaries and what the report says about them.
#[derive(Clone)]
struct Tools {
    k8up: PathBuf,
    k8up_note: String,
    restic: PathBuf,
    restic_version: String,
}

impl Tools {
    fn locate() -> Self {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
        let (k8up, kind) = match std::env::var_os("K8UP_BINARY") {
            Some(p) => (PathBuf::from(p), "from K8UP_BINARY"),
            None => [
                (target.join("release/k8up"), "optimised (release/bench profile)"),
                (
                    target.join("debug/k8up"),
                    "DEBUG build: the wrapper's own work is slower than in a release, figures distorted",
                ),
            ]
            .into_iter()
            .find(|(p, _)| p.exists())
            .unwrap_or_else(|| {
                panic!(
                    "no k8up binary: set K8UP_BINARY or run `cargo build --workspace --profile bench --bin k8up`"
                )
            }),
        };
        let k8up = std::fs::canonicalize(&k8up).unwrap_or(k8up);
        let built = std::fs::metadata(&k8up)
            .and_then(|m| m.modified())
            .unwrap_or_else(|e| panic!("{}: {e}", k8up.display()));
        let sources = newest_mtime(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/src"));
        let stale = if sources.is_some_and(|s| s > built) {
            "; OLDER than host/src, rebuild it"
        } else {
            ""
        };
        let age = SystemTime::now().duration_since(built).unwrap_or_default();
        let k8up_note = format!(
            "{} ({kind}; built {} min ago{stale})",
            k8up.display(),
            age.as_secs() / 60
        );
        let restic = std::env::var_os("RESTIC_BINARY")
            .map(PathBuf::from)
            .or_else(|| k8up_tests::runtime::images::which("restic"))
            .expect("restic is not on PATH (run tests/setup)");
        let out = Command::new(&restic).arg("version").output().unwrap();
        let restic_version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Tools {
            k8up,
            k8up_note,
            restic,
            restic_version,
        }
    }
}

fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let t = if meta.is_dir() {
            newest_mtime(&entry.path())
        } else {
            meta.modified().ok()
        };
        newest = newest.max(t);
    }
    newest
}

// ---- generated data ----

/// Writes `bytes` of the seeded stream to `path` and returns its sha256 (hex).
fn write_random(path: &Path, bytes: u64, rng: &mut StdRng) -> String {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    file.flush().unwrap();
    hex::encode(hasher.finalize())
}

/// [`FILES`] files totalling `bytes` in 25 directories under `root`: sizes log-uniform over four orders of
/// magnitude (a few hundred bytes to ~10 MiB at 1 GiB), like an application's data directory.
fn generate_tree(root: &Path, bytes: u64) {
    let mut rng = StdRng::seed_from_u64(SEED);
    let weights: Vec<f64> = (0..FILES)
        .map(|_| (rng.random::<f64>() * 16384f64.ln()).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut sizes: Vec<u64> = weights
        .iter()
        .map(|w| (bytes as f64 * w / total) as u64)
        .collect();
    let assigned: u64 = sizes.iter().sum();
    sizes[FILES - 1] += bytes - assigned;
    for (i, size) in sizes.iter().enumerate() {
        let dir = root.join(format!("dir-{:02}", i % 25));
        std::fs::create_dir_all(&dir).unwrap();
        write_random(&dir.join(format!("file-{i:04}.bin")), *size, &mut rng);
    }
}

// ---- running processes ----

/// One side of one repetition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Wrapper,
    Bare,
}

/// Wrapper first on even repetitions, bare first on odd ones.
fn order(rep: usize) -> [Side; 2] {
    if rep.is_multiple_of(2) {
        [Side::Wrapper, Side::Bare]
    } else {
        [Side::Bare, Side::Wrapper]
    }
}

/// A fresh, initialised repository with its own restic cache, termination log and home.
struct RunDir {
    dir: tempfile::TempDir,
}

impl RunDir {
    fn new(tools: &Tools) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("k8up-bench-run-")
            .tempdir()
            .unwrap();
        let run = RunDir { dir };
        std::fs::create_dir_all(run.path("home")).unwrap();
        std::fs::create_dir_all(run.path("backup")).unwrap();
        let out = run
            .clean(&mut Command::new(&tools.restic))
            .arg("init")
            .env("RESTIC_REPOSITORY", run.path("repo"))
            .env("RESTIC_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "restic init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The previous run's repository is deleted and this one's key written: start from settled disks.
        nix::unistd::sync();
        run
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Only the environment both sides share: nothing of the caller's leaks in (no KUBECONFIG, no cache).
    fn clean<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("RESTIC_CACHE_DIR", self.path("cache"));
        if let Some(tmp) = std::env::var_os("TMPDIR") {
            cmd.env("TMPDIR", tmp);
        }
        cmd
    }

    /// `k8up restic` with a backup Job's environment.
    fn wrapper(&self, tools: &Tools, host: &str, backup_dir: &Path) -> Command {
        let mut cmd = Command::new(&tools.k8up);
        self.clean(&mut cmd)
            .arg("restic")
            .env("HOSTNAME", host)
            .env("RESTIC_REPOSITORY", self.path("repo"))
            .env("RESTIC_PASSWORD", PASSWORD)
            .env("RESTIC_BINARY", &tools.restic)
            .env("BACKUP_DIR", backup_dir)
            .env("K8UP_VAR_DIR", self.path("var"))
            .env("K8UP_TERMINATION_LOG", self.path("termination-log"));
        cmd
    }

    /// restic with the argv and environment the wrapper's command builder produces.
    fn bare(&self, tools: &Tools, restic: &ResticCommand) -> Command {
        let mut cmd = Command::new(&tools.restic);
        self.clean(&mut cmd)
            .args(&restic.args)
            .envs(restic.env.iter().cloned());
        cmd
    }

    fn globals(&self) -> Globals {
        Globals {
            repository: self.path("repo").display().to_string(),
            password: Some(PASSWORD.to_owned()),
            // What `Config::from_args` sets when RESTIC_PROGRESS_FPS is not given.
            progress_fps: Some((1.0f64 / 60.0).to_string()),
            ..Globals::default()
        }
    }
}

/// One measured process: its wall time, output and the peak resident memory seen.
struct Measured {
    wall: Duration,
    started: DateTime<Utc>,
    stdout: String,
    stderr: String,
    /// Peak RSS of the process itself (KiB).
    peak_root_kib: u64,
    /// Peak RSS of the largest `restic` process: the process itself or one of its children (KiB).
    peak_restic_kib: u64,
    /// CPU time of the processes run (with their children: restic under the wrapper, the pod's `cat`).
    cpu_children: Duration,
    /// CPU time of this process meanwhile: the sandbox's API server and kubelet serving the exec (and the
    /// memory sampler, on both sides alike).
    cpu_self: Duration,
}

/// Runs `cmd` (its stdin fed by `feeder`'s stdout when given) to completion; the wall covers both.
fn measure(cmd: &mut Command, feeder: Option<&mut Command>) -> Measured {
    let cpu_before = cpu_times();
    let started = Utc::now();
    let start = Instant::now();
    let mut feeder = feeder.map(|f| f.stdout(Stdio::piped()).spawn().unwrap());
    match feeder.as_mut() {
        Some(f) => cmd.stdin(Stdio::from(f.stdout.take().unwrap())),
        None => cmd.stdin(Stdio::null()),
    };
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let sampler = Sampler::start(child.id());
    let out = child.wait_with_output().unwrap();
    if let Some(mut f) = feeder {
        assert!(f.wait().unwrap().success(), "the producer failed");
    }
    let wall = start.elapsed();
    let (peak_root_kib, peak_restic_kib) = sampler.stop();
    let cpu_after = cpu_times();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    Measured {
        wall,
        started,
        stdout,
        stderr,
        peak_root_kib,
        peak_restic_kib,
        cpu_children: cpu_after.1.saturating_sub(cpu_before.1),
        cpu_self: cpu_after.0.saturating_sub(cpu_before.0),
    }
}

/// (this process, its waited-for children) user + system CPU time, from `/proc/self/stat`.
fn cpu_times() -> (Duration, Duration) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let tail = stat.rsplit_once(')').map(|(_, t)| t).unwrap_or_default();
    // After `(comm)`: state is field 0, utime 11, stime 12, cutime 13, cstime 14, in USER_HZ (100 on Linux).
    let fields: Vec<u64> = tail
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = |n: u64| Duration::from_millis(n * 10);
    (ticks(fields[0] + fields[1]), ticks(fields[2] + fields[3]))
}

/// Samples `VmHWM` (the kernel's own peak) of a process and of its `restic` children every 50 ms from a
/// thread, so the measured process is waited for without polling.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(u64, u64)>,
}

impl Sampler {
    fn start(root: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peaks: HashMap<u32, (bool, u64)> = HashMap::new();
            while !flag.load(Ordering::Relaxed) {
                sample(root, &mut peaks);
                std::thread::sleep(Duration::from_millis(50));
            }
            let root_peak = peaks.get(&root).map(|p| p.1).unwrap_or(0);
            let restic_peak = peaks.values().filter(|p| p.0).map(|p| p.1).max().unwrap_or(0);
            (root_peak, restic_peak)
        });
        Sampler { stop, thread }
    }

    fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Records (is restic, VmHWM KiB) of `root` and its direct children.
fn sample(root: u32, peaks: &mut HashMap<u32, (bool, u64)>) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses, so split at the last `)`.
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map(|(_, c)| c).unwrap_or_default();
        let ppid = tail.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if pid != root && ppid != Some(root) {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let hwm = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
        let e = peaks.entry(pid).or_insert((comm == "restic", 0));
        e.1 = e.1.max(hwm);
    }
}

/// The report the wrapper printed on stdout (its last line).
fn wrapper_report(m: &Measured) -> ResticReport {
    let line = m
        .stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let report: ResticReport = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "no report on the wrapper's stdout ({e}):\n{}\n{}",
            m.stdout, m.stderr
        )
    });
    assert!(
        report.success,
        "the wrapper failed: {:?}\n{}",
        report.error, m.stderr
    );
    assert_eq!(report.created.len(), 1, "{report:?}");
    report
}

/// The bytes bare restic's summary says it read.
fn bare_bytes(m: &Measured) -> u64 {
    m.stdout
        .lines()
        .find_map(|l| match serde_json::from_str::<BackupMessage>(l) {
            Ok(BackupMessage::Summary(s)) => Some(s.total_bytes_processed),
            _ => None,
        })
        .unwrap_or_else(|| panic!("restic printed no summary:\n{}\n{}", m.stdout, m.stderr))
}

// ---- the parts ----

/// One line of the table plus what explains it.
struct Row {
    name: &'static str,
    goal: f64,
    bytes: u64,
    wrapper: Vec<Measured>,
    bare: Vec<Measured>,
    /// The traced wrapper run.
    trace: Measured,
    /// The exec stream alone, without restic (dump part only): per client stdout buffer, (wall, CPU of this
    /// process) of each run.
    exec_alone: Vec<(ExecBuffer, Vec<(Duration, Duration)>)>,
}

fn folder_backup(opts: &Options, tools: &Tools) -> Row {
    let tree = tempfile::Builder::new()
        .prefix("k8up-bench-tree-")
        .tempdir()
        .unwrap();
    // BACKUP_DIR holds one sub-folder per PVC; one PVC here, so the wrapper runs one `restic backup`.
    let backup_dir = tree.path().join("backup");
    let pvc = backup_dir.join("data");
    let began = Instant::now();
    generate_tree(&pvc, opts.bytes);
    println!(
        "folder: generated {FILES} files, {} in {:.1} s",
        human_bytes(opts.bytes),
        began.elapsed().as_secs_f64()
    );
    let opts_bare = BackupOptions {
        host: FOLDER_HOST.to_owned(),
        ..BackupOptions::default()
    };
    let run_side = |side: Side, env: &[(&str, &str)]| {
        let run = RunDir::new(tools);
        match side {
            Side::Wrapper => {
                let mut cmd = run.wrapper(tools, FOLDER_HOST, &backup_dir);
                cmd.envs(env.iter().copied());
                let m = measure(&mut cmd, None);
                let report = wrapper_report(&m);
                assert_eq!(report.created[0].bytes, Some(opts.bytes), "{report:?}");
                m
            }
            Side::Bare => {
                let restic = run
                    .globals()
                    .backup_folder(&opts_bare, &pvc.display().to_string());
                let m = measure(&mut run.bare(tools, &restic), None);
                assert_eq!(bare_bytes(&m), opts.bytes);
                m
            }
        }
    };
    let (mut wrapper, mut bare) = (Vec::new(), Vec::new());
    for rep in 0..opts.repeats {
        for side in order(rep) {
            let m = run_side(side, &[]);
            println!("folder: run {} {side:?}: {:.2} s", rep + 1, m.wall.as_secs_f64());
            match side {
                Side::Wrapper => wrapper.push(m),
                Side::Bare => bare.push(m),
            }
        }
    }
    let trace = run_side(Side::Wrapper, TRACE_ENV);
    Row {
        name: "folder backup",
        goal: FOLDER_GOAL,
        bytes: opts.bytes,
        wrapper,
        bare,
        trace,
        exec_alone: Vec::new(),
    }
}

/// Logs as JSON with every restic call the runner starts.
const TRACE_ENV: &[(&str, &str)] = &[
    ("K8UP_LOG_FORMAT", "json"),
    ("RUST_LOG", "info,k8up::restic::runner=debug"),
];

async fn dump_through_exec(opts: &Options, tools: &Tools) -> Row {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let client = sandbox.client();
    let dump = source_pvc(&client).await.join("dump.bin");
    let began = Instant::now();
    let bytes = opts.bytes;
    let path = dump.clone();
    let sha256 =
        tokio::task::spawn_blocking(move || write_random(&path, bytes, &mut StdRng::seed_from_u64(SEED ^ 1)))
            .await
            .unwrap();
    println!(
        "dump: generated {} in {:.1} s",
        human_bytes(bytes),
        began.elapsed().as_secs_f64()
    );
    create_dump_pod(&client).await;

    let kubeconfig = sandbox.kubeconfig_path().to_path_buf();
    let run_side = move |side: Side, env: &'static [(&'static str, &'static str)], tools: Arc<Tools>| {
        let run = RunDir::new(&tools);
        match side {
            Side::Wrapper => {
                let mut cmd = run.wrapper(&tools, DUMP_NS, &run.path("backup"));
                cmd.env("KUBECONFIG", &kubeconfig)
                    .env("TARGET_PODS", DUMP_POD)
                    .envs(env.iter().copied());
                let m = measure(&mut cmd, None);
                let report = wrapper_report(&m);
                let snapshot = &report.created[0];
                assert_eq!(snapshot.paths, [DUMP_FILENAME], "{report:?}");
                assert_eq!(snapshot.dump_bytes, Some(bytes), "{report:?}");
                assert_eq!(
                    snapshot.dump_sha256.as_deref(),
                    Some(sha256.as_str()),
                    "{report:?}"
                );
                m
            }
            Side::Bare => {
                // The wrapper's own argv for a dump, including the tag it replaces once the digest is known.
                let opts = BackupOptions {
                    host: DUMP_NS.to_owned(),
                    tags: vec![DUMP_PENDING_TAG.to_owned()],
                    ..BackupOptions::default()
                };
                let restic = run.globals().backup_stdin(&opts, DUMP_FILENAME);
                let mut cat = Command::new("cat");
                cat.arg(&dump);
                let m = measure(&mut run.bare(&tools, &restic), Some(&mut cat));
                assert_eq!(bare_bytes(&m), bytes);
                m
            }
        }
    };
    let run_side = Arc::new(run_side);
    let tools = Arc::new(tools.clone());
    // The sandbox serves the exec on this runtime: the processes are waited for off its workers.
    let blocking = |side: Side, env: &'static [(&'static str, &'static str)]| {
        let (run_side, tools) = (run_side.clone(), tools.clone());
        tokio::task::spawn_blocking(move || run_side(side, env, tools))
    };
    let client_https = https_client(sandbox.kubeconfig_path()).await;
    let (mut wrapper, mut bare) = (Vec::new(), Vec::new());
    let mut exec_alone: Vec<(ExecBuffer, Vec<_>)> = EXEC_BUFFERS.iter().map(|b| (*b, Vec::new())).collect();
    for rep in 0..opts.repeats {
        for side in order(rep) {
            let m = blocking(side, &[]).await.unwrap();
            println!("dump: run {} {side:?}: {:.2} s", rep + 1, m.wall.as_secs_f64());
            match side {
                Side::Wrapper => wrapper.push(m),
                Side::Bare => bare.push(m),
            }
        }
        for (buffer, runs) in &mut exec_alone {
            runs.push(exec_stream_alone(&client_https, bytes, *buffer).await);
        }
    }
    let trace = blocking(Side::Wrapper, TRACE_ENV).await.unwrap();
    sandbox.shutdown().await;
    Row {
        name: "dump through exec",
        goal: DUMP_GOAL,
        bytes,
        wrapper,
        bare,
        trace,
        exec_alone,
    }
}

/// A client like the wrapper's: from the sandbox's kubeconfig, over HTTPS.
async fn https_client(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let conf = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(conf).unwrap()
}

/// The kube client's buffer between its WebSocket loop and the exec's stdout reader.
#[derive(Debug, Clone, Copy)]
enum ExecBuffer {
    /// `AttachParams::default()`, as the wrapper execs (kube-client 5: a 1 KiB `simplex`).
    Default,
    /// `max_stdout_buf_size` set to the wrapper's copy chunk.
    Chunk,
}

const EXEC_BUFFERS: &[ExecBuffer] = &[ExecBuffer::Default, ExecBuffer::Chunk];
/// `CHUNK` of host/src/restic/exec.rs.
const WRAPPER_CHUNK: usize = 256 * 1024;

/// The pod's backup command through exec, its stdout read in the wrapper's chunk size and discarded:
/// what the transport alone costs. Returns the wall and this process's CPU time (client and server).
async fn exec_stream_alone(client: &kube::Client, bytes: u64, buffer: ExecBuffer) -> (Duration, Duration) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), DUMP_NS);
    let mut params = AttachParams::default().stdin(false).stdout(true).stderr(false);
    if let ExecBuffer::Chunk = buffer {
        params = params.max_stdout_buf_size(WRAPPER_CHUNK);
    }
    let before = cpu_times().0;
    let start = Instant::now();
    let mut attached = pods
        .exec(DUMP_POD, ["cat", "/data/source/dump.bin"], &params)
        .await
        .unwrap();
    let mut stdout = attached.stdout().unwrap();
    let mut buf = vec![0u8; WRAPPER_CHUNK];
    let mut read = 0u64;
    loop {
        let n = stdout.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        read += n as u64;
    }
    attached.join().await.unwrap();
    let wall = start.elapsed();
    assert_eq!(read, bytes, "the exec stream was cut short");
    (wall, cpu_times().0.saturating_sub(before))
}

/// A bound RWX PVC `source` (the sandbox provisions a host directory) and that directory.
async fn source_pvc(client: &kube::Client) -> PathBuf {
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), DUMP_NS);
    let pvc = serde_json::from_value(json!({
        "metadata": { "name": "source" },
        "spec": { "accessModes": ["ReadWriteMany"], "resources": { "requests": { "storage": "2Gi" } } },
    }))
    .unwrap();
    pvcs.create(&PostParams::default(), &pvc).await.unwrap();
    let volume = wait_for("pvc source to bind", SETUP_LIMIT, || async {
        let p = pvcs.get("source").await?;
        let bound = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
        Ok::<_, kube::Error>(bound.then(|| p.spec.and_then(|s| s.volume_name)).flatten())
    })
    .await
    .unwrap();
    let pv = Api::<PersistentVolume>::all(client.clone())
        .get(&volume)
        .await
        .unwrap();
    let spec = pv.spec.unwrap();
    match (spec.host_path, spec.local) {
        (Some(h), _) => PathBuf::from(h.path),
        (None, Some(l)) => PathBuf::from(l.path),
        _ => panic!("PV {volume} has neither hostPath nor local"),
    }
}

/// The pod whose backup command `cat`s the dump, waited for until Running.
async fn create_dump_pod(client: &kube::Client) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), DUMP_NS);
    let pod = serde_json::from_value(json!({
        "metadata": {
            "name": DUMP_POD,
            "annotations": {
                "k8up.io/backupcommand": "cat /data/source/dump.bin",
                "k8up.io/file-extension": ".sql",
            },
        },
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "db", "image": "busybox", "command": ["sleep", "infinity"],
                "volumeMounts": [{ "name": "source", "mountPath": "/data/source" }],
            }],
            "volumes": [{ "name": "source", "persistentVolumeClaim": { "claimName": "source" } }],
        },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    wait_for("the dump pod to run", SETUP_LIMIT, || async {
        let p = pods.get(DUMP_POD).await?;
        let running = p.status.and_then(|s| s.phase).as_deref() == Some("Running");
        Ok::<_, kube::Error>(running.then_some(()))
    })
    .await
    .unwrap();
}

// ---- the report ----

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<18} {:>9} {:>12} {:>12} {:>8} {:>12}",
        "case", "size", "k8up restic", "bare restic", "ratio", "[goal]"
    );
    for row in rows {
        let (w, b) = (
            median_of(&row.wrapper, |m| m.wall),
            median_of(&row.bare, |m| m.wall),
        );
        let ratio = w.as_secs_f64() / b.as_secs_f64().max(1e-9);
        let verdict = if ratio <= row.goal { "met" } else { "MISSED" };
        println!(
            "{:<18} {:>9} {:>10.2} s {:>10.2} s {:>7.3}x {:>12}  {verdict}",
            row.name,
            human_bytes(row.bytes),
            w.as_secs_f64(),
            b.as_secs_f64(),
            ratio,
            format!("[<= {:.2}x]", row.goal),
        );
        let list = |ms: &[Measured]| {
            ms.iter()
                .map(|m| format!("{:.2}", m.wall.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let rate = |d: Duration| row.bytes as f64 / (1 << 20) as f64 / d.as_secs_f64();
        println!(
            "  runs (s): k8up {} | bare {}; {:.0} vs {:.0} MiB/s; k8up - bare = {:+.2} s",
            list(&row.wrapper),
            list(&row.bare),
            rate(w),
            rate(b),
            w.as_secs_f64() - b.as_secs_f64()
        );
        let cpu = |ms: &[Measured]| median_of(ms, |m| m.cpu_children + m.cpu_self).as_secs_f64();
        println!(
            "  CPU (s, median): k8up side {:.1} (processes {:.1}, this process {:.1}) | bare side {:.1} \
             (processes {:.1}, this process {:.1})",
            cpu(&row.wrapper),
            median_of(&row.wrapper, |m| m.cpu_children).as_secs_f64(),
            median_of(&row.wrapper, |m| m.cpu_self).as_secs_f64(),
            cpu(&row.bare),
            median_of(&row.bare, |m| m.cpu_children).as_secs_f64(),
            median_of(&row.bare, |m| m.cpu_self).as_secs_f64(),
        );
        let peak = |ms: &[Measured], f: fn(&Measured) -> u64| ms.iter().map(f).max().unwrap_or(0);
        println!(
            "  peak RSS: k8up itself {}, its restic {} | bare restic {}",
            mib(peak(&row.wrapper, |m| m.peak_root_kib)),
            mib(peak(&row.wrapper, |m| m.peak_restic_kib)),
            mib(peak(&row.bare, |m| m.peak_restic_kib)),
        );
        for (buffer, runs) in &row.exec_alone {
            let walls: Vec<Duration> = runs.iter().map(|r| r.0).collect();
            let e = median(walls.clone());
            let label = match buffer {
                ExecBuffer::Default => "default AttachParams (the wrapper's)".to_owned(),
                ExecBuffer::Chunk => format!("max_stdout_buf_size {} KiB", WRAPPER_CHUNK / 1024),
            };
            println!(
                "  exec stream alone, {label}: {:.2} s = {:.0} MiB/s, CPU {:.1} s (runs {})",
                e.as_secs_f64(),
                rate(e),
                median(runs.iter().map(|r| r.1).collect()).as_secs_f64(),
                walls
                    .iter()
                    .map(|d| format!("{:.2}", d.as_secs_f64()))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
    println!(
        "(ratio = median k8up wall / median bare wall; CPU = user + system of the processes run and of this \
         process, which hosts the sandbox; RSS = peak VmHWM sampled every 50 ms, max over runs; exec stream \
         alone = cat -> sandbox exec -> discarded by an in-process kube client over HTTPS)"
    );
    for row in rows {
        print_trace(row);
    }
}

fn median_of(ms: &[Measured], f: impl Fn(&Measured) -> Duration) -> Duration {
    median(ms.iter().map(f).collect())
}

/// Each restic call of the traced run: when it started after the wrapper's start, and how long until the
/// next call started (or the wrapper exited), which includes the wrapper's own work in between.
fn print_trace(row: &Row) {
    let t = &row.trace;
    let ended = t.started + chrono::Duration::from_std(t.wall).unwrap();
    let mut starts: Vec<(DateTime<Utc>, String)> = Vec::new();
    for line in t.stderr.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["message"] != "running restic" {
            continue;
        }
        let (Some(ts), Some(command)) = (v["timestamp"].as_str(), v["command"].as_str()) else {
            continue;
        };
        let Ok(at) = DateTime::parse_from_rfc3339(ts) else {
            continue;
        };
        starts.push((at.with_timezone(&Utc), call_name(command)));
    }
    println!();
    println!(
        "where the k8up wall goes ({}, one traced run of {:.2} s, {} restic calls):",
        row.name,
        t.wall.as_secs_f64(),
        starts.len()
    );
    let secs = |d: chrono::Duration| d.num_microseconds().unwrap_or(0) as f64 / 1e6;
    if let Some((first, _)) = starts.first() {
        println!(
            "  {:>7.2} s  {:<22} {:>7.2} s",
            0.0,
            "wrapper start-up",
            secs(*first - t.started)
        );
    }
    for (i, (at, name)) in starts.iter().enumerate() {
        let next = starts.get(i + 1).map(|n| n.0).unwrap_or(ended);
        println!(
            "  {:>7.2} s  {:<22} {:>7.2} s",
            secs(*at - t.started),
            format!("restic {name}"),
            secs(next - *at)
        );
    }
    let bare = median(row.bare.iter().map(|m| m.wall).collect());
    println!(
        "  (bare restic backup median: {:.2} s; every restic call opens the repository: key derivation, index)",
        bare.as_secs_f64()
    );
}

/// The sub-command of a logged restic argv, with `--stdin` for dumps (paths and filters left out).
fn call_name(args: &str) -> String {
    let mut words = args.split_whitespace();
    let first = words.next().unwrap_or_default().to_owned();
    let rest: Vec<&str> = words.collect();
    match first.as_str() {
        "backup" if rest.contains(&"--stdin") => "backup --stdin".to_owned(),
        "cat" | "list" => format!("{first} {}", rest.first().unwrap_or(&"")),
        _ => first,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn human_bytes(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64)
    }
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}
