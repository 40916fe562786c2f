//! What a configMap, secret, downwardAPI or projected volume holds: its files, path → data and
//! mode, as upstream's `MakePayload` (configmap, secret), `CollectData` (downwardapi) and the
//! projected volume's `collectData` make them. Pure: the objects come in fetched.
//!
//! - no `items`: every key of the object (a ConfigMap's `data` and `binaryData`), with
//!   `defaultMode`; `items`: each key at its `path` with its `mode` (else `defaultMode`), a
//!   missing key failing the volume unless it is `optional`;
//! - a missing object fails the volume unless it is `optional` (then the volume is empty);
//! - downwardAPI items: `fieldRef` and `resourceFieldRef` resolved as in the environment
//!   (labels and annotations as upstream's `key="value"` lines);
//! - projected: the files of its sources together, `defaultMode` the projected volume's;
//!   `serviceAccountToken` sources are not made yet (the security issue).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Container, DownwardAPIVolumeFile, EnvVar, EnvVarSource, KeyToPath, Pod, Volume};

use crate::pods::config::env::{self, Fetched, References};
use crate::pods::config::NodeFacts;

/// Upstream's `defaultMode` of configMap, secret, downwardAPI and projected volumes.
pub const DEFAULT_MODE: i32 = 0o644;

/// One file of a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProjection {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// A volume's files by relative path.
pub type Payload = BTreeMap<String, FileProjection>;

/// The ConfigMaps (`data` and `binaryData` together) and Secrets (`data`) the pod's volumes name,
/// fetched by name. A name that was not fetched reads as a failure.
#[derive(Debug, Clone, Default)]
pub struct VolumeObjects {
    pub config_maps: HashMap<String, Fetched<BTreeMap<String, Vec<u8>>>>,
    pub secrets: HashMap<String, Fetched<BTreeMap<String, Vec<u8>>>>,
}

/// The ConfigMaps and Secrets the pod's volumes read.
pub fn references(pod: &Pod) -> References {
    let mut out = References::default();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        out.config_maps.extend(v.config_map.as_ref().map(|c| c.name.clone()));
        out.secrets.extend(v.secret.as_ref().and_then(|s| s.secret_name.clone()));
        for src in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            out.config_maps.extend(src.config_map.as_ref().map(|c| c.name.clone()));
            out.secrets.extend(src.secret.as_ref().map(|s| s.name.clone()));
        }
    }
    out
}

/// Everything the payloads of a pod's volumes depend on.
pub struct PayloadInput<'a> {
    pub pod: &'a Pod,
    pub node: &'a NodeFacts,
    /// The pod's IPs, primary first.
    pub pod_ips: &'a [IpAddr],
    pub objects: &'a VolumeObjects,
}

fn mode(m: Option<i32>, default: i32) -> u32 {
    u32::try_from(m.unwrap_or(default)).unwrap_or(DEFAULT_MODE as u32) & 0o7777
}

/// Which object a [`from_object`] reads, for messages.
#[derive(Clone, Copy)]
enum Kind {
    ConfigMap,
    Secret,
}

impl Kind {
    fn plural(self) -> &'static str {
        match self {
            Kind::ConfigMap => "configmaps",
            Kind::Secret => "secrets",
        }
    }

    fn missing_key(self, key: &str) -> String {
        match self {
            Kind::ConfigMap => format!("configmap references non-existent config key: {key}"),
            Kind::Secret => format!("references non-existent secret key: {key}"),
        }
    }
}

/// The files of a ConfigMap or Secret (upstream `MakePayload`) into `out`.
fn from_object(
    kind: Kind,
    name: &str,
    fetched: Option<&Fetched<BTreeMap<String, Vec<u8>>>>,
    items: Option<&[KeyToPath]>,
    default_mode: i32,
    optional: bool,
    out: &mut Payload,
) -> Result<(), String> {
    let data = match fetched {
        Some(Ok(Some(data))) => data,
        // As upstream: an optional object that is missing makes an empty volume.
        Some(Ok(None)) if optional => return Ok(()),
        Some(Ok(None)) => return Err(format!("{} {name:?} not found", kind.plural())),
        Some(Err(e)) => return Err(format!("get {} {name:?}: {e}", kind.plural())),
        None => return Err(format!("{} {name:?} was not fetched", kind.plural())),
    };
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (k, v) in data {
                out.insert(k.clone(), FileProjection { data: v.clone(), mode: mode(None, default_mode) });
            }
        }
        Some(items) => {
            for item in items {
                match data.get(&item.key) {
                    Some(v) => {
                        out.insert(
                            item.path.clone(),
                            FileProjection { data: v.clone(), mode: mode(item.mode, default_mode) },
                        );
                    }
                    None if optional => {}
                    None => return Err(kind.missing_key(&item.key)),
                }
            }
        }
    }
    Ok(())
}

/// The value of one downward API item, resolved as the environment resolves the same source.
fn downward_value(input: &PayloadInput<'_>, item: &DownwardAPIVolumeFile) -> Result<String, String> {
    let source = EnvVarSource {
        field_ref: item.field_ref.clone(),
        resource_field_ref: item.resource_field_ref.clone(),
        ..EnvVarSource::default()
    };
    let probe = Container {
        name: String::new(),
        env: Some(vec![EnvVar { name: "V".into(), value: None, value_from: Some(source) }]),
        ..Container::default()
    };
    let no_objects = env::Objects::default();
    let vars = env::environment(&env::EnvInput {
        pod: input.pod,
        container: &probe,
        node: input.node,
        pod_ips: input.pod_ips,
        objects: &no_objects,
        service_env: &[],
    })
    .map_err(|e| e.to_string())?;
    Ok(vars.into_iter().next().map(|(_, v)| v).unwrap_or_default())
}

/// The files of downward API items (upstream `downwardapi.CollectData`) into `out`.
fn from_downward_api(
    input: &PayloadInput<'_>,
    items: &[DownwardAPIVolumeFile],
    default_mode: i32,
    out: &mut Payload,
) -> Result<(), String> {
    let mut errors = Vec::new();
    for item in items {
        if item.field_ref.is_none() && item.resource_field_ref.is_none() {
            continue;
        }
        match downward_value(input, item) {
            Ok(v) => {
                out.insert(
                    item.path.clone(),
                    FileProjection { data: v.into_bytes(), mode: mode(item.mode, default_mode) },
                );
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join(", "))
    }
}

/// The files of volume `v`; None for a volume without files (emptyDir, hostPath, ...). The error
/// says what is missing, as upstream's FailedMount event does.
pub fn payload(input: &PayloadInput<'_>, v: &Volume) -> Option<Result<Payload, String>> {
    let mut out = Payload::new();
    let objects = input.objects;
    let r = if let Some(c) = &v.config_map {
        from_object(
            Kind::ConfigMap,
            &c.name,
            objects.config_maps.get(&c.name),
            c.items.as_deref(),
            c.default_mode.unwrap_or(DEFAULT_MODE),
            c.optional == Some(true),
            &mut out,
        )
    } else if let Some(s) = &v.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        from_object(
            Kind::Secret,
            &name,
            objects.secrets.get(&name),
            s.items.as_deref(),
            s.default_mode.unwrap_or(DEFAULT_MODE),
            s.optional == Some(true),
            &mut out,
        )
    } else if let Some(d) = &v.downward_api {
        from_downward_api(input, d.items.as_deref().unwrap_or(&[]), d.default_mode.unwrap_or(DEFAULT_MODE), &mut out)
    } else if let Some(p) = &v.projected {
        projected(input, p, &mut out)
    } else {
        return None;
    };
    Some(r.map(|()| out))
}

/// The files of a projected volume's sources (upstream `projectedVolumeMounter.collectData`):
/// every source is tried, the errors of all are reported together.
fn projected(
    input: &PayloadInput<'_>,
    p: &k8s_openapi::api::core::v1::ProjectedVolumeSource,
    out: &mut Payload,
) -> Result<(), String> {
    let default_mode = p.default_mode.unwrap_or(DEFAULT_MODE);
    let objects = input.objects;
    let mut errors = Vec::new();
    for src in p.sources.iter().flatten() {
        let r = if let Some(c) = &src.config_map {
            from_object(
                Kind::ConfigMap,
                &c.name,
                objects.config_maps.get(&c.name),
                c.items.as_deref(),
                default_mode,
                c.optional == Some(true),
                out,
            )
        } else if let Some(s) = &src.secret {
            from_object(
                Kind::Secret,
                &s.name,
                objects.secrets.get(&s.name),
                s.items.as_deref(),
                default_mode,
                s.optional == Some(true),
                out,
            )
        } else if let Some(d) = &src.downward_api {
            from_downward_api(input, d.items.as_deref().unwrap_or(&[]), default_mode, out)
        } else if src.service_account_token.is_some() {
            tracing::debug!("projected serviceAccountToken sources are not made yet; skipped");
            Ok(())
        } else {
            Ok(())
        };
        if let Err(e) = r {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join(", "))
    }
}
