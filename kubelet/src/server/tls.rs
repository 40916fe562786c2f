//! TLS of the kubelet's API: its serving certificate (from files, or self-signed at start), and
//! client certificates checked against the cluster CA.
//!
//! The handshake asks for a client certificate but lets a connection without one (or with one
//! the CA did not sign) through, proving only that the client holds the certificate's key; each
//! connection then carries whether its certificate chains to the cluster CA, so that such a
//! request gets 401 as upstream's x509 authenticator gives it, and `/healthz` stays open.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

/// What can go wrong while setting the server's TLS up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("bad PEM in {what}: {reason}")]
    Pem { what: String, reason: String },
    #[error("generate the self-signed serving certificate: {0}")]
    SelfSigned(#[from] rcgen::Error),
    #[error("read the cluster CA from kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },
    #[error("tls config: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client CA: {0}")]
    ClientCa(String),
}

/// The serving certificate chain and key, PEM.
#[derive(Clone)]
pub struct ServingCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCert").field("cert_pem", &self.cert_pem).finish_non_exhaustive()
    }
}

impl ServingCert {
    /// `--tls-cert-file` and `--tls-private-key-file`.
    pub fn from_files(cert: &Path, key: &Path) -> Result<ServingCert, TlsError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| TlsError::Read { path: p.display().to_string(), source })
        };
        Ok(ServingCert { cert_pem: read(cert)?, key_pem: read(key)? })
    }

    /// A self-signed certificate for the node's name and addresses (upstream's kubelet does the
    /// same without a configured certificate; the API server does not verify it).
    pub fn self_signed(node_name: &str, ips: &[IpAddr]) -> Result<ServingCert, TlsError> {
        let mut params = rcgen::CertificateParams::new(vec![node_name.to_string()])?;
        for ip in ips {
            params.subject_alt_names.push(rcgen::SanType::IpAddress(*ip));
        }
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, format!("{node_name}@skiff-kubelet"));
        params.distinguished_name = dn;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(ServingCert { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}

/// The CA certificates (DER) of the cluster a kubeconfig points at: its current context's
/// `certificate-authority-data` or `certificate-authority` file.
pub fn cluster_ca_from_kubeconfig(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |message: String| TlsError::Kubeconfig { path: path.display().to_string(), message };
    let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| bad(e.to_string()))?;
    let context_name = kc.current_context.clone().unwrap_or_default();
    let context = kc
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.clone())
        .ok_or_else(|| bad(format!("no context {context_name:?}")))?;
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| bad(format!("no cluster {:?}", context.cluster)))?;
    let pem = if let Some(data) = cluster.certificate_authority_data.as_deref() {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| bad(format!("certificate-authority-data is not base64: {e}")))?;
        String::from_utf8(raw).map_err(|e| bad(format!("certificate-authority-data is not PEM: {e}")))?
    } else if let Some(file) = cluster.certificate_authority.as_deref() {
        let base = path.parent().unwrap_or(Path::new("."));
        let file = base.join(file);
        std::fs::read_to_string(&file).map_err(|source| TlsError::Read { path: file.display().to_string(), source })?
    } else {
        return Err(bad("the cluster has no certificate authority".into()));
    };
    certs_from_pem(&pem, "the cluster CA")
}

/// Every certificate in a PEM text.
pub fn certs_from_pem(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem { what: what.to_string(), reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::Pem { what: what.to_string(), reason: "no certificate".into() });
    }
    Ok(certs)
}

fn key_from_pem(pem: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|e| TlsError::Pem { what: "the serving key".into(), reason: e.to_string() })?
        .ok_or_else(|| TlsError::Pem { what: "the serving key".into(), reason: "no private key".into() })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Checks client certificates against the cluster CA after the handshake.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    verifier: Arc<dyn ClientCertVerifier>,
}

impl ClientAuth {
    pub fn new(client_ca: &[CertificateDer<'static>]) -> Result<ClientAuth, TlsError> {
        let mut roots = RootCertStore::empty();
        for c in client_ca {
            roots.add(c.clone()).map_err(|e| TlsError::ClientCa(e.to_string()))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| TlsError::ClientCa(e.to_string()))?;
        Ok(ClientAuth { verifier })
    }

    /// Whether a connection's certificate chain (as the client sent it) chains to the cluster
    /// CA and is valid now.
    pub fn verify(&self, chain: Option<&[CertificateDer<'static>]>) -> bool {
        let Some((end_entity, intermediates)) = chain.and_then(|c| c.split_first()) else { return false };
        self.verifier.verify_client_cert(end_entity, intermediates, UnixTime::now()).is_ok()
    }
}

/// Requests a client certificate and checks the handshake signature with it, but leaves the
/// trust decision to [`ClientAuth::verify`] (so that an untrusted certificate gets a 401).
#[derive(Debug)]
struct RequestClientCert(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The server's rustls config: `serving` as its certificate, client certificates requested.
pub fn server_config(serving: &ServingCert, auth: &ClientAuth) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = certs_from_pem(&serving.cert_pem, "the serving certificate")?;
    let key = key_from_pem(&serving.key_pem)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(RequestClientCert(auth.verifier.clone())))
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
