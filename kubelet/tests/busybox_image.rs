//! The busybox image the tests run (`scripts/busybox-image`, from Debian's `busybox-static`) is
//! built offline, bit for bit the same each time, and the node's image store imports it: its tag,
//! an uncompressed layer whose digest is the config's diff_id, and the files pods rely on
//! (`bin/busybox`, `bin/sh`, `bin/httpd`, `/var/www/index.html`).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use kubelet::runtime::linux::images::ImageStore;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("scripts").join("busybox-image")
}

/// Runs the script; fails the test with its stderr if it fails (e.g. busybox-static missing).
fn build(out: &Path, reference: Option<&str>) {
    let mut cmd = Command::new(script());
    cmd.arg(out);
    if let Some(r) = reference {
        cmd.arg(r);
    }
    let output = cmd.output().expect("run scripts/busybox-image");
    assert!(
        output.status.success(),
        "scripts/busybox-image failed (it needs Debian's busybox-static: apt-get install busybox-static): {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("read");
    ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Path → (entry type, link target) of a layer tar.
fn layer_entries(path: &Path) -> BTreeMap<String, (tar::EntryType, Option<String>)> {
    let mut archive = tar::Archive::new(File::open(path).expect("open layer"));
    let mut out = BTreeMap::new();
    for entry in archive.entries().expect("entries") {
        let entry = entry.expect("entry");
        let name = entry.path().expect("path").to_string_lossy().trim_end_matches('/').to_string();
        let link = entry.link_name().expect("link").map(|l| l.to_string_lossy().into_owned());
        assert_eq!(entry.header().uid().expect("uid"), 0, "{name} is owned by root");
        out.insert(name, (entry.header().entry_type(), link));
    }
    out
}

#[test]
fn the_busybox_image_builds_reproducibly_and_imports_into_the_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = dir.path().join("busybox.tar");
    let second = dir.path().join("busybox-again.tar");
    build(&first, None);
    build(&second, None);
    assert_eq!(sha256_file(&first), sha256_file(&second), "two builds give the same bytes");

    let store = ImageStore::open(&dir.path().join("store")).expect("open the store");
    let added = store.import(&first).expect("import");
    assert_eq!(added, vec!["localhost/busybox:1.36".to_string()]);
    let image = store.resolve("localhost/busybox:1.36").expect("resolve").expect("the image is in the store");
    assert_eq!(image.layers.len(), 1, "one layer");

    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.blob_path(&image.config_digest)).expect("config blob"))
            .expect("config is JSON");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!([image.layers[0]]), "an uncompressed layer");

    let entries = layer_entries(&store.blob_path(&image.layers[0]));
    assert_eq!(entries.get("bin/busybox").map(|e| e.0), Some(tar::EntryType::Regular));
    for applet in ["sh", "httpd", "sleep", "wget"] {
        let entry = entries.get(&format!("bin/{applet}"));
        assert_eq!(entry, Some(&(tar::EntryType::Symlink, Some("busybox".to_string()))), "bin/{applet}");
    }
    for file in ["etc/passwd", "etc/group", "var/www/index.html"] {
        assert_eq!(entries.get(file).map(|e| e.0), Some(tar::EntryType::Regular), "{file}");
    }
    for d in ["tmp", "root", "home", "dev", "proc", "sys"] {
        assert_eq!(entries.get(d).map(|e| e.0), Some(tar::EntryType::Directory), "{d}");
    }

    // Another reference names the same content; the store keeps both tags.
    let tagged = dir.path().join("tagged.tar");
    build(&tagged, Some("busybox:1.36"));
    assert_eq!(store.import(&tagged).expect("import"), vec!["docker.io/library/busybox:1.36".to_string()]);
    let again = store.resolve("busybox:1.36").expect("resolve").expect("present");
    assert_eq!(again.layers, image.layers, "the same layer blob");
    assert!(store.resolve("localhost/busybox:1.36").expect("resolve").is_some());
}
