//! Unpacked layers from imported images: shared between images, unpacked once however many
//! prepare them at once, removed when unused.

mod images_support;

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::sync::{Arc, Barrier, Mutex, OnceLock};

use images_support::{docker_archive, gzip, is_root, layer, oci_layout, write, zstd};
use kubelet::runtime::linux::images::ImageStore;
use kubelet::runtime::linux::snapshots::Snapshots;

const TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The names in the snapshots root other than the lock and the locks directory.
fn snapshot_entries(root: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root)
        .expect("snapshots root")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lock" && n != "locks")
        .collect();
    names.sort();
    names
}

#[test]
fn images_share_their_common_base_layer() {
    assert!(is_root(), "unpacking layers needs root (device nodes, trusted xattrs): run as root, as CI does");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ImageStore::open(&dir.path().join("store")).expect("store");
    let snaps = Snapshots::open(&dir.path().join("snapshots")).expect("snapshots");
    let base = gzip(&layer(&[("etc/os-release", "ID=base\n"), ("etc/motd", "welcome\n"), ("bin/sh", "shell")]));
    // One image from a gzipped docker-archive, the other from a zstd OCI layout; both on `base`.
    let web = write(
        dir.path(),
        "web.tar.gz",
        &gzip(&docker_archive(
            &["web:1"],
            &[base.clone(), layer(&[("srv/index.html", "web\n"), ("etc/.wh.motd", "")])],
        )),
    );
    let db = write(
        dir.path(),
        "db.tar.zst",
        &zstd(&oci_layout("registry.local/db:1", &[(base, TAR_GZIP), (zstd(&layer(&[("var/db", "db\n")])), TAR_ZSTD)])),
    );
    store.import(&web).expect("import web");
    store.import(&db).expect("import db");
    let web = store.resolve("web:1").expect("resolve").expect("web");
    let db = store.resolve("registry.local/db:1").expect("resolve").expect("db");
    assert_eq!(web.layers[0], db.layers[0], "the same base blob");

    let web_dirs = snaps.prepare(&store, &web).expect("prepare web");
    let db_dirs = snaps.prepare(&store, &db).expect("prepare db");
    assert_eq!(web_dirs.len(), 2);
    assert_eq!(web_dirs[1], db_dirs[1], "the base layer is unpacked once and shared");
    assert_eq!(snapshot_entries(&dir.path().join("snapshots")).len(), 3, "three distinct layers");
    // Top layer first; each layer unpacked on its own, whiteouts in overlay form.
    assert_eq!(fs::read_to_string(web_dirs[0].join("srv/index.html")).expect("top"), "web\n");
    assert!(fs::symlink_metadata(web_dirs[0].join("etc/motd")).expect("whiteout").file_type().is_char_device());
    assert_eq!(fs::read_to_string(web_dirs[1].join("etc/motd")).expect("base"), "welcome\n");
    assert_eq!(fs::read_to_string(db_dirs[0].join("var/db")).expect("zstd layer"), "db\n");
    for d in web_dirs.iter().chain(&db_dirs) {
        assert!(d.ends_with("fs") && d.parent().is_some_and(|p| p.parent() == Some(&dir.path().join("snapshots"))));
    }

    // When web goes, only its own layer does.
    assert!(store.remove("web:1").expect("rm"));
    let in_use: HashSet<String> = store.list().expect("list").into_iter().flat_map(|i| i.layers).collect();
    assert_eq!(snaps.remove_unused(&in_use).expect("gc"), [web.layers[1].clone()]);
    assert!(!web_dirs[0].exists());
    assert!(db_dirs.iter().all(|d| d.is_dir()), "db's layers, the shared base included, stay");
}

#[test]
fn concurrent_prepares_of_one_image_end_with_one_correct_snapshot() {
    assert!(is_root(), "run as root, as CI does");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ImageStore::open(&dir.path().join("store")).expect("store");
    // Layers big enough that the four prepares overlap.
    let files: Vec<(String, String)> =
        (0..300).map(|i| (format!("data/f{i:03}"), format!("{i}").repeat(2_000))).collect();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    let archive = docker_archive(
        &["big:1"],
        &[gzip(&layer(&refs[..150])), zstd(&layer(&refs[150..])), layer(&[("top", "top\n")])],
    );
    store.import(&write(dir.path(), "big.tar", &archive)).expect("import");
    let image = store.resolve("big:1").expect("resolve").expect("image");
    let snap_root = dir.path().join("snapshots");
    let barrier = Arc::new(Barrier::new(4));
    let log = global_log();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (store_root, snap_root, image, barrier) =
                (dir.path().join("store"), snap_root.clone(), image.clone(), barrier.clone());
            std::thread::spawn(move || -> Vec<PathBuf> {
                // Each thread its own handles, as separate processes would have.
                let store = ImageStore::open(&store_root).expect("store");
                let snaps = Snapshots::open(&snap_root).expect("snapshots");
                barrier.wait();
                snaps.prepare(&store, &image).expect("prepare")
            })
        })
        .collect();
    let results: Vec<Vec<PathBuf>> = threads.into_iter().map(|t| t.join().expect("thread")).collect();
    let logged = log.text();
    let unpacks = logged.lines().filter(|l| l.contains("layer unpacked") && l.contains(&image.reference)).count();
    assert_eq!(unpacks, 3, "each layer unpacked exactly once:\n{logged}");
    assert!(results.windows(2).all(|w| w[0] == w[1]), "every prepare returns the same directories");
    let dirs = &results[0];
    assert_eq!(dirs.len(), 3);
    let entries = snapshot_entries(&snap_root);
    assert_eq!(entries.len(), 3, "one snapshot per layer and no leftovers: {entries:?}");
    assert!(entries.iter().all(|n| !n.starts_with('.')), "{entries:?}");
    assert_eq!(fs::read_to_string(dirs[0].join("top")).expect("top"), "top\n");
    for (i, (path, content)) in files.iter().enumerate() {
        let layer_dir = if i < 150 { &dirs[2] } else { &dirs[1] };
        assert_eq!(&fs::read_to_string(layer_dir.join(path)).expect("file"), content, "{path}");
    }
}

/// The log of this test binary: every thread's tracing (a global subscriber, so no thread's
/// events can miss it), kept in memory.
fn global_log() -> Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Log::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(log.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber of this test binary");
        log
    })
    .clone()
}

/// A log sink tracing writes into.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Log {
    type Writer = Log;

    fn make_writer(&'a self) -> Log {
        self.clone()
    }
}
