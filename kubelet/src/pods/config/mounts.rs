//! A container's volume mounts as CRI mounts (upstream `makeMounts`): `hostPath` volumes, and the
//! volumes the kubelet makes itself (emptyDir, configMap, secret, downwardAPI, projected) at
//! their directory under the node's pods root ([`volume_dir`], made by [`crate::pods::volumes`]
//! before the container is created); with `subPath` or `subPathExpr` (expanded against the
//! container's environment), `readOnly` (always, for configMap, secret, downwardAPI and projected
//! volumes, as upstream) and `mountPropagation`.
//!
//! Without a pods root (hollow nodes: the fake runtime has nothing to mount) only `hostPath`
//! volumes are mounted. Volumes of other types (persistent volumes, CSI, ...) are left out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod, Volume, VolumeMount};

use super::expansion::expand;
use super::ConfigError;
use crate::runtime::{Mount, MountPropagation};

/// Upstream `translateMountPropagation`.
fn propagation(m: &VolumeMount) -> Result<MountPropagation, ConfigError> {
    match m.mount_propagation.as_deref() {
        None | Some("None") => Ok(MountPropagation::Private),
        Some("HostToContainer") => Ok(MountPropagation::HostToContainer),
        Some("Bidirectional") => Ok(MountPropagation::Bidirectional),
        Some(other) => Err(ConfigError::Propagation(other.to_string())),
    }
}

fn sub_path_error(m: &VolumeMount, message: impl Into<String>) -> ConfigError {
    ConfigError::SubPath { mount: m.mount_path.clone(), message: message.into() }
}

/// The sub path of a mount: `subPath`, or `subPathExpr` with every `$(VAR)` defined and
/// non-empty (upstream `ExpandContainerVolumeMounts`); relative and without `..`.
fn sub_path(m: &VolumeMount, env: &HashMap<&str, &str>) -> Result<Option<String>, ConfigError> {
    let path = match (m.sub_path.as_deref().filter(|s| !s.is_empty()), m.sub_path_expr.as_deref()) {
        (Some(p), _) => p.to_string(),
        (None, Some(expr)) if !expr.is_empty() => {
            let value = |name: &str| env.get(name).copied().filter(|v| !v.is_empty());
            let mut missing: Vec<String> = referenced_names(expr).into_iter().filter(|n| value(n).is_none()).collect();
            if !missing.is_empty() {
                missing.sort();
                missing.dedup();
                return Err(sub_path_error(m, format!("missing value for {}", missing.join(", "))));
            }
            expand(expr, value)
        }
        _ => return Ok(None),
    };
    if path.starts_with('/') {
        return Err(sub_path_error(m, format!("SubPath `{path}` must not be an absolute path")));
    }
    if path.split('/').any(|part| part == "..") {
        return Err(sub_path_error(m, format!("SubPath {path:?} must not contain '..'")));
    }
    Ok(Some(path))
}

/// The names `expand` would look up in `expr`.
fn referenced_names(expr: &str) -> Vec<String> {
    let names = std::cell::RefCell::new(Vec::new());
    let _ = expand(expr, |name| {
        names.borrow_mut().push(name.to_string());
        None
    });
    names.into_inner()
}

/// The volume types the kubelet makes, by upstream plugin directory name
/// (`kubernetes.io~<plugin>`, as `EscapeQualifiedNameForDisk` writes it).
pub fn volume_plugin(v: &Volume) -> Option<&'static str> {
    if v.empty_dir.is_some() {
        Some("kubernetes.io~empty-dir")
    } else if v.config_map.is_some() {
        Some("kubernetes.io~configmap")
    } else if v.secret.is_some() {
        Some("kubernetes.io~secret")
    } else if v.downward_api.is_some() {
        Some("kubernetes.io~downward-api")
    } else if v.projected.is_some() {
        Some("kubernetes.io~projected")
    } else {
        None
    }
}

/// The directory of a pod: `<pods root>/<uid>`.
pub fn pod_dir(pods_root: &Path, uid: &str) -> PathBuf {
    pods_root.join(uid)
}

/// Where the kubelet makes volume `v` of pod `uid` (upstream `GetPodVolumeDir`:
/// `<pods root>/<uid>/volumes/kubernetes.io~<plugin>/<name>`); None for a volume it does not make.
pub fn volume_dir(pods_root: &Path, uid: &str, v: &Volume) -> Option<PathBuf> {
    let plugin = volume_plugin(v)?;
    Some(pod_dir(pods_root, uid).join("volumes").join(plugin).join(&v.name))
}

/// The CRI mounts of `c`'s volume mounts. `env` is the container's environment; `pods_root` is
/// where the kubelet made the pod's volumes (None: only `hostPath` volumes are mounted).
pub fn mounts(
    pod: &Pod,
    c: &Container,
    env: &[(String, String)],
    pods_root: Option<&Path>,
) -> Result<Vec<Mount>, ConfigError> {
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_deref()).unwrap_or(&[]);
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let env: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut out = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let Some(volume) = volumes.iter().find(|v| v.name == m.name) else {
            return Err(ConfigError::VolumeNotFound { volume: m.name.clone(), container: c.name.clone() });
        };
        let propagation = propagation(m)?;
        let sub = sub_path(m, &env)?;
        let base = match (volume.host_path.as_ref(), pods_root) {
            (Some(host), _) => host.path.clone(),
            (None, Some(root)) if !uid.is_empty() => match volume_dir(root, uid, volume) {
                Some(dir) => dir.to_string_lossy().into_owned(),
                None => continue,
            },
            _ => continue,
        };
        let host_path = match sub {
            Some(sub) => format!("{}/{sub}", base.trim_end_matches('/')),
            None => base,
        };
        // As upstream's plugins say (`GetAttributes().ReadOnly`): the API-data volumes are always
        // mounted read-only.
        let api_data = volume.config_map.is_some()
            || volume.secret.is_some()
            || volume.downward_api.is_some()
            || volume.projected.is_some();
        out.push(Mount {
            container_path: m.mount_path.clone(),
            host_path,
            readonly: m.read_only == Some(true) || api_data,
            propagation,
        });
    }
    Ok(out)
}
