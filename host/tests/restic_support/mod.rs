//! Shared harness of the `restic_*` tests: a local repository driven by the real restic binary, the wrapper
//! run with flags, a webhook receiver and a SeaweedFS S3 server.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use k8up::restic::json::Snapshot;
use k8up::restic::{ResticArgs, ResticReport};

pub const PASSWORD: &str = "correct horse battery staple";

/// The restic binary under test (`K8UP_TEST_RESTIC` selects another one, e.g. a 0.14 build).
pub fn restic_bin() -> PathBuf {
    let bin = std::env::var_os("K8UP_TEST_RESTIC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/restic"));
    assert!(
        bin.exists(),
        "restic not found at {} (apt-get install -y restic, or run tests/setup)",
        bin.display()
    );
    bin
}

/// A temporary restic repository with a data root.
pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        Self { dir }
    }

    pub fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn report_file(&self) -> PathBuf {
        self.dir.path().join("termination-log")
    }

    /// A restic command on this repository.
    pub fn restic(&self) -> Command {
        let mut c = Command::new(restic_bin());
        c.env("RESTIC_REPOSITORY", self.repo())
            .env("RESTIC_PASSWORD", PASSWORD)
            .env("RESTIC_PROGRESS_FPS", "0.01");
        c
    }

    pub fn restic_ok(&self, args: &[&str]) -> String {
        let out = self.restic().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "restic {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn init(&self) {
        self.restic_ok(&["init"]);
    }

    pub fn snapshots(&self) -> Vec<Snapshot> {
        let out = self.restic_ok(&["snapshots", "--json"]);
        serde_json::from_str(out.trim()).unwrap_or_default()
    }

    /// A backup made directly with restic (for setting up prune and restore scenarios).
    pub fn backup_direct(&self, dir: &Path, host: &str, tags: &[&str]) -> String {
        let mut args = vec![
            "backup".to_owned(),
            dir.display().to_string(),
            "--host".into(),
            host.into(),
            "--json".into(),
        ];
        for t in tags {
            args.push("--tag".into());
            args.push((*t).into());
        }
        let out = self.restic().args(&args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let summary = text.lines().rev().find(|l| l.contains("\"summary\"")).unwrap();
        let v: serde_json::Value = serde_json::from_str(summary).unwrap();
        let short = v["snapshot_id"].as_str().unwrap().to_owned();
        self.snapshots()
            .into_iter()
            .find(|s| s.id.starts_with(&short))
            .unwrap()
            .id
    }

    /// The wrapper's flags for this repository plus `extra`.
    pub fn args(&self, extra: &[&str]) -> ResticArgs {
        let mut argv: Vec<String> = vec![
            "restic".into(),
            "--resticBin".into(),
            restic_bin().display().to_string(),
            "--resticRepository".into(),
            self.repo().display().to_string(),
            "--resticPassword".into(),
            PASSWORD.into(),
            "--hostname".into(),
            "ns".into(),
            "--terminationLog".into(),
            self.report_file().display().to_string(),
            "--varDir".into(),
            self.path("var").display().to_string(),
            "--backupDir".into(),
            self.data().display().to_string(),
            "--skipPreBackup".into(),
            "--resticMetaTimeout".into(),
            "2m".into(),
            "--resticTimeout".into(),
            "10m".into(),
        ];
        argv.extend(extra.iter().map(|s| (*s).to_owned()));
        ResticArgs::try_parse_from(argv).unwrap()
    }

    /// Runs the wrapper; the report must also be in the termination-message file.
    pub async fn run(&self, extra: &[&str]) -> Result<ResticReport, k8up::restic::Error> {
        let r = k8up::restic::run(self.args(extra)).await;
        let written = std::fs::read_to_string(self.report_file()).unwrap();
        assert!(
            written.len() <= 4096,
            "termination message of {} bytes",
            written.len()
        );
        let parsed: ResticReport = serde_json::from_str(&written).unwrap();
        assert_eq!(parsed.success, r.is_ok());
        r
    }

    pub fn report(&self) -> ResticReport {
        serde_json::from_str(&std::fs::read_to_string(self.report_file()).unwrap()).unwrap()
    }
}

pub fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A local HTTP server recording every POST body: JSON at `/hook` (the webhook receiver), anything else
/// with its path (a stand-in Pushgateway at the same address).
pub struct Webhook {
    pub url: String,
    /// The server's base URL (`--promURL`).
    pub base: String,
    pub bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    /// (path, text) of every other POST.
    pub pushes: Arc<Mutex<Vec<(String, String)>>>,
}

impl Webhook {
    pub async fn start() -> Self {
        let bodies: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let pushes: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let b = bodies.clone();
        let p = pushes.clone();
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(move |body: axum::body::Bytes| {
                    let b = b.clone();
                    async move {
                        let v: serde_json::Value =
                            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                        b.lock().unwrap().push(v);
                        "ok"
                    }
                }),
            )
            .fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
                let p = p.clone();
                async move {
                    p.lock()
                        .unwrap()
                        .push((uri.path().to_owned(), String::from_utf8_lossy(&body).into_owned()));
                    "ok"
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}/hook"),
            base: format!("http://{addr}"),
            bodies,
            pushes,
        }
    }

    pub fn received(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().unwrap().clone()
    }

    pub fn pushed(&self) -> Vec<(String, String)> {
        self.pushes.lock().unwrap().clone()
    }
}

#[path = "../../../tests/src/servers.rs"]
mod servers;
#[allow(unused_imports)]
pub use servers::Seaweed;

/// Entries (path, bytes) of a `.tar.gz`.
pub fn untar_gz(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let gz = flate2::read::GzDecoder::new(data);
    let mut ar = tar::Archive::new(gz);
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = e.path().unwrap().display().to_string();
        let mut buf = Vec::new();
        e.read_to_end(&mut buf).unwrap();
        out.push((path, buf));
    }
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
