//! `/exec/…` and `/attach/…`: a command's (or the container's) stdin, stdout and stderr over a
//! WebSocket in the channel protocol ([`super::channel`]), as upstream's streaming server
//! (`kubelet/pkg/cri/streaming/remotecommand`) serves them.
//!
//! Before the upgrade, a request is checked as upstream checks it, and refused with its plain
//! text answer: no stream asked for (400), no such pod (404), no such or no running container
//! (500), not a WebSocket request (400: SPDY is not served). After it, the server sends an empty
//! message on the lowest stream the client reads (its cue that the session is up), runs the
//! command through the runtime, forwards stdin (until `[255, 0]` on v5), terminal sizes, stdout and
//! stderr, and ends with the status on channel 3 once the command exited and its output was
//! sent, then closes the WebSocket. A client that goes away ends the session.
//!
//! An attach goes through the runtime's [`attach`](crate::runtime::Runtime::attach): the
//! container's output from now on until it ends (the Linux runtime follows its CRI log; it does
//! not forward stdin yet).

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::channel::{self, FromClient, Outcome, Protocol, ERROR, STDERR, STDIN, STDOUT};
use super::{full, lookup, text, App, Body};
use crate::runtime::{ExecRequest, ExecSession, Runtime};

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Which endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Exec,
    Attach,
}

/// The streams a client asked for (upstream's `remotecommand.Options`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    pub command: Vec<String>,
}

impl StreamOptions {
    /// From the query: the kubelet's names (`input`, `output`, `error`, `tty` = `1`, as the API
    /// server sends them) or the API's (`stdin`, `stdout`, `stderr`, `true`).
    pub fn from_query(query: Option<&str>) -> Result<StreamOptions, String> {
        let pairs: Vec<(String, String)> = query
            .map(|q| form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
            .unwrap_or_default();
        let on = |names: &[&str]| {
            pairs.iter().any(|(k, v)| names.contains(&k.as_str()) && (v == "1" || v.eq_ignore_ascii_case("true")))
        };
        let tty = on(&["tty"]);
        let opts = StreamOptions {
            stdin: on(&["input", "stdin"]),
            stdout: on(&["output", "stdout"]),
            // A terminal has no separate stderr.
            stderr: on(&["error", "stderr"]) && !tty,
            tty,
            command: pairs.iter().filter(|(k, _)| k == "command").map(|(_, v)| v.clone()).collect(),
        };
        if !opts.stdin && !opts.stdout && !opts.stderr {
            return Err("you must specify at least 1 of stdin, stdout, stderr".into());
        }
        Ok(opts)
    }
}

fn header_text(h: &HeaderMap, name: header::HeaderName) -> Vec<&str> {
    h.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect()
}

/// Whether a request asks for a WebSocket (`Connection: upgrade`, `Upgrade: websocket`).
pub fn is_websocket(h: &HeaderMap) -> bool {
    let upgrade = header_text(h, header::UPGRADE).iter().any(|v| v.trim().eq_ignore_ascii_case("websocket"));
    let connection = header_text(h, header::CONNECTION)
        .iter()
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    upgrade && connection
}

pub async fn serve(
    app: &App,
    kind: Kind,
    namespace: &str,
    pod: &str,
    container: &str,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let opts = match StreamOptions::from_query(req.uri().query()) {
        Ok(o) => o,
        Err(e) => return text(400, e),
    };
    if kind == Kind::Exec && opts.command.is_empty() {
        return text(400, "you must specify at least one command for the container");
    }
    let c = match lookup::for_exec(app.runtime.as_ref(), namespace, pod, container).await {
        Ok(c) => c,
        Err(e) => return text(e.code(), e.to_string()),
    };
    let headers = req.headers();
    if !is_websocket(headers) {
        return text(
            400,
            "unable to upgrade: this kubelet serves exec and attach over WebSocket only (v5.channel.k8s.io, v4.channel.k8s.io)",
        );
    }
    let offered_header = header_text(headers, header::SEC_WEBSOCKET_PROTOCOL).join(",");
    let offered = Protocol::offered(&offered_header);
    let Some(protocol) = Protocol::negotiate(&offered) else {
        return text(
            400,
            format!(
                "requested protocol(s) are not supported: {offered:?}; supports [{} {} {}]",
                Protocol::V5_NAME,
                Protocol::V4_NAME,
                Protocol::V1_NAME
            ),
        );
    };
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return text(400, "missing Sec-WebSocket-Key");
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    let session = Session { runtime: app.runtime.clone(), container_id: c.id.clone(), kind, protocol, opts };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
                session.run(ws).await;
            }
            Err(e) => tracing::debug!(error = %e, "kubelet API: WebSocket upgrade failed"),
        }
    });
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if !offered.is_empty() {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(protocol.name()));
    }
    resp
}

/// One upgraded exec or attach.
struct Session {
    runtime: Arc<dyn Runtime>,
    container_id: String,
    kind: Kind,
    protocol: Protocol,
    opts: StreamOptions,
}

impl Session {
    async fn run(self, ws: Ws) {
        let (sink, incoming) = ws.split();
        let (tx, rx) = mpsc::channel::<Vec<u8>>(32);
        let writer = tokio::spawn(write_frames(sink, rx));
        // The session is up: an empty message on the lowest stream the client reads.
        let first = if self.opts.stdout {
            STDOUT
        } else if self.opts.stderr {
            STDERR
        } else {
            ERROR
        };
        let _ = tx.send(channel::frame(first, &[])).await;
        let request = ExecRequest { command: self.opts.command.clone(), tty: self.opts.tty, stdin: self.opts.stdin };
        let outcome = match self.kind {
            Kind::Attach => match self.runtime.attach(&self.container_id, &request).await {
                Err(e) => Some(Outcome::Failed(format!("error attaching to container: {e}"))),
                Ok(session) => self.pump(session, incoming, tx.clone()).await,
            },
            Kind::Exec => match self.runtime.exec(&self.container_id, &request).await {
                Err(e) => Some(Outcome::Failed(format!("error executing command in container: {e}"))),
                Ok(session) => self.pump(session, incoming, tx.clone()).await,
            },
        };
        match outcome {
            Some(outcome) => {
                if let Some(f) = channel::status_frame(self.protocol, &outcome) {
                    let _ = tx.send(f).await;
                }
                tracing::debug!(container = %self.container_id, ?outcome, "exec session ended");
            }
            None => tracing::debug!(container = %self.container_id, "exec client went away"),
        }
        drop(tx);
        let _ = writer.await;
    }

    /// Runs the streams until the command exited and its output was sent (Some), or the client
    /// went away (None).
    async fn pump(
        &self,
        session: ExecSession,
        incoming: SplitStream<Ws>,
        tx: mpsc::Sender<Vec<u8>>,
    ) -> Option<Outcome> {
        let ExecSession { stdin, stdout, stderr, resize, exit } = session;
        let stdin_tx = stdin.map(|mut w| {
            let (stdin_tx, mut stdin_rx) = mpsc::channel::<Bytes>(16);
            tokio::spawn(async move {
                while let Some(b) = stdin_rx.recv().await {
                    if w.write_all(&b).await.is_err() || w.flush().await.is_err() {
                        return;
                    }
                }
                let _ = w.shutdown().await;
            });
            stdin_tx
        });
        let gone = CancellationToken::new();
        let reader = tokio::spawn(read_client(incoming, self.protocol, stdin_tx, resize, gone.clone()));
        let out = copy_out(stdout, STDOUT, self.opts.stdout, tx.clone());
        let err = async {
            if let Some(e) = stderr {
                copy_out(e, STDERR, self.opts.stderr, tx.clone()).await;
            }
        };
        let done = async {
            let (code, (), ()) = tokio::join!(exit, out, err);
            code
        };
        let result = tokio::select! {
            code = done => Some(code),
            _ = gone.cancelled() => None,
        };
        reader.abort();
        Some(match result? {
            Ok(0) => Outcome::Success,
            Ok(code) => Outcome::Exited { code, command: self.opts.command.clone() },
            Err(e) => Outcome::Failed(format!("error executing command in container: {e}")),
        })
    }
}

/// Copies a command's output to the client on `channel` (or drains it when the client did not
/// ask for it, so that the command never blocks on a full pipe).
async fn copy_out(mut r: Pin<Box<dyn AsyncRead + Send>>, channel: u8, mut forward: bool, tx: mpsc::Sender<Vec<u8>>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if forward && tx.send(channel::frame(channel, &buf[..n])).await.is_err() {
                    forward = false;
                }
            }
        }
    }
}

/// Reads the client's messages: stdin, terminal sizes, v5 closes. Cancels `gone` when the client
/// closes the WebSocket or the connection breaks.
async fn read_client(
    mut incoming: SplitStream<Ws>,
    protocol: Protocol,
    mut stdin: Option<mpsc::Sender<Bytes>>,
    resize: Option<mpsc::Sender<(u16, u16)>>,
    gone: CancellationToken,
) {
    while let Some(msg) = incoming.next().await {
        let data = match msg {
            Ok(Message::Binary(b)) => b,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        match channel::decode(protocol, &data) {
            FromClient::Stdin(d) if !d.is_empty() => {
                if let Some(tx) = &stdin {
                    if tx.send(Bytes::copy_from_slice(d)).await.is_err() {
                        stdin = None;
                    }
                }
            }
            FromClient::Resize(size) => {
                if let Some(r) = &resize {
                    let _ = r.try_send((size.width, size.height));
                }
            }
            FromClient::Close(STDIN) => stdin = None,
            _ => {}
        }
    }
    gone.cancel();
}

/// Sends the frames queued on `rx`, then a normal close.
async fn write_frames(mut sink: SplitSink<Ws, Message>, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(f) = rx.recv().await {
        if sink.send(Message::Binary(f.into())).await.is_err() {
            return;
        }
    }
    let close = CloseFrame { code: CloseCode::Normal, reason: "".into() };
    let _ = sink.send(Message::Close(Some(close))).await;
    let _ = sink.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_options_take_both_spellings() {
        let o = StreamOptions::from_query(Some("command=ls&command=-l&input=1&output=1&error=1")).expect("ok");
        assert_eq!(
            o,
            StreamOptions {
                stdin: true,
                stdout: true,
                stderr: true,
                tty: false,
                command: vec!["ls".into(), "-l".into()]
            }
        );
        let o = StreamOptions::from_query(Some("command=sh&stdin=true&stdout=true&stderr=true&tty=true")).expect("ok");
        assert!(o.tty && o.stdin && o.stdout && !o.stderr, "a terminal has no stderr: {o:?}");
        assert_eq!(
            StreamOptions::from_query(Some("command=ls&output=0")),
            Err("you must specify at least 1 of stdin, stdout, stderr".to_string())
        );
        assert!(StreamOptions::from_query(None).is_err());
    }

    #[test]
    fn websocket_requests_are_recognised() {
        let mut h = HeaderMap::new();
        assert!(!is_websocket(&h));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(is_websocket(&h));
        h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        assert!(!is_websocket(&h));
    }
}
