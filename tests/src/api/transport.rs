//! Transports: the tower [`ApiService`] (in-process), an in-process kube client over in-memory
//! HTTP connections (which also carry WebSocket upgrades), plain HTTP and HTTPS listeners on
//! 127.0.0.1, and kubeconfig rendering.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine;
use bytes::Bytes;
use futures::future::BoxFuture;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};
use tokio::net::TcpListener;

use super::handler::Body;
use super::{ApiServer, Error};

/// The server as a tower `Service`; usable with `kube::Client::new(service, "default")`. Requests
/// without an `Authorization` header get the token it was made with.
#[derive(Clone)]
pub struct ApiService {
    server: Arc<ApiServer>,
    token: Option<String>,
}

impl std::fmt::Debug for ApiService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiService").finish_non_exhaustive()
    }
}

impl<B> tower::Service<http::Request<B>> for ApiService
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if let Some(t) = &self.token
            && !req.headers().contains_key(http::header::AUTHORIZATION)
            && let Ok(v) = http::HeaderValue::from_str(&format!("Bearer {t}"))
        {
            req.headers_mut().insert(http::header::AUTHORIZATION, v);
        }
        let server = self.server.clone();
        Box::pin(async move { Ok(server.handle(req).await) })
    }
}

async fn serve_connection<I>(server: Arc<ApiServer>, io: I)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let token = server.shutdown.clone();
    let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let server = server.clone();
        async move { Ok::<_, Infallible>(server.handle(req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    tokio::select! {
        _ = conn => {}
        _ = token.cancelled() => {}
    }
}

/// One in-memory connection to the server.
struct DuplexIo(TokioIo<DuplexStream>);

impl hyper::rt::Read for DuplexIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for DuplexIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl Connection for DuplexIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

#[derive(Clone)]
struct DuplexConnector(Arc<ApiServer>);

impl tower::Service<http::Uri> for DuplexConnector {
    type Response = DuplexIo;
    type Error = std::io::Error;
    type Future = futures::future::Ready<Result<DuplexIo, std::io::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        let (client, server) = tokio::io::duplex(256 * 1024);
        tokio::spawn(serve_connection(self.0.clone(), server));
        futures::future::ready(Ok(DuplexIo(TokioIo::new(client))))
    }
}

impl ApiServer {
    /// The server as a tower service, authenticating as admin.
    pub fn service(self: &Arc<Self>) -> ApiService {
        ApiService {
            server: self.clone(),
            token: Some(self.admin_token.clone()),
        }
    }

    /// The server as a tower service, authenticating with `token` (e.g. a ServiceAccount's).
    pub fn service_with_token(self: &Arc<Self>, token: &str) -> ApiService {
        ApiService {
            server: self.clone(),
            token: Some(token.to_string()),
        }
    }

    /// An admin kube client talking to the server in-process (HTTP/1.1 over in-memory pipes,
    /// so watches stream and `exec` upgrades work as over TCP).
    pub fn client(self: &Arc<Self>) -> kube::Client {
        self.client_with_token(&self.admin_token.clone())
    }

    /// An in-process kube client authenticating with `token`.
    pub fn client_with_token(self: &Arc<Self>, token: &str) -> kube::Client {
        let hyper_client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .build::<_, kube::client::Body>(DuplexConnector(self.clone()));
        let auth = http::HeaderValue::from_str(&format!("Bearer {token}")).ok();
        let svc = tower::ServiceBuilder::new()
            .map_request(move |mut req: http::Request<kube::client::Body>| {
                let pq = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_else(|| "/".into());
                if let Ok(uri) = format!("http://sandbox.invalid{pq}").parse() {
                    *req.uri_mut() = uri;
                }
                if let Some(a) = &auth {
                    req.headers_mut().insert(http::header::AUTHORIZATION, a.clone());
                }
                req
            })
            .service(hyper_client);
        kube::Client::new(svc, "default")
    }

    async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        Ok((listener, bound))
    }

    /// Serve plain HTTP on `addr` (port 0 picks one); returns the bound address.
    pub async fn serve(self: &Arc<Self>, addr: SocketAddr) -> Result<SocketAddr, Error> {
        let (listener, bound) = Self::bind(addr).await?;
        let server = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, _)) => {
                            let _ = tcp.set_nodelay(true);
                            tokio::spawn(serve_connection(server.clone(), tcp));
                        }
                        Err(e) => tracing::warn!(error = %e, "accept failed"),
                    },
                    _ = server.shutdown.cancelled() => return,
                }
            }
        });
        Ok(bound)
    }

    /// Serve HTTPS (the sandbox CA's certificate for 127.0.0.1/localhost) on `addr`.
    pub async fn serve_tls(self: &Arc<Self>, addr: SocketAddr) -> Result<SocketAddr, Error> {
        let (listener, bound) = Self::bind(addr).await?;
        *self.https_addr.lock().unwrap_or_else(|e| e.into_inner()) = Some(bound);
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls.server_config.clone());
        let server = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, _)) => {
                            let _ = tcp.set_nodelay(true);
                            let acceptor = acceptor.clone();
                            let server = server.clone();
                            tokio::spawn(async move {
                                if let Ok(tls) = acceptor.accept(tcp).await {
                                    serve_connection(server, tls).await;
                                }
                            });
                        }
                        Err(e) => tracing::warn!(error = %e, "accept failed"),
                    },
                    _ = server.shutdown.cancelled() => return,
                }
            }
        });
        Ok(bound)
    }

    /// A kubeconfig for the admin user (token) and the sandbox CA; `server_url` is
    /// `https://127.0.0.1:PORT` (or `http://...`, then without CA data).
    pub fn kubeconfig_yaml(&self, server_url: &str) -> String {
        self.kubeconfig_yaml_for_token(server_url, "admin", &self.admin_token)
    }

    /// A kubeconfig authenticating with `token` as `user`.
    pub fn kubeconfig_yaml_for_token(&self, server_url: &str, user: &str, token: &str) -> String {
        let mut cluster = json!({"server": server_url});
        if server_url.starts_with("https") {
            cluster["certificate-authority-data"] =
                json!(base64::engine::general_purpose::STANDARD.encode(self.tls.ca_pem.as_bytes()));
        }
        let doc = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sandbox", "cluster": cluster}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": user, "namespace": "default"}}],
            "current-context": "sandbox",
            "preferences": {},
        });
        serde_yaml::to_string(&doc).unwrap_or_default()
    }
}
