//! Harness of the kubelet API tests: a test CA with a trusted and an untrusted client
//! certificate, a kubelet API server on a free loopback port over a `FakeRuntime`, and HTTPS and
//! WebSocket clients that present a certificate (and do not verify the kubelet's, as the API
//! server does not).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use kubelet::runtime::fake::FakeRuntime;
use kubelet::runtime::{
    ContainerConfig, PodSandboxConfig, Runtime, SandboxMetadata, LABEL_CONTAINER_NAME, LABEL_POD_NAME,
    LABEL_POD_NAMESPACE, LABEL_RESTART_POLICY,
};
use kubelet::server::{Server, ServingCert};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

/// A certificate and its key, PEM.
#[derive(Clone)]
pub struct Cred {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A CA and a client certificate it signed.
pub struct Pki {
    pub ca_pem: String,
    pub client: Cred,
}

/// A fresh CA with a client certificate (`CN`, `O`), as the cluster CA issues the API server's.
pub fn pki(cn: &str) -> Pki {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "test-ca");
    ca_params.distinguished_name = dn;
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let key = rcgen::KeyPair::generate().expect("client key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("client params");
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::OrganizationName, "system:masters");
    dn.push(rcgen::DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature, rcgen::KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).expect("client cert");
    Pki { ca_pem: ca_cert.pem(), client: Cred { cert_pem: cert.pem(), key_pem: key.serialize_pem() } }
}

/// A running kubelet API over a fake runtime, stopped on drop.
pub struct Kubelet {
    pub addr: SocketAddr,
    pub rt: FakeRuntime,
    /// Signed by the CA the server trusts.
    pub trusted: Cred,
    /// Signed by another CA.
    pub stranger: Cred,
    stop: CancellationToken,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Kubelet {
    pub async fn start() -> Kubelet {
        testkit::init_tracing("info");
        let cluster = pki("kube-apiserver-kubelet-client");
        let other = pki("someone-else");
        let rt = FakeRuntime::new(Duration::from_secs(3600));
        let serving = ServingCert::self_signed("node-0", &["127.0.0.1".parse().expect("ip")]).expect("serving cert");
        let ca = kubelet::server::tls::certs_from_pem(&cluster.ca_pem, "test CA").expect("ca");
        let runtime: Arc<dyn Runtime> = Arc::new(rt.clone());
        let server = Server::bind("127.0.0.1:0".parse().expect("addr"), &serving, &ca, runtime, "node-0")
            .await
            .expect("bind the kubelet API");
        let addr = server.local_addr().expect("local addr");
        let stop = CancellationToken::new();
        tokio::spawn(server.run(stop.clone()));
        Kubelet { addr, rt, trusted: cluster.client, stranger: other.client, stop }
    }

    /// A TLS connection presenting `cred` (or no certificate).
    pub async fn connect(&self, cred: Option<&Cred>) -> TlsStream<TcpStream> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("tls versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)));
        let config = match cred {
            Some(c) => {
                let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut c.cert_pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .expect("client cert pem");
                let key = rustls_pemfile::private_key(&mut c.key_pem.as_bytes()).expect("key pem").expect("a key");
                builder.with_client_auth_cert(certs, key).expect("client auth")
            }
            None => builder.with_no_client_auth(),
        };
        let tcp = TcpStream::connect(self.addr).await.expect("connect to the kubelet API");
        let name = ServerName::IpAddress(self.addr.ip().into());
        TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("TLS handshake")
    }

    /// `GET path` as `cred`; the response with its body still streaming.
    pub async fn get_stream(&self, path: &str, cred: Option<&Cred>) -> http::Response<Incoming> {
        let tls = self.connect(cred).await;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.expect("http handshake");
        tokio::spawn(conn);
        let req =
            http::Request::get(path).header("host", self.addr.to_string()).body(Empty::<Bytes>::new()).expect("req");
        sender.send_request(req).await.expect("send request")
    }

    /// `GET path` as the trusted client: status and whole body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        self.get_as(path, Some(&self.trusted)).await
    }

    pub async fn get_as(&self, path: &str, cred: Option<&Cred>) -> (u16, String) {
        let resp = self.get_stream(path, cred).await;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// A WebSocket to `path` offering `protocols`, as the trusted client.
    pub async fn ws(
        &self,
        path: &str,
        protocols: &str,
    ) -> Result<
        (WebSocketStream<TlsStream<TcpStream>>, tokio_tungstenite::tungstenite::handshake::client::Response),
        tokio_tungstenite::tungstenite::Error,
    > {
        let tls = self.connect(Some(&self.trusted)).await;
        let mut req = format!("wss://{}{path}", self.addr).into_client_request().expect("ws request");
        if !protocols.is_empty() {
            req.headers_mut().insert("sec-websocket-protocol", protocols.parse().expect("header"));
        }
        tokio_tungstenite::client_async(req, tls).await
    }
}

/// Runs a pod sandbox `namespace/pod` (uid `uid`) if it has none, and starts attempt
/// `attempt` of container `container` in it; returns the container id.
pub async fn start_container(rt: &FakeRuntime, namespace: &str, pod: &str, container: &str, attempt: u32) -> String {
    let existing = rt
        .list_pod_sandboxes()
        .await
        .expect("sandboxes")
        .into_iter()
        .find(|s| s.metadata.namespace == namespace && s.metadata.name == pod);
    let sb_config = PodSandboxConfig {
        metadata: Some(SandboxMetadata {
            name: pod.into(),
            namespace: namespace.into(),
            uid: format!("uid-{pod}"),
            attempt: 0,
        }),
        labels: [
            (LABEL_POD_NAME.to_string(), pod.to_string()),
            (LABEL_POD_NAMESPACE.to_string(), namespace.to_string()),
            (LABEL_RESTART_POLICY.to_string(), "Always".to_string()),
        ]
        .into(),
        ..Default::default()
    };
    let sandbox = match existing {
        Some(s) => s.id,
        None => rt.run_pod_sandbox(&sb_config).await.expect("sandbox"),
    };
    rt.pull_image("busybox:1.36", None).await.expect("pull");
    let config = ContainerConfig {
        name: container.into(),
        attempt,
        image: "busybox:1.36".into(),
        labels: [(LABEL_CONTAINER_NAME.to_string(), container.to_string())].into(),
        ..Default::default()
    };
    let id = rt.create_container(&sandbox, &config, &sb_config).await.expect("create");
    rt.start_container(&id).await.expect("start");
    id
}

/// Accepts any server certificate (the kubelet's own is self-signed).
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
