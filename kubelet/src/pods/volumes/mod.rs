//! The volumes the kubelet makes for a pod, at `<pods root>/<uid>/volumes/kubernetes.io~<plugin>/<name>`
//! (upstream's layout; [`volume_dir`]), before its containers are created, and removes when the
//! pod goes (upstream `pkg/volume/{emptydir,configmap,secret,downwardapi,projected}`):
//!
//! - emptyDir: a directory (mode 0777); `medium: Memory` a tmpfs (`sizeLimit` as `size=`);
//! - configMap: a directory with the ConfigMap's files ([`payload`]) in the atomic writer's
//!   layout ([`atomic_writer`]);
//! - secret, downwardAPI, projected: the same on a tmpfs (DESIGN §10: secrets never on disk);
//! - `subPath`: a directory or file inside the volume, made when missing and checked to stay
//!   inside it once symlinks are resolved ([`prepare_sub_paths`]).
//!
//! The tmpfs mounts are made from this process (mount(2), no fork). Set-up is idempotent: a
//! volume already there is left as is, a payload already written is not written again; the pod
//! worker sets the volumes up again every `--sync-frequency`, which projects a changed ConfigMap
//! or Secret through the atomic writer's `..data` swap.
//!
//! With the pod's `fsGroup`, a volume made or rewritten is given to that group as upstream's
//! `SetVolumeOwnership` does ([`set_ownership`]): group-owned, `g+rw` (`g+r` for the read-only
//! kinds: secret, configMap, downwardAPI, projected), directories setgid; with
//! `fsGroupChangePolicy: OnRootMismatch` only when the volume's root is not so already.
//!
//! Teardown ([`tear_down`]) lazily unmounts every mount below the pod's directory (as this
//! process sees them) and removes the directory.

pub mod atomic_writer;
pub mod payload;

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Pod, Volume};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::pods::config::mounts::{pod_dir, volume_dir};
use crate::pods::config::ConfigError;
use crate::runtime::Mount;
pub use payload::{references, FileProjection, Payload, PayloadInput, VolumeObjects, DEFAULT_MODE};

/// Mode of emptyDir directories (upstream `perm`); a tmpfs keeps its own 1777.
const EMPTY_DIR_MODE: u32 = 0o777;

fn set_up_error(v: &Volume, message: impl Into<String>) -> ConfigError {
    ConfigError::VolumeSetUp { volume: v.name.clone(), message: message.into() }
}

/// Whether `dir` is a mount point (another device than its parent).
fn is_mount_point(dir: &Path) -> io::Result<bool> {
    let own = fs::metadata(dir)?;
    let parent = fs::metadata(dir.join(".."))?;
    Ok(own.dev() != parent.dev() || own.ino() == parent.ino())
}

/// The directory of a volume: a tmpfs (with `size=` when given) or a plain directory.
fn make_dir(dir: &Path, memory: bool, size: Option<i64>) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    if memory {
        if !is_mount_point(dir)? {
            let options = size.filter(|s| *s > 0).map(|s| format!("size={s}"));
            mount(Some("tmpfs"), dir, Some("tmpfs"), MsFlags::empty(), options.as_deref()).map_err(io::Error::from)?;
            tracing::debug!(dir = %dir.display(), "mounted tmpfs");
        }
    } else if fs::metadata(dir)?.permissions().mode() & 0o777 != EMPTY_DIR_MODE {
        fs::set_permissions(dir, fs::Permissions::from_mode(EMPTY_DIR_MODE))?;
    }
    Ok(())
}

/// Upstream's masks for `SetVolumeOwnership`.
const RW_MASK: u32 = 0o660;
const RO_MASK: u32 = 0o440;
const EXEC_MASK: u32 = 0o110;
const SETGID: u32 = 0o2000;

/// The pod's fsGroup and whether its change policy is `OnRootMismatch`.
fn fs_group(input: &PayloadInput<'_>) -> Option<(u32, bool)> {
    let sc = input.pod.spec.as_ref()?.security_context.as_ref()?;
    let gid = u32::try_from(sc.fs_group?).ok()?;
    Some((gid, sc.fs_group_change_policy.as_deref() == Some("OnRootMismatch")))
}

/// Gives everything under `dir` to group `gid` as upstream's `SetVolumeOwnership`: group-owned
/// (symlinks themselves, not followed), mode `| 0660` (`| 0440` when `read_only`), directories
/// also `| 0110` and setgid. With `only_on_mismatch`, nothing is done when `dir` is so already.
pub fn set_ownership(dir: &Path, gid: u32, read_only: bool, only_on_mismatch: bool) -> io::Result<()> {
    let mask = if read_only { RO_MASK } else { RW_MASK };
    if only_on_mismatch {
        let m = fs::metadata(dir)?;
        let want = mask | EXEC_MASK | SETGID;
        if m.gid() == gid && m.permissions().mode() & want == want {
            return Ok(());
        }
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let m = fs::symlink_metadata(&path)?;
        std::os::unix::fs::lchown(&path, None, Some(gid))?;
        if m.file_type().is_symlink() {
            continue;
        }
        let mut mode = m.permissions().mode() & 0o7777 | mask;
        if m.is_dir() {
            mode |= EXEC_MASK | SETGID;
            for e in fs::read_dir(&path)? {
                stack.push(e?.path());
            }
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Sets up one volume at `dir`.
fn set_up_volume(input: &PayloadInput<'_>, v: &Volume, dir: &Path) -> Result<(), ConfigError> {
    let io = |action: &str, e: io::Error| set_up_error(v, format!("{action} {}: {e}", dir.display()));
    let group = fs_group(input);
    if let Some(e) = &v.empty_dir {
        let memory = e.medium.as_deref() == Some("Memory");
        let size = match e.size_limit.as_ref().map(|q| api::quantity::parse(&q.0)) {
            None => None,
            Some(Ok(q)) => Some(q.value()),
            Some(Err(_)) => return Err(set_up_error(v, format!("invalid sizeLimit {:?}", e.size_limit))),
        };
        let fresh = !dir.exists();
        make_dir(dir, memory, size).map_err(|e| io("make", e))?;
        if let (Some((gid, on_mismatch)), true) = (group, fresh) {
            set_ownership(dir, gid, false, on_mismatch).map_err(|e| io("set the fsGroup of", e))?;
        }
        return Ok(());
    }
    let Some(files) = payload::payload(input, v) else { return Ok(()) };
    // The files first: a volume whose object is missing makes nothing.
    let files = files.map_err(|m| set_up_error(v, m))?;
    // configMap volumes are on disk, as upstream's; the others on a tmpfs.
    make_dir(dir, v.config_map.is_none(), None).map_err(|e| io("make", e))?;
    match atomic_writer::write(dir, &files) {
        Ok(true) => {
            tracing::debug!(volume = %v.name, files = files.len(), "wrote volume");
            if let Some((gid, on_mismatch)) = group {
                set_ownership(dir, gid, true, on_mismatch).map_err(|e| io("set the fsGroup of", e))?;
            }
        }
        Ok(false) => {}
        Err(e) => return Err(set_up_error(v, e.to_string())),
    }
    Ok(())
}

/// Sets up every volume of the pod the kubelet makes, under `pods_root`. Each volume is tried;
/// the first failure is returned (the containers wait with it).
pub fn set_up(pods_root: &Path, input: &PayloadInput<'_>) -> Result<(), ConfigError> {
    let uid = input.pod.metadata.uid.as_deref().unwrap_or_default();
    if uid.is_empty() {
        return Ok(());
    }
    let mut first = None;
    for v in input.pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let Some(dir) = volume_dir(pods_root, uid, v) else { continue };
        if let Err(e) = set_up_volume(input, v, &dir) {
            tracing::warn!(volume = %v.name, error = %e, "setting up a volume failed");
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// Octal escapes of /proc/self/mountinfo (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let esc = bytes.get(i + 1..i + 4).filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match esc {
            Some(d) => {
                out.push(d.iter().fold(0u8, |acc, c| acc.wrapping_mul(8).wrapping_add(c - b'0')));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount points below `dir` in a mountinfo text, deepest first.
pub fn mounts_below(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(dir) && p != dir)
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

/// Why a pod's volumes could not be removed.
#[derive(Debug, thiserror::Error)]
pub enum TearDownError {
    #[error("unmount {}: {source}", path.display())]
    Unmount {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Unmounts what is mounted below the pod's directory and removes it (idempotent). Nothing is
/// removed while something below it is still mounted.
pub fn tear_down(pods_root: &Path, uid: &str) -> Result<(), TearDownError> {
    if uid.is_empty() {
        return Ok(());
    }
    let dir = pod_dir(pods_root, uid);
    if fs::symlink_metadata(&dir).is_err() {
        return Ok(());
    }
    // The calling thread's view (a test may run in a mount namespace of its own).
    let info = "/proc/thread-self/mountinfo";
    let text = fs::read_to_string(info).map_err(|source| TearDownError::Io {
        action: "read",
        path: PathBuf::from(info),
        source,
    })?;
    for m in mounts_below(&text, &dir) {
        // Lazily: a process with its working directory there does not keep the pod's files.
        umount2(&m, MntFlags::MNT_DETACH).map_err(|source| TearDownError::Unmount { path: m.clone(), source })?;
        tracing::debug!(path = %m.display(), "unmounted");
    }
    fs::remove_dir_all(&dir).map_err(|source| TearDownError::Io { action: "remove", path: dir.clone(), source })?;
    tracing::debug!(dir = %dir.display(), "removed the pod's volumes");
    Ok(())
}

/// Resolves a `subPath` below a volume directory: the missing directories are made (with the
/// volume's mode, as upstream), and the path, symlinks resolved, must stay inside the volume.
fn resolve_sub_path(volume: &Path, full: &Path) -> Result<PathBuf, String> {
    let base = volume.canonicalize().map_err(|e| format!("resolve {}: {e}", volume.display()))?;
    let outside = |p: &Path| format!("subPath {} resolves to {}, outside the volume", full.display(), p.display());
    let mut missing = Vec::new();
    let mut cur = full.to_path_buf();
    let existing = loop {
        match cur.canonicalize() {
            Ok(p) => break p,
            Err(e) if e.kind() == io::ErrorKind::NotFound && cur != volume => {
                let Some(name) = cur.file_name().map(|n| n.to_os_string()) else { return Err(outside(&cur)) };
                missing.push(name);
                cur.pop();
            }
            Err(e) => return Err(format!("resolve {}: {e}", cur.display())),
        }
    };
    if !existing.starts_with(&base) {
        return Err(outside(&existing));
    }
    if !missing.is_empty() {
        let mode = fs::metadata(&base).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o755);
        let mut p = existing;
        for name in missing.iter().rev() {
            p.push(name);
            fs::DirBuilder::new().mode(mode).create(&p).map_err(|e| format!("create {}: {e}", p.display()))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(mode))
                .map_err(|e| format!("chmod {}: {e}", p.display()))?;
        }
    }
    let resolved = full.canonicalize().map_err(|e| format!("resolve {}: {e}", full.display()))?;
    if !resolved.starts_with(&base) {
        return Err(outside(&resolved));
    }
    Ok(resolved)
}

/// Prepares the `subPath` mounts of a container into the pod's volumes (those below
/// `<pods root>/<uid>/volumes/<plugin>/<name>/`): see [`resolve_sub_path`]. Each such mount's
/// host path becomes the resolved one.
pub fn prepare_sub_paths(pods_root: &Path, pod: &Pod, mounts: &mut [Mount]) -> Result<(), ConfigError> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    if uid.is_empty() {
        return Ok(());
    }
    let volumes = pod_dir(pods_root, uid).join("volumes");
    for m in mounts.iter_mut() {
        let full = PathBuf::from(&m.host_path);
        let Ok(rest) = full.strip_prefix(&volumes) else { continue };
        let mut parts = rest.components();
        let (Some(plugin), Some(name)) = (parts.next(), parts.next()) else { continue };
        if parts.as_path().as_os_str().is_empty() {
            continue;
        }
        let volume = volumes.join(plugin).join(name);
        let resolved = resolve_sub_path(&volume, &full)
            .map_err(|message| ConfigError::SubPath { mount: m.container_path.clone(), message })?;
        m.host_path = resolved.to_string_lossy().into_owned();
    }
    Ok(())
}
