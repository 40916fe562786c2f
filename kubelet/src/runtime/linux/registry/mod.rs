//! Image pulls from OCI / Docker registries (the distribution API v2) into the node's
//! [`ImageStore`].
//!
//! A pull resolves the reference (`busybox` → `docker.io/library/busybox:latest`, reached at
//! `registry-1.docker.io`), tries the mirrors of the registries config ([`hosts`]) in order and
//! then the registry itself, and at each: GETs the manifest (OCI index/manifest, Docker
//! list/manifest), takes this platform's manifest out of an index, and streams the config and the
//! layers (gzip, zstd or plain, stored as they come) into the store. Every byte is checked against
//! the digest that names it before it is renamed into the store; blobs the store already has are
//! not fetched again. Then the reference is recorded → manifest digest, the image's ID being
//! `name@sha256:<manifest digest>` as for imported images.
//!
//! Auth: anonymous first; on a 401 the `WWW-Authenticate` challenge says how — `Basic` (the
//! credentials sent as such) or `Bearer realm=,service=,scope=` (a token fetched from the realm,
//! with the credentials as basic auth, or an identity token exchanged by the OAuth2 refresh-token
//! grant; Docker Hub's flow). A pull's credentials come from the pod's imagePullSecrets (sent to
//! the image's own registry only) or from the config's `configs.<host>.auth`. Errors carry the
//! registry's own message (`unauthorized: authentication required`).
//!
//! Registries on a loopback address are reached over plain HTTP (as containerd does), the others
//! over HTTPS with the system's roots (plus `tls` of the config). Pulls of one reference at once
//! are one pull: the others wait for its outcome.

pub mod auth;
pub mod hosts;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt, TryStreamExt};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use ring::digest::{Context, SHA256};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::images::{self, digest_hex, ImageStore};
use crate::runtime::image_ref::ImageRef;
use auth::{Challenge, Credentials};
use hosts::{Endpoint, RegistriesFile, TlsFields};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
/// A manifest or index is read into memory up to this size (containerd's limit).
const MAX_MANIFEST: usize = 4 << 20;
/// Blobs fetched at once within one pull.
const BLOB_CONCURRENCY: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PullError {
    /// What the registry answered (its error codes and messages when it sent them).
    #[error("{host}: {message}")]
    Registry { host: String, message: String },
    #[error("{host}: {message}")]
    Transport { host: String, message: String },
    #[error("{0}")]
    Content(String),
    #[error("{0}")]
    Store(String),
    #[error("invalid image reference {0:?}")]
    BadReference(String),
}

type PullFuture = Shared<BoxFuture<'static, Result<String, PullError>>>;

/// The registry client of one node: its config, a store to pull into, and the pulls in flight.
pub struct Registry {
    config: RegistriesFile,
    store: ImageStore,
    clients: Mutex<HashMap<String, reqwest::Client>>,
    inflight: Mutex<HashMap<String, PullFuture>>,
    /// Held (shared) by each pull, and exclusively by image GC while it removes blobs.
    gate: Arc<tokio::sync::RwLock<()>>,
}

impl Registry {
    pub fn new(config: RegistriesFile, store: ImageStore) -> Arc<Registry> {
        let gate = Arc::default();
        Arc::new(Registry { config, store, clients: Mutex::default(), inflight: Mutex::default(), gate })
    }

    /// The lock between pulls (shared) and blob GC (exclusive).
    pub fn gate(&self) -> Arc<tokio::sync::RwLock<()>> {
        Arc::clone(&self.gate)
    }

    /// Pulls `reference` into the store; returns its manifest digest. Concurrent pulls of one
    /// reference share the first one's outcome.
    pub async fn pull(
        self: &Arc<Self>,
        reference: &str,
        credentials: Option<Credentials>,
    ) -> Result<String, PullError> {
        let key = images::normalise(reference).map_err(|_| PullError::BadReference(reference.to_string()))?;
        let fut = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            match inflight.get(&key) {
                Some(f) => f.clone(),
                None => {
                    let me = Arc::clone(self);
                    let k = key.clone();
                    // A task of its own: it finishes (and lets go of the GC gate) even when
                    // every caller waiting for it goes away.
                    let task = tokio::spawn(async move {
                        let started = std::time::Instant::now();
                        let gate = me.gate();
                        let guard = gate.read().await;
                        let out = me.pull_once(&k, credentials).await;
                        drop(guard);
                        match &out {
                            Ok(d) => {
                                tracing::info!(image = %k, digest = %d, elapsed = ?started.elapsed(), "pulled image")
                            }
                            Err(e) => tracing::info!(image = %k, error = %e, "pull failed"),
                        }
                        me.inflight.lock().unwrap_or_else(|e| e.into_inner()).remove(&k);
                        out
                    });
                    let f = task
                        .map(|joined| {
                            joined.unwrap_or_else(|e| Err(PullError::Store(format!("the pull stopped: {e}"))))
                        })
                        .boxed()
                        .shared();
                    inflight.insert(key, f.clone());
                    f
                }
            }
        };
        fut.await
    }

    async fn pull_once(&self, reference: &str, pod: Option<Credentials>) -> Result<String, PullError> {
        let r = ImageRef::parse(reference).map_err(|_| PullError::BadReference(reference.to_string()))?;
        let Some((registry, repository)) = r.name.split_once('/') else {
            return Err(PullError::BadReference(reference.to_string()));
        };
        let object = r.digest.clone().or(r.tag.clone()).unwrap_or_else(|| "latest".into());
        let mut last = None;
        for ep in self.config.endpoints(registry, repository) {
            let creds = match (&pod, &ep.credentials) {
                (Some(p), _) if ep.upstream && !p.is_empty() => Some(p.clone()),
                (_, Some(c)) => Some(c.clone()),
                _ => None,
            };
            let result = match self.client(&ep) {
                Ok(client) => {
                    Session { client, ep: &ep, creds, authorization: Mutex::new(None) }.pull(self, &object).await
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(digest) => {
                    self.store.set_ref(reference, &digest).map_err(|e| PullError::Store(e.to_string()))?;
                    return Ok(digest);
                }
                Err(e) => {
                    tracing::debug!(image = reference, endpoint = %ep.base, error = %e, "pull from endpoint failed");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| PullError::BadReference(reference.to_string())))
    }

    /// The HTTP client of an endpoint's host (its TLS settings), made once.
    fn client(&self, ep: &Endpoint) -> Result<reqwest::Client, PullError> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&ep.base) {
            return Ok(c.clone());
        }
        let fail = |message: String| PullError::Transport { host: ep.host.clone(), message };
        let tls = tls_config(&ep.tls).map_err(fail)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("skiff/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        clients.insert(ep.base.clone(), client.clone());
        Ok(client)
    }
}

/// rustls for an endpoint: the system's roots plus `ca_file`, a client certificate when given,
/// or no verification at all with `insecure_skip_verify`.
fn tls_config(tls: &TlsFields) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if tls.insecure_skip_verify {
        builder.dangerous().with_custom_certificate_verifier(crate::no_verify::NoVerify::new(provider))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if let Some(ca) = &tls.ca_file {
            let pem = std::fs::read(ca).map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
                roots.add(cert).map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
            }
        }
        builder.with_root_certificates(roots)
    };
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
            let certs = rustls_pemfile::certs(&mut read(cert)?.as_slice())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("cert_file {}: {e}", cert.display()))?;
            let key = rustls_pemfile::private_key(&mut read(key)?.as_slice())
                .map_err(|e| format!("key_file {}: {e}", key.display()))?
                .ok_or_else(|| format!("key_file {}: no private key in it", key.display()))?;
            builder.with_client_auth_cert(certs, key).map_err(|e| e.to_string())
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err("tls: cert_file and key_file go together".into()),
    }
}

/// One pull at one endpoint: the client, the credentials and the authorization won so far.
struct Session<'a> {
    client: reqwest::Client,
    ep: &'a Endpoint,
    creds: Option<Credentials>,
    authorization: Mutex<Option<String>>,
}

impl Session<'_> {
    fn registry_err(&self, message: impl Into<String>) -> PullError {
        PullError::Registry { host: self.ep.host.clone(), message: message.into() }
    }

    fn transport_err(&self, e: reqwest::Error) -> PullError {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message = format!("{message}: {s}");
            source = s.source();
        }
        PullError::Transport { host: self.ep.host.clone(), message }
    }

    async fn pull(&self, registry: &Registry, object: &str) -> Result<String, PullError> {
        let (mut bytes, mut media) = self.manifest(object).await?;
        let mut digest = sha256(&bytes);
        if object.starts_with("sha256:") && digest != object {
            return Err(PullError::Content(format!("manifest {object} has digest {digest}")));
        }
        let mut doc: Value = serde_json::from_slice(&bytes)
            .map_err(|e| PullError::Content(format!("manifest {digest} is not JSON: {e}")))?;
        if is_index(&doc, &media) {
            let (os, arch, variant) = platform();
            let chosen = choose_platform(&doc, os, arch, variant).ok_or_else(|| {
                PullError::Content(format!(
                    "no manifest for {os}/{arch}{} in index {digest}",
                    variant.map(|v| format!("/{v}")).unwrap_or_default()
                ))
            })?;
            let want = chosen["digest"].as_str().unwrap_or_default().to_string();
            (bytes, media) = self.manifest(&want).await?;
            digest = sha256(&bytes);
            if digest != want {
                return Err(PullError::Content(format!("manifest {want} has digest {digest}")));
            }
            doc = serde_json::from_slice(&bytes)
                .map_err(|e| PullError::Content(format!("manifest {digest} is not JSON: {e}")))?;
        }
        let media = doc["mediaType"].as_str().map(str::to_string).unwrap_or(media);
        if !matches!(media.as_str(), OCI_MANIFEST | DOCKER_MANIFEST | "") || !doc["config"].is_object() {
            return Err(PullError::Content(format!("manifest {digest}: unsupported media type {media:?}")));
        }
        let mut blobs = vec![Descriptor::of(&doc["config"])?];
        for l in doc["layers"].as_array().into_iter().flatten() {
            blobs.push(Descriptor::of(l)?);
        }
        let fetches: Vec<BoxFuture<'_, Result<(), PullError>>> =
            blobs.iter().map(|d| self.blob(registry, d).boxed()).collect();
        futures::stream::iter(fetches).buffer_unordered(BLOB_CONCURRENCY).try_collect::<Vec<()>>().await?;
        let (stored, _) = registry.store.put_blob(bytes.as_slice()).map_err(|e| PullError::Store(e.to_string()))?;
        if stored != digest {
            return Err(PullError::Store(format!("manifest {digest} was stored as {stored}")));
        }
        Ok(digest)
    }

    /// A manifest or index by tag or digest, with its media type.
    async fn manifest(&self, object: &str) -> Result<(Vec<u8>, String), PullError> {
        let url = format!("{}/v2/{}/manifests/{object}", self.ep.base, self.ep.repository);
        let resp = self.get(&url, Some(ACCEPT_MANIFESTS)).await?;
        let media = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        if resp.content_length().is_some_and(|n| n > MAX_MANIFEST as u64) {
            return Err(PullError::Content(format!("manifest {object} is larger than {MAX_MANIFEST} bytes")));
        }
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            body.extend_from_slice(&chunk.map_err(|e| self.transport_err(e))?);
            if body.len() > MAX_MANIFEST {
                return Err(PullError::Content(format!("manifest {object} is larger than {MAX_MANIFEST} bytes")));
            }
        }
        Ok((body, media))
    }

    /// Streams a blob into the store, verified; nothing when the store has it already.
    async fn blob(&self, registry: &Registry, d: &Descriptor) -> Result<(), PullError> {
        let store = &registry.store;
        if store.has_blob(&d.digest, d.size) {
            return Ok(());
        }
        let url = format!("{}/v2/{}/blobs/{}", self.ep.base, self.ep.repository, d.digest);
        let resp = self.get(&url, None).await?;
        let tmp = store.temp_blob_path();
        let result = async {
            let mut file = tokio::fs::File::create(&tmp).await.map_err(|e| store_err(&tmp, e))?;
            let mut ctx = Context::new(&SHA256);
            let mut size = 0u64;
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.transport_err(e))?;
                size += chunk.len() as u64;
                if size > d.size {
                    return Err(PullError::Content(format!("blob {} is longer than its {} bytes", d.digest, d.size)));
                }
                ctx.update(&chunk);
                file.write_all(&chunk).await.map_err(|e| store_err(&tmp, e))?;
            }
            file.sync_all().await.map_err(|e| store_err(&tmp, e))?;
            let actual = hex_digest(ctx.finish().as_ref());
            if actual != d.digest || size != d.size {
                return Err(PullError::Content(format!(
                    "blob {} came as {size} bytes with digest {actual} (want {} bytes)",
                    d.digest, d.size
                )));
            }
            let dest = store.blob_path(&d.digest);
            tokio::fs::rename(&tmp, &dest).await.map_err(|e| store_err(&dest, e))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    /// A GET with the authorization won so far; a 401 is answered once by its challenge.
    async fn get(&self, url: &str, accept: Option<&str>) -> Result<reqwest::Response, PullError> {
        let mut answered = false;
        loop {
            let mut req = self.client.get(url);
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            let current = self.authorization.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(a) = &current {
                req = req.header(AUTHORIZATION, a);
            }
            let resp = req.send().await.map_err(|e| self.transport_err(e))?;
            if resp.status() == StatusCode::UNAUTHORIZED && !answered {
                answered = true;
                let challenge =
                    resp.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).and_then(auth::parse_challenge);
                let next = match challenge {
                    Some(Challenge::Basic) => self.creds.as_ref().and_then(Credentials::basic),
                    Some(Challenge::Bearer { realm, service, scope }) => {
                        let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", self.ep.repository));
                        Some(format!("Bearer {}", self.token(&realm, service.as_deref(), &scope).await?))
                    }
                    None => None,
                };
                match next {
                    Some(a) if Some(&a) != current.as_ref() => {
                        *self.authorization.lock().unwrap_or_else(|e| e.into_inner()) = Some(a);
                        continue;
                    }
                    _ => return Err(self.registry_err(error_message(resp).await)),
                }
            }
            if !resp.status().is_success() {
                return Err(self.registry_err(error_message(resp).await));
            }
            return Ok(resp);
        }
    }

    /// A bearer token from the realm (Docker's token flow; OAuth2 refresh-token grant for an
    /// identity token).
    async fn token(&self, realm: &str, service: Option<&str>, scope: &str) -> Result<String, PullError> {
        let realm_url = reqwest::Url::parse(realm)
            .map_err(|e| self.registry_err(format!("token realm {realm:?} is not a URL: {e}")))?;
        if !matches!(realm_url.scheme(), "http" | "https") {
            return Err(self.registry_err(format!("token realm {realm:?} is not http(s)")));
        }
        let identity = self.creds.as_ref().and_then(|c| c.identity_token.clone());
        let req = if let Some(refresh) = identity {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token")
                .append_pair("refresh_token", &refresh)
                .append_pair("scope", scope)
                .append_pair("client_id", "skiff");
            if let Some(s) = service {
                form.append_pair("service", s);
            }
            self.client.post(realm_url).header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(form.finish())
        } else {
            let mut url = realm_url;
            {
                let mut q = url.query_pairs_mut();
                if let Some(s) = service {
                    q.append_pair("service", s);
                }
                q.append_pair("scope", scope);
            }
            let mut req = self.client.get(url);
            if let Some(b) = self.creds.as_ref().and_then(Credentials::basic) {
                req = req.header(AUTHORIZATION, b);
            }
            req
        };
        let resp = req.send().await.map_err(|e| self.transport_err(e))?;
        if !resp.status().is_success() {
            return Err(self.registry_err(format!("token from {realm}: {}", error_message(resp).await)));
        }
        let body: Value = resp.json().await.map_err(|e| self.registry_err(format!("token from {realm}: {e}")))?;
        body["token"]
            .as_str()
            .or(body["access_token"].as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| self.registry_err(format!("token from {realm}: the answer has no token")))
    }
}

fn store_err(path: &std::path::Path, e: std::io::Error) -> PullError {
    PullError::Store(format!("{}: {e}", path.display()))
}

/// A registry's error answer as it words it: `code: message` of each error of its JSON body
/// (`unauthorized: authentication required`), else the HTTP status.
async fn error_message(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    registry_errors(&body).unwrap_or_else(|| format!("unexpected status {status}"))
}

fn registry_errors(body: &[u8]) -> Option<String> {
    let doc: Value = serde_json::from_slice(body).ok()?;
    let errors: Vec<String> = doc["errors"]
        .as_array()?
        .iter()
        .map(|e| {
            let code = e["code"].as_str().unwrap_or("error").to_lowercase();
            match e["message"].as_str().filter(|m| !m.is_empty()) {
                Some(m) => format!("{code}: {m}"),
                None => code,
            }
        })
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

/// A content descriptor whose digest is a well-formed sha256 and size is given.
#[derive(Debug, Clone)]
struct Descriptor {
    digest: String,
    size: u64,
}

impl Descriptor {
    fn of(v: &Value) -> Result<Descriptor, PullError> {
        let digest = v["digest"].as_str().filter(|d| digest_hex(d).is_some());
        match (digest, v["size"].as_u64()) {
            (Some(d), Some(size)) => Ok(Descriptor { digest: d.to_string(), size }),
            _ => Err(PullError::Content(format!("bad descriptor in manifest: {v}"))),
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex_digest(ring::digest::digest(&SHA256, bytes).as_ref())
}

fn hex_digest(d: &[u8]) -> String {
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn is_index(doc: &Value, media: &str) -> bool {
    match doc["mediaType"].as_str() {
        Some(m) => m == OCI_INDEX || m == DOCKER_LIST,
        None => media == OCI_INDEX || media == DOCKER_LIST || doc["manifests"].is_array(),
    }
}

/// This host's platform as OCI names it: `linux`, the GOARCH name, and the variant of arm.
pub fn platform() -> (&'static str, &'static str, Option<&'static str>) {
    let arch = images::host_arch();
    let variant = match arch {
        "arm64" => Some("v8"),
        "arm" => Some("v7"),
        _ => None,
    };
    ("linux", arch, variant)
}

/// The entry of an index for `os/arch[/variant]`: an exact variant first, then one without a
/// variant (for arm64, `v8` and none are the same), as containerd's platform matcher does.
pub fn choose_platform<'a>(index: &'a Value, os: &str, arch: &str, variant: Option<&str>) -> Option<&'a Value> {
    let entries: Vec<&Value> = index["manifests"]
        .as_array()?
        .iter()
        .filter(|m| m["platform"]["os"].as_str() == Some(os) && m["platform"]["architecture"].as_str() == Some(arch))
        .filter(|m| m["digest"].as_str().and_then(digest_hex).is_some())
        .collect();
    let variant_of = |m: &Value| m["platform"]["variant"].as_str().map(str::to_string);
    if let Some(v) = variant {
        if let Some(m) = entries.iter().find(|m| variant_of(m).as_deref() == Some(v)) {
            return Some(m);
        }
        return entries.into_iter().find(|m| variant_of(m).is_none());
    }
    entries.iter().find(|m| variant_of(m).is_none()).or(entries.first()).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn an_index_gives_this_platform_exact_variant_first() {
        let index = json!({"manifests": [
            {"digest": d('a'), "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
            {"digest": d('b'), "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
            {"digest": d('c'), "platform": {"os": "linux", "architecture": "arm64"}},
            {"digest": d('e'), "platform": {"os": "windows", "architecture": "amd64"}},
            {"digest": d('f'), "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": d('1'), "platform": {"os": "unknown", "architecture": "unknown"}},
        ]});
        let pick = |arch, variant| choose_platform(&index, "linux", arch, variant).and_then(|m| m["digest"].as_str());
        assert_eq!(pick("amd64", None), Some(d('f').as_str()));
        assert_eq!(pick("arm", Some("v7")), Some(d('b').as_str()));
        assert_eq!(pick("arm64", Some("v8")), Some(d('c').as_str()), "arm64 without a variant is v8");
        assert_eq!(pick("arm", Some("v5")), None, "another arm variant is not taken");
        assert_eq!(pick("s390x", None), None);
        let (os, arch, variant) = platform();
        assert_eq!(os, "linux");
        assert!(!arch.is_empty() && arch != "x86_64" && arch != "aarch64");
        assert_eq!(variant.is_some(), arch == "arm" || arch == "arm64");
        let bad =
            json!({"manifests": [{"digest": "sha256:../../x", "platform": {"os": "linux", "architecture": "amd64"}}]});
        assert_eq!(choose_platform(&bad, "linux", "amd64", None), None, "a malformed digest is never chosen");
    }

    #[test]
    fn registry_errors_are_worded_as_the_registry_words_them() {
        let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#;
        assert_eq!(registry_errors(body).as_deref(), Some("unauthorized: authentication required"));
        let two = br#"{"errors":[{"code":"DENIED","message":""},{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#;
        assert_eq!(
            registry_errors(two).as_deref(),
            Some("denied; name_unknown: repository name not known to registry")
        );
        assert_eq!(registry_errors(b"<html>"), None);
        assert_eq!(registry_errors(br#"{"errors":[]}"#), None);
    }

    #[test]
    fn indexes_are_told_by_media_type_or_shape() {
        assert!(is_index(&json!({"mediaType": OCI_INDEX}), ""));
        assert!(is_index(&json!({"manifests": []}), ""));
        assert!(is_index(&json!({}), DOCKER_LIST));
        assert!(!is_index(&json!({"mediaType": OCI_MANIFEST, "manifests": []}), OCI_INDEX));
        assert!(Descriptor::of(&json!({"digest": d('a')})).is_err(), "a size is required");
        assert!(Descriptor::of(&json!({"digest": "md5:x", "size": 1})).is_err());
    }
}
