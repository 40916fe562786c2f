//! The image drop directory: archives there at start are imported, archives added later are
//! imported by the watcher once complete, bad ones are skipped and add nothing.

mod images_support;

use std::fs;
use std::time::Duration;

use images_support::{docker_archive, gzip, layer, write, zstd};
use kubelet::runtime::linux::dropdir::{drop_dir, import_all, watch};
use kubelet::runtime::linux::images::{store_root, ImageStore};
use tokio_util::sync::CancellationToken;

#[test]
fn archives_present_at_start_are_imported_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ImageStore::open(&store_root(dir.path())).expect("store");
    let drop = drop_dir(dir.path());
    assert!(drop.ends_with("agent/images"));
    fs::create_dir_all(&drop).expect("mkdir");
    write(&drop, "a.tar", &docker_archive(&["a:1"], &[layer(&[("a", "a")])]));
    write(&drop, "b.tar.gz", &gzip(&docker_archive(&["b:1"], &[layer(&[("b", "b")])])));
    write(&drop, "c.tar.zst", &zstd(&docker_archive(&["c:1"], &[gzip(&layer(&[("c", "c")]))])));
    write(&drop, "broken.tar.zst", b"\x28\xb5\x2f\xfd and then nonsense");
    let report = import_all(&store, &drop).expect("import");
    assert_eq!(report.imported.len(), 3, "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    let refs: Vec<String> = store.refs().expect("refs").into_keys().collect();
    assert_eq!(refs, ["docker.io/library/a:1", "docker.io/library/b:1", "docker.io/library/c:1"]);
    let again = import_all(&store, &drop).expect("again");
    assert!(again.imported.is_empty() && again.unchanged.len() == 3, "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_imports_archives_added_after_it_started() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ImageStore::open(&store_root(dir.path())).expect("store");
    let drop = drop_dir(dir.path());
    fs::create_dir_all(&drop).expect("mkdir");
    write(&drop, "early.tar", &docker_archive(&["early:1"], &[layer(&[("e", "e")])]));
    let stop = CancellationToken::new();
    let task = tokio::spawn(watch(store.clone(), drop.clone(), stop.clone()));
    let early = || async { store.resolve("early:1").ok().flatten() };
    testkit::eventually("early:1 imported at start", Duration::from_secs(10), early).await;

    // Renamed in once complete (IN_MOVED_TO), as a careful copy does.
    let staged = write(dir.path(), "staged.tar.zst", &zstd(&docker_archive(&["moved:1"], &[layer(&[("m", "m")])])));
    fs::rename(&staged, drop.join("moved.tar.zst")).expect("move in");
    // Written in place (IN_CLOSE_WRITE), and a bad one next to it.
    write(&drop, "broken.tar.gz", &[0x1f, 0x8b, 0, 0]);
    write(&drop, "written.tar.gz", &gzip(&docker_archive(&["written:1"], &[layer(&[("w", "w")])])));
    // A hidden file (a download in progress) is left alone.
    write(&drop, ".partial.tar", &docker_archive(&["hidden:1"], &[layer(&[("h", "h")])]));

    let both = || async {
        let moved = store.resolve("moved:1").ok().flatten()?;
        let written = store.resolve("written:1").ok().flatten()?;
        Some((moved, written))
    };
    testkit::eventually("moved:1 and written:1 imported", Duration::from_secs(10), both).await;
    // Let the watcher look at everything it was told about, then check what it left alone.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refs: Vec<String> = store.refs().expect("refs").into_keys().collect();
    assert_eq!(refs, ["docker.io/library/early:1", "docker.io/library/moved:1", "docker.io/library/written:1"]);

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("the watcher stops").expect("no panic");
}
