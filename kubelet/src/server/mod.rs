//! The kubelet's HTTPS API (upstream `pkg/kubelet/server`): what the API server's `pods/log`,
//! `pods/exec` and `pods/attach` reach.
//!
//! - `GET /healthz`: `ok`, without credentials;
//! - `GET /containerLogs/{namespace}/{pod}/{container}` with `follow`, `tailLines` (or `tail`),
//!   `sinceSeconds`, `sinceTime`, `timestamps`, `previous`, `limitBytes` ([`logs`]);
//! - `GET|POST /exec/{namespace}/{pod}[/{uid}]/{container}?command=…&input=1&output=1&error=1&tty=1`
//!   and `/attach/…`: a WebSocket in the channel protocol ([`channel`], [`exec`]);
//! - `GET|POST /portForward/{namespace}/{pod}[/{uid}]`: SPDY/3.1, plain or inside a WebSocket
//!   ([`portforward`], [`spdy`]).
//! - `GET /stats/summary`: the node's and its pods' usage ([`crate::stats`]), as upstream's.
//!
//! Everything but `/healthz` needs a client certificate signed by the cluster CA (401
//! otherwise, [`tls`]); any such client may use every endpoint (no SubjectAccessReview yet).
//! Containers are found through the runtime's labels ([`lookup`]); the runtime streams raw CRI
//! logs, which [`cri_log`] turns into what `kubectl logs` prints.
//!
//! Hollow-node fleets (`--count` > 1) serve no API; a single node serves it on its IP and
//! `--kubelet-port` (0 turns it off).

pub mod channel;
pub mod cri_log;
pub mod exec;
pub mod logs;
pub mod lookup;
pub mod portforward;
pub mod spdy;
pub mod tls;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::runtime::Runtime;
pub use tls::{ClientAuth, ServingCert, TlsError};

/// The body of every response of this server.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Request line and headers, as upstream's `MaxHeaderBytes`.
const MAX_HEAD_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl ServerError {
    /// The flag whose value caused this (for the kubelet's flag errors).
    pub fn flag(&self) -> &'static str {
        match self {
            ServerError::Listen { .. } => "kubelet-port",
            ServerError::Tls(TlsError::Kubeconfig { .. }) => "kubeconfig",
            ServerError::Tls(_) => "tls-cert-file",
        }
    }
}

/// What a request handler needs.
pub struct App {
    pub runtime: Arc<dyn Runtime>,
    pub node_name: String,
    /// Usage for `/stats/summary` (None: 404, as a kubelet without stats).
    pub stats: Option<Arc<crate::stats::Sampler>>,
}

/// A bound, not yet serving, kubelet API.
pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    auth: ClientAuth,
    app: Arc<App>,
}

impl Server {
    /// Binds `addr` with `serving` as the certificate; clients must present a certificate
    /// signed by one of `client_ca`.
    pub async fn bind(
        addr: SocketAddr,
        serving: &ServingCert,
        client_ca: &[CertificateDer<'static>],
        runtime: Arc<dyn Runtime>,
        node_name: &str,
    ) -> Result<Server, ServerError> {
        let auth = ClientAuth::new(client_ca)?;
        let config = tls::server_config(serving, &auth)?;
        let listener = TcpListener::bind(addr).await.map_err(|source| ServerError::Listen { addr, source })?;
        let app = Arc::new(App { runtime, node_name: node_name.to_string(), stats: None });
        Ok(Server { listener, acceptor: TlsAcceptor::from(config), auth, app })
    }

    /// The server of one node: on `ip:port`, with `--tls-cert-file`/`--tls-private-key-file`
    /// or a self-signed certificate, trusting the CA of the kubeconfig the kubelet uses.
    pub async fn for_node(
        ip: IpAddr,
        port: u16,
        files: Option<(&Path, &Path)>,
        kubeconfig: &Path,
        runtime: Arc<dyn Runtime>,
        node_name: &str,
    ) -> Result<Server, ServerError> {
        let serving = match files {
            Some((cert, key)) => ServingCert::from_files(cert, key)?,
            None => ServingCert::self_signed(node_name, &[ip])?,
        };
        let ca = tls::cluster_ca_from_kubeconfig(kubeconfig)?;
        Server::bind(SocketAddr::new(ip, port), &serving, &ca, runtime, node_name).await
    }

    /// Serves `/stats/summary` from `sampler`.
    pub fn with_stats(mut self, sampler: Arc<crate::stats::Sampler>) -> Server {
        let app =
            App { runtime: self.app.runtime.clone(), node_name: self.app.node_name.clone(), stats: Some(sampler) };
        self.app = Arc::new(app);
        self
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let addr = self.local_addr().ok();
        tracing::info!(addr = ?addr, node = %self.app.node_name, "kubelet API listening (HTTPS)");
        loop {
            let (tcp, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "kubelet API: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = self.acceptor.clone();
            let auth = self.auth.clone();
            let app = self.app.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "kubelet API: TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "kubelet API: TLS handshake timed out");
                        return;
                    }
                };
                let authenticated = auth.verify(tls.get_ref().1.peer_certificates());
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(route(&app, req, authenticated).await) }
                });
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .max_buf_size(MAX_HEAD_BYTES + 64 * 1024);
                let conn = builder.serve_connection(TokioIo::new(tls), svc).with_upgrades();
                tokio::select! {
                    r = conn => if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "kubelet API: connection ended with an error");
                    },
                    _ = stop.cancelled() => {}
                }
            });
        }
        tracing::info!(node = %self.app.node_name, "kubelet API stopped");
    }
}

/// Binds `addr` and serves until `shutdown` (see [`Server::bind`]).
pub async fn serve(
    addr: SocketAddr,
    serving: &ServingCert,
    runtime: Arc<dyn Runtime>,
    node_name: &str,
    client_ca_pem: &str,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let ca = tls::certs_from_pem(client_ca_pem, "the client CA")?;
    Server::bind(addr, serving, &ca, runtime, node_name).await?.run(shutdown).await;
    Ok(())
}

async fn route(app: &App, req: Request<Incoming>, authenticated: bool) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let resp = if path == "/healthz" {
        text(200, "ok")
    } else if !authenticated {
        text(401, "Unauthorized")
    } else {
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let read = method == Method::GET || method == Method::HEAD;
        let stream = method == Method::GET || method == Method::POST;
        match segs.as_slice() {
            ["containerLogs", ns, pod, container] if read => {
                logs::serve(app, ns, pod, container, req.uri().query()).await
            }
            ["exec", ns, pod, container] | ["exec", ns, pod, _, container] if stream => {
                exec::serve(app, exec::Kind::Exec, ns, pod, container, req).await
            }
            ["attach", ns, pod, container] | ["attach", ns, pod, _, container] if stream => {
                exec::serve(app, exec::Kind::Attach, ns, pod, container, req).await
            }
            ["portForward", ns, pod] | ["portForward", ns, pod, _] if stream => {
                portforward::serve(app, ns, pod, req).await
            }
            ["stats", "summary"] if read => stats_summary(app).await,
            ["containerLogs" | "exec" | "attach", ..] if segs.len() >= 4 => text(405, "405: Method Not Allowed"),
            _ => text(404, "404 page not found"),
        }
    };
    tracing::debug!(%method, %path, code = resp.status().as_u16(), "kubelet API request");
    resp
}

/// `GET /stats/summary`.
async fn stats_summary(app: &App) -> Response<Body> {
    let Some(stats) = app.stats.as_ref() else { return text(404, "404 page not found") };
    let summary = stats.summary().await;
    match serde_json::to_vec(&*summary) {
        Ok(body) => {
            let mut resp = Response::new(full(body));
            resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
            resp
        }
        Err(e) => text(500, format!("Internal Error: failed to encode the summary: {e}")),
    }
}

/// A plain-text response, as upstream's kubelet answers errors.
pub fn text(code: u16, body: impl Into<String>) -> Response<Body> {
    let mut resp = Response::new(full(body.into()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

/// A body of fixed bytes.
pub fn full(b: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(b.into()).map_err(|never| match never {}).boxed_unsync()
}

/// Starts the API of one node (`--kubelet-port` on its IP) and returns the serving task. A
/// real node that cannot serve it fails to start, as upstream's kubelet exits; a hollow node
/// logs why and runs without it (its default address, 10.0.0.1, is usually not on this host).
pub async fn start_for_node(
    opts: &crate::Opts,
    node_name: &str,
    ip: IpAddr,
    kubeconfig: &Path,
    runtime: Arc<dyn Runtime>,
    stats: Option<Arc<crate::stats::Sampler>>,
    shutdown: CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<()>>, crate::Error> {
    let files = opts.tls_cert_file.as_deref().zip(opts.tls_private_key_file.as_deref());
    match Server::for_node(ip, opts.kubelet_port, files, kubeconfig, runtime, node_name).await {
        Ok(server) => {
            let server = match stats {
                Some(s) => server.with_stats(s),
                None => server,
            };
            Ok(Some(tokio::spawn(server.run(shutdown))))
        }
        Err(e) if opts.runtime == crate::RuntimeKind::Fake => {
            tracing::warn!(error = %e, "the kubelet API of this hollow node is off");
            Ok(None)
        }
        Err(e) => Err(crate::Error::InvalidFlag { flag: e.flag(), message: e.to_string() }),
    }
}
