//! The built-in Linux runtime (the real-pods issue), built up in parts; so far the cgroup layer
//! ([`cgroups`]), on both cgroup layouts. The runtime itself is not built yet: the factory still
//! answers `--runtime linux` with a typed error.

pub mod cgroups;
pub mod images;
pub mod layers;

use std::io;
use std::path::{Path, PathBuf};

/// A filesystem operation of the Linux runtime that failed, naming what it did and where; the
/// one I/O error the runtime's parts wrap.
#[derive(Debug, thiserror::Error)]
#[error("{action} {path}: {source}")]
pub struct IoError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// `map_err` adapter: `fs::read(&p).map_err(io_err("read", &p))?` (each part's error converts
/// from [`IoError`]).
pub fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> IoError + 'a {
    move |source| IoError { action, path: path.to_path_buf(), source }
}
