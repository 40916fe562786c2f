//! The built-in Linux runtime (the real-pods issue): [`runtime::LinuxRuntime`] behind the
//! [`crate::runtime::Runtime`] trait, made of the cgroup layer ([`cgroups`], both layouts), the
//! image store and unpacked layers ([`images`], [`layers`], [`snapshots`], [`dropdir`]), the
//! pod's pinned namespaces ([`netns`]) and network ([`network`]), and the `skiff shim` process
//! that starts and supervises each container ([`shim`]).

pub mod cgroups;
pub mod dropdir;
pub mod image_gc;
pub mod images;
pub mod layers;
pub mod netns;
pub mod network;
pub mod registry;
pub mod runtime;
pub mod shim;
pub mod snapshots;

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
