//! Reading the admin kubeconfig and talking HTTPS to the API server with its CA and token.

use std::path::Path;
use std::sync::Once;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use base64::Engine as _;
use serde_json::Value;

/// Install ring as rustls' process-wide provider (once; a second install is harmless).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means a provider is already installed, which is what we want anyway.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Endpoint and credentials from `DIR/kubeconfig.yaml`.
#[derive(Clone, Debug)]
pub struct Creds {
    pub server: String,
    pub ca_pem: Vec<u8>,
    pub token: String,
}

/// Parse a kubeconfig: the current context's cluster (server URL, embedded CA) and user (token).
pub fn read_kubeconfig(path: &Path) -> Result<Creds> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let v: Value = serde_saphyr::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
    let current = v["current-context"].as_str().unwrap_or_default();
    let pick = |list: &str, name: &str| -> Option<Value> {
        let items = v[list].as_array()?;
        items.iter().find(|i| name.is_empty() || i["name"].as_str() == Some(name)).or_else(|| items.first()).cloned()
    };
    let ctx = pick("contexts", current).ok_or_else(|| anyhow!("kubeconfig has no contexts"))?;
    let cluster_name = ctx["context"]["cluster"].as_str().unwrap_or_default();
    let user_name = ctx["context"]["user"].as_str().unwrap_or_default();
    let cluster = pick("clusters", cluster_name).ok_or_else(|| anyhow!("kubeconfig has no clusters"))?;
    let user = pick("users", user_name).ok_or_else(|| anyhow!("kubeconfig has no users"))?;
    let server = cluster["cluster"]["server"].as_str().ok_or_else(|| anyhow!("cluster.server missing"))?;
    let ca_b64 = cluster["cluster"]["certificate-authority-data"]
        .as_str()
        .ok_or_else(|| anyhow!("cluster.certificate-authority-data missing"))?;
    let ca_pem = base64::engine::general_purpose::STANDARD
        .decode(ca_b64.trim())
        .context("certificate-authority-data is not base64")?;
    let token = user["user"]["token"].as_str().ok_or_else(|| anyhow!("user.token missing"))?;
    Ok(Creds { server: server.trim_end_matches('/').to_string(), ca_pem, token: token.to_string() })
}

/// One simulated client: a reqwest `Client` (its own keep-alive connection pool) plus the
/// server URL and token. Cloning shares the pool.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// A fully read response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Resp {
    /// The Status `message` of an error body, else the start of the body.
    pub fn message(&self) -> String {
        if let Ok(v) = serde_json::from_slice::<Value>(&self.body) {
            if let Some(m) = v["message"].as_str() {
                return m.to_string();
            }
        }
        String::from_utf8_lossy(&self.body[..self.body.len().min(200)]).into_owned()
    }

    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).context("response body is not JSON")
    }
}

impl Api {
    /// A client with a per-request `timeout` (`None` for long-running watches).
    pub fn new(creds: &Creds, timeout: Option<Duration>) -> Result<Api> {
        install_crypto_provider();
        let ca = reqwest::Certificate::from_pem(&creds.ca_pem).context("CA from kubeconfig is not PEM")?;
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .connect_timeout(Duration::from_secs(10))
            .no_proxy();
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        Ok(Api {
            http: b.build().context("build HTTPS client")?,
            base: creds.server.clone(),
            token: creds.token.clone(),
        })
    }

    /// A request to `path` (which starts with `/`) with the bearer token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{}", self.base, path)).bearer_auth(&self.token)
    }

    /// Send a request with an optional body of the given content type and read the whole answer.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Resp, reqwest::Error> {
        let mut rb = self.request(method, path);
        if let Some((ct, bytes)) = body {
            rb = rb.header(reqwest::header::CONTENT_TYPE, ct).body(bytes);
        }
        let r = rb.send().await?;
        let status = r.status().as_u16();
        let body = r.bytes().await?.to_vec();
        Ok(Resp { status, body })
    }

    pub async fn get(&self, path: &str) -> Result<Resp, reqwest::Error> {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post_json(&self, path: &str, v: &Value) -> Result<Resp, reqwest::Error> {
        self.send(reqwest::Method::POST, path, Some(("application/json", v.to_string().into_bytes()))).await
    }

    pub async fn merge_patch(&self, path: &str, v: &Value) -> Result<Resp, reqwest::Error> {
        self.send(reqwest::Method::PATCH, path, Some(("application/merge-patch+json", v.to_string().into_bytes())))
            .await
    }
}
