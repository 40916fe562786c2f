//! Small file helpers: atomic writes with a mode, reads with the path in the error.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct FileError {
    op: &'static str,
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

fn ctx<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FileError + 'a {
    move |source| FileError { op, path: path.to_path_buf(), source }
}

pub fn read_string(path: &Path) -> Result<String, FileError> {
    std::fs::read_to_string(path).map_err(ctx("read", path))
}

pub fn create_dir(path: &Path, mode: u32) -> Result<(), FileError> {
    std::fs::create_dir_all(path).map_err(ctx("create directory", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(ctx("chmod", path))
}

/// Writes `data` to a temporary file beside `path`, fsyncs it and renames it into place, so a
/// reader sees the old or the new content, never a mix.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), FileError> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(ctx("create", &tmp))?;
    f.write_all(data).map_err(ctx("write", &tmp))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(ctx("chmod", &tmp))?;
    f.sync_all().map_err(ctx("fsync", &tmp))?;
    std::fs::rename(&tmp, path).map_err(ctx("rename", path))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
