//! Unpacking an image layer (an uncompressed tar) into its own directory, in the form overlayfs
//! stacks as a lower layer: an OCI whiteout `.wh.NAME` becomes a 0/0 character device `NAME`, an
//! opaque-directory marker `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its directory
//! (the kernel's own representation, so layers are shared between pods as they are and never
//! copied). Needs root (device nodes, trusted xattrs, ownership), as the runtime has.
//!
//! Entries stay inside the layer directory: absolute paths and `..` are refused, and the tar
//! crate's `unpack_in` refuses to write through a symlink that leads outside it.

use super::{io_err, IoError};
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{mknodat, FileType, Mode, XattrFlags, CWD};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer entry {0:?} would land outside the layer")]
    Escapes(String),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// The entry's path, relative and without `..`.
fn clean(path: &Path) -> Result<PathBuf, LayerError> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return Err(LayerError::Escapes(path.display().to_string())),
        }
    }
    Ok(out)
}

/// Unpacks the layer tar `reader` into `dest` (created if missing). Returns how many entries
/// were written.
pub fn unpack(reader: impl Read, dest: &Path) -> Result<usize, LayerError> {
    fs::create_dir_all(dest).map_err(io_err("create", dest))?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    let mut count = 0;
    for entry in archive.entries().map_err(io_err("read layer for", dest))? {
        let mut entry = entry.map_err(io_err("read layer for", dest))?;
        let raw = entry.path().map_err(io_err("read layer for", dest))?.into_owned();
        let path = clean(&raw)?;
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue; // the root entry "./"
        };
        let parent = dest.join(path.parent().unwrap_or(Path::new("")));
        if name == OPAQUE_MARKER {
            fs::create_dir_all(&parent).map_err(io_err("create", &parent))?;
            rustix::fs::setxattr(&parent, "trusted.overlay.opaque", b"y", XattrFlags::empty())
                .map_err(|e| io_err("mark opaque", &parent)(e.into()))?;
        } else if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden == "." || hidden == ".." || hidden.contains('/') {
                return Err(LayerError::Escapes(raw.display().to_string()));
            }
            fs::create_dir_all(&parent).map_err(io_err("create", &parent))?;
            let target = parent.join(hidden);
            let _ = fs::remove_file(&target);
            mknodat(CWD, &target, FileType::CharacterDevice, Mode::empty(), 0)
                .map_err(|e| io_err("create whiteout", &target)(e.into()))?;
        } else {
            let written = entry.unpack_in(dest).map_err(io_err("unpack into", dest))?;
            if !written {
                return Err(LayerError::Escapes(raw.display().to_string()));
            }
        }
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    enum E<'a> {
        File(&'a str, &'a [u8], u32),
        Dir(&'a str),
        Link(&'a str, &'a str),
    }

    fn layer(entries: &[E]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            match e {
                E::File(name, bytes, mode) => {
                    h.set_size(bytes.len() as u64);
                    h.set_mode(*mode);
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_cksum();
                    b.append_data(&mut h, name, *bytes).expect("file");
                }
                E::Dir(name) => {
                    h.set_size(0);
                    h.set_mode(0o755);
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_cksum();
                    b.append_data(&mut h, name, std::io::empty()).expect("dir");
                }
                E::Link(name, target) => {
                    h.set_size(0);
                    h.set_mode(0o777);
                    h.set_entry_type(tar::EntryType::Symlink);
                    b.append_link(&mut h, name, target).expect("link");
                }
            }
        }
        b.into_inner().expect("tar")
    }

    #[test]
    fn files_dirs_links_whiteouts_and_opaque_dirs_land_in_overlay_form() {
        assert!(is_root(), "unpacking layers creates device nodes and trusted xattrs: run as root, as CI does");
        let dir = tempfile::tempdir().expect("temp dir");
        let dest = dir.path().join("layer");
        let tar = layer(&[
            E::Dir("bin/"),
            E::File("bin/busybox", b"\x7fELF", 0o755),
            E::Link("bin/sh", "busybox"),
            E::Dir("etc/"),
            E::File("etc/.wh.passwd", b"", 0o644),
            E::Dir("var/cache/"),
            E::File("var/cache/.wh..wh..opq", b"", 0o644),
        ]);
        assert_eq!(unpack(tar.as_slice(), &dest).expect("unpack"), 7);
        let busybox = fs::metadata(dest.join("bin/busybox")).expect("busybox");
        assert_eq!(busybox.permissions().mode() & 0o777, 0o755);
        assert_eq!(fs::read_link(dest.join("bin/sh")).expect("link"), PathBuf::from("busybox"));
        let wh = fs::symlink_metadata(dest.join("etc/passwd")).expect("whiteout");
        assert!(wh.file_type().is_char_device() && wh.rdev() == 0, "a 0/0 character device");
        assert!(!dest.join("etc/.wh.passwd").exists());
        let opaque =
            rustix::fs::getxattr(dest.join("var/cache"), "trusted.overlay.opaque", &mut [0u8; 8]).expect("xattr");
        assert_eq!(opaque, 1);
        assert!(!dest.join("var/cache/.wh..wh..opq").exists());
    }

    #[test]
    fn entries_cannot_escape_the_layer() {
        assert!(is_root(), "run as root, as CI does");
        let dir = tempfile::tempdir().expect("temp dir");
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).expect("mkdir");
        // A symlink to a directory outside, then a file written through it.
        let tar = layer(&[E::Link("escape", outside.to_str().expect("utf-8")), E::File("escape/evil", b"x", 0o644)]);
        let result = unpack(tar.as_slice(), &dir.path().join("layer"));
        assert!(result.is_err(), "{result:?}");
        assert!(!outside.join("evil").exists(), "nothing written outside the layer");
        // A whiteout may not name `..`.
        let tar = layer(&[E::File("etc/.wh...", b"", 0o644)]);
        assert!(matches!(unpack(tar.as_slice(), &dir.path().join("layer2")), Err(LayerError::Escapes(_))));
        assert!(matches!(clean(Path::new("/etc/passwd")), Err(LayerError::Escapes(_))));
        assert!(matches!(clean(Path::new("a/../../b")), Err(LayerError::Escapes(_))));
        assert_eq!(clean(Path::new("./a/b")).ok(), Some(PathBuf::from("a/b")));
    }
}
