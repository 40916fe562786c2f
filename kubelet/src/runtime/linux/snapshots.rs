//! Unpacked image layers, ready to stack with overlayfs: each layer of the image store unpacked
//! once per digest into `<root>/<hex>/fs` (root `<data-dir>/agent/snapshots`) and shared by every
//! image and container that has it. A container's root filesystem is an overlay of
//! [`Snapshots::prepare`]'s directories (top layer first, as `lowerdir=` wants them) with a
//! writable layer of its own on top.
//!
//! A layer is unpacked into `<root>/.tmp-<hex>-…` and renamed to `<root>/<hex>` once whole and
//! synced, so `<root>/<hex>` exists only complete, even after a crash. Concurrent prepares (other
//! threads, other processes) of one layer wait on that layer's lock (`<root>/locks/<hex>`, a
//! `flock`), and the second finds the work done. Prepares hold `<root>/lock` shared and
//! [`Snapshots::remove_unused`] holds it exclusive, so removal never races an unpack.
//!
//! Everything here blocks (unpacking is file I/O): from async code, call it in
//! `spawn_blocking`.

use super::images::{digest_hex, FileLock, Image, ImageStore};
use super::layers::{self, LayerError};
use super::{io_err, IoError};
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

const TEMP_PREFIX: &str = ".tmp-";
const TRASH_PREFIX: &str = ".trash-";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("image {reference}: {digest:?} is not a sha256 layer digest")]
    BadDigest { reference: String, digest: String },
    #[error("image {reference}: layer {digest} is not in the image store")]
    MissingLayer { reference: String, digest: String },
    #[error("image {reference}: unpack layer {digest}: {source}")]
    Unpack {
        reference: String,
        digest: String,
        #[source]
        source: LayerError,
    },
}

/// The snapshots of a data directory: `<data-dir>/agent/snapshots`.
pub fn snapshots_root(data_dir: &Path) -> PathBuf {
    data_dir.join("agent").join("snapshots")
}

/// The unpacked layers under one root. Any number of handles (threads, processes) may use one
/// root at once.
#[derive(Debug, Clone)]
pub struct Snapshots {
    root: PathBuf,
}

impl Snapshots {
    /// Opens (creating) the snapshots at `root` ([`snapshots_root`]).
    pub fn open(root: &Path) -> Result<Snapshots, SnapshotError> {
        let locks = root.join("locks");
        fs::create_dir_all(&locks).map_err(io_err("create", &locks))?;
        Ok(Snapshots { root: root.to_path_buf() })
    }

    /// The directory a layer (`sha256:<hex>`) unpacks into, whether or not it is there yet.
    pub fn layer_dir(&self, digest: &str) -> Option<PathBuf> {
        digest_hex(digest).map(|hex| self.root.join(hex).join("fs"))
    }

    /// Unpacks every layer of `image` not unpacked yet; returns the layers' directories, top
    /// layer first (the order of overlayfs' `lowerdir=`).
    pub fn prepare(&self, store: &ImageStore, image: &Image) -> Result<Vec<PathBuf>, SnapshotError> {
        let _shared = FileLock::shared(&self.root.join("lock"))?;
        let mut dirs = Vec::with_capacity(image.layers.len());
        for digest in &image.layers {
            let hex = digest_hex(digest).ok_or_else(|| SnapshotError::BadDigest {
                reference: image.reference.clone(),
                digest: digest.clone(),
            })?;
            let dir = self.root.join(hex);
            if !dir.exists() {
                let _layer = FileLock::exclusive(&self.root.join("locks").join(hex))?;
                // Another prepare may have unpacked it while this one waited.
                if !dir.exists() {
                    self.unpack(store, image, digest, hex)?;
                }
            }
            dirs.push(dir.join("fs"));
        }
        dirs.reverse();
        Ok(dirs)
    }

    /// Unpacks one layer into a temp directory and renames it into place. Only under the
    /// layer's lock.
    fn unpack(&self, store: &ImageStore, image: &Image, digest: &str, hex: &str) -> Result<(), SnapshotError> {
        self.remove_temps(|name| name.starts_with(&format!("{TEMP_PREFIX}{hex}-")))?;
        let started = Instant::now();
        let blob = store.blob_path(digest);
        let file = match File::open(&blob) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SnapshotError::MissingLayer { reference: image.reference.clone(), digest: digest.into() })
            }
            Err(e) => return Err(io_err("open", &blob)(e).into()),
        };
        let tmp = self.root.join(format!("{TEMP_PREFIX}{hex}-{}-{}", std::process::id(), rand::random::<u32>()));
        let result = (|| {
            let entries = layers::unpack(BufReader::new(file), &tmp.join("fs")).map_err(|source| {
                SnapshotError::Unpack { reference: image.reference.clone(), digest: digest.to_string(), source }
            })?;
            // The layer is durable before its name says it is complete.
            let dir = File::open(&tmp).map_err(io_err("open", &tmp))?;
            rustix::fs::syncfs(&dir).map_err(|e| io_err("sync", &tmp)(e.into()))?;
            let dest = self.root.join(hex);
            fs::rename(&tmp, &dest).map_err(io_err("rename into place", &dest))?;
            File::open(&self.root).and_then(|d| d.sync_all()).map_err(io_err("sync", &self.root))?;
            Ok(entries)
        })();
        match result {
            Ok(entries) => {
                tracing::info!(
                    layer = %digest,
                    image = %image.reference,
                    entries,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "layer unpacked"
                );
                Ok(())
            }
            Err(e) => {
                if let Err(rm) = fs::remove_dir_all(&tmp) {
                    tracing::warn!(path = %tmp.display(), error = %rm, "cannot remove a failed unpack");
                }
                Err(e)
            }
        }
    }

    /// The digests (`sha256:<hex>`) of the layers unpacked here.
    pub fn list(&self) -> Result<Vec<String>, SnapshotError> {
        let mut out: Vec<String> =
            self.entries()?.into_iter().filter(|n| is_hex(n)).map(|n| format!("sha256:{n}")).collect();
        out.sort();
        Ok(out)
    }

    /// Removes every unpacked layer whose digest (`sha256:<hex>`) is not in `in_use`, and what
    /// interrupted unpacks left; returns the digests removed. It waits for prepares in flight, and
    /// they for it; a layer a caller is about to use must be in `in_use` (the caller decides
    /// what is in use, across its own prepares in flight).
    pub fn remove_unused(&self, in_use: &HashSet<String>) -> Result<Vec<String>, SnapshotError> {
        let _exclusive = FileLock::exclusive(&self.root.join("lock"))?;
        // No prepare runs now: every temp is a leftover.
        self.remove_temps(|name| name.starts_with(TEMP_PREFIX) || name.starts_with(TRASH_PREFIX))?;
        let mut removed = Vec::new();
        for name in self.entries()? {
            let digest = format!("sha256:{name}");
            if !is_hex(&name) || in_use.contains(&digest) {
                continue;
            }
            // Out of its name first, so no half-removed layer ever looks complete.
            let from = self.root.join(&name);
            let trash = self.root.join(format!("{TRASH_PREFIX}{name}"));
            fs::rename(&from, &trash).map_err(io_err("rename for removal", &from))?;
            fs::remove_dir_all(&trash).map_err(io_err("remove", &trash))?;
            let lock = self.root.join("locks").join(&name);
            if let Err(e) = fs::remove_file(&lock) {
                if e.kind() != io::ErrorKind::NotFound {
                    return Err(io_err("remove", &lock)(e).into());
                }
            }
            tracing::info!(layer = %digest, "unused layer removed");
            removed.push(digest);
        }
        removed.sort();
        Ok(removed)
    }

    /// The names in the root.
    fn entries(&self) -> Result<Vec<String>, SnapshotError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(io_err("list", &self.root))? {
            let entry = entry.map_err(io_err("list", &self.root))?;
            if let Some(name) = entry.file_name().to_str() {
                out.push(name.to_string());
            }
        }
        Ok(out)
    }

    /// Removes the temp directories whose names `which` picks.
    fn remove_temps(&self, which: impl Fn(&str) -> bool) -> Result<(), SnapshotError> {
        for name in self.entries()? {
            if which(&name) {
                let path = self.root.join(&name);
                fs::remove_dir_all(&path).map_err(io_err("remove", &path))?;
                tracing::debug!(path = %path.display(), "leftover of an interrupted unpack removed");
            }
        }
        Ok(())
    }
}

/// A snapshot directory's name: 64 lowercase hex digits.
fn is_hex(name: &str) -> bool {
    digest_hex(&format!("sha256:{name}")).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    /// A layer tar with one file per (path, content).
    fn layer(files: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, content) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(content.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            h.set_cksum();
            b.append_data(&mut h, path, content.as_bytes()).expect("append");
        }
        b.into_inner().expect("tar")
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).expect("gzip");
        enc.finish().expect("gzip")
    }

    /// An image whose layers are put straight into the store (no manifest is needed to prepare).
    fn image(store: &ImageStore, name: &str, layers: &[Vec<u8>]) -> Image {
        let layers = layers.iter().map(|l| store.put_blob(l.as_slice()).expect("put").0).collect();
        Image { reference: name.into(), manifest_digest: String::new(), config_digest: String::new(), layers, size: 0 }
    }

    #[test]
    fn layers_unpack_once_top_first_and_unused_ones_go() {
        assert!(is_root(), "unpacking layers needs root: run as root, as CI does");
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ImageStore::open(&dir.path().join("store")).expect("store");
        let snaps = Snapshots::open(&dir.path().join("snapshots")).expect("snapshots");
        let base = gzip(&layer(&[("etc/os-release", "base\n")]));
        let a = image(&store, "a", &[base.clone(), layer(&[("app", "a\n")])]);
        let b = image(&store, "b", &[base, layer(&[("app", "b\n")])]);
        let dirs = snaps.prepare(&store, &a).expect("prepare a");
        assert_eq!(dirs.len(), 2);
        assert_eq!(Some(&dirs[0]), snaps.layer_dir(&a.layers[1]).as_ref(), "top layer first");
        assert_eq!(fs::read_to_string(dirs[0].join("app")).expect("app"), "a\n");
        assert_eq!(fs::read_to_string(dirs[1].join("etc/os-release")).expect("base"), "base\n");
        let dirs_b = snaps.prepare(&store, &b).expect("prepare b");
        assert_eq!(dirs_b[1], dirs[1], "the base layer is shared");
        assert_eq!(snaps.list().expect("list").len(), 3);
        assert_eq!(snaps.prepare(&store, &a).expect("again"), dirs, "prepare is idempotent");

        let in_use: HashSet<String> = b.layers.iter().cloned().collect();
        assert_eq!(snaps.remove_unused(&in_use).expect("gc"), vec![a.layers[1].clone()]);
        assert!(!dirs[0].exists() && dirs[1].exists() && dirs_b[0].exists());
        let mut left = snaps.list().expect("list");
        left.sort();
        let mut want = b.layers.clone();
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn a_failed_unpack_leaves_no_snapshot() {
        assert!(is_root(), "run as root, as CI does");
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ImageStore::open(&dir.path().join("store")).expect("store");
        let snaps = Snapshots::open(&dir.path().join("snapshots")).expect("snapshots");
        let mut truncated = gzip(&layer(&[("big", &"x".repeat(100_000))]));
        truncated.truncate(truncated.len() / 2);
        let img = image(&store, "broken", &[truncated]);
        assert!(matches!(snaps.prepare(&store, &img), Err(SnapshotError::Unpack { .. })));
        assert!(snaps.list().expect("list").is_empty());
        let names: Vec<String> = snaps.entries().expect("entries").into_iter().filter(|n| n.starts_with('.')).collect();
        assert!(names.is_empty(), "no temp left: {names:?}");
        // A layer the store does not have, and a digest that is no digest.
        let mut missing = img.clone();
        missing.layers = vec![format!("sha256:{}", "0".repeat(64))];
        assert!(matches!(snaps.prepare(&store, &missing), Err(SnapshotError::MissingLayer { .. })));
        missing.layers = vec!["sha256:../../etc".into()];
        assert!(matches!(snaps.prepare(&store, &missing), Err(SnapshotError::BadDigest { .. })));
    }

    #[test]
    fn leftovers_of_interrupted_unpacks_are_cleared() {
        assert!(is_root(), "run as root, as CI does");
        let dir = tempfile::tempdir().expect("temp dir");
        let store = ImageStore::open(&dir.path().join("store")).expect("store");
        let snaps = Snapshots::open(&dir.path().join("snapshots")).expect("snapshots");
        let img = image(&store, "a", &[layer(&[("f", "1")])]);
        let hex = digest_hex(&img.layers[0]).expect("hex").to_string();
        let stale = dir.path().join("snapshots").join(format!(".tmp-{hex}-1-2"));
        fs::create_dir_all(stale.join("fs")).expect("stale");
        snaps.prepare(&store, &img).expect("prepare");
        assert!(!stale.exists(), "the next unpack of the layer clears it");
        let other = dir.path().join("snapshots").join(".tmp-other-1-2");
        fs::create_dir_all(&other).expect("stale");
        let in_use: HashSet<String> = img.layers.iter().cloned().collect();
        assert!(snaps.remove_unused(&in_use).expect("gc").is_empty());
        assert!(!other.exists(), "garbage collection clears every leftover");
    }
}
