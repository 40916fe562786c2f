//! The cluster CA and the API server's serving certificate.
//!
//! `skiff server` creates the CA on first start (`<data-dir>/server/tls/ca.{crt,key}`) and keeps
//! it across restarts; the serving certificate is issued anew at each start so its names follow
//! the current flags.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::files;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("{0}")]
    Io(#[from] files::FileError),
    #[error("tls config: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("bad PEM in {path}: {reason}")]
    Pem { path: String, reason: String },
}

/// The cluster CA: certificate PEM and key.
pub struct ClusterCa {
    pub cert_pem: String,
    key: KeyPair,
}

const CA_CN: &str = "skiff-ca";

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_CN);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    Ok(params)
}

impl ClusterCa {
    /// Loads the CA from `dir`, creating it on first start.
    pub fn load_or_create(dir: &Path) -> Result<ClusterCa, TlsError> {
        let cert_path = dir.join("ca.crt");
        let key_path = dir.join("ca.key");
        if cert_path.exists() && key_path.exists() {
            let cert_pem = files::read_string(&cert_path)?;
            let key_pem = files::read_string(&key_path)?;
            let key = KeyPair::from_pem(&key_pem)?;
            return Ok(ClusterCa { cert_pem, key });
        }
        let key = KeyPair::generate()?;
        let cert = ca_params()?.self_signed(&key)?;
        files::write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        files::write_atomic(&cert_path, cert.pem().as_bytes(), 0o644)?;
        Ok(ClusterCa { cert_pem: cert.pem(), key })
    }

    /// Issues a certificate signed by this CA; returns (cert PEM, key PEM).
    pub fn issue(
        &self,
        common_name: &str,
        dns: &[String],
        ips: &[IpAddr],
        client: bool,
    ) -> Result<(String, String), TlsError> {
        self.issue_for(common_name, &[], dns, ips, client)
    }

    /// Issues a client certificate for user `common_name` in the groups `organizations` (the
    /// subject's O, as Kubernetes reads it); returns (cert PEM, key PEM).
    pub fn issue_client(&self, common_name: &str, organizations: &[&str]) -> Result<(String, String), TlsError> {
        self.issue_for(common_name, organizations, &[], &[], true)
    }

    fn issue_for(
        &self,
        common_name: &str,
        organizations: &[&str],
        dns: &[String],
        ips: &[IpAddr],
        client: bool,
    ) -> Result<(String, String), TlsError> {
        let mut params = CertificateParams::new(dns.to_vec())?;
        for ip in ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        let mut dn = DistinguishedName::new();
        for o in organizations {
            dn.push(DnType::OrganizationName, *o);
        }
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages =
            if client { vec![ExtendedKeyUsagePurpose::ClientAuth] } else { vec![ExtendedKeyUsagePurpose::ServerAuth] };
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2124, 1, 1);
        let key = KeyPair::generate()?;
        let ca_params = ca_params()?;
        let issuer = Issuer::from_params(&ca_params, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// A rustls server config from PEM certificate chain and key.
pub fn server_config(cert_pem: &str, key_pem: &str) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem { path: "serving.crt".into(), reason: e.to_string() })?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .map_err(|e| TlsError::Pem { path: "serving.key".into(), reason: e.to_string() })?
        .ok_or_else(|| TlsError::Pem { path: "serving.key".into(), reason: "no private key".into() })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
