//! Debian's `docker-registry` (the CNCF distribution registry) for tests, and a small pusher of
//! the OCI distribution push API (POST + PUT blob uploads, PUT manifests).
//!
//! [`DockerRegistry::start`] runs `docker-registry serve` on `127.0.0.1:PORT` with storage in a
//! given directory and the `auth:` section given, optionally under a command prefix (`ip netns
//! exec NS` for a lab namespace); it is killed by its PID when dropped. Two registries may share
//! one storage directory one after the other: the tests push into a plain one on the host's
//! loopback and then serve the same storage with auth inside a lab namespace.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// A running `docker-registry`.
pub struct DockerRegistry {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl DockerRegistry {
    /// Starts it with `auth` (YAML of the config's `auth:` value, e.g. `{htpasswd: {realm: r,
    /// path: /x}}`; None for none); returns once it listens.
    pub fn start(prefix: &[&str], dir: &Path, storage: &Path, port: u16, auth: Option<&str>) -> DockerRegistry {
        let config = dir.join(format!("registry-{port}.yml"));
        let log = dir.join(format!("registry-{port}.log"));
        let auth = auth.map(|a| format!("auth: {a}\n")).unwrap_or_default();
        let text = format!(
            "version: 0.1\nlog: {{level: info}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\n\
             http:\n  addr: 127.0.0.1:{port}\n{auth}",
            storage.display()
        );
        fs::write(&config, text).expect("write the registry config");
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg("docker-registry");
                c
            }
            None => Command::new("docker-registry"),
        };
        let out = File::create(&log).expect("registry log");
        let err = out.try_clone().expect("registry log");
        let child = cmd
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start docker-registry (apt-get install docker-registry)");
        let mut reg = DockerRegistry { child, port, log };
        let listening = crate::eventually_blocking("docker-registry listening", Duration::from_secs(20), || {
            if let Ok(Some(status)) = reg.child.try_wait() {
                return Some(Err(format!("docker-registry exited {status}: {}", crate::tail_of_file(&reg.log, 20))));
            }
            let text = fs::read_to_string(&reg.log).unwrap_or_default();
            text.contains("listening on").then_some(Ok(()))
        });
        if let Err(e) = listening {
            panic!("{e}");
        }
        reg
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `htpasswd` file (bcrypt, as the registry wants) with one user.
pub fn htpasswd(path: &Path, user: &str, password: &str) {
    let out = Command::new("htpasswd").args(["-Bbn", user, password]).output().expect("htpasswd (apache2-utils)");
    assert!(out.status.success(), "htpasswd: {}", String::from_utf8_lossy(&out.stderr));
    fs::write(path, out.stdout).expect("write htpasswd");
}

pub fn sha256(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    format!("sha256:{}", d.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// A client of the push API at `base` (`http://127.0.0.1:PORT`), without auth.
pub struct Pusher {
    base: String,
    client: reqwest::blocking::Client,
}

/// What a push of an image wrote.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub manifest_digest: String,
    pub manifest_size: usize,
    pub config_digest: String,
}

impl Pusher {
    pub fn new(base: &str) -> Pusher {
        crate::install_crypto_provider();
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
        Pusher { base: base.trim_end_matches('/').to_string(), client }
    }

    /// Uploads a blob (POST to start, PUT with the digest to finish); returns its digest.
    pub fn blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let r = self.client.post(format!("{}/v2/{repo}/blobs/uploads/", self.base)).send().expect("start upload");
        assert_eq!(r.status().as_u16(), 202, "start upload: {}", r.text().unwrap_or_default());
        let location = r.headers().get("location").and_then(|v| v.to_str().ok()).expect("upload location").to_string();
        let url = if location.starts_with('/') { format!("{}{location}", self.base) } else { location };
        let sep = if url.contains('?') { '&' } else { '?' };
        let r = self
            .client
            .put(format!("{url}{sep}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .expect("finish upload");
        assert_eq!(r.status().as_u16(), 201, "finish upload of {digest}: {}", r.text().unwrap_or_default());
        digest
    }

    /// PUTs a manifest or index under `reference` (a tag or its digest); returns its digest.
    pub fn manifest(&self, repo: &str, reference: &str, media_type: &str, doc: &Value) -> (String, usize) {
        let bytes = serde_json::to_vec(doc).expect("manifest JSON");
        let r = self
            .client
            .put(format!("{}/v2/{repo}/manifests/{reference}", self.base))
            .header("content-type", media_type)
            .body(bytes.clone())
            .send()
            .expect("put manifest");
        assert_eq!(r.status().as_u16(), 201, "put manifest {repo}:{reference}: {}", r.text().unwrap_or_default());
        (sha256(&bytes), bytes.len())
    }

    /// Pushes the first image of a docker-archive tarball (as `docker save` and
    /// `scripts/busybox-image` write) as an OCI manifest tagged `tag`, each layer gzip-compressed
    /// when `gzip` is set.
    pub fn docker_archive(&self, tarball: &Path, repo: &str, tag: &str, gzip: bool) -> Pushed {
        let mut files = std::collections::HashMap::new();
        let mut archive = tar::Archive::new(File::open(tarball).expect("open the image tarball"));
        for entry in archive.entries().expect("read the tarball") {
            let mut entry = entry.expect("tar entry");
            let name = entry.path().expect("entry path").to_string_lossy().trim_start_matches("./").to_string();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("read entry");
            files.insert(name, bytes);
        }
        let manifest: Value = serde_json::from_slice(files.get("manifest.json").expect("manifest.json")).expect("json");
        let first = &manifest[0];
        let config = files.get(first["Config"].as_str().expect("Config")).expect("config file");
        let config_digest = self.blob(repo, config);
        let mut layers = Vec::new();
        for l in first["Layers"].as_array().expect("Layers") {
            let raw = files.get(l.as_str().expect("layer name")).expect("layer file");
            let (bytes, media) = if gzip {
                let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                std::io::Write::write_all(&mut enc, raw).expect("gzip");
                (enc.finish().expect("gzip"), "application/vnd.oci.image.layer.v1.tar+gzip")
            } else {
                (raw.clone(), "application/vnd.oci.image.layer.v1.tar")
            };
            let digest = self.blob(repo, &bytes);
            layers.push(json!({"mediaType": media, "digest": digest, "size": bytes.len()}));
        }
        let doc = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": layers,
        });
        let (manifest_digest, manifest_size) = self.manifest(repo, tag, OCI_MANIFEST, &doc);
        Pushed { manifest_digest, manifest_size, config_digest }
    }
}
