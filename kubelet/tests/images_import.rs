//! Importing real image tarballs — whole archives gzip- or zstd-compressed, layers compressed
//! inside them — into the store, and `skiff images` on it; corrupt archives add nothing.

mod images_support;

use std::fs;

use images_support::{docker_archive, gzip, layer, oci_layout, sha256, write, zstd};
use kubelet::images_cmd::{run, ImagesCommand};
use kubelet::runtime::linux::images::{store_root, ImageStore};
use serde_json::Value;

const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

fn layer_media_types(store: &ImageStore, reference: &str) -> Vec<String> {
    let img = store.resolve(reference).expect("resolve").expect("imported");
    let manifest: Value =
        serde_json::from_slice(&fs::read(store.blob_path(&img.manifest_digest)).expect("manifest")).expect("json");
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap_or("").into())
        .collect()
}

#[test]
fn gzip_and_zstd_archives_with_compressed_layers_import() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ImageStore::open(&dir.path().join("store")).expect("store");
    let base = gzip(&layer(&[("etc/os-release", "ID=test\n")]));
    let app = zstd(&layer(&[("app/run", "#!/bin/sh\n")]));
    let plain = layer(&[("etc/motd", "hi\n")]);

    // A docker-archive, gzip-compressed as a whole, with a gzipped and a plain layer.
    let tgz = write(
        dir.path(),
        "docker.tar.gz",
        &gzip(&docker_archive(&["app:1", "app:stable"], &[base.clone(), plain.clone()])),
    );
    assert_eq!(
        store.import(&tgz).expect("docker-archive .tar.gz"),
        ["docker.io/library/app:1", "docker.io/library/app:stable"]
    );
    assert_eq!(layer_media_types(&store, "app:1"), [TAR_GZIP, TAR]);
    let img = store.resolve("app:1").expect("resolve").expect("imported");
    assert_eq!(
        img.layers,
        [format!("sha256:{}", sha256(&base)), format!("sha256:{}", sha256(&plain))],
        "compressed layers keep their digest"
    );
    assert_eq!(fs::read(store.blob_path(&img.layers[0])).expect("blob"), base, "stored as they came");

    // An OCI layout, zstd-compressed as a whole by the zstd binary, with gzip and zstd layers.
    let layout = oci_layout("registry.local/app:2", &[(base.clone(), TAR_GZIP), (app.clone(), TAR_ZSTD)]);
    let tzst = write(dir.path(), "oci.tar.zst", &zstd(&layout));
    assert_eq!(store.import(&tzst).expect("OCI layout .tar.zst"), ["registry.local/app:2"]);
    assert_eq!(layer_media_types(&store, "registry.local/app:2"), [TAR_GZIP, TAR_ZSTD]);

    // The name does not matter: a zstd archive named .tar imports just the same.
    let named_wrong = write(dir.path(), "misnamed.tar", &zstd(&docker_archive(&["misnamed:1"], &[plain])));
    assert_eq!(store.import(&named_wrong).expect("misnamed"), ["docker.io/library/misnamed:1"]);

    let listed: Vec<String> = store.list().expect("list").into_iter().map(|i| i.reference).collect();
    assert_eq!(
        listed,
        [
            "docker.io/library/app:1",
            "docker.io/library/app:stable",
            "docker.io/library/misnamed:1",
            "registry.local/app:2"
        ]
    );
}

#[test]
fn corrupt_archives_add_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ImageStore::open(&dir.path().join("store")).expect("store");
    let big = layer(&[("big", &"data ".repeat(50_000))]);
    let good = docker_archive(&["app:1"], &[gzip(&big), big]);
    let cases = [
        ("truncated.tar.gz", {
            let z = gzip(&good);
            z[..z.len() / 2].to_vec()
        }),
        ("truncated.tar.zst", {
            let z = zstd(&good);
            z[..z.len() / 2].to_vec()
        }),
        ("flipped.tar.zst", {
            let mut z = zstd(&good);
            let mid = z.len() / 2;
            z[mid] ^= 0x55;
            z
        }),
        ("truncated.tar", good[..good.len() / 2].to_vec()),
        ("garbage.tar.gz", vec![0x1f, 0x8b, 1, 2, 3, 4, 5]),
        ("magic-only.tar.zst", vec![0x28, 0xb5, 0x2f, 0xfd]),
        ("empty.tar", Vec::new()),
    ];
    for (name, bytes) in cases {
        let path = write(dir.path(), name, &bytes);
        let result = store.import(&path);
        assert!(result.is_err(), "{name}: {result:?}");
        let message = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(!message.contains('\n'), "{name}: one line: {message}");
    }
    assert!(store.refs().expect("refs").is_empty(), "no reference was added");
    assert!(store.list().expect("list").is_empty());
    // The good archive still imports after all that.
    let path = write(dir.path(), "good.tar", &good);
    assert_eq!(store.import(&path).expect("good"), ["docker.io/library/app:1"]);
}

#[test]
fn the_images_command_imports_lists_and_removes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let a =
        write(dir.path(), "a.tar.zst", &zstd(&docker_archive(&["busybox:1.36"], &[gzip(&layer(&[("bin/sh", "x")]))])));
    let b =
        write(dir.path(), "b.tar.gz", &gzip(&oci_layout("localhost:5000/tools:v1", &[(layer(&[("t", "t")]), TAR)])));
    let out = run(&data, ImagesCommand::Import { files: vec![a, b] }).expect("import");
    assert_eq!(out, "Imported: docker.io/library/busybox:1.36\nImported: localhost:5000/tools:v1");
    assert!(store_root(&data).join("refs.json").is_file(), "the store is <data-dir>/agent/store");

    let ls = run(&data, ImagesCommand::Ls).expect("ls");
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(lines.len(), 3, "{ls}");
    let header: Vec<&str> = lines[0].split("  ").filter(|c| !c.trim().is_empty()).map(str::trim).collect();
    assert_eq!(header, ["IMAGE", "TAG", "IMAGE ID", "SIZE"]);
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[..2], ["docker.io/library/busybox", "1.36"]);
    assert_eq!(row[2].len(), 13, "a short image ID: {ls}");
    assert!(row[3].ends_with('B'), "{ls}");
    assert_eq!(lines[2].split_whitespace().take(2).collect::<Vec<_>>(), ["localhost:5000/tools", "v1"]);

    let err = run(&data, ImagesCommand::Rm { references: vec!["busybox:1.37".into()] }).expect_err("missing");
    assert_eq!(err.to_string(), "no such image: busybox:1.37");
    let out = run(&data, ImagesCommand::Rm { references: vec!["busybox:1.36".into()] }).expect("rm");
    assert_eq!(out, "Deleted: docker.io/library/busybox:1.36");
    assert_eq!(run(&data, ImagesCommand::Ls).expect("ls").lines().count(), 2);

    let bad = write(dir.path(), "bad.tar", b"not a tarball at all, not even close to 512 bytes");
    let err = run(&data, ImagesCommand::Import { files: vec![bad] }).expect_err("bad");
    assert!(err.to_string().contains("bad.tar"), "names the file: {err}");
}
