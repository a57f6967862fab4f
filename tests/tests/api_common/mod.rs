//! Test harness shared by the API server suites: a small in-test node agent whose commands are
//! interpreted here (`cat` echoes stdin, `gen N` writes N deterministic bytes, `exit K` exits
//! with K). It stands in for the kubelet so the server's exec/log plumbing can be tested alone.

#![allow(dead_code)]

use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use k8up_tests::node::{ExecExit, ExecProcess, ExecRequest, LogRequest, NodeAgent, NodeError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Deterministic output of `gen`: a 64 KiB pattern whose first 8 bytes count the chunks.
pub fn gen_chunk(index: u64) -> Vec<u8> {
    let mut chunk: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(31) % 251) as u8)
        .collect();
    chunk[..8].copy_from_slice(&index.to_le_bytes());
    chunk
}

/// The test agent.
#[derive(Debug, Default)]
pub struct EchoAgent;

impl EchoAgent {
    pub fn shared() -> Arc<dyn NodeAgent> {
        Arc::new(Self)
    }
}

impl NodeAgent for EchoAgent {
    fn exec(&self, req: ExecRequest) -> BoxFuture<'static, Result<ExecProcess, NodeError>> {
        async move {
            if req.pod == "missing" {
                return Err(NodeError::BadRequest("pod missing is not running".into()));
            }
            let (out_w, out_r) = tokio::io::duplex(64 * 1024);
            let (err_w, err_r) = tokio::io::duplex(64 * 1024);
            let (in_w, mut in_r) = tokio::io::duplex(64 * 1024);
            let cmd: Vec<String> = req.command.clone();
            let task = tokio::spawn(async move {
                let mut out_w = out_w;
                let mut err_w = err_w;
                match cmd.first().map(String::as_str) {
                    Some("cat") => {
                        let _ = tokio::io::copy(&mut in_r, &mut out_w).await;
                        ExecExit::Code(0)
                    }
                    Some("gen") => {
                        let total: u64 = cmd.get(1).and_then(|n| n.parse().ok()).unwrap_or(0);
                        let mut written = 0u64;
                        let mut index = 0u64;
                        while written < total {
                            let chunk = gen_chunk(index);
                            let n = chunk.len().min((total - written) as usize);
                            if out_w.write_all(&chunk[..n]).await.is_err() {
                                return ExecExit::Failed("stdout closed".into());
                            }
                            written += n as u64;
                            index += 1;
                        }
                        let _ = err_w.write_all(b"done\n").await;
                        ExecExit::Code(0)
                    }
                    Some("exit") => {
                        let _ = err_w.write_all(b"bye\n").await;
                        ExecExit::Code(cmd.get(1).and_then(|c| c.parse().ok()).unwrap_or(1))
                    }
                    Some("echo") => {
                        let _ = out_w
                            .write_all(format!("{}\n", cmd[1..].join(" ")).as_bytes())
                            .await;
                        ExecExit::Code(0)
                    }
                    _ => ExecExit::Failed("unknown command".into()),
                }
            });
            let exit = task
                .map(|r| r.unwrap_or_else(|e| ExecExit::Failed(e.to_string())))
                .boxed();
            Ok(ExecProcess {
                stdin: req.stdin.then(|| Box::pin(in_w) as _),
                stdout: req.stdout.then(|| Box::pin(out_r) as _),
                stderr: req.stderr.then(|| Box::pin(err_r) as _),
                exit,
            })
        }
        .boxed()
    }

    fn logs(
        &self,
        req: LogRequest,
    ) -> BoxFuture<'static, Result<BoxStream<'static, std::io::Result<Bytes>>, NodeError>> {
        async move {
            let lines: Vec<std::io::Result<Bytes>> = (1..=3)
                .map(|i| Ok(Bytes::from(format!("{} line {i}\n", req.pod))))
                .collect();
            let s: BoxStream<'static, std::io::Result<Bytes>> = Box::pin(futures::stream::iter(lines));
            Ok(s)
        }
        .boxed()
    }
}

/// Read all of an async reader (test helper).
pub async fn read_all(mut r: impl tokio::io::AsyncRead + Unpin) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).await?;
    Ok(v)
}
