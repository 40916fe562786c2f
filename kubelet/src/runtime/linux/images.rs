//! The node's image store: a content-addressed blob store (`blobs/sha256/<hex>`, every blob
//! verified against its digest) and a table of references (`refs.json`: normalised reference →
//! manifest digest), shared by every pod of the node. Images get in by import of a tarball —
//! docker-archive (`docker save`) or OCI image layout, uncompressed or as a whole gzip- or
//! zstd-compressed (told by the first bytes, not the file name) — the air-gapped path of DESIGN
//! §10; registry pulls come later and store the same way.
//!
//! A docker-archive has no OCI manifest: one is written for it (config and layers as the archive
//! names them, each layer's media type after its compression as its first bytes tell), so every
//! image in the store is an OCI manifest and its `imageID` is `name@sha256:<manifest digest>`.
//! An OCI layout's index may name a multi-platform index; the manifest of this platform (linux
//! and the host's architecture) is taken. Layer blobs are stored as they come (compressed ones
//! compressed, under the digest a registry names them by); unpacking decompresses
//! ([`super::layers`], [`super::snapshots`]).
//!
//! The store is shared by the agent and `skiff images` while the agent runs: blobs are written to
//! a temp file and renamed, `refs.json` is replaced by rename, and every read-modify-write of it
//! holds an exclusive `flock` on `<root>/lock`. Nothing here mounts or forks.

use super::layers::Compression;
use super::{io_err, IoError};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use ring::digest::{Context, SHA256};
use rustix::fs::FlockOperation;
use serde_json::{json, Value};

use crate::runtime::image_ref::ImageRef;

const MANIFEST_V2: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The metadata files of an archive (`manifest.json`, `index.json`, `oci-layout`) are read into
/// memory up to this size; everything else is streamed into the store.
const MAX_METADATA: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{file}: not an image archive: {reason}")]
    NotAnImage { file: String, reason: String },
    #[error("{file}: blob {name} has digest sha256:{actual}, not the sha256:{expected} it is named by")]
    DigestMismatch { file: String, name: String, expected: String, actual: String },
    #[error("invalid image reference {0:?}")]
    BadReference(String),
}

/// The store of a data directory: `<data-dir>/agent/store`.
pub fn store_root(data_dir: &Path) -> PathBuf {
    data_dir.join("agent").join("store")
}

/// The normalised form of a reference (`busybox:1.36` → `docker.io/library/busybox:1.36`).
pub fn normalise(reference: &str) -> Result<String, ImageError> {
    let r = ImageRef::parse(reference).map_err(|_| ImageError::BadReference(reference.to_string()))?;
    Ok(match (&r.tag, &r.digest) {
        (_, Some(d)) => format!("{}@{d}", r.name),
        (Some(t), None) => format!("{}:{t}", r.name),
        (None, None) => format!("{}:latest", r.name),
    })
}

/// The hex of a `sha256:<64 lowercase hex>` digest; `None` for anything else (so a digest read
/// from an archive can never name a path outside the store).
pub fn digest_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

/// The OCI architecture name of this host.
pub(super) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// A `flock` on a file, released when dropped (the lock belongs to this open file, so two
/// threads of one process exclude each other as two processes do).
#[derive(Debug)]
pub(super) struct FileLock {
    _file: File,
}

impl FileLock {
    /// Waits for an exclusive lock on `path` (created if missing).
    pub(super) fn exclusive(path: &Path) -> Result<FileLock, IoError> {
        FileLock::take(path, FlockOperation::LockExclusive)
    }

    /// Waits for a shared lock on `path` (created if missing).
    pub(super) fn shared(path: &Path) -> Result<FileLock, IoError> {
        FileLock::take(path, FlockOperation::LockShared)
    }

    fn take(path: &Path, op: FlockOperation) -> Result<FileLock, IoError> {
        let file =
            OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(io_err("open", path))?;
        loop {
            match rustix::fs::flock(&file, op) {
                Ok(()) => return Ok(FileLock { _file: file }),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(io_err("lock", path)(e.into())),
            }
        }
    }
}

/// One image as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The normalised reference.
    pub reference: String,
    /// `sha256:<hex>` of the manifest.
    pub manifest_digest: String,
    pub config_digest: String,
    /// Layer digests, base first.
    pub layers: Vec<String>,
    /// Config plus layers, in bytes (as stored: compressed layers count compressed).
    pub size: u64,
}

/// A handle on the store at a root; cheap to clone, and any number of handles (in this process
/// or another) may use one store at once.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
}

impl ImageStore {
    /// Opens (creating) the store at `root` (`<data-dir>/agent/store`, [`store_root`]).
    pub fn open(root: &Path) -> Result<ImageStore, ImageError> {
        let blobs = root.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(io_err("create", &blobs))?;
        let store = ImageStore { root: root.to_path_buf() };
        // A store from before pulls and pinning holds imported images only: pin them all.
        if !store.pinned_path().exists() {
            let _lock = store.lock()?;
            if !store.pinned_path().exists() {
                let refs: Vec<String> = store.refs()?.into_keys().collect();
                store.write_json(&store.pinned_path(), &refs)?;
            }
        }
        Ok(store)
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of a blob (`sha256:<hex>` or `<hex>`).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root.join("blobs").join("sha256").join(hex)
    }

    /// Stores what `reader` yields; returns its digest (`sha256:<hex>`) and size. The blob is
    /// written to a temp file and renamed into place, so a reader never sees half a blob.
    pub fn put_blob(&self, mut reader: impl Read) -> Result<(String, u64), ImageError> {
        let dir = self.root.join("blobs").join("sha256");
        let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), rand::random::<u64>()));
        let result = (|| {
            let mut file = File::create(&tmp).map_err(io_err("create", &tmp))?;
            let mut ctx = Context::new(&SHA256);
            let mut buf = vec![0u8; 64 * 1024];
            let mut size = 0u64;
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_err("read into", &tmp)(e).into()),
                };
                ctx.update(&buf[..n]);
                file.write_all(&buf[..n]).map_err(io_err("write", &tmp))?;
                size += n as u64;
            }
            file.sync_all().map_err(io_err("sync", &tmp))?;
            let hex: String = ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect();
            let dest = dir.join(&hex);
            fs::rename(&tmp, &dest).map_err(io_err("store", &dest))?;
            Ok((format!("sha256:{hex}"), size))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Whether the store has the blob `digest` at `size` bytes (every stored blob was verified
    /// on its way in).
    pub fn has_blob(&self, digest: &str, size: u64) -> bool {
        digest_hex(digest).is_some() && fs::metadata(self.blob_path(digest)).is_ok_and(|m| m.len() == size)
    }

    /// A fresh temp path among the blobs, for a blob being written (renamed to
    /// [`ImageStore::blob_path`] once verified; left-overs go with image GC).
    pub fn temp_blob_path(&self) -> PathBuf {
        self.root.join("blobs").join("sha256").join(format!(".tmp-{}-{}", std::process::id(), rand::random::<u64>()))
    }

    /// Records `reference` → the manifest `digest` (which must be stored).
    pub fn set_ref(&self, reference: &str, digest: &str) -> Result<(), ImageError> {
        let reference = normalise(reference)?;
        let _lock = self.lock()?;
        let mut refs = self.refs()?;
        if refs.get(&reference).map(String::as_str) != Some(digest) {
            refs.insert(reference, digest.to_string());
            self.write_refs(&refs)?;
        }
        Ok(())
    }

    fn read_blob(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let path = self.blob_path(digest);
        Ok(fs::read(&path).map_err(io_err("read", &path))?)
    }

    /// How a stored blob is compressed, as its first bytes tell.
    fn blob_compression(&self, digest: &str) -> Result<Compression, ImageError> {
        let path = self.blob_path(digest);
        let mut head = Vec::with_capacity(4);
        File::open(&path).and_then(|f| f.take(4).read_to_end(&mut head)).map_err(io_err("read", &path))?;
        Ok(Compression::detect(&head))
    }

    fn refs_path(&self) -> PathBuf {
        self.root.join("refs.json")
    }

    /// Holds the store's lock: every read-modify-write of `refs.json` happens under it.
    fn lock(&self) -> Result<FileLock, ImageError> {
        Ok(FileLock::exclusive(&self.root.join("lock"))?)
    }

    /// Reference → manifest digest.
    pub fn refs(&self) -> Result<BTreeMap<String, String>, ImageError> {
        let path = self.refs_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| io_err("parse", &path)(io::Error::new(io::ErrorKind::InvalidData, e)).into()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(io_err("read", &path)(e).into()),
        }
    }

    /// Replaces `refs.json` (by rename: readers see the old table or the new one, whole). Only
    /// under [`ImageStore::lock`].
    fn write_refs(&self, refs: &BTreeMap<String, String>) -> Result<(), ImageError> {
        self.write_json(&self.refs_path(), refs)
    }

    fn pinned_path(&self) -> PathBuf {
        self.root.join("pinned.json")
    }

    /// The references imported from tarballs: pinned, as k3s pins imported images, so image GC
    /// never removes them (they may have no registry to come back from). `skiff images rm`
    /// unpins.
    pub fn pinned(&self) -> Result<std::collections::BTreeSet<String>, ImageError> {
        let path = self.pinned_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| io_err("parse", &path)(io::Error::new(io::ErrorKind::InvalidData, e)).into()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Default::default()),
            Err(e) => Err(io_err("read", &path)(e).into()),
        }
    }

    /// Adds and removes pinned references. Only under [`ImageStore::lock`].
    fn update_pinned(&self, add: &[String], remove: &[String]) -> Result<(), ImageError> {
        let mut pinned = self.pinned()?;
        let before = pinned.clone();
        pinned.extend(add.iter().cloned());
        for r in remove {
            pinned.remove(r);
        }
        if pinned != before {
            self.write_json(&self.pinned_path(), &pinned)?;
        }
        Ok(())
    }

    /// Replaces a JSON file by rename. Only under [`ImageStore::lock`].
    fn write_json(&self, path: &Path, value: &impl serde::Serialize) -> Result<(), ImageError> {
        let path = path.to_path_buf();
        let tmp = self.root.join(format!(".json-{}-{}.json", std::process::id(), rand::random::<u64>()));
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| io_err("encode", &path)(io::Error::other(e)))?;
        let written = File::create(&tmp)
            .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
            .map_err(io_err("write", &tmp))
            .and_then(|()| fs::rename(&tmp, &path).map_err(io_err("replace", &path)));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        Ok(written?)
    }

    /// The image a reference names, if the store has it.
    pub fn resolve(&self, reference: &str) -> Result<Option<Image>, ImageError> {
        let reference = normalise(reference)?;
        let Some(digest) = self.refs()?.get(&reference).cloned() else { return Ok(None) };
        self.image(reference, digest).map(Some)
    }

    /// Every image the store has, one per reference, in reference order. A reference whose
    /// manifest cannot be read is left out (and logged), so one broken image hides no other.
    pub fn list(&self) -> Result<Vec<Image>, ImageError> {
        let mut out = Vec::new();
        for (reference, digest) in self.refs()? {
            match self.image(reference.clone(), digest) {
                Ok(image) => out.push(image),
                Err(e) => tracing::warn!(image = %reference, error = %e, "image left out of the list"),
            }
        }
        Ok(out)
    }

    /// The image of a reference from its stored manifest.
    fn image(&self, reference: String, digest: String) -> Result<Image, ImageError> {
        let manifest: Value = serde_json::from_slice(&self.read_blob(&digest)?)
            .map_err(|e| ImageError::NotAnImage { file: reference.clone(), reason: format!("stored manifest: {e}") })?;
        let config = &manifest["config"];
        let layers: Vec<&Value> = manifest["layers"].as_array().map(|l| l.iter().collect()).unwrap_or_default();
        Ok(Image {
            manifest_digest: digest,
            config_digest: config["digest"].as_str().unwrap_or_default().to_string(),
            layers: layers.iter().filter_map(|l| l["digest"].as_str().map(str::to_string)).collect(),
            size: config["size"].as_u64().unwrap_or(0) + layers.iter().filter_map(|l| l["size"].as_u64()).sum::<u64>(),
            reference,
        })
    }

    /// Forgets a reference (its blobs stay until image garbage collection). Whether it existed.
    pub fn remove(&self, reference: &str) -> Result<bool, ImageError> {
        let reference = normalise(reference)?;
        let _lock = self.lock()?;
        let mut refs = self.refs()?;
        let removed = refs.remove(&reference).is_some();
        if removed {
            self.write_refs(&refs)?;
        }
        self.update_pinned(&[], &[reference])?;
        Ok(removed)
    }

    /// Forgets every reference to one of the manifest `digests`; returns the references removed.
    pub fn remove_digests(&self, digests: &std::collections::HashSet<String>) -> Result<Vec<String>, ImageError> {
        let _lock = self.lock()?;
        let mut refs = self.refs()?;
        let removed: Vec<String> = refs.iter().filter(|(_, d)| digests.contains(*d)).map(|(r, _)| r.clone()).collect();
        if !removed.is_empty() {
            refs.retain(|_, d| !digests.contains(d));
            self.write_refs(&refs)?;
            self.update_pinned(&[], &removed)?;
        }
        Ok(removed)
    }

    /// The manifest, config and layer digests of every referenced image and of the manifests in
    /// `keep` (images of containers): what blob GC must leave.
    pub fn reachable(
        &self,
        keep: &std::collections::HashSet<String>,
    ) -> Result<std::collections::HashSet<String>, ImageError> {
        let mut out = std::collections::HashSet::new();
        let manifests: Vec<String> = self.refs()?.into_values().chain(keep.iter().cloned()).collect();
        for digest in manifests {
            if let Ok(image) = self.image(String::new(), digest.clone()) {
                out.insert(image.config_digest);
                out.extend(image.layers);
            }
            out.insert(digest);
        }
        Ok(out)
    }

    /// Removes the blobs (and temp files of interrupted writes) not in `reachable` whose last
    /// change is older than `min_age` (so a blob written by a pull or an import in progress,
    /// not yet referenced, stays); returns how many and their bytes.
    pub fn remove_blobs(
        &self,
        reachable: &std::collections::HashSet<String>,
        min_age: std::time::Duration,
    ) -> Result<(usize, u64), ImageError> {
        let dir = self.root.join("blobs").join("sha256");
        let now = std::time::SystemTime::now();
        let (mut count, mut bytes) = (0, 0);
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if reachable.contains(&format!("sha256:{name}")) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            let age = meta.modified().ok().and_then(|m| now.duration_since(m).ok()).unwrap_or_default();
            if age < min_age || !meta.is_file() {
                continue;
            }
            let path = entry.path();
            match fs::remove_file(&path) {
                Ok(()) => {
                    count += 1;
                    bytes += meta.len();
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e).into()),
            }
        }
        Ok((count, bytes))
    }

    /// Imports a tarball (docker-archive or OCI image layout; uncompressed, gzip or zstd);
    /// returns the references it added, each tag the archive names. An archive that is not
    /// whole and right adds no reference (the blobs it brought wait for garbage collection).
    pub fn import(&self, path: &Path) -> Result<Vec<String>, ImageError> {
        let file_name = path.display().to_string();
        let file = File::open(path).map_err(io_err("open", path))?;
        let (_, stream) = super::layers::decompress(io::BufReader::new(file)).map_err(io_err("read", path))?;
        let mut archive = tar::Archive::new(stream);
        // Every regular file becomes a blob; the few metadata files are kept in memory as well.
        let mut blobs: HashMap<String, (String, u64)> = HashMap::new();
        let mut metadata: HashMap<String, Vec<u8>> = HashMap::new();
        let entries = archive.entries().map_err(io_err("read", path))?;
        for entry in entries {
            let mut entry = entry.map_err(io_err("read", path))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name =
                entry.path().map_err(io_err("read", path))?.to_string_lossy().trim_start_matches("./").to_string();
            let size = entry.size();
            let is_metadata = matches!(name.as_str(), "manifest.json" | "index.json" | "oci-layout");
            let (digest, stored) = if is_metadata && size <= MAX_METADATA {
                let mut bytes = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut bytes).map_err(io_err("read", path))?;
                let put = self.put_blob(bytes.as_slice())?;
                metadata.insert(name.clone(), bytes);
                put
            } else {
                self.put_blob(&mut entry)?
            };
            if stored != size {
                return Err(ImageError::NotAnImage {
                    file: file_name,
                    reason: format!("{name} is cut short ({stored} of {size} bytes)"),
                });
            }
            if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                let actual = digest.trim_start_matches("sha256:");
                if hex != actual {
                    return Err(ImageError::DigestMismatch {
                        file: file_name,
                        expected: hex.to_string(),
                        actual: actual.to_string(),
                        name,
                    });
                }
            }
            blobs.insert(name, (digest, stored));
        }
        let named: Vec<(String, String)> = if let Some(manifest) = metadata.get("manifest.json") {
            self.docker_archive(&file_name, manifest, &blobs)?
        } else if metadata.contains_key("oci-layout") {
            let index = metadata.get("index.json").ok_or_else(|| ImageError::NotAnImage {
                file: file_name.clone(),
                reason: "OCI layout without index.json".into(),
            })?;
            self.oci_layout(&file_name, index)?
        } else {
            return Err(ImageError::NotAnImage {
                file: file_name,
                reason: "neither manifest.json (docker-archive) nor oci-layout (OCI image layout) found".into(),
            });
        };
        let _lock = self.lock()?;
        let mut refs = self.refs()?;
        let mut added = Vec::new();
        for (reference, digest) in named {
            refs.insert(reference.clone(), digest);
            added.push(reference);
        }
        self.write_refs(&refs)?;
        self.update_pinned(&added, &[])?;
        Ok(added)
    }

    fn docker_archive(
        &self,
        file: &str,
        manifest: &[u8],
        blobs: &HashMap<String, (String, u64)>,
    ) -> Result<Vec<(String, String)>, ImageError> {
        let bad = |reason: String| ImageError::NotAnImage { file: file.to_string(), reason };
        let entries: Vec<Value> = serde_json::from_slice(manifest).map_err(|e| bad(format!("manifest.json: {e}")))?;
        let mut out = Vec::new();
        for entry in entries {
            let blob = |name: &str| blobs.get(name).cloned().ok_or_else(|| bad(format!("{name} is named but missing")));
            let config = blob(entry["Config"].as_str().unwrap_or_default())?;
            let mut layers = Vec::new();
            for l in entry["Layers"].as_array().into_iter().flatten() {
                let (digest, size) = blob(l.as_str().unwrap_or_default())?;
                let media_type = self.blob_compression(&digest)?.layer_media_type();
                layers.push(json!({"mediaType": media_type, "digest": digest, "size": size}));
            }
            let oci = json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST_V2,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
                "layers": layers,
            });
            let bytes = serde_json::to_vec(&oci).map_err(|e| bad(e.to_string()))?;
            let (digest, _) = self.put_blob(bytes.as_slice())?;
            for tag in entry["RepoTags"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                out.push((normalise(tag)?, digest.clone()));
            }
        }
        if out.is_empty() {
            return Err(bad("no image in it has a tag (RepoTags)".into()));
        }
        Ok(out)
    }

    fn oci_layout(&self, file: &str, index: &[u8]) -> Result<Vec<(String, String)>, ImageError> {
        let bad = |reason: String| ImageError::NotAnImage { file: file.to_string(), reason };
        let index: Value = serde_json::from_slice(index).map_err(|e| bad(format!("index.json: {e}")))?;
        let mut out = Vec::new();
        for desc in index["manifests"].as_array().into_iter().flatten() {
            let annotations = &desc["annotations"];
            let name = annotations["io.containerd.image.name"].as_str().or_else(|| {
                annotations["org.opencontainers.image.ref.name"].as_str().filter(|n| n.contains(['/', ':']))
            });
            let Some(name) = name else { continue };
            let digest = self.platform_manifest(file, desc)?;
            out.push((normalise(name)?, digest));
        }
        if out.is_empty() {
            return Err(bad("no manifest in index.json carries an image name annotation".into()));
        }
        Ok(out)
    }

    /// The digest of this platform's manifest behind a descriptor (itself, or the matching entry
    /// of a multi-platform index), once every blob it names is in the store at its size.
    fn platform_manifest(&self, file: &str, desc: &Value) -> Result<String, ImageError> {
        let bad = |reason: String| ImageError::NotAnImage { file: file.to_string(), reason };
        let digest = self.present(file, desc)?;
        let bytes = self.read_blob(&digest)?;
        let doc: Value = serde_json::from_slice(&bytes).map_err(|e| bad(format!("{digest}: {e}")))?;
        let media = doc["mediaType"].as_str().or(desc["mediaType"].as_str()).unwrap_or(MANIFEST_V2);
        match media {
            OCI_INDEX | DOCKER_LIST => {
                let arch = host_arch();
                let chosen = doc["manifests"].as_array().into_iter().flatten().find(|m| {
                    m["platform"]["os"].as_str() == Some("linux")
                        && m["platform"]["architecture"].as_str() == Some(arch)
                });
                match chosen {
                    Some(m) => self.platform_manifest(file, m),
                    None => Err(bad(format!("{digest}: no manifest for linux/{arch}"))),
                }
            }
            MANIFEST_V2 | DOCKER_MANIFEST_V2 => {
                if !doc["config"].is_object() {
                    return Err(bad(format!("{digest}: a manifest without a config")));
                }
                self.present(file, &doc["config"])?;
                for layer in doc["layers"].as_array().into_iter().flatten() {
                    self.present(file, layer)?;
                }
                Ok(digest)
            }
            other => Err(bad(format!("{digest}: unsupported media type {other}"))),
        }
    }

    /// The digest of a descriptor whose blob is in the store, at the size the descriptor says
    /// when it says one.
    fn present(&self, file: &str, desc: &Value) -> Result<String, ImageError> {
        let bad = |reason: String| ImageError::NotAnImage { file: file.to_string(), reason };
        let digest = desc["digest"].as_str().ok_or_else(|| bad("a descriptor without a digest".into()))?;
        if digest_hex(digest).is_none() {
            return Err(bad(format!("{digest:?} is not a sha256 digest")));
        }
        let len =
            fs::metadata(self.blob_path(digest)).map_err(|_| bad(format!("{digest} is named but missing")))?.len();
        match desc["size"].as_u64() {
            Some(size) if size != len => Err(bad(format!("{digest} is {len} bytes, not the {size} named"))),
            _ => Ok(digest.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar archive of (name, bytes) entries.
    fn tarball(dir: &Path, name: &str, files: &[(&str, Vec<u8>)]) -> PathBuf {
        let path = dir.join(name);
        let mut b = tar::Builder::new(File::create(&path).expect("create"));
        for (n, bytes) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, n, bytes.as_slice()).expect("append");
        }
        b.finish().expect("finish");
        path
    }

    fn sha(bytes: &[u8]) -> String {
        ring::digest::digest(&SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn references_are_normalised_as_docker_does() {
        assert_eq!(normalise("busybox:1.36").ok().as_deref(), Some("docker.io/library/busybox:1.36"));
        assert_eq!(normalise("busybox").ok().as_deref(), Some("docker.io/library/busybox:latest"));
        assert_eq!(normalise("localhost:5000/app:v1").ok().as_deref(), Some("localhost:5000/app:v1"));
        assert!(matches!(normalise("Bad Name"), Err(ImageError::BadReference(_))));
    }

    #[test]
    fn a_docker_archive_is_imported_with_every_tag_and_an_oci_manifest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ImageStore::open(&dir.path().join("store")).expect("open");
        let config = br#"{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]}}"#.to_vec();
        let layer = b"pretend layer tar".to_vec();
        let manifest = format!(
            r#"[{{"Config":"{}.json","RepoTags":["busybox:1.36","busybox:stable"],"Layers":["abc/layer.tar"]}}]"#,
            sha(&config)
        );
        let tar = tarball(
            dir.path(),
            "busybox.tar",
            &[
                (&format!("{}.json", sha(&config)), config.clone()),
                ("abc/layer.tar", layer.clone()),
                ("manifest.json", manifest.into_bytes()),
            ],
        );
        let added = store.import(&tar).expect("import");
        assert_eq!(added, vec!["docker.io/library/busybox:1.36", "docker.io/library/busybox:stable"]);
        let img = store.resolve("busybox:1.36").expect("resolve").expect("present");
        assert_eq!(img.config_digest, format!("sha256:{}", sha(&config)));
        assert_eq!(img.layers, vec![format!("sha256:{}", sha(&layer))]);
        assert_eq!(img.size, (config.len() + layer.len()) as u64);
        // Every blob is stored under its own digest.
        for d in [&img.manifest_digest, &img.config_digest, &img.layers[0]] {
            let bytes = fs::read(store.blob_path(d)).expect("blob");
            assert_eq!(format!("sha256:{}", sha(&bytes)), *d);
        }
        assert_eq!(
            store.resolve("docker.io/library/busybox:stable").expect("resolve").map(|i| i.manifest_digest),
            Some(img.manifest_digest.clone())
        );
        assert!(store.remove("busybox:stable").expect("remove"));
        assert!(!store.remove("busybox:stable").expect("remove again"));
        assert!(store.resolve("busybox:stable").expect("resolve").is_none());
        assert!(store.resolve("busybox:1.36").expect("resolve").is_some(), "the other tag stays");
        // Importing the same archive again is idempotent.
        assert_eq!(store.import(&tar).expect("again").len(), 2);
    }

    #[test]
    fn an_oci_layout_with_a_multi_platform_index_resolves_to_this_platform() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ImageStore::open(&dir.path().join("store")).expect("open");
        let config = br#"{"os":"linux"}"#.to_vec();
        let layer = b"layer".to_vec();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": MANIFEST_V2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", sha(&config)), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{}", sha(&layer)), "size": layer.len()}],
        }))
        .expect("json");
        let other = b"{\"schemaVersion\":2}".to_vec();
        let idx = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": MANIFEST_V2, "digest": format!("sha256:{}", sha(&other)), "size": other.len(), "platform": {"os": "linux", "architecture": "mips"}},
                {"mediaType": MANIFEST_V2, "digest": format!("sha256:{}", sha(&manifest)), "size": manifest.len(), "platform": {"os": "linux", "architecture": host_arch()}},
            ],
        }))
        .expect("json");
        let top = serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [
            {"mediaType": OCI_INDEX, "digest": format!("sha256:{}", sha(&idx)), "size": idx.len(),
             "annotations": {"io.containerd.image.name": "registry.local/app:v1"}},
        ]}))
        .expect("json");
        let blob = |b: &Vec<u8>| (format!("blobs/sha256/{}", sha(b)), b.clone());
        let files = [
            ("oci-layout".to_string(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            ("index.json".to_string(), top),
            blob(&idx),
            blob(&manifest),
            blob(&other),
            blob(&config),
            blob(&layer),
        ];
        let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        let tar = tarball(dir.path(), "app.tar", &refs);
        assert_eq!(store.import(&tar).expect("import"), vec!["registry.local/app:v1"]);
        let img = store.resolve("registry.local/app:v1").expect("resolve").expect("present");
        assert_eq!(img.manifest_digest, format!("sha256:{}", sha(&manifest)));
        assert_eq!(img.layers, vec![format!("sha256:{}", sha(&layer))]);
    }

    #[test]
    fn corrupt_and_foreign_archives_are_refused_and_add_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ImageStore::open(&dir.path().join("store")).expect("open");
        let wrong = tarball(
            dir.path(),
            "wrong.tar",
            &[("oci-layout", b"{}".to_vec()), (&format!("blobs/sha256/{}", sha(b"x")), b"not x".to_vec())],
        );
        assert!(matches!(store.import(&wrong), Err(ImageError::DigestMismatch { .. })));
        let foreign = tarball(dir.path(), "foreign.tar", &[("hello.txt", b"hi".to_vec())]);
        assert!(matches!(store.import(&foreign), Err(ImageError::NotAnImage { .. })));
        let missing = tarball(
            dir.path(),
            "missing.tar",
            &[("manifest.json", br#"[{"Config":"c.json","RepoTags":["a:1"],"Layers":["l/layer.tar"]}]"#.to_vec())],
        );
        assert!(matches!(store.import(&missing), Err(ImageError::NotAnImage { .. })));
        assert!(store.refs().expect("refs").is_empty());
        let not_tar = dir.path().join("not.tar");
        fs::write(&not_tar, b"garbage").expect("write");
        assert!(store.import(&not_tar).is_err());
    }

    /// A docker-archive of one image (`tag`) with one layer, as tar bytes.
    fn docker_archive_tar(tag: &str, layer: &[u8]) -> Vec<u8> {
        let config = format!(r#"{{"os":"linux","architecture":"{}","tag":"{tag}"}}"#, host_arch()).into_bytes();
        let manifest =
            format!(r#"[{{"Config":"{}.json","RepoTags":["{tag}"],"Layers":["l1/layer.tar"]}}]"#, sha(&config));
        let mut b = tar::Builder::new(Vec::new());
        for (n, bytes) in [
            (format!("{}.json", sha(&config)), config),
            ("l1/layer.tar".to_string(), layer.to_vec()),
            ("manifest.json".to_string(), manifest.into_bytes()),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, n, bytes.as_slice()).expect("append");
        }
        b.into_inner().expect("tar")
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).expect("gzip");
        enc.finish().expect("gzip")
    }

    fn zstd(bytes: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(bytes, ruzstd::encoding::CompressionLevel::Fastest)
    }

    fn stored_manifest(store: &ImageStore, img: &Image) -> Value {
        serde_json::from_slice(&fs::read(store.blob_path(&img.manifest_digest)).expect("manifest")).expect("json")
    }

    #[test]
    fn compressed_archives_are_told_by_their_bytes_not_their_names() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ImageStore::open(&dir.path().join("store")).expect("open");
        let layer = b"a plain layer".to_vec();
        // Names that lie: the gzip archive is called .tar, the zstd one .tar.gz.
        let gz = dir.path().join("gz.tar");
        fs::write(&gz, gzip(&docker_archive_tar("app:gz", &layer))).expect("write");
        let zst = dir.path().join("zst.tar.gz");
        fs::write(&zst, zstd(&docker_archive_tar("app:zst", &layer))).expect("write");
        assert_eq!(store.import(&gz).expect("gzip archive"), vec!["docker.io/library/app:gz"]);
        assert_eq!(store.import(&zst).expect("zstd archive"), vec!["docker.io/library/app:zst"]);
        let img = store.resolve("app:zst").expect("resolve").expect("present");
        assert_eq!(img.layers, vec![format!("sha256:{}", sha(&layer))]);
        assert_eq!(stored_manifest(&store, &img)["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar");
    }

    #[test]
    fn compressed_docker_archive_layers_keep_their_digest_and_name_their_compression() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ImageStore::open(&dir.path().join("store")).expect("open");
        for (tag, layer, media) in [
            ("app:gz", gzip(b"layer tar"), "application/vnd.oci.image.layer.v1.tar+gzip"),
            ("app:zst", zstd(b"layer tar"), "application/vnd.oci.image.layer.v1.tar+zstd"),
        ] {
            let path = dir.path().join("archive.tar");
            fs::write(&path, docker_archive_tar(tag, &layer)).expect("write");
            store.import(&path).expect("import");
            let img = store.resolve(tag).expect("resolve").expect("present");
            assert_eq!(img.layers, vec![format!("sha256:{}", sha(&layer))], "the compressed blob's digest");
            assert_eq!(stored_manifest(&store, &img)["layers"][0]["mediaType"], media);
        }
    }

    #[test]
    fn an_oci_layout_whose_manifest_names_a_missing_layer_adds_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ImageStore::open(&dir.path().join("store")).expect("open");
        let config = b"{}".to_vec();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": MANIFEST_V2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", sha(&config)), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{}", sha(b"absent")), "size": 6}],
        }))
        .expect("json");
        let index = serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [
            {"mediaType": MANIFEST_V2, "digest": format!("sha256:{}", sha(&manifest)), "size": manifest.len(),
             "annotations": {"org.opencontainers.image.ref.name": "registry.local/app:v1"}},
        ]}))
        .expect("json");
        let tar = tarball(
            dir.path(),
            "broken.tar",
            &[
                ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
                ("index.json", index),
                (&format!("blobs/sha256/{}", sha(&manifest)), manifest.clone()),
                (&format!("blobs/sha256/{}", sha(&config)), config.clone()),
            ],
        );
        let err = store.import(&tar).expect_err("a layer is missing");
        assert!(err.to_string().contains("is named but missing"), "{err}");
        assert!(store.refs().expect("refs").is_empty());
        // A digest that is no digest never becomes a path.
        assert_eq!(digest_hex("sha256:../../etc/passwd"), None);
        assert_eq!(digest_hex(&format!("sha256:{}", sha(b"x"))), Some(sha(b"x").as_str()));
        assert_eq!(digest_hex(&sha(b"x")), None, "the algorithm is part of a digest");
    }

    #[test]
    fn imports_are_pinned_pulls_are_not_and_an_old_store_is_pinned_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("store");
        let store = ImageStore::open(&root).expect("open");
        let archive = dir.path().join("img.tar");
        fs::write(&archive, docker_archive_tar("imported:1", b"layer one")).expect("write");
        store.import(&archive).expect("import");
        let (digest, _) = store.put_blob(&b"{}"[..]).expect("blob");
        store.set_ref("pulled:1", &digest).expect("set ref");
        let pinned = store.pinned().expect("pinned");
        assert!(pinned.contains("docker.io/library/imported:1"), "{pinned:?}");
        assert!(!pinned.contains("docker.io/library/pulled:1"), "{pinned:?}");
        store.remove("imported:1").expect("remove");
        assert!(store.pinned().expect("pinned").is_empty(), "rm unpins");

        // A store written before pinning existed: every reference in it was imported.
        fs::remove_file(root.join("pinned.json")).expect("forget pins");
        let reopened = ImageStore::open(&root).expect("reopen");
        assert!(reopened.pinned().expect("pinned").contains("docker.io/library/pulled:1"));
    }

    #[test]
    fn list_names_every_reference() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ImageStore::open(&dir.path().join("store")).expect("open");
        assert!(store.list().expect("list").is_empty());
        for tag in ["b:1", "a:1"] {
            let path = dir.path().join("x.tar");
            fs::write(&path, docker_archive_tar(tag, b"layer")).expect("write");
            store.import(&path).expect("import");
        }
        let listed: Vec<String> = store.list().expect("list").into_iter().map(|i| i.reference).collect();
        assert_eq!(listed, vec!["docker.io/library/a:1", "docker.io/library/b:1"]);
    }

    #[test]
    fn concurrent_imports_and_removals_lose_no_reference() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("store");
        ImageStore::open(&root).expect("open");
        let threads: Vec<_> = (0..6)
            .map(|t| {
                let (root, dir) = (root.clone(), dir.path().to_path_buf());
                std::thread::spawn(move || {
                    let store = ImageStore::open(&root).expect("open");
                    for i in 0..8 {
                        let path = dir.join(format!("t{t}-{i}.tar"));
                        fs::write(&path, docker_archive_tar(&format!("app{t}:{i}"), b"layer")).expect("write");
                        store.import(&path).expect("import");
                        if i % 2 == 1 {
                            assert!(store.remove(&format!("app{t}:{i}")).expect("remove"));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let store = ImageStore::open(&root).expect("open");
        let refs = store.refs().expect("refs");
        assert_eq!(refs.len(), 6 * 4, "{refs:?}");
        assert!(refs.contains_key("docker.io/library/app5:6"));
        let leftovers: Vec<_> = fs::read_dir(&root)
            .expect("dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".refs-"))
            .collect();
        assert!(leftovers.is_empty(), "no temp refs file left behind");
    }
}
