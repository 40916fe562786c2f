//! The admin credential a server writes (`DATA_DIR/kubeconfig.yaml`), and a blocking HTTPS client
//! that trusts the cluster CA from it and nothing else.

use std::path::Path;
use std::sync::Once;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

/// Credentials and endpoint read from a kubeconfig.
#[derive(Clone, Debug)]
pub struct Creds {
    pub server: String,
    pub ca_pem: Vec<u8>,
    pub token: String,
}

/// Parses a kubeconfig: the current context's cluster (server URL, embedded CA) and user (token).
pub fn read_kubeconfig(path: &Path) -> Result<Creds, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let v: Value = serde_saphyr::from_str(&text).map_err(|e| format!("parse {}: {e}", path.display()))?;
    let current = v["current-context"].as_str().unwrap_or_default();
    let pick = |list: &str, name: &str| -> Option<Value> {
        let items = v[list].as_array()?;
        items.iter().find(|i| name.is_empty() || i["name"].as_str() == Some(name)).or_else(|| items.first()).cloned()
    };
    let ctx = pick("contexts", current).ok_or("kubeconfig has no contexts")?;
    let cluster_name = ctx["context"]["cluster"].as_str().unwrap_or_default();
    let user_name = ctx["context"]["user"].as_str().unwrap_or_default();
    let cluster = pick("clusters", cluster_name).ok_or("kubeconfig has no clusters")?;
    let user = pick("users", user_name).ok_or("kubeconfig has no users")?;
    let server = cluster["cluster"]["server"].as_str().ok_or("cluster.server missing")?.to_string();
    let ca_b64 = cluster["cluster"]["certificate-authority-data"]
        .as_str()
        .ok_or("cluster.certificate-authority-data missing (the CA must be embedded)")?;
    let ca_pem = base64::engine::general_purpose::STANDARD
        .decode(ca_b64.trim())
        .map_err(|e| format!("certificate-authority-data is not base64: {e}"))?;
    let token = user["user"]["token"].as_str().ok_or("user.token missing")?.to_string();
    Ok(Creds { server, ca_pem, token })
}

/// Installs rustls' ring provider as the process default (reqwest is built without one).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another crate in the same test binary may have installed it already; that is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A blocking HTTPS client that trusts only `ca_pem`, uses no proxy and gives up after `timeout`.
pub fn https_client(ca_pem: &[u8], timeout: Duration) -> reqwest::blocking::Client {
    install_crypto_provider();
    let ca = reqwest::Certificate::from_pem(ca_pem).expect("CA from kubeconfig is PEM");
    reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .expect("build HTTPS client")
}
