//! One probe or hook check: exec, httpGet, tcpSocket, gRPC, sleep (hooks only).
//!
//! Network checks go from the node to the pod IP (the node reaches its pods over the bridge),
//! as upstream's prober does; `host` in httpGet overrides the address. HTTP success is a status
//! in 200..400 after following up to 10 redirects to the same host (a redirect elsewhere counts
//! as success, upstream's "probe terminated redirects" warning); HTTPS is not verified.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::{
    Container, ExecAction, GRPCAction, HTTPGetAction, LifecycleHandler, Probe, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::runtime::Runtime;

/// What a check runs against.
#[derive(Clone)]
pub struct Target {
    pub runtime: Arc<dyn Runtime>,
    pub container_id: String,
    pub pod_ip: Option<IpAddr>,
}

/// The outcome of one check; a failure carries its output (for events and status messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure(String),
}

const USER_AGENT: &str = "kube-probe/1.33";
/// How much of a failed HTTP response's body goes into the message (upstream reads 10 KiB).
const MAX_BODY: usize = 10 * 1024;
const MAX_REDIRECTS: usize = 10;

/// Runs one probe with `timeout`.
pub async fn probe(p: &Probe, c: &Container, t: &Target, timeout: Duration) -> Outcome {
    if let Some(a) = &p.exec {
        exec(a, t, timeout).await
    } else if let Some(a) = &p.http_get {
        http_get(a, c, t, timeout).await
    } else if let Some(a) = &p.tcp_socket {
        tcp(a, c, t, timeout).await
    } else if let Some(a) = &p.grpc {
        grpc(a, t, timeout).await
    } else {
        Outcome::Failure("probe has no handler".into())
    }
}

/// Runs a lifecycle hook (`postStart`, `preStop`) with `timeout`.
pub async fn hook(h: &LifecycleHandler, c: &Container, t: &Target, timeout: Duration) -> Outcome {
    let run = async {
        if let Some(a) = &h.exec {
            exec(a, t, timeout).await
        } else if let Some(a) = &h.http_get {
            http_get(a, c, t, timeout).await
        } else if let Some(s) = &h.sleep {
            tokio::time::sleep(Duration::from_secs(u64::try_from(s.seconds).unwrap_or(0))).await;
            Outcome::Success
        } else if let Some(a) = &h.tcp_socket {
            // Deprecated for hooks and never run by upstream either.
            tracing::debug!(port = ?a.port, "tcpSocket lifecycle hooks are not run (as upstream)");
            Outcome::Success
        } else {
            Outcome::Failure("lifecycle hook has no handler".into())
        }
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(o) => o,
        Err(_) => Outcome::Failure(format!("hook did not finish within {}s", timeout.as_secs())),
    }
}

async fn exec(a: &ExecAction, t: &Target, timeout: Duration) -> Outcome {
    let command = a.command.clone().unwrap_or_default();
    if command.is_empty() {
        return Outcome::Failure("exec: no command".into());
    }
    match t.runtime.exec_sync(&t.container_id, &command, timeout).await {
        Ok(out) if out.exit_code == 0 => Outcome::Success,
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            let text = text.trim();
            if text.is_empty() {
                Outcome::Failure(format!("command {command:?} exited with {}", out.exit_code))
            } else {
                Outcome::Failure(text.to_string())
            }
        }
        Err(e) => Outcome::Failure(e.to_string()),
    }
}

/// A port by number or by the name of one of the container's ports.
pub fn resolve_port(port: &IntOrString, c: &Container) -> Result<u16, String> {
    let n = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => match s.parse::<i32>() {
            Ok(n) => n,
            Err(_) => c
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(s))
                .map(|p| p.container_port)
                .ok_or_else(|| format!("couldn't find port: {s:?} in container {:?}", c.name))?,
        },
    };
    u16::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| format!("invalid port number: {n}"))
}

fn host_of(explicit: Option<&str>, t: &Target) -> Result<String, String> {
    match explicit.filter(|h| !h.is_empty()) {
        Some(h) => Ok(h.to_string()),
        None => t.pod_ip.map(|ip| ip.to_string()).ok_or_else(|| "the pod has no IP".to_string()),
    }
}

async fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let addr = match host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port),
        Err(_) => {
            let mut addrs = tokio::net::lookup_host((host, port)).await.map_err(|e| format!("dial {host}: {e}"))?;
            addrs.next().ok_or_else(|| format!("dial {host}: no address"))?
        }
    };
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!("dial tcp {addr}: connect: {e}")),
        Err(_) => Err(format!("dial tcp {addr}: i/o timeout")),
    }
}

async fn tcp(a: &TCPSocketAction, c: &Container, t: &Target, timeout: Duration) -> Outcome {
    let port = match resolve_port(&a.port, c) {
        Ok(p) => p,
        Err(e) => return Outcome::Failure(e),
    };
    let host = match host_of(a.host.as_deref(), t) {
        Ok(h) => h,
        Err(e) => return Outcome::Failure(e),
    };
    match connect(&host, port, timeout).await {
        Ok(_) => Outcome::Success,
        Err(e) => Outcome::Failure(e),
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn tls(stream: TcpStream, host: &str) -> Result<Box<dyn Io>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(crate::no_verify::NoVerify::new(provider))
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let s =
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, stream).await.map_err(|e| e.to_string())?;
    Ok(Box::new(s))
}

async fn http_get(a: &HTTPGetAction, c: &Container, t: &Target, timeout: Duration) -> Outcome {
    match tokio::time::timeout(timeout, http_get_inner(a, c, t, timeout)).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => Outcome::Failure(e),
        Err(_) => Outcome::Failure(format!(
            "Get \"{}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
            a.path.as_deref().unwrap_or("/")
        )),
    }
}

async fn http_get_inner(a: &HTTPGetAction, c: &Container, t: &Target, timeout: Duration) -> Result<Outcome, String> {
    let port = resolve_port(&a.port, c)?;
    let host = host_of(a.host.as_deref(), t)?;
    let https = a.scheme.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("HTTPS"));
    let mut path = a.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into());
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let authority = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
        _ => format!("{host}:{port}"),
    };
    let url = |path: &str| format!("{}://{authority}{path}", if https { "https" } else { "http" });
    for _ in 0..=MAX_REDIRECTS {
        let stream = connect(&host, port, timeout).await.map_err(|e| format!("Get \"{}\": {e}", url(&path)))?;
        let io: Box<dyn Io> = if https { tls(stream, &host).await? } else { Box::new(stream) };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("Get \"{}\": {e}", url(&path)))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = http::Request::get(&path).header(http::header::USER_AGENT, USER_AGENT).header("Accept", "*/*");
        let mut has_host = false;
        for h in a.http_headers.iter().flatten() {
            has_host |= h.name.eq_ignore_ascii_case("host");
            req = req.header(h.name.as_str(), h.value.as_str());
        }
        if !has_host {
            req = req.header(http::header::HOST, authority.as_str());
        }
        let req = req.body(Full::new(Bytes::new())).map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| format!("Get \"{}\": {e}", url(&path)))?;
        let code = resp.status().as_u16();
        if (300..400).contains(&code) {
            let location = resp.headers().get(http::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
            match location.as_deref().map(|l| redirect_path(l, &authority)) {
                Some(Some(next)) => {
                    path = next;
                    continue;
                }
                // Elsewhere (or nowhere): upstream stops following and counts it a success.
                _ => return Ok(Outcome::Success),
            }
        }
        if (200..400).contains(&code) {
            return Ok(Outcome::Success);
        }
        let mut body = resp.into_body();
        let mut text = Vec::new();
        while text.len() < MAX_BODY {
            match body.frame().await {
                Some(Ok(f)) => {
                    if let Some(d) = f.data_ref() {
                        text.extend_from_slice(d);
                    }
                }
                _ => break,
            }
        }
        text.truncate(MAX_BODY);
        let body = String::from_utf8_lossy(&text);
        let body = body.trim();
        return Ok(Outcome::Failure(if body.is_empty() {
            format!("HTTP probe failed with statuscode: {code}")
        } else {
            format!("HTTP probe failed with statuscode: {code}: {body}")
        }));
    }
    Err(format!("Get \"{}\": stopped after {MAX_REDIRECTS} redirects", url(&path)))
}

/// The path to follow for a redirect to `location`, when it stays on `authority`.
fn redirect_path(location: &str, authority: &str) -> Option<String> {
    if location.starts_with('/') && !location.starts_with("//") {
        return Some(location.to_string());
    }
    let rest = location.strip_prefix("http://").or_else(|| location.strip_prefix("https://"))?;
    let (auth, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    (auth == authority).then(|| path.to_string())
}

/// `grpc.health.v1.Health/Check` over HTTP/2 without TLS, as upstream's gRPC probe.
async fn grpc(a: &GRPCAction, t: &Target, timeout: Duration) -> Outcome {
    let Some(ip) = t.pod_ip else { return Outcome::Failure("the pod has no IP".into()) };
    let Some(port) = u16::try_from(a.port).ok().filter(|p| *p > 0) else {
        return Outcome::Failure(format!("invalid port number: {}", a.port));
    };
    let addr = SocketAddr::new(ip, port);
    match tokio::time::timeout(timeout, grpc_inner(addr, a.service.as_deref().unwrap_or_default(), timeout)).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => Outcome::Failure(e),
        Err(_) => Outcome::Failure(format!("timeout: health rpc did not complete within {}s", timeout.as_secs())),
    }
}

/// The HealthCheckRequest message: `string service = 1`, framed as gRPC (no compression).
pub fn grpc_request(service: &str) -> Vec<u8> {
    let mut msg = Vec::new();
    if !service.is_empty() {
        msg.push(0x0a);
        let mut len = service.len();
        while len >= 0x80 {
            msg.push((len as u8 & 0x7f) | 0x80);
            len >>= 7;
        }
        msg.push(len as u8);
        msg.extend_from_slice(service.as_bytes());
    }
    let mut out = Vec::with_capacity(msg.len() + 5);
    out.push(0);
    out.extend_from_slice(&u32::try_from(msg.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&msg);
    out
}

/// The `status` field of a framed HealthCheckResponse (0 when absent: UNKNOWN).
pub fn grpc_status(framed: &[u8]) -> Result<u64, String> {
    let (head, msg) = framed.split_at_checked(5).ok_or("short gRPC message")?;
    if head.first() != Some(&0) {
        return Err("compressed gRPC message".into());
    }
    let mut i = 0;
    let mut status = 0;
    let varint = |i: &mut usize| -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *msg.get(*i).ok_or("truncated varint")?;
            *i += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    };
    while i < msg.len() {
        let key = varint(&mut i)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = varint(&mut i)?,
            (_, 0) => {
                varint(&mut i)?;
            }
            (_, 2) => {
                let len = usize::try_from(varint(&mut i)?).map_err(|e| e.to_string())?;
                i = i.checked_add(len).filter(|e| *e <= msg.len()).ok_or("truncated field")?;
            }
            (_, 1) => i += 8,
            (_, 5) => i += 4,
            (_, w) => return Err(format!("unknown wire type {w}")),
        }
    }
    Ok(status)
}

fn serving_status_name(s: u64) -> &'static str {
    match s {
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNKNOWN",
    }
}

async fn grpc_inner(addr: SocketAddr, service: &str, timeout: Duration) -> Result<Outcome, String> {
    let stream = connect(&addr.ip().to_string(), addr.port(), timeout)
        .await
        .map_err(|_| format!("timeout: failed to connect service \"{addr}\" within {}s", timeout.as_secs()))?;
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .map_err(|e| format!("error: health rpc failed: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .header(http::header::USER_AGENT, USER_AGENT)
        .body(Full::new(Bytes::from(grpc_request(service))))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| format!("error: health rpc failed: {e}"))?;
    let code_in = |h: &http::HeaderMap| h.get("grpc-status").and_then(|v| v.to_str().ok()?.parse::<u32>().ok());
    let msg_in = |h: &http::HeaderMap| {
        h.get("grpc-message").and_then(|v| v.to_str().ok()).map(str::to_string).unwrap_or_default()
    };
    if let Some(code) = code_in(resp.headers()).filter(|c| *c != 0) {
        return Ok(Outcome::Failure(format!("rpc error: code = {code} desc = {}", msg_in(resp.headers()))));
    }
    let collected = resp.into_body().collect().await.map_err(|e| format!("error: health rpc failed: {e}"))?;
    if let Some(trailers) = collected.trailers() {
        if let Some(code) = code_in(trailers).filter(|c| *c != 0) {
            return Ok(Outcome::Failure(format!("rpc error: code = {code} desc = {}", msg_in(trailers))));
        }
    }
    let status = grpc_status(&collected.to_bytes())?;
    if status == 1 {
        Ok(Outcome::Success)
    } else {
        Ok(Outcome::Failure(format!("service unhealthy (responded with \"{}\")", serving_status_name(status))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerPort;

    #[test]
    fn named_ports_resolve_against_the_containers_ports() {
        let c = Container {
            name: "web".into(),
            ports: Some(vec![ContainerPort { name: Some("http".into()), container_port: 8080, ..Default::default() }]),
            ..Default::default()
        };
        assert_eq!(resolve_port(&IntOrString::String("http".into()), &c), Ok(8080));
        assert_eq!(resolve_port(&IntOrString::String("81".into()), &c), Ok(81));
        assert_eq!(resolve_port(&IntOrString::Int(80), &c), Ok(80));
        assert!(resolve_port(&IntOrString::String("nope".into()), &c).is_err());
        assert!(resolve_port(&IntOrString::Int(70000), &c).is_err());
        assert!(resolve_port(&IntOrString::Int(0), &c).is_err());
    }

    #[test]
    fn redirects_are_followed_only_on_the_same_host() {
        assert_eq!(redirect_path("/ok", "10.0.0.1:80"), Some("/ok".into()));
        assert_eq!(redirect_path("http://10.0.0.1:80/x", "10.0.0.1:80"), Some("/x".into()));
        assert_eq!(redirect_path("http://10.0.0.1:80", "10.0.0.1:80"), Some("/".into()));
        assert_eq!(redirect_path("http://example.com/x", "10.0.0.1:80"), None);
        assert_eq!(redirect_path("//example.com/x", "10.0.0.1:80"), None);
    }

    #[test]
    fn grpc_messages_round_trip() {
        assert_eq!(grpc_request(""), vec![0, 0, 0, 0, 0]);
        assert_eq!(grpc_request("ab"), vec![0, 0, 0, 0, 4, 0x0a, 2, b'a', b'b']);
        // status = SERVING (1), with an unknown length-delimited field before it.
        assert_eq!(grpc_status(&[0, 0, 0, 0, 5, 0x12, 1, b'x', 0x08, 1]), Ok(1));
        assert_eq!(grpc_status(&[0, 0, 0, 0, 0]), Ok(0));
        assert!(grpc_status(&[0, 0, 0, 0, 2, 0x08]).is_err());
        assert!(grpc_status(&[0, 0]).is_err());
        assert!(grpc_status(&[1, 0, 0, 0, 0]).is_err());
    }

    async fn serve_once(response: &'static str) -> SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(response.as_bytes()).await;
            }
        });
        addr
    }

    fn target() -> Target {
        let rt = crate::runtime::fake::FakeRuntime::new(Duration::ZERO);
        Target { runtime: Arc::new(rt), container_id: "c".into(), pod_ip: Some("127.0.0.1".parse().expect("ip")) }
    }

    fn get(port: u16) -> HTTPGetAction {
        HTTPGetAction { port: IntOrString::Int(i32::from(port)), path: Some("/healthz".into()), ..Default::default() }
    }

    #[tokio::test]
    async fn http_probes_judge_the_status_code() {
        let c = Container::default();
        let t = target();
        let second = Duration::from_secs(1);
        let ok = serve_once("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!(http_get(&get(ok.port()), &c, &t, second).await, Outcome::Success);
        let bad = serve_once("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown").await;
        assert_eq!(
            http_get(&get(bad.port()), &c, &t, second).await,
            Outcome::Failure("HTTP probe failed with statuscode: 503: down".into())
        );
        let away = serve_once("HTTP/1.1 302 Found\r\nLocation: http://192.0.2.1/\r\nContent-Length: 0\r\n\r\n").await;
        assert_eq!(http_get(&get(away.port()), &c, &t, second).await, Outcome::Success);
        // Nothing listening: a connection failure.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = closed.local_addr().expect("addr").port();
        drop(closed);
        assert!(matches!(http_get(&get(port), &c, &t, second).await, Outcome::Failure(_)));
        let tcp_ok = TCPSocketAction { port: IntOrString::Int(i32::from(ok.port())), host: None };
        assert_eq!(tcp(&tcp_ok, &c, &t, second).await, Outcome::Success);
        let tcp_bad = TCPSocketAction { port: IntOrString::Int(i32::from(port)), host: None };
        assert!(matches!(tcp(&tcp_bad, &c, &t, second).await, Outcome::Failure(_)));
    }

    #[tokio::test]
    async fn grpc_probes_read_the_serving_status() {
        use http_body_util::StreamBody;
        use hyper::body::Frame;
        use std::convert::Infallible;
        for (status, service, want) in [
            (1u8, "", Outcome::Success),
            (2, "db", Outcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".into())),
        ] {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let port = l.local_addr().expect("addr").port();
            let server = tokio::spawn(async move {
                let (s, _) = l.accept().await.expect("accept");
                let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| async move {
                    let path = req.uri().path().to_string();
                    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                    let ok = path == "/grpc.health.v1.Health/Check" && body == grpc_request(service);
                    let message = if ok { vec![0, 0, 0, 0, 2, 0x08, status] } else { vec![0, 0, 0, 0, 0] };
                    let frames: Vec<Result<Frame<Bytes>, Infallible>> =
                        vec![Ok(Frame::data(Bytes::from(message))), Ok(Frame::trailers(trailers))];
                    http::Response::builder()
                        .header("content-type", "application/grpc")
                        .body(StreamBody::new(futures::stream::iter(frames)))
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
            let a = GRPCAction { port: i32::from(port), service: Some(service.to_string()).filter(|s| !s.is_empty()) };
            assert_eq!(grpc(&a, &target(), Duration::from_secs(2)).await, want);
            server.abort();
        }
    }
}
