//! `pods/exec` over WebSocket: after authentication and authorization the request is upgraded and
//! the Kubernetes channel protocol (`v5.channel.k8s.io`, `v4.channel.k8s.io`, `channel.k8s.io`)
//! runs over it. Output is forwarded in bounded chunks through a bounded queue, so a slow client
//! slows the process down instead of growing memory.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::ApiServer;
use super::handler::{Body, Query, full, node_error};
use super::status::ApiError;
use super::store::ObjKey;
use crate::node::{ExecExit, ExecProcess, ExecRequest};

const PROTOCOLS: [&str; 3] = ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"];
const CHUNK: usize = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    V5,
    V4,
    V1,
}

impl ApiServer {
    pub(crate) async fn exec(
        self: &Arc<Self>,
        ns: &str,
        name: &str,
        q: &Query,
        headers: &http::HeaderMap,
        upgrade: Option<hyper::upgrade::OnUpgrade>,
    ) -> Result<Response<Body>, ApiError> {
        if self.store.get(&ObjKey::new("", "pods", ns, name)).is_none() {
            return Err(ApiError::not_found("", "pods", name));
        }
        let wants_ws = headers
            .get(http::header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let key = headers
            .get(http::header::SEC_WEBSOCKET_KEY)
            .and_then(|v| v.to_str().ok());
        let (true, Some(key)) = (wants_ws, key) else {
            return Err(ApiError::bad_request(
                "Upgrade request required: pods/exec is served over WebSocket only",
            ));
        };
        let offered: Vec<String> = headers
            .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(',').map(|p| p.trim().to_string()))
            .collect();
        let chosen = PROTOCOLS
            .iter()
            .find(|p| offered.iter().any(|o| o == *p))
            .copied();
        let proto = match chosen {
            Some("v5.channel.k8s.io") => Proto::V5,
            Some("v4.channel.k8s.io") => Proto::V4,
            _ => Proto::V1,
        };
        let command = q.all("command");
        if command.is_empty() {
            return Err(ApiError::bad_request("you must specify at least 1 command"));
        }
        let upgrade = upgrade.ok_or_else(|| {
            ApiError::bad_request(
                "this connection cannot be upgraded; use the TCP server or ApiServer::client()",
            )
        })?;
        let agent = self
            .node_agent()
            .ok_or_else(|| ApiError::internal("no node agent is attached to the sandbox"))?;
        let req = ExecRequest {
            namespace: ns.to_string(),
            pod: name.to_string(),
            container: q.get("container").map(String::from),
            command: command.clone(),
            stdin: q.flag("stdin"),
            stdout: q.flag("stdout"),
            stderr: q.flag("stderr"),
            tty: q.flag("tty"),
        };
        let process = agent.exec(req).await.map_err(node_error)?;
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
                run(ws, proto, process, command).await;
            }
        });
        let mut resp = Response::new(full(Bytes::new()));
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = resp.headers_mut();
        h.insert(http::header::UPGRADE, http::HeaderValue::from_static("websocket"));
        h.insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("Upgrade"),
        );
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        if let Ok(v) = http::HeaderValue::from_str(&accept) {
            h.insert(http::header::SEC_WEBSOCKET_ACCEPT, v);
        }
        if let Some(p) = chosen {
            h.insert(
                http::header::SEC_WEBSOCKET_PROTOCOL,
                http::HeaderValue::from_static(p),
            );
        }
        Ok(resp)
    }
}

async fn pump(channel: u8, reader: Option<Pin<Box<dyn AsyncRead + Send>>>, tx: mpsc::Sender<Message>) {
    let Some(mut reader) = reader else { return };
    let mut buf = vec![0u8; CHUNK + 1];
    loop {
        buf[0] = channel;
        match reader.read(&mut buf[1..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx
                    .send(Message::Binary(Bytes::copy_from_slice(&buf[..=n])))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

fn exit_status(proto: Proto, exit: &ExecExit, command: &[String]) -> Option<Vec<u8>> {
    let status = match exit {
        ExecExit::Code(0) => json!({"metadata": {}, "status": "Success"}),
        ExecExit::Code(code) => json!({
            "metadata": {}, "status": "Failure",
            "message": format!("command terminated with non-zero exit code: error executing command {command:?}, exit code {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        ExecExit::Failed(why) => {
            json!({"metadata": {}, "status": "Failure", "message": why, "reason": "InternalError"})
        }
    };
    let mut out = vec![3u8];
    match proto {
        Proto::V1 => {
            if matches!(exit, ExecExit::Code(0)) {
                return None;
            }
            out.extend_from_slice(status["message"].as_str().unwrap_or("").as_bytes());
        }
        _ => out.extend_from_slice(&serde_json::to_vec(&status).unwrap_or_default()),
    }
    Some(out)
}

async fn run<S>(ws: WebSocketStream<S>, proto: Proto, process: ExecProcess, command: Vec<String>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    let ExecProcess {
        stdin,
        stdout,
        stderr,
        exit,
    } = process;
    let stdin_task = tokio::spawn(async move {
        let mut stdin = stdin;
        while let Some(msg) = source.next().await {
            match msg {
                Ok(Message::Binary(b)) if !b.is_empty() => match b[0] {
                    0 => {
                        if let Some(w) = stdin.as_mut()
                            && (w.write_all(&b[1..]).await.is_err() || w.flush().await.is_err())
                        {
                            stdin = None;
                        }
                    }
                    255 if b.get(1) == Some(&0) => {
                        if let Some(mut w) = stdin.take() {
                            let _ = w.shutdown().await;
                        }
                    }
                    _ => {}
                },
                Ok(Message::Close(_)) | Err(_) => break,
                _ => {}
            }
        }
    });
    let (tx, mut rx) = mpsc::channel::<Message>(4);
    let outputs = async move {
        tokio::join!(pump(1, stdout, tx.clone()), pump(2, stderr, tx.clone()));
        let exit = exit.await;
        if let Some(status) = exit_status(proto, &exit, &command) {
            let _ = tx.send(Message::Binary(Bytes::from(status))).await;
        }
    };
    let writer = async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    };
    tokio::join!(outputs, writer);
    stdin_task.abort();
}
