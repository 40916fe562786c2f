//! The HTTPS listener: accepts TCP connections, completes the TLS handshake and serves
//! HTTP/1.1 (with upgrades, for exec and attach later) on each.

use std::net::SocketAddr;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::state::State;
use crate::{http, Error, Opts};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(state: State, opts: &Opts, shutdown: CancellationToken) -> Result<(), Error> {
    let addr = SocketAddr::new(opts.bind_address, opts.port);
    let listener = TcpListener::bind(addr).await.map_err(|source| Error::Listen { addr: addr.to_string(), source })?;
    let acceptor = TlsAcceptor::from(state.tls.clone());
    let app = axum::Router::new().fallback(http::handle).with_state(state.clone());
    tracing::info!(%addr, "API server listening (HTTPS)");
    state.ready.set();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let svc = TowerToHyperService::new(app);
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(tls), svc)
                .with_upgrades();
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                },
                _ = stop.cancelled() => {}
            }
        });
    }
    tracing::info!("API server stopped accepting connections");
    Ok(())
}
