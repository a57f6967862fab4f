//! The boundary between the sandbox's API server and its node agent (the simulated kubelet).
//!
//! The API server answers everything it can from storage; `pods/exec` and `pods/log` need the node
//! that runs the pod, so it hands them to a [`NodeAgent`]. The API server owns HTTP, authentication,
//! authorization and the WebSocket upgrade; the agent owns processes.

use std::pin::Pin;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::io::{AsyncRead, AsyncWrite};

/// A command to run in a container of a running pod (`pods/exec`).
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub namespace: String,
    pub pod: String,
    /// `None` means the pod's first container, as the real API server does.
    pub container: Option<String>,
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// A read of a container's output (`pods/log`).
#[derive(Debug, Clone)]
pub struct LogRequest {
    pub namespace: String,
    pub pod: String,
    pub container: Option<String>,
    pub follow: bool,
    pub tail_lines: Option<i64>,
    pub previous: bool,
}

/// How an exec'd command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecExit {
    /// Exit status of the process (0 = success).
    Code(i32),
    /// Killed by a signal, or could not be started.
    Failed(String),
}

/// A started command: its pipes and its end.
pub struct ExecProcess {
    pub stdin: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    pub stdout: Option<Pin<Box<dyn AsyncRead + Send>>>,
    pub stderr: Option<Pin<Box<dyn AsyncRead + Send>>>,
    /// Resolves once the process has exited and its pipes are closed.
    pub exit: BoxFuture<'static, ExecExit>,
}

impl std::fmt::Debug for ExecProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecProcess").finish_non_exhaustive()
    }
}

/// Why the node could not serve a request; mapped by the API server to a Kubernetes `Status`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NodeError {
    /// The pod or container does not exist on any node (404).
    #[error("{0}")]
    NotFound(String),
    /// The pod exists but is not running (400, like `container not found` / `pod is not running`).
    #[error("{0}")]
    BadRequest(String),
    /// Anything else (500).
    #[error("{0}")]
    Internal(String),
}

/// What the API server needs from the nodes.
pub trait NodeAgent: Send + Sync + 'static {
    /// Start a command inside the container's mount namespace.
    fn exec(&self, req: ExecRequest) -> BoxFuture<'static, Result<ExecProcess, NodeError>>;
    /// Stream a container's log (stdout and stderr interleaved, as the kubelet does).
    fn logs(
        &self,
        req: LogRequest,
    ) -> BoxFuture<'static, Result<BoxStream<'static, std::io::Result<Bytes>>, NodeError>>;
}
