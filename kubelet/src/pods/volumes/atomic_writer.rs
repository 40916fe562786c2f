//! Upstream's atomic writer (`pkg/volume/util/atomic_writer.go`): a volume's files go into a
//! hidden timestamped directory (`..2006_01_02_15_04_05.<random>`, mode 0755), the `..data`
//! symlink points at it, and each top-level name is a symlink `<name> -> ..data/<name>`. A later
//! write makes a new timestamped directory and swaps `..data` with one `rename(2)`, so readers see
//! the old files or the new ones, never a mix; what the new payload no longer has is removed, and
//! so is the old directory. A write whose payload is already there changes nothing.
//!
//! Paths starting with `..` are the writer's own.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::payload::Payload;

/// The symlink to the current timestamped directory.
pub const DATA_DIR: &str = "..data";
const NEW_DATA_DIR: &str = "..data_tmp";
const MAX_FILE_NAME: usize = 255;
const MAX_PATH: usize = 4096;

/// Why a payload could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> WriteError + 'a {
    move |source| WriteError::Io { action, path: path.to_path_buf(), source }
}

/// Upstream `validatePath`: relative, no `..` element, not starting with `..`, names and the
/// whole path not too long.
fn validate(path: &str) -> Result<(), WriteError> {
    let invalid = |reason| Err(WriteError::InvalidPath { path: path.to_string(), reason });
    if path.is_empty() {
        return invalid("must not be empty");
    }
    if path.starts_with('/') {
        return invalid("must be relative path");
    }
    if path.len() > MAX_PATH {
        return invalid("must be less than or equal to 4096 characters");
    }
    let items: Vec<&str> = path.split('/').collect();
    if items.contains(&"..") {
        return invalid("must not contain '..'");
    }
    if items.iter().any(|i| i.len() > MAX_FILE_NAME) {
        return invalid("filenames must be less than or equal to 255 characters");
    }
    if items.first().is_some_and(|i| i.starts_with("..") && i.len() > 2) {
        return invalid("must not start with '..'");
    }
    Ok(())
}

/// `filepath.Clean` of a relative path that passed [`validate`].
fn clean(path: &str) -> String {
    let parts: Vec<String> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    parts.join("/")
}

/// Every path below `dir`, relative to it.
fn walk(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &rel, out)?;
        }
        out.insert(rel);
    }
    Ok(())
}

/// Writes `payload` into `target` (which must exist); true when something changed.
pub fn write(target: &Path, payload: &Payload) -> Result<bool, WriteError> {
    let mut clean_payload = Payload::new();
    for (path, file) in payload {
        validate(path)?;
        clean_payload.insert(clean(path), file.clone());
    }
    let data_dir = target.join(DATA_DIR);
    let old_ts = match fs::read_link(&data_dir) {
        Ok(p) => Some(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("read link", &data_dir)(e)),
    };

    let mut to_remove = BTreeSet::new();
    if let Some(old) = &old_ts {
        let old_dir = target.join(old);
        let mut old_paths = BTreeSet::new();
        match walk(&old_dir, "", &mut old_paths) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("read", &old_dir)(e)),
        }
        // The new paths with all their parent directories.
        let mut new_paths = BTreeSet::new();
        for path in clean_payload.keys() {
            let mut p = path.as_str();
            loop {
                new_paths.insert(p.to_string());
                match p.rsplit_once('/') {
                    Some((parent, _)) => p = parent,
                    None => break,
                }
            }
        }
        to_remove = old_paths.difference(&new_paths).cloned().collect();
        let unchanged = clean_payload.iter().all(|(path, file)| {
            let on_disk = old_dir.join(path);
            fs::read(&on_disk).is_ok_and(|d| d == file.data)
                && fs::metadata(&on_disk).is_ok_and(|m| m.permissions().mode() & 0o7777 == file.mode)
        });
        if unchanged && to_remove.is_empty() {
            return Ok(false);
        }
    }

    let ts_dir = new_timestamp_dir(target)?;
    let ts_name = ts_dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    if let Err(e) = write_files(&ts_dir, &clean_payload) {
        let _ = fs::remove_dir_all(&ts_dir);
        return Err(e);
    }

    // The user-visible symlinks of the top-level names that do not have one yet.
    let tops: BTreeSet<&str> = clean_payload.keys().map(|p| p.split('/').next().unwrap_or(p)).collect();
    for top in tops {
        let visible = target.join(top);
        match fs::read_link(&visible) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                symlink(Path::new(DATA_DIR).join(top), &visible).map_err(io_err("symlink", &visible))?;
            }
            _ => {}
        }
    }

    let new_data_dir = target.join(NEW_DATA_DIR);
    let _ = fs::remove_file(&new_data_dir);
    if let Err(e) = symlink(&ts_name, &new_data_dir) {
        let _ = fs::remove_dir_all(&ts_dir);
        return Err(io_err("symlink", &new_data_dir)(e));
    }
    if let Err(e) = fs::rename(&new_data_dir, &data_dir) {
        let _ = fs::remove_file(&new_data_dir);
        let _ = fs::remove_dir_all(&ts_dir);
        return Err(io_err("rename", &new_data_dir)(e));
    }

    // Only the top-level symlinks are user-visible paths of their own.
    for p in to_remove.iter().filter(|p| !p.contains('/')) {
        let visible = target.join(p);
        if let Err(e) = fs::remove_file(&visible) {
            tracing::warn!(path = %visible.display(), error = %e, "removing an old volume path failed");
        }
    }
    if let Some(old) = old_ts {
        let old_dir = target.join(old);
        fs::remove_dir_all(&old_dir).map_err(io_err("remove", &old_dir))?;
    }
    Ok(true)
}

/// `..<UTC time>.<random>`, mode 0755 whatever the umask.
fn new_timestamp_dir(target: &Path) -> Result<PathBuf, WriteError> {
    let stamp = jiff::Timestamp::now().strftime("..%Y_%m_%d_%H_%M_%S.").to_string();
    loop {
        let dir = target.join(format!("{stamp}{}", rand::random_range(0..u32::MAX)));
        match fs::create_dir(&dir) {
            Ok(()) => {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).map_err(io_err("chmod", &dir))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err("create", &dir)(e)),
        }
    }
}

/// The payload's files under `dir`, each with its mode whatever the umask.
fn write_files(dir: &Path, payload: &Payload) -> Result<(), WriteError> {
    for (path, file) in payload {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        fs::write(&full, &file.data).map_err(io_err("write", &full))?;
        fs::set_permissions(&full, fs::Permissions::from_mode(file.mode)).map_err(io_err("chmod", &full))?;
    }
    Ok(())
}
