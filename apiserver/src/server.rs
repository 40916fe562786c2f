//! The HTTPS listener: accepts TCP connections, completes the TLS handshake and serves
//! HTTP/1.1 (with upgrades, for exec and attach later) on each.
//!
//! Every connection is bounded in time, as upstream's `http.Server` is (ReadHeaderTimeout 32 s,
//! IdleTimeout 90 s): a client that starts a request must finish its line and headers within
//! `--request-header-timeout`, and a keep-alive connection with no request in flight is closed
//! after `--idle-connection-timeout`. The body is read once, bounded in size and time, in `http.rs`
//! (with `handlers/body.rs`'s `read_body`).
//! Requests that hyper itself rejects (malformed, URI or headers too long) get a `Status` body
//! like every other error (see `status_for_automatic_response`).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use api::ApiError;

use crate::state::State;
use crate::{http, Error, Opts};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Request line plus headers, as upstream's `MaxHeaderBytes` (1 MiB). URIs are further bounded
/// to 64 KiB by the `http` crate (414 beyond).
const MAX_HEAD_BYTES: usize = 1024 * 1024;
const MAX_HEADERS: usize = 500;

/// Raises the soft limit on open files to the hard limit, as Go's runtime does at start: a
/// server with the default soft limit of 1,024 is locked out by that many idle connections.
pub fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let cur = getrlimit(Resource::Nofile);
    if cur.current == cur.maximum {
        return;
    }
    match setrlimit(Resource::Nofile, Rlimit { current: cur.maximum, maximum: cur.maximum }) {
        Ok(()) => tracing::debug!(from = ?cur.current, to = ?cur.maximum, "raised the open-file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit to the hard limit"),
    }
}

/// The per-connection time limits.
#[derive(Debug, Clone, Copy)]
struct ConnLimits {
    header: Duration,
    idle: Duration,
}

pub async fn serve(state: State, opts: &Opts, shutdown: CancellationToken) -> Result<(), Error> {
    let addr = SocketAddr::new(opts.bind_address, opts.port);
    let listener = TcpListener::bind(addr).await.map_err(|source| Error::Listen { addr: addr.to_string(), source })?;
    let acceptor = TlsAcceptor::from(state.tls.clone());
    let limits = ConnLimits { header: opts.request_header_timeout, idle: opts.idle_connection_timeout };
    tracing::info!(%addr, "API server listening (HTTPS)");
    state.ready.set();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors (or another transient failure): back off briefly
                    // so that the timeouts can free connections.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = state.clone();
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
            serve_connection(tls, peer, state, limits, stop).await;
        });
    }
    tracing::info!("API server stopped accepting connections");
    Ok(())
}

async fn serve_connection<S>(io: S, peer: SocketAddr, state: State, limits: ConnLimits, stop: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = Guarded { inner: io, activity: activity.clone(), replacement: None };
    let svc = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let state = state.clone();
            let guard = activity.begin_request();
            async move {
                let resp = http::serve(state, req.map(Body::new)).await;
                // The connection is busy until the response body has been sent (or dropped).
                Ok::<_, std::convert::Infallible>(resp.map(|b| Body::new(Tracked { inner: b, _guard: guard })))
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // The header timeout is ours (below): hyper's would also run while the connection is
        // idle, which must be allowed to last longer.
        .header_read_timeout(None)
        .keep_alive(true)
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(MAX_HEAD_BYTES + 64 * 1024)
        .max_headers(MAX_HEADERS);
    let conn = builder.serve_connection(TokioIo::new(io), svc).with_upgrades();
    tokio::pin!(conn);
    loop {
        let deadline = activity.deadline(limits);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.cancelled() => return,
            _ = activity.changed.notified() => {}
            _ = sleep_until(deadline) => {
                if activity.expired(limits) {
                    tracing::debug!(%peer, "closing a connection that was idle or sent its headers too slowly");
                    return;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// What a connection is doing, for its timeouts. Times are milliseconds since `origin`.
struct Activity {
    origin: Instant,
    /// Requests whose response has not been fully sent.
    busy: AtomicUsize,
    /// When the first byte of a request head arrived on an otherwise idle connection (0: none).
    head_started: AtomicU64,
    /// When the connection last became idle.
    idle_since: AtomicU64,
    /// Signalled when the connection turns idle or a request head starts, so that the
    /// connection's loop takes the new deadline.
    changed: tokio::sync::Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            origin: Instant::now(),
            busy: AtomicUsize::new(0),
            head_started: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Milliseconds since the connection started, never 0 (0 means "not set").
    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX).max(1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.origin + Duration::from_millis(ms)
    }

    fn begin_request(self: &Arc<Self>) -> BusyGuard {
        self.busy.fetch_add(1, Ordering::SeqCst);
        self.head_started.store(0, Ordering::SeqCst);
        BusyGuard(self.clone())
    }

    fn bytes_read(&self) {
        if self.busy.load(Ordering::SeqCst) == 0 && self.head_started.load(Ordering::SeqCst) == 0 {
            self.head_started.store(self.now(), Ordering::SeqCst);
            self.changed.notify_one();
        }
    }

    /// When to look again: the end of the header or idle allowance; none while busy (the
    /// request's own bounds apply then, and `changed` fires when it ends).
    fn deadline(&self, limits: ConnLimits) -> Option<Instant> {
        if self.busy.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let head = self.head_started.load(Ordering::SeqCst);
        if head != 0 {
            return Some(self.at(head) + limits.header);
        }
        Some(self.at(self.idle_since.load(Ordering::SeqCst)) + limits.idle)
    }

    fn expired(&self, limits: ConnLimits) -> bool {
        if self.busy.load(Ordering::SeqCst) > 0 {
            return false;
        }
        let now = Instant::now();
        let head = self.head_started.load(Ordering::SeqCst);
        if head != 0 {
            return now >= self.at(head) + limits.header;
        }
        now >= self.at(self.idle_since.load(Ordering::SeqCst)) + limits.idle
    }
}

/// Held from a request's arrival until its response body is finished or dropped.
struct BusyGuard(Arc<Activity>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since.store(a.now(), Ordering::SeqCst);
        a.busy.fetch_sub(1, Ordering::SeqCst);
        a.changed.notify_one();
    }
}

/// A response body that keeps its connection marked busy until it ends.
struct Tracked {
    inner: Body,
    _guard: BusyGuard,
}

impl hyper::body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The connection's byte stream: notes when a request head starts arriving, and gives the
/// responses hyper writes on its own for unparsable requests (400, 414, 431, with an empty
/// body) a `Status` body, so that every error a client sees is a Kubernetes `Status`.
struct Guarded<S> {
    inner: S,
    activity: Arc<Activity>,
    /// A rewritten automatic response still to be written, and how much of it is out.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<S: AsyncWrite + Unpin> Guarded<S> {
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((buf, done)) = &mut self.replacement {
            if *done >= buf.len() {
                self.replacement = None;
                break;
            }
            let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        std::task::ready!(self.drain(cx))?;
        if let Some(rewritten) = status_for_automatic_response(buf) {
            // The head counts as written now (hyper must not offer it again); what is left of
            // the replacement goes out on the next write or flush.
            self.replacement = Some((rewritten, 0));
            if let Poll::Ready(Err(e)) = self.drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    /// Vectored writes pass through (hyper then queues response bodies instead of copying
    /// them into its head buffer); an automatic response is a head alone, in the first slice.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.drain(cx))?;
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            if let Some(rewritten) = status_for_automatic_response(first) {
                self.replacement = Some((rewritten, 0));
                if let Poll::Ready(Err(e)) = self.drain(cx) {
                    return Poll::Ready(Err(e));
                }
                return Poll::Ready(Ok(first.len()));
            }
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// hyper answers a request it cannot parse itself, with a head and no body (its only responses
/// with these codes and `content-length: 0`: every response of ours carries a `Status`). This
/// builds the same response with a `Status` body instead; the connection closes after it.
fn status_for_automatic_response(head: &[u8]) -> Option<Vec<u8>> {
    let code = match head.get(..13)? {
        b"HTTP/1.1 400 " => 400,
        b"HTTP/1.1 414 " => 414,
        b"HTTP/1.1 431 " => 431,
        _ => return None,
    };
    if !head.ends_with(b"\r\n\r\n") || !contains(head, b"\r\ncontent-length: 0\r\n") {
        return None;
    }
    let (line, reason, message) = match code {
        400 => ("400 Bad Request", "BadRequest", "the request line or headers could not be parsed".to_string()),
        414 => ("414 URI Too Long", "", "the request URI is longer than the server accepts (64 KiB)".to_string()),
        _ => (
            "431 Request Header Fields Too Large",
            "",
            format!("the request headers exceed {MAX_HEAD_BYTES} bytes or {MAX_HEADERS} fields"),
        ),
    };
    let body = serde_json::to_vec(&ApiError::new(code, reason, message).to_status()).ok()?;
    let mut out = format!(
        "HTTP/1.1 {line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automatic_responses_get_a_status_body() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = status_for_automatic_response(head).expect("rewritten");
        let text = String::from_utf8(out).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 431 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let status: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["code"], 431);
    }

    #[test]
    fn ordinary_responses_pass_through() {
        assert!(status_for_automatic_response(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 90\r\n\r\n";
        assert!(status_for_automatic_response(with_body).is_none());
        // A body chunk that happens to start like a status line is not a whole head.
        assert!(status_for_automatic_response(b"HTTP/1.1 400 Bad Request and more").is_none());
    }
}
