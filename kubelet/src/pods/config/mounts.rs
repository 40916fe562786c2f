//! A container's volume mounts as CRI mounts (upstream `makeMounts`, for the volumes that need
//! no volume manager): `hostPath` volumes, with `subPath` or `subPathExpr` (expanded against the
//! container's environment), `readOnly` and `mountPropagation`.
//!
//! Volumes of the other types (emptyDir, configMap, secret, projected, downwardAPI) are made on
//! disk by the volume manager of the real-pods issue; until then their mounts are left out (the
//! fake runtime has nothing to mount anyway).

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, Pod, VolumeMount};

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

/// The CRI mounts of `c`'s `hostPath` volume mounts. `env` is the container's environment.
pub fn mounts(pod: &Pod, c: &Container, env: &[(String, String)]) -> Result<Vec<Mount>, ConfigError> {
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_deref()).unwrap_or(&[]);
    let env: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut out = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let Some(volume) = volumes.iter().find(|v| v.name == m.name) else {
            return Err(ConfigError::VolumeNotFound { volume: m.name.clone(), container: c.name.clone() });
        };
        let propagation = propagation(m)?;
        let sub = sub_path(m, &env)?;
        let Some(host) = volume.host_path.as_ref() else { continue };
        let host_path = match sub {
            Some(sub) => format!("{}/{sub}", host.path.trim_end_matches('/')),
            None => host.path.clone(),
        };
        out.push(Mount {
            container_path: m.mount_path.clone(),
            host_path,
            readonly: m.read_only == Some(true),
            propagation,
        });
    }
    Ok(out)
}
