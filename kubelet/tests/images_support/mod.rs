//! Image tarballs for the image store's integration tests, built from scratch in temp dirs:
//! layers as tars of files, docker-archives and OCI layouts around them, compressed with gzip
//! (flate2) or zstd (the `zstd` binary, the encoder real archives come from).

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;

/// One layer: (path, content) files, and `.wh.` whiteouts as empty files.
pub fn layer(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append_data(&mut h, path, content.as_bytes()).expect("append to layer");
    }
    b.into_inner().expect("layer tar")
}

pub fn sha256(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

/// zstd-compressed by the `zstd` binary (with a content checksum, as it writes by default).
pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("zstd")
        .args(["-q", "-c", "-3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the zstd binary (Debian's zstd) is installed");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input).expect("feed zstd"));
    let out = child.wait_with_output().expect("zstd");
    writer.join().expect("writer");
    assert!(out.status.success(), "zstd failed");
    out.stdout
}

/// A tar of (name, bytes) entries.
pub fn tar_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, bytes) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, bytes.as_slice()).expect("append");
    }
    b.into_inner().expect("tar")
}

fn config_for(tag: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"architecture": arch(), "os": "linux", "config": {"Cmd": ["sh"]}, "comment": tag}))
        .expect("config")
}

/// The OCI architecture name of this host.
pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A docker-archive (`docker save`) of one image with `tags` and `layers` (stored as given:
/// compressed layers stay compressed, as `docker save` of some images has them).
pub fn docker_archive(tags: &[&str], layers: &[Vec<u8>]) -> Vec<u8> {
    let config = config_for(tags.first().copied().unwrap_or("untagged"));
    let config_name = format!("{}.json", sha256(&config));
    let mut entries = vec![(config_name.clone(), config)];
    let mut names = Vec::new();
    for l in layers {
        let name = format!("{}/layer.tar", sha256(l));
        names.push(name.clone());
        entries.push((name, l.clone()));
    }
    let manifest = json!([{"Config": config_name, "RepoTags": tags, "Layers": names}]);
    entries.push(("manifest.json".into(), serde_json::to_vec(&manifest).expect("manifest")));
    tar_of(&entries)
}

/// An OCI image layout of one image named `name`, its layers with the media type their
/// compression calls for.
pub fn oci_layout(name: &str, layers: &[(Vec<u8>, &str)]) -> Vec<u8> {
    let config = config_for(name);
    let blob = |b: &[u8]| (format!("blobs/sha256/{}", sha256(b)), b.to_vec());
    let descs: Vec<_> = layers
        .iter()
        .map(|(l, media)| json!({"mediaType": media, "digest": format!("sha256:{}", sha256(l)), "size": l.len()}))
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", sha256(&config)), "size": config.len()},
        "layers": descs,
    }))
    .expect("manifest");
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{}", sha256(&manifest)), "size": manifest.len(),
        "annotations": {"io.containerd.image.name": name},
    }]}))
    .expect("index");
    let mut entries = vec![
        ("oci-layout".to_string(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ("index.json".to_string(), index),
        blob(&manifest),
        blob(&config),
    ];
    entries.extend(layers.iter().map(|(l, _)| blob(l)));
    tar_of(&entries)
}

/// Writes `bytes` to `dir/name`.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).expect("write archive");
    path
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}
