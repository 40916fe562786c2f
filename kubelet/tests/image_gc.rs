//! Image GC on a small tmpfs data dir: above the high threshold, unused pulled images go (their
//! references, blobs and unpacked layers) until usage is under the low threshold; an image a
//! container record names and an imported (pinned) image stay. Needs root (mounts a tmpfs).

mod images_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use images_support::{docker_archive, is_root, layer};
use kubelet::runtime::linux::images::{Image, ImageStore};
use kubelet::runtime::linux::runtime::LinuxRuntime;
use kubelet::runtime::linux::snapshots::Snapshots;
use kubelet::runtime::{ImageGcPolicy, Runtime};
use serde_json::json;

const MIB: usize = 1 << 20;

/// A tmpfs mounted for the test, lazily unmounted when dropped (also on panic).
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A layer of one incompressible file of about `mib` MiB.
fn big_layer(name: &str, mib: usize) -> Vec<u8> {
    let noise: String = (0..mib * MIB / 2).map(|_| format!("{:02x}", rand::random::<u8>())).collect::<String>();
    layer(&[(name, noise.as_str())])
}

/// An image stored as a pull stores it (blobs, manifest, reference; not pinned).
fn pulled(store: &ImageStore, reference: &str, layer: &[u8]) -> Image {
    let (layer_digest, layer_size) = store.put_blob(layer).expect("layer");
    let config = serde_json::to_vec(&json!({"architecture": images_support::arch(), "os": "linux"})).expect("json");
    let (config_digest, config_size) = store.put_blob(config.as_slice()).expect("config");
    let manifest = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}]}))
    .expect("json");
    let (digest, _) = store.put_blob(manifest.as_slice()).expect("manifest");
    store.set_ref(reference, &digest).expect("reference");
    store.resolve(reference).expect("resolve").expect("stored")
}

fn usage_percent(path: &Path) -> u64 {
    let s = rustix::fs::statvfs(path).expect("statvfs");
    (s.f_blocks - s.f_bavail) * 100 / s.f_blocks
}

/// Dates every blob two hours back (GC leaves blobs younger than a minute to imports in flight).
fn age_blobs(store: &ImageStore) {
    let dir = store.root().join("blobs").join("sha256");
    for e in fs::read_dir(&dir).expect("blobs").flatten() {
        let f = fs::File::options().write(true).open(e.path()).expect("open blob");
        f.set_modified(SystemTime::now() - Duration::from_secs(7200)).expect("age blob");
    }
}

#[tokio::test]
async fn unused_pulled_images_go_above_the_high_threshold_used_and_pinned_ones_stay() {
    if !is_root() {
        eprintln!("skipped: needs root to mount a tmpfs");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("agent");
    fs::create_dir_all(&root).expect("root");
    nix::mount::mount(Some("tmpfs"), &root, Some("tmpfs"), nix::mount::MsFlags::empty(), Some("size=32m"))
        .expect("mount a tmpfs");
    let _mount = Tmpfs(root.clone());
    let cgroupfs = tmp.path().join("cgroup");
    fs::create_dir_all(cgroupfs.join("memory")).expect("v1-shaped cgroupfs");

    let store = ImageStore::open(&root.join("store")).expect("store");
    let a = pulled(&store, "127.0.0.1:5000/gc/a:1", &big_layer("a", 4));
    let b = pulled(&store, "127.0.0.1:5000/gc/b:1", &big_layer("b", 4));
    let used = pulled(&store, "127.0.0.1:5000/gc/used:1", &big_layer("used", 4));
    let archive = tmp.path().join("pinned.tar");
    fs::write(&archive, docker_archive(&["localhost/gc/pinned:1"], &[big_layer("p", 4)])).expect("archive");
    store.import(&archive).expect("import");
    let pinned = store.resolve("localhost/gc/pinned:1").expect("resolve").expect("imported");
    // a's layer is unpacked (a snapshot to collect too).
    let snapshots = Snapshots::open(&root.join("snapshots")).expect("snapshots");
    snapshots.prepare(&store, &a).expect("unpack a");
    assert_eq!(snapshots.list().expect("list").len(), 1);
    // A container (exited, still recorded) uses `used`.
    let dir = root.join("containers").join("c1");
    fs::create_dir_all(&dir).expect("container dir");
    let meta = json!({"version": 1, "id": "c1", "sandbox_id": "s1", "name": "main", "attempt": 0,
        "image": "127.0.0.1:5000/gc/used:1", "image_ref": format!("127.0.0.1:5000/gc/used@{}", used.manifest_digest),
        "labels": {}, "created_at": "2026-12-02T10:00:01Z", "log_path": null, "cgroup": "skiff/besteffort/pods1/c1"});
    fs::write(dir.join("meta.json"), meta.to_string()).expect("meta");
    fs::write(
        dir.join("exit.json"),
        json!({"version": 1, "exit_code": 0, "signal": null, "finished_at": "2026-12-02T10:05:00Z", "reason": null, "message": null})
            .to_string(),
    )
    .expect("exit");
    age_blobs(&store);

    let rt = LinuxRuntime::open(&root, &cgroupfs, Path::new("/nonexistent/skiff")).expect("open");
    let policy = ImageGcPolicy { high_percent: 85, low_percent: 80, min_age: Duration::ZERO };
    // Below the high threshold: nothing goes.
    assert!(usage_percent(&root) < 85, "usage {}%", usage_percent(&root));
    let report = rt.collect_images(policy, false).await.expect("gc");
    assert!(report.images.is_empty(), "{report:?}");

    // Fill the filesystem to ~95 %: GC frees down to 80 %, which takes both unused pulled images.
    let s = rustix::fs::statvfs(&root).expect("statvfs");
    let target_used = s.f_blocks * 95 / 100;
    let filler = (target_used - (s.f_blocks - s.f_bavail)) * s.f_frsize;
    fs::write(root.join("filler"), vec![0x5a; filler as usize]).expect("filler");
    assert!(usage_percent(&root) >= 85, "usage {}%", usage_percent(&root));
    let report = rt.collect_images(policy, false).await.expect("gc");
    let mut removed = report.images.clone();
    removed.sort();
    assert_eq!(removed, ["127.0.0.1:5000/gc/a:1", "127.0.0.1:5000/gc/b:1"], "{report:?}");
    assert_eq!(report.layers, 1, "a's unpacked layer went: {report:?}");
    assert!(usage_percent(&root) < 80, "usage {}% after GC", usage_percent(&root));
    for gone in [&a, &b] {
        assert!(!store.blob_path(&gone.layers[0]).exists(), "{} layer blob left", gone.reference);
        assert!(!store.blob_path(&gone.manifest_digest).exists());
    }
    for kept in [&used, &pinned] {
        assert!(store.resolve(&kept.reference).expect("resolve").is_some(), "{} removed", kept.reference);
        assert!(store.blob_path(&kept.layers[0]).exists(), "{} layer blob removed", kept.reference);
    }
    assert!(snapshots.list().expect("list").is_empty());

    // Under disk pressure every unused image goes; still not the used or pinned ones.
    let report = rt.collect_images(policy, true).await.expect("gc");
    assert!(report.images.is_empty(), "{report:?}");
    assert_eq!(store.list().expect("list").len(), 2);
}
