//! `skiff images import|ls|rm` (DESIGN §10): the node's image store (`<data-dir>/agent/store`)
//! from the command line, safe while the agent runs — the store takes its lock for every change
//! of its references and replaces them atomically, so the agent and this command never lose
//! each other's changes.
//!
//! [`run`] returns the text to print; the binary prints it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::runtime::linux::images::{self, Image, ImageError, ImageStore};

/// The `skiff images` subcommands.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum ImagesCommand {
    /// Import image tarballs: docker-archive (`docker save`) or OCI image layout, as .tar,
    /// .tar.gz or .tar.zst.
    Import {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// List the images of the node's store.
    Ls,
    /// Remove image references (blobs and unpacked layers go with image garbage collection).
    Rm {
        #[arg(required = true, value_name = "REF")]
        references: Vec<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ImagesCmdError {
    #[error("no such image: {0}")]
    NotFound(String),
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// Runs one `skiff images` subcommand on the store of `data_dir`; returns what to print: lines
/// separated by `\n`, without a final newline. `ls` and `rm` never create a store.
pub fn run(data_dir: &Path, cmd: ImagesCommand) -> Result<String, ImagesCmdError> {
    let root = images::store_root(data_dir);
    match cmd {
        ImagesCommand::Import { files } => {
            let store = ImageStore::open(&root)?;
            let mut lines = Vec::new();
            for file in files {
                for reference in store.import(&file)? {
                    tracing::debug!(file = %file.display(), image = %reference, "image imported");
                    lines.push(format!("Imported: {reference}"));
                }
            }
            Ok(lines.join("\n"))
        }
        ImagesCommand::Ls => {
            let images = if root.is_dir() { ImageStore::open(&root)?.list()? } else { Vec::new() };
            Ok(table(&images))
        }
        ImagesCommand::Rm { references } => {
            if !root.is_dir() {
                return Err(ImagesCmdError::NotFound(references.first().cloned().unwrap_or_default()));
            }
            let store = ImageStore::open(&root)?;
            // All or nothing as far as can be told beforehand: every reference must exist.
            let mut wanted = BTreeSet::new();
            let mut order = Vec::new();
            for given in &references {
                let normal = images::normalise(given)?;
                if store.resolve(&normal)?.is_none() {
                    return Err(ImagesCmdError::NotFound(given.clone()));
                }
                if wanted.insert(normal.clone()) {
                    order.push((given, normal));
                }
            }
            let mut lines = Vec::new();
            for (given, normal) in order {
                if !store.remove(&normal)? {
                    return Err(ImagesCmdError::NotFound(given.clone()));
                }
                tracing::debug!(image = %normal, "image removed");
                lines.push(format!("Deleted: {normal}"));
            }
            Ok(lines.join("\n"))
        }
    }
}

/// The `ls` table, laid out as `crictl images` does (columns at least 20 wide, 3 spaces apart;
/// the image ID is the config digest's first 13 hex digits; sizes in decimal units).
fn table(images: &[Image]) -> String {
    let mut rows = vec![["IMAGE".to_string(), "TAG".to_string(), "IMAGE ID".to_string(), "SIZE".to_string()]];
    for image in images {
        let (name, tag) = split_tag(&image.reference);
        let id = image.config_digest.strip_prefix("sha256:").unwrap_or(&image.config_digest);
        rows.push([name.to_string(), tag.to_string(), id.chars().take(13).collect(), human_size(image.size)]);
    }
    let widths: Vec<usize> =
        (0..3).map(|c| rows.iter().map(|r| r[c].chars().count() + 3).max().unwrap_or(0).max(20)).collect();
    let lines: Vec<String> = rows
        .iter()
        .map(|r| {
            let mut line = String::new();
            for (cell, width) in r.iter().zip(&widths) {
                line.push_str(&format!("{cell:<width$}"));
            }
            line.push_str(&r[3]);
            line
        })
        .collect();
    lines.join("\n")
}

/// A normalised reference's repository and tag (`<none>` for a reference by digest).
fn split_tag(reference: &str) -> (&str, &str) {
    if let Some((name, _)) = reference.split_once('@') {
        return (name, "<none>");
    }
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => (&reference[..last_slash + i], &reference[last_slash + i + 1..]),
        None => (reference, "<none>"),
    }
}

/// A size as `crictl images` shows it: three significant digits, decimal units (`2.23MB`).
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    // Three significant digits; a value that rounds up to 1000 moves to the next unit.
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let mut text = format!("{value:.decimals$}");
    if text == "1000" && unit < UNITS.len() - 1 {
        text = "1".into();
        unit += 1;
    }
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn archive(dir: &Path, file: &str, tags: &[&str], layer: &[u8]) -> PathBuf {
        let tags: Vec<String> = tags.iter().map(|t| format!("{t:?}")).collect();
        let manifest =
            format!(r#"[{{"Config":"config.json","RepoTags":[{}],"Layers":["l/layer.tar"]}}]"#, tags.join(","));
        let mut b = tar::Builder::new(Vec::new());
        for (name, bytes) in [
            ("config.json", br#"{"os":"linux"}"#.to_vec()),
            ("l/layer.tar", layer.to_vec()),
            ("manifest.json", manifest.into_bytes()),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, bytes.as_slice()).expect("append");
        }
        let path = dir.join(file);
        fs::write(&path, b.into_inner().expect("tar")).expect("write");
        path
    }

    #[test]
    fn sizes_read_as_crictl_prints_them() {
        for (bytes, text) in [
            (0, "0B"),
            (999, "999B"),
            (1_000, "1kB"),
            (1_234, "1.23kB"),
            (2_228_000, "2.23MB"),
            (12_345_678, "12.3MB"),
            (123_456_789, "123MB"),
            (999_999, "1MB"),
            (1_500_000_000, "1.5GB"),
        ] {
            assert_eq!(human_size(bytes), text, "{bytes}");
        }
    }

    #[test]
    fn references_split_into_repository_and_tag() {
        assert_eq!(split_tag("docker.io/library/busybox:1.36"), ("docker.io/library/busybox", "1.36"));
        assert_eq!(split_tag("localhost:5000/app:v1"), ("localhost:5000/app", "v1"));
        let by_digest = format!("localhost:5000/app@sha256:{}", "a".repeat(64));
        assert_eq!(split_tag(&by_digest), ("localhost:5000/app", "<none>"));
    }

    #[test]
    fn import_ls_and_rm() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        assert_eq!(
            run(&data, ImagesCommand::Ls).expect("ls"),
            format!("{:<20}{:<20}{:<20}SIZE", "IMAGE", "TAG", "IMAGE ID")
        );
        assert!(!data.exists(), "ls creates no store");
        let err = run(&data, ImagesCommand::Rm { references: vec!["busybox:1.36".into()] }).expect_err("missing");
        assert_eq!(err.to_string(), "no such image: busybox:1.36");

        let a = archive(dir.path(), "a.tar", &["busybox:1.36", "busybox:stable"], &[7u8; 2_500]);
        let b = archive(dir.path(), "b.tar", &["registry.local:5000/team/application-with-a-long-name:v2"], b"x");
        let out = run(&data, ImagesCommand::Import { files: vec![a, b] }).expect("import");
        assert_eq!(
            out,
            "Imported: docker.io/library/busybox:1.36\nImported: docker.io/library/busybox:stable\n\
             Imported: registry.local:5000/team/application-with-a-long-name:v2"
        );
        let ls = run(&data, ImagesCommand::Ls).expect("ls");
        let lines: Vec<&str> = ls.lines().collect();
        assert_eq!(lines.len(), 4, "{ls}");
        let width = "registry.local:5000/team/application-with-a-long-name".len() + 3;
        assert_eq!(lines[0], format!("{:<width$}{:<20}{:<20}SIZE", "IMAGE", "TAG", "IMAGE ID"));
        let store = ImageStore::open(&images::store_root(&data)).expect("store");
        let img = store.resolve("busybox:1.36").expect("resolve").expect("present");
        let id = &img.config_digest["sha256:".len().."sha256:".len() + 13];
        assert_eq!(lines[1], format!("{:<width$}{:<20}{:<20}2.51kB", "docker.io/library/busybox", "1.36", id), "{ls}");
        assert!(lines[3].starts_with("registry.local:5000/team/application-with-a-long-name   v2 "), "{ls}");

        let err = run(&data, ImagesCommand::Rm { references: vec!["busybox:stable".into(), "nope:1".into()] })
            .expect_err("one is missing");
        assert_eq!(err.to_string(), "no such image: nope:1");
        assert!(store.resolve("busybox:stable").expect("resolve").is_some(), "nothing removed");
        let out = run(&data, ImagesCommand::Rm { references: vec!["busybox:stable".into(), "busybox:stable".into()] })
            .expect("rm");
        assert_eq!(out, "Deleted: docker.io/library/busybox:stable");
        assert_eq!(run(&data, ImagesCommand::Ls).expect("ls").lines().count(), 3);
        let bad = run(&data, ImagesCommand::Import { files: vec![dir.path().join("absent.tar")] }).expect_err("absent");
        assert!(bad.to_string().contains("absent.tar"), "{bad}");
        assert!(!bad.to_string().contains('\n'));
    }
}
