//! `/portForward/{namespace}/{pod}[/{uid}]`: `kubectl port-forward` (upstream's
//! `pkg/kubelet/cri/streaming/portforward/httpstream.go` and the apiserver's SPDY-over-WebSocket
//! tunnel, `tunneling_connection.go`).
//!
//! The connection is upgraded either to plain SPDY/3.1 (`Upgrade: SPDY/3.1`,
//! `X-Stream-Protocol-Version: portforward.k8s.io`) or to a WebSocket with the subprotocol
//! `SPDY/3.1+portforward.k8s.io`, whose binary messages carry the same SPDY byte stream (what
//! kubectl ≥ 1.31 asks for first). Then ([`spdy`] frames) the client opens, per forwarded
//! connection, an error stream and a data stream, each with the headers `streamType`, `port`
//! and `requestID`. Every stream is answered (SYN_REPLY; with FIN when refused); once the data
//! stream arrives the kubelet connects to `127.0.0.1:port` inside the pod's network namespace
//! (the runtime's [`port_forward`](crate::runtime::Runtime::port_forward)) and copies both
//! ways: the client's FIN on the data stream shuts the socket's write side; the socket's end
//! closes (FIN) the data and error streams. A failure is written as text on the error stream,
//! which is then closed. PINGs are echoed; a GOAWAY or the connection's end stops every copy.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::exec::is_websocket;
use super::spdy::{self, Compressor, Decompressor, Frame, HeaderMap};
use super::{full, text, App, Body};
use crate::runtime::{Runtime, SandboxState};

/// The port-forward protocol over SPDY (`X-Stream-Protocol-Version`).
pub const PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket subprotocol of SPDY tunnelled in WebSocket binary messages.
pub const WEBSOCKET_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
const SPDY_UPGRADE: &str = "SPDY/3.1";
/// Bytes read from the pod's socket per DATA frame.
const CHUNK: usize = 32 * 1024;

/// How the SPDY bytes travel.
enum Transport {
    Spdy,
    WebSocket,
}

fn header_values<'a>(req: &'a Request<Incoming>, name: &str) -> Vec<&'a str> {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

pub async fn serve(app: &App, namespace: &str, pod: &str, mut req: Request<Incoming>) -> Response<Body> {
    let mut sandboxes: Vec<_> = match app.runtime.list_pod_sandboxes().await {
        Ok(s) => s,
        Err(e) => return text(500, e.to_string()),
    };
    sandboxes.retain(|s| s.metadata.namespace == namespace && s.metadata.name == pod && s.state == SandboxState::Ready);
    sandboxes.sort_by_key(|s| s.created_at);
    let Some(sandbox) = sandboxes.pop() else { return text(404, "pod does not exist") };

    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let transport = if is_websocket(req.headers()) {
        if !header_values(&req, "sec-websocket-protocol").contains(&WEBSOCKET_PROTOCOL) {
            return text(
                400,
                format!("unable to upgrade: this kubelet tunnels port-forward only as {WEBSOCKET_PROTOCOL}"),
            );
        }
        let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
            return text(400, "missing Sec-WebSocket-Key");
        };
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
        }
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(WEBSOCKET_PROTOCOL));
        Transport::WebSocket
    } else if header_values(&req, "upgrade").iter().any(|u| u.eq_ignore_ascii_case(SPDY_UPGRADE)) {
        let offered = header_values(&req, "x-stream-protocol-version");
        if !offered.is_empty() && !offered.contains(&PROTOCOL) {
            return text(
                403,
                format!("unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server accepts [\"{PROTOCOL}\"]"),
            );
        }
        let h = resp.headers_mut();
        h.insert(header::UPGRADE, HeaderValue::from_static(SPDY_UPGRADE));
        if !offered.is_empty() {
            h.insert("x-stream-protocol-version", HeaderValue::from_static(PROTOCOL));
        }
        Transport::Spdy
    } else {
        return text(400, "unable to upgrade: missing upgrade headers in request");
    };
    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));

    let on_upgrade = hyper::upgrade::on(&mut req);
    let runtime = app.runtime.clone();
    let sandbox_id = sandbox.id.clone();
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                tracing::debug!(error = %e, "port-forward: upgrade failed");
                return;
            }
        };
        let (in_tx, in_rx) = mpsc::channel::<Vec<u8>>(16);
        let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>(64);
        match transport {
            Transport::Spdy => {
                let (r, w) = tokio::io::split(upgraded);
                tokio::spawn(read_raw(r, in_tx));
                tokio::spawn(write_raw(w, out_rx));
            }
            Transport::WebSocket => {
                let ws = WebSocketStream::from_raw_socket(upgraded, Role::Server, None).await;
                let (sink, stream) = ws.split();
                tokio::spawn(read_ws(stream, in_tx));
                tokio::spawn(write_ws(sink, out_rx));
            }
        }
        Session::new(runtime, sandbox_id).run(in_rx, out_tx).await;
    });
    resp
}

async fn read_raw(mut r: impl tokio::io::AsyncRead + Unpin, tx: mpsc::Sender<Vec<u8>>) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(buf[..n].to_vec()).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn write_raw(mut w: impl tokio::io::AsyncWrite + Unpin, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(f) = rx.recv().await {
        if w.write_all(&f).await.is_err() || w.flush().await.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}

async fn read_ws<S>(mut stream: S, tx: mpsc::Sender<Vec<u8>>)
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    while let Some(msg) = stream.next().await {
        match msg {
            Ok(Message::Binary(b)) => {
                if tx.send(b.to_vec()).await.is_err() {
                    return;
                }
            }
            Ok(Message::Close(_)) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn write_ws<S>(mut sink: S, mut rx: mpsc::Receiver<Vec<u8>>)
where
    S: futures::Sink<Message> + Unpin,
{
    while let Some(f) = rx.recv().await {
        if sink.send(Message::Binary(f.into())).await.is_err() {
            return;
        }
    }
    let _ = sink.send(Message::Close(None)).await;
    let _ = sink.close().await;
}

/// A stream the client opened.
struct StreamInfo {
    /// Where the data stream's bytes go (its forwarder); None once the client closed it.
    input: Option<mpsc::Sender<Bytes>>,
    /// Stops the forwarder of a data stream.
    stop: Option<CancellationToken>,
}

/// One SPDY connection.
struct Session {
    runtime: Arc<dyn Runtime>,
    sandbox_id: String,
    compressor: Compressor,
    decompressor: Decompressor,
    streams: HashMap<u32, StreamInfo>,
    /// Error stream per request id.
    error_streams: HashMap<String, u32>,
    stop: CancellationToken,
}

/// Why a stream is refused.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    StreamType(String),
    Port(String),
}

/// The stream's kind, port and request id from its headers (upstream's `requestID`: an old
/// client without the header pairs an error stream `n` with the data stream `n + 2`).
fn classify(id: u32, h: &HeaderMap) -> Result<(bool, u16, String), Refusal> {
    let kind = spdy::header(h, "streamtype").unwrap_or_default();
    let data = match kind {
        "data" => true,
        "error" => false,
        other => return Err(Refusal::StreamType(other.to_string())),
    };
    let port_text = spdy::header(h, "port").unwrap_or_default();
    let port = port_text.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| Refusal::Port(port_text.to_string()))?;
    let request = match spdy::header(h, "requestid") {
        Some(r) if !r.is_empty() => r.to_string(),
        _ if data => id.saturating_sub(2).to_string(),
        _ => id.to_string(),
    };
    Ok((data, port, request))
}

impl Session {
    fn new(runtime: Arc<dyn Runtime>, sandbox_id: String) -> Session {
        Session {
            runtime,
            sandbox_id,
            compressor: Compressor::default(),
            decompressor: Decompressor::default(),
            streams: HashMap::new(),
            error_streams: HashMap::new(),
            stop: CancellationToken::new(),
        }
    }

    async fn run(mut self, mut incoming: mpsc::Receiver<Vec<u8>>, out: mpsc::Sender<Vec<u8>>) {
        let mut buf: Vec<u8> = Vec::new();
        'read: while let Some(chunk) = incoming.recv().await {
            buf.extend_from_slice(&chunk);
            loop {
                match spdy::parse(&buf) {
                    Ok(None) => break,
                    Ok(Some((frame, used))) => {
                        buf.drain(..used);
                        if !self.handle(frame, &out).await {
                            break 'read;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(sandbox = %self.sandbox_id, error = %e, "port-forward: bad SPDY frame");
                        let _ = out.send(spdy::goaway(0, 1)).await;
                        break 'read;
                    }
                }
            }
        }
        self.stop.cancel();
        tracing::debug!(sandbox = %self.sandbox_id, "port-forward connection ended");
    }

    /// Handles one frame; false ends the connection.
    async fn handle(&mut self, frame: Frame, out: &mpsc::Sender<Vec<u8>>) -> bool {
        match frame {
            Frame::SynStream { stream, flags, block } => {
                let headers = match self.decompressor.decompress(&block) {
                    Ok(h) => h,
                    Err(e) => {
                        tracing::warn!(error = %e, "port-forward: unreadable headers");
                        let _ = out.send(spdy::goaway(0, 1)).await;
                        return false;
                    }
                };
                self.open(stream, flags, &headers, out).await
            }
            Frame::Data { stream, flags, data } => {
                let fin = flags & spdy::FLAG_FIN != 0;
                if let Some(info) = self.streams.get_mut(&stream) {
                    if let (Some(tx), false) = (&info.input, data.is_empty()) {
                        if tx.send(Bytes::from(data)).await.is_err() {
                            info.input = None;
                        }
                    }
                    if fin {
                        info.input = None;
                    }
                }
                true
            }
            Frame::RstStream { stream, .. } => {
                if let Some(info) = self.streams.remove(&stream) {
                    if let Some(stop) = info.stop {
                        stop.cancel();
                    }
                }
                true
            }
            Frame::Ping { id } => out.send(spdy::ping(id)).await.is_ok(),
            Frame::GoAway { .. } => false,
            Frame::SynReply { .. } | Frame::Headers { .. } | Frame::Ignored { .. } => true,
        }
    }

    async fn open(&mut self, stream: u32, flags: u8, headers: &HeaderMap, out: &mpsc::Sender<Vec<u8>>) -> bool {
        let reply =
            |c: &mut Compressor, fin: bool| c.compress(&HeaderMap::new()).map(|b| spdy::syn_reply(stream, fin, &b));
        let (is_data, port, request) = match classify(stream, headers) {
            Ok(c) => c,
            Err(refusal) => {
                tracing::warn!(stream, ?refusal, "port-forward: stream refused");
                return match reply(&mut self.compressor, true) {
                    Ok(f) => out.send(f).await.is_ok(),
                    Err(_) => false,
                };
            }
        };
        let mut info = StreamInfo { input: None, stop: None };
        let client_done = flags & spdy::FLAG_FIN != 0;
        if !is_data {
            self.error_streams.insert(request.clone(), stream);
        } else {
            let (tx, rx) = mpsc::channel::<Bytes>(16);
            if !client_done {
                info.input = Some(tx);
            }
            let stop = self.stop.child_token();
            info.stop = Some(stop.clone());
            let forward = Forward {
                runtime: self.runtime.clone(),
                sandbox_id: self.sandbox_id.clone(),
                port,
                data: stream,
                error: self.error_streams.remove(&request),
                out: out.clone(),
            };
            tokio::spawn(forward.run(rx, stop));
        }
        self.streams.insert(stream, info);
        match reply(&mut self.compressor, false) {
            Ok(f) => out.send(f).await.is_ok(),
            Err(_) => false,
        }
    }
}

/// One forwarded connection: a data stream (and its error stream) and the pod's socket.
struct Forward {
    runtime: Arc<dyn Runtime>,
    sandbox_id: String,
    port: u16,
    data: u32,
    error: Option<u32>,
    out: mpsc::Sender<Vec<u8>>,
}

impl Forward {
    async fn run(self, mut input: mpsc::Receiver<Bytes>, stop: CancellationToken) {
        let tcp = tokio::select! {
            _ = stop.cancelled() => return,
            r = self.runtime.port_forward(&self.sandbox_id, self.port) => r,
        };
        match tcp {
            Err(e) => {
                let message = format!("error forwarding port {} to pod {}, uid : {e}", self.port, self.sandbox_id);
                tracing::info!(sandbox = %self.sandbox_id, port = self.port, error = %e, "port-forward failed");
                if let Some(err) = self.error {
                    let _ = self.out.send(spdy::data(err, false, message.as_bytes())).await;
                }
            }
            Ok(tcp) => {
                let (mut r, mut w) = tcp.into_split();
                let up = tokio::spawn(async move {
                    while let Some(b) = input.recv().await {
                        if w.write_all(&b).await.is_err() {
                            return;
                        }
                    }
                    let _ = w.shutdown().await;
                });
                let down = async {
                    let mut buf = vec![0u8; CHUNK];
                    loop {
                        match r.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if self.out.send(spdy::data(self.data, false, &buf[..n])).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                };
                let cancelled = tokio::select! {
                    _ = down => false,
                    _ = stop.cancelled() => true,
                };
                up.abort();
                if cancelled {
                    return;
                }
            }
        }
        let _ = self.out.send(spdy::data(self.data, true, &[])).await;
        if let Some(err) = self.error {
            let _ = self.out.send(spdy::data(err, true, &[])).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.to_string(), vec![v.to_string()])).collect()
    }

    #[test]
    fn streams_are_classified_as_upstream() {
        let h = headers(&[("streamtype", "data"), ("port", "80"), ("requestid", "7")]);
        assert_eq!(classify(3, &h), Ok((true, 80, "7".to_string())));
        let h = headers(&[("streamtype", "error"), ("port", "8080")]);
        assert_eq!(classify(1, &h), Ok((false, 8080, "1".to_string())), "an old client: error stream n");
        let h = headers(&[("streamtype", "data"), ("port", "8080")]);
        assert_eq!(classify(3, &h), Ok((true, 8080, "1".to_string())), "… pairs with data stream n + 2");
        let h = headers(&[("streamtype", "bogus"), ("port", "80")]);
        assert_eq!(classify(1, &h), Err(Refusal::StreamType("bogus".into())));
        let h = headers(&[("streamtype", "data"), ("port", "99999")]);
        assert_eq!(classify(1, &h), Err(Refusal::Port("99999".into())));
        let h = headers(&[("streamtype", "data"), ("port", "0")]);
        assert!(classify(1, &h).is_err());
    }
}
