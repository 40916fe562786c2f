//! Unpacking an image layer (a tar, uncompressed or gzip- or zstd-compressed) into its own
//! directory, in the form overlayfs stacks as a lower layer: an OCI whiteout `.wh.NAME` becomes a
//! 0/0 character device `NAME`, an opaque-directory marker `.wh..wh..opq` the
//! `trusted.overlay.opaque=y` xattr on its directory (the kernel's own representation, so layers
//! are shared between pods as they are and never copied). Needs root (device nodes, trusted
//! xattrs, ownership), as the runtime has.
//!
//! Compression is told by a stream's first bytes, never by a name or media type (docker-archive
//! layers carry none, and registries are not always right): [`decompress`] serves the image
//! archives of the store as well as the layers here. zstd streams may hold several frames and
//! skippable frames, as the format allows; each frame's checksum is checked when it has one.
//!
//! Entries stay inside the layer directory: absolute paths and `..` are refused, and the tar
//! crate's `unpack_in` refuses to write through a symlink that leads outside it.

use super::{io_err, IoError};
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{mknodat, FileType, Mode, XattrFlags, CWD};
use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer entry {0:?} would land outside the layer")]
    Escapes(String),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// How a stream is compressed, as its first bytes tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression of a stream that starts with `head` (its first four bytes, or all of it
    /// when shorter).
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(&ZSTD_MAGIC) || is_skippable_frame(head) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The OCI media type of an image layer compressed this way.
    pub fn layer_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// A zstd skippable frame (magic `0x184D2A5?`, little-endian) may open a zstd stream.
fn is_skippable_frame(head: &[u8]) -> bool {
    head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18]
}

/// Reads the first bytes of `reader` to tell its compression, and returns that with a reader
/// of the decompressed stream (the bytes read to tell are not lost).
pub fn decompress<'a>(mut reader: impl Read + 'a) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut head = [0u8; 4];
    let mut len = 0;
    while len < head.len() {
        match reader.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = head[..len].to_vec();
    let compression = Compression::detect(&head);
    let whole = io::Cursor::new(head).chain(reader);
    let out: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(whole),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(whole))),
        Compression::Zstd => Box::new(ZstdReader::new(BufReader::new(whole))),
    };
    Ok((compression, out))
}

/// A reader of every frame of a zstd stream, in order (ruzstd's own `StreamingDecoder` reads one
/// frame and skips none).
struct ZstdReader<R: BufRead> {
    source: R,
    frame: FrameDecoder,
    in_frame: bool,
}

impl<R: BufRead> ZstdReader<R> {
    fn new(source: R) -> Self {
        ZstdReader { source, frame: FrameDecoder::new(), in_frame: false }
    }

    /// Starts the next frame; false at the end of the stream.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            if self.source.fill_buf()?.is_empty() {
                return Ok(false);
            }
            match self.frame.reset(&mut self.source) {
                Ok(()) => return Ok(true),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame { length, .. })) => {
                    let skipped = io::copy(&mut (&mut self.source).take(u64::from(length)), &mut io::sink())?;
                    if skipped != u64::from(length) {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "zstd: truncated skippable frame"));
                    }
                }
                Err(e) => return Err(invalid_zstd(e)),
            }
        }
    }
}

fn invalid_zstd(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
}

impl<R: BufRead> Read for ZstdReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if !self.next_frame()? {
                    return Ok(0);
                }
                self.in_frame = true;
            }
            if self.frame.can_collect() == 0 && !self.frame.is_finished() {
                self.frame
                    .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBlocks(1))
                    .map_err(invalid_zstd)?;
                continue;
            }
            let n = self.frame.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            // The frame is decoded and drained: check it, then go on with the next one.
            if let Some(expected) = self.frame.get_checksum_from_data() {
                if self.frame.get_calculated_checksum() != Some(expected) {
                    return Err(invalid_zstd("frame checksum mismatch"));
                }
            }
            self.in_frame = false;
        }
    }
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

/// Unpacks the layer tar `reader` (uncompressed, gzip or zstd, told by its first bytes) into
/// `dest` (created if missing). Returns how many entries were written.
pub fn unpack(reader: impl Read, dest: &Path) -> Result<usize, LayerError> {
    fs::create_dir_all(dest).map_err(io_err("create", dest))?;
    let (_, reader) = decompress(reader).map_err(io_err("read layer for", dest))?;
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

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).expect("gzip");
        enc.finish().expect("gzip")
    }

    fn zstd(bytes: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(bytes, ruzstd::encoding::CompressionLevel::Fastest)
    }

    fn read_all(bytes: &[u8]) -> (Compression, Vec<u8>) {
        let (c, mut r) = decompress(bytes).expect("decompress");
        let mut out = Vec::new();
        r.read_to_end(&mut out).expect("read");
        (c, out)
    }

    #[test]
    fn compression_is_told_by_the_first_bytes() {
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        assert_eq!(read_all(&data), (Compression::None, data.clone()));
        assert_eq!(read_all(&gzip(&data)), (Compression::Gzip, data.clone()));
        assert_eq!(read_all(&zstd(&data)), (Compression::Zstd, data.clone()));
        // Short and empty streams are uncompressed streams.
        assert_eq!(read_all(b"ab"), (Compression::None, b"ab".to_vec()));
        assert_eq!(read_all(b""), (Compression::None, Vec::new()));
        assert_eq!(Compression::Gzip.layer_media_type(), "application/vnd.oci.image.layer.v1.tar+gzip");
        assert_eq!(Compression::Zstd.layer_media_type(), "application/vnd.oci.image.layer.v1.tar+zstd");
    }

    #[test]
    fn every_zstd_frame_is_read_and_skippable_frames_are_skipped() {
        // A skippable frame (magic 0x184D2A53, 3 bytes of payload), then two frames.
        let mut stream = vec![0x53, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9];
        stream.extend(zstd(b"first frame, "));
        stream.extend(zstd(b"second frame"));
        assert_eq!(read_all(&stream), (Compression::Zstd, b"first frame, second frame".to_vec()));
        // Concatenated gzip members are one stream too (pigz writes them).
        let mut members = gzip(b"one ");
        members.extend(gzip(b"two"));
        assert_eq!(read_all(&members).1, b"one two".to_vec());
    }

    #[test]
    fn truncated_or_corrupt_compressed_streams_fail() {
        let data = vec![7u8; 100_000];
        for compressed in [gzip(&data), zstd(&data)] {
            let cut = &compressed[..compressed.len() / 2];
            let (_, mut r) = decompress(cut).expect("header");
            assert!(r.read_to_end(&mut Vec::new()).is_err(), "a truncated stream is an error");
        }
        let mut bad = zstd(b"some bytes that will be checked");
        let last = bad.len() - 1;
        bad[last] ^= 0xff; // the frame checksum's last byte
        let (_, mut r) = decompress(bad.as_slice()).expect("header");
        let result = r.read_to_end(&mut Vec::new());
        assert!(result.is_err(), "{result:?}");
    }

    #[test]
    fn gzip_and_zstd_layers_unpack_like_plain_ones() {
        assert!(is_root(), "run as root, as CI does");
        let dir = tempfile::tempdir().expect("temp dir");
        let tar = layer(&[E::Dir("etc/"), E::File("etc/hostname", b"skiff\n", 0o644), E::File("etc/.wh.motd", b"", 0)]);
        for (name, bytes) in [("gz", gzip(&tar)), ("zst", zstd(&tar))] {
            let dest = dir.path().join(name);
            assert_eq!(unpack(bytes.as_slice(), &dest).expect("unpack"), 3, "{name}");
            assert_eq!(fs::read(dest.join("etc/hostname")).expect("file"), b"skiff\n");
            assert!(fs::symlink_metadata(dest.join("etc/motd")).expect("whiteout").file_type().is_char_device());
        }
    }
}
