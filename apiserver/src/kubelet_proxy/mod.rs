//! The API server's way to the kubelets: what `pods/log`, `pods/exec`, `pods/attach` and
//! `pods/portforward` proxy to (upstream's `pkg/kubelet/client` and the apimachinery
//! upgrade-aware proxy).
//!
//! Every request goes over TLS with the API server's kubelet-client certificate (issued from the
//! cluster CA at start: CN `kube-apiserver-kubelet-client`, O `system:masters`); the kubelet's
//! serving certificate is not verified, as upstream without `--kubelet-certificate-authority`.
//!
//! - logs: a GET whose answer streams back as it arrives (each chunk the kubelet writes goes out
//!   at once, so `kubectl logs -f` follows); an error answer becomes a `Status` as upstream's
//!   `GenericHttpResponseChecker` makes it;
//! - exec, attach and portforward: the client's upgrade request is replayed to the kubelet (its WebSocket or
//!   SPDY headers included); a `101` from the kubelet is handed back to the client and the two
//!   connections are then joined byte for byte, so the WebSocket (its subprotocol, frames,
//!   pings and close) runs end to end between kubectl and the kubelet; any other answer is
//!   echoed to the client as is (kubectl shows it as `unable to upgrade connection: …`).
//!
//! [`options`] decodes and validates the query options, [`target`] picks the container and the
//! kubelet's address.

pub mod options;
pub mod target;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use api::ApiError;

use crate::tls::{ClusterCa, TlsError};
pub use target::Endpoint;

/// The user the API server is to the kubelets.
pub const CLIENT_CN: &str = "kube-apiserver-kubelet-client";
/// Its group.
pub const CLIENT_ORG: &str = "system:masters";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the kubelet may take to answer (its headers; a log body may stream for hours).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// Most of an error answer read (upstream's `maxReadLength`).
const MAX_ERROR_BYTES: usize = 50_000;
/// Most of a whole answer read ([`KubeletClient::get`]: a node's stats summary).
const MAX_BODY_BYTES: usize = 64 << 20;

/// The headers of a client's upgrade request the kubelet needs to see.
const UPGRADE_REQUEST_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "x-stream-protocol-version",
    "user-agent",
];

/// The headers of the kubelet's `101` the client needs to see.
const UPGRADE_RESPONSE_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "x-stream-protocol-version",
];

/// Connects to kubelets as the API server.
pub struct KubeletClient {
    tls: TlsConnector,
}

impl KubeletClient {
    /// A client with a fresh certificate from the cluster CA.
    pub fn new(ca: &ClusterCa) -> Result<KubeletClient, TlsError> {
        let (cert_pem, key_pem) = ca.issue_client(CLIENT_CN, &[CLIENT_ORG])?;
        KubeletClient::with_certificate(&cert_pem, &key_pem)
    }

    /// A client presenting this certificate.
    pub fn with_certificate(cert_pem: &str, key_pem: &str) -> Result<KubeletClient, TlsError> {
        let pem = |reason: String| TlsError::Pem { path: CLIENT_CN.into(), reason };
        let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| pem(e.to_string()))?;
        let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
            .map_err(|e| pem(e.to_string()))?
            .ok_or_else(|| pem("no private key".into()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
            .with_client_auth_cert(certs, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletClient { tls: TlsConnector::from(Arc::new(config)) })
    }

    /// Sends one request to the kubelet at `ep` on a connection of its own.
    async fn send(&self, ep: &Endpoint, req: Request<Empty<Bytes>>) -> Result<http::Response<Incoming>, String> {
        let authority = ep.authority();
        let dial = |e: String| format!("dial tcp {authority}: {e}");
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((ep.host.as_str(), ep.port)))
            .await
            .map_err(|_| dial("i/o timeout".into()))?
            .map_err(|e| dial(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let name = match ep.host.parse::<std::net::IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(ep.host.clone()).map_err(|e| dial(e.to_string()))?,
        };
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, self.tls.connect(name, tcp))
            .await
            .map_err(|_| "net/http: TLS handshake timeout".to_string())?
            .map_err(|e| format!("tls: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "kubelet connection ended with an error");
            }
        });
        tokio::time::timeout(RESPONSE_TIMEOUT, sender.send_request(req))
            .await
            .map_err(|_| "timeout awaiting response headers".to_string())?
            .map_err(|e| e.to_string())
    }

    /// `GET https://<kubelet><path>`, the whole answer (at most [`MAX_BODY_BYTES`]) when it is a
    /// 200 (e.g. `/stats/summary` for the metrics API); the error's text otherwise.
    pub async fn get(&self, ep: &Endpoint, path: &str) -> Result<Bytes, String> {
        let req = Request::get(path)
            .header(header::HOST, ep.authority())
            .header(header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let resp = self.send(ep, req).await?;
        let code = resp.status();
        if code != StatusCode::OK {
            return Err(format!("{code}: {}", read_error_body(resp.into_body()).await.trim_end()));
        }
        let body = tokio::time::timeout(RESPONSE_TIMEOUT, Limited::new(resp.into_body(), MAX_BODY_BYTES).collect())
            .await
            .map_err(|_| "the kubelet's answer did not arrive in time".to_string())?
            .map_err(|e| format!("reading the kubelet's answer: {e}"))?;
        Ok(body.to_bytes())
    }

    /// `GET https://<kubelet><path_and_query>` for the log of pod `pod`: the answer streams
    /// back; an error becomes a `Status`.
    pub async fn logs(&self, ep: &Endpoint, path_and_query: &str, pod: &str) -> Result<Response, ApiError> {
        let req = Request::get(path_and_query)
            .header(header::HOST, ep.authority())
            .body(Empty::new())
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let url = format!("https://{}{path_and_query}", ep.authority());
        let resp = self.send(ep, req).await.map_err(|e| ApiError::new(500, "", format!("Get {url:?}: {e}")))?;
        let code = resp.status().as_u16();
        if !(200..=206).contains(&code) {
            let body = read_error_body(resp.into_body()).await;
            return Err(checked_error(code, &body, pod));
        }
        let mut out = Response::new(Body::new(resp.into_body()));
        out.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
        Ok(out)
    }

    /// Replays a client's upgrade request (`method`, its upgrade `headers`) to
    /// `https://<kubelet><path_and_query>`; on `101`, joins the client's connection
    /// (`client_upgrade`) with the kubelet's.
    pub async fn upgrade(
        &self,
        ep: &Endpoint,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        client_upgrade: Option<OnUpgrade>,
    ) -> Result<Response, ApiError> {
        let mut builder =
            Request::builder().method(method.clone()).uri(path_and_query).header(header::HOST, ep.authority());
        for name in UPGRADE_REQUEST_HEADERS {
            for v in headers.get_all(*name) {
                builder = builder.header(*name, v);
            }
        }
        let req = builder.body(Empty::new()).map_err(|e| ApiError::internal(e.to_string()))?;
        let resp =
            self.send(ep, req).await.map_err(|e| ApiError::new(500, "", format!("error dialing backend: {e}")))?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            // Echo the kubelet's answer, as upstream's proxy writes the backend's response.
            let status = resp.status();
            let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
            let body = read_error_body(resp.into_body()).await;
            let mut out = Response::new(Body::from(body));
            *out.status_mut() = status;
            if let Some(ct) = content_type {
                out.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            return Ok(out);
        }
        let Some(client_upgrade) = client_upgrade else {
            return Err(ApiError::bad_request("the request asked for no connection upgrade"));
        };
        let mut out = Response::new(Body::empty());
        *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        for name in UPGRADE_RESPONSE_HEADERS {
            if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                for v in resp.headers().get_all(&name) {
                    out.headers_mut().append(name.clone(), v.clone());
                }
            }
        }
        let backend = hyper::upgrade::on(resp);
        tokio::spawn(async move {
            let (client, backend) = match tokio::join!(client_upgrade, backend) {
                (Ok(c), Ok(b)) => (c, b),
                (c, b) => {
                    tracing::debug!(client = ?c.err(), kubelet = ?b.err(), "exec/attach upgrade failed");
                    return;
                }
            };
            let (mut client, mut backend) = (TokioIo::new(client), TokioIo::new(backend));
            match tokio::io::copy_bidirectional(&mut client, &mut backend).await {
                Ok((up, down)) => tracing::debug!(up, down, "exec/attach stream ended"),
                Err(e) => tracing::debug!(error = %e, "exec/attach stream ended with an error"),
            }
        });
        Ok(out)
    }
}

/// At most [`MAX_ERROR_BYTES`] of an error answer, as text.
async fn read_error_body(body: Incoming) -> String {
    let read = tokio::time::timeout(RESPONSE_TIMEOUT, Limited::new(body, MAX_ERROR_BYTES).collect()).await;
    match read {
        Ok(Ok(b)) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Ok(Err(e)) => format!("(the kubelet's answer could not be read: {e})"),
        Err(_) => "(the kubelet's answer did not arrive in time)".to_string(),
    }
}

/// A kubelet's error answer to a log read as upstream's `GenericHttpResponseChecker` turns it
/// into a `Status`: 400 and 500 keep the kubelet's text; others are `NewGenericServerResponse`.
pub fn checked_error(code: u16, body: &str, pod: &str) -> ApiError {
    let body = body.trim_end();
    let resource = format!(" pods/log {pod}");
    let generic = |reason: &'static str, message: &str| {
        ApiError::new(code, reason, format!("{message} ({resource})")).with_details("", "pods/log", pod)
    };
    match code {
        400 => ApiError::bad_request(body),
        500 => ApiError::internal(body),
        401 => generic("Unauthorized", "the server has asked for the client to provide credentials"),
        403 => generic("Forbidden", body),
        404 => generic("NotFound", "the server could not find the requested resource"),
        405 => generic("MethodNotAllowed", "the server does not allow this method on the requested resource"),
        409 => generic("Conflict", "the server reported a conflict"),
        422 => generic("Invalid", "the server rejected our request due to an error in our request"),
        429 => {
            generic("TooManyRequests", "the server has received too many requests and has asked us to try again later")
        }
        504 => generic(
            "Timeout",
            "the server was unable to return a response in the time allotted, but may still be processing the request",
        ),
        c if c >= 500 => generic(
            "InternalError",
            &format!("an error on the server ({body:?}) has prevented the request from succeeding"),
        ),
        c => generic("", &format!("the server responded with the status code {c} but did not return more information")),
    }
}

/// Accepts any server certificate (the kubelet's is not verified, as upstream's default), while
/// still checking the handshake signatures with it.
#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_errors_become_upstreams_statuses() {
        let e = checked_error(400, "container \"c\" in pod \"web\" is waiting to start: ContainerCreating", "web");
        assert_eq!((e.code, e.reason), (400, "BadRequest"));
        assert_eq!(e.message, "container \"c\" in pod \"web\" is waiting to start: ContainerCreating");
        let e = checked_error(404, "pod \"web\" does not exist", "web");
        assert_eq!(e.message, "the server could not find the requested resource ( pods/log web)");
        assert_eq!(e.to_status()["details"]["kind"], "pods/log");
        assert_eq!(checked_error(500, "boom\n", "web").message, "Internal error occurred: boom");
        assert_eq!(checked_error(503, "down", "web").reason, "InternalError");
    }
}
