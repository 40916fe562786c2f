//! A container's environment, as upstream's `makeEnvironmentVariables` builds it: `envFrom`
//! sources first (ConfigMaps and Secrets, with their prefix), then `env` in order, each value
//! either `$(VAR)`-expanded against the variables defined before it, or resolved from its
//! `valueFrom` (`fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef`). A later
//! definition of a name replaces the earlier value. A missing ConfigMap, Secret or key is skipped
//! when the reference is optional and fails the container (`CreateContainerConfigError`)
//! otherwise; a failed read fails it whatever `optional` says.
//!
//! The Service environment variables ([`service_env`]: `{SVC}_SERVICE_HOST`, `{SVC}_PORT_...`)
//! come last and only where the container defines no variable of the same name; `$(VAR)`
//! expansion sees them too, as upstream's.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Container, EnvVarSource, ObjectFieldSelector, Pod, ResourceFieldSelector, Service};

use super::expansion::expand;
use super::resources::with_default_limits;
use super::{ConfigError, NodeFacts};

/// A read of a ConfigMap or Secret that failed (not one that found nothing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LookupError(pub String);

/// Where the translation reads the ConfigMaps and Secrets of the pod's namespace. The worker
/// fetches what [`references`] names before it translates, so the translation stays pure.
pub trait ObjectSource {
    /// The ConfigMap's `data`; `Ok(None)` when there is no such ConfigMap.
    fn config_map(&self, name: &str) -> Result<Option<&BTreeMap<String, String>>, LookupError>;
    /// The Secret's `data`; `Ok(None)` when there is no such Secret.
    fn secret(&self, name: &str) -> Result<Option<&BTreeMap<String, Vec<u8>>>, LookupError>;
}

/// The result of one read: `Ok(None)` when the object does not exist.
pub type Fetched<T> = Result<Option<T>, LookupError>;

/// Fetched ConfigMaps (`data`) and Secrets (`data`) by name. A name that was not fetched reads
/// as a failure.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    pub config_maps: HashMap<String, Fetched<BTreeMap<String, String>>>,
    pub secrets: HashMap<String, Fetched<BTreeMap<String, Vec<u8>>>>,
}

fn not_fetched(kind: &str, name: &str) -> LookupError {
    LookupError(format!("{kind} {name:?} was not fetched"))
}

impl ObjectSource for Objects {
    fn config_map(&self, name: &str) -> Result<Option<&BTreeMap<String, String>>, LookupError> {
        match self.config_maps.get(name) {
            Some(Ok(data)) => Ok(data.as_ref()),
            Some(Err(e)) => Err(e.clone()),
            None => Err(not_fetched("configmap", name)),
        }
    }

    fn secret(&self, name: &str) -> Result<Option<&BTreeMap<String, Vec<u8>>>, LookupError> {
        match self.secrets.get(name) {
            Some(Ok(data)) => Ok(data.as_ref()),
            Some(Err(e)) => Err(e.clone()),
            None => Err(not_fetched("secret", name)),
        }
    }
}

/// The ConfigMaps and Secrets a container's environment reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    pub config_maps: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
}

impl References {
    pub fn is_empty(&self) -> bool {
        self.config_maps.is_empty() && self.secrets.is_empty()
    }
}

/// What [`environment`] will ask an [`ObjectSource`] for.
pub fn references(c: &Container) -> References {
    let mut out = References::default();
    for from in c.env_from.iter().flatten() {
        out.config_maps.extend(from.config_map_ref.as_ref().map(|r| r.name.clone()));
        out.secrets.extend(from.secret_ref.as_ref().map(|r| r.name.clone()));
    }
    for src in c.env.iter().flatten().filter_map(|e| e.value_from.as_ref()) {
        out.config_maps.extend(src.config_map_key_ref.as_ref().map(|r| r.name.clone()));
        out.secrets.extend(src.secret_key_ref.as_ref().map(|r| r.name.clone()));
    }
    out
}

/// Variables in definition order; a redefinition keeps the first position and the last value.
#[derive(Default)]
struct Env {
    vars: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl Env {
    fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).and_then(|&i| self.vars.get(i)).map(|(_, v)| v.as_str())
    }

    fn set(&mut self, name: String, value: String) {
        match self.index.get(&name) {
            Some(&i) => {
                if let Some(slot) = self.vars.get_mut(i) {
                    slot.1 = value;
                }
            }
            None => {
                self.index.insert(name.clone(), self.vars.len());
                self.vars.push((name, value));
            }
        }
    }
}

/// Everything the environment of one container depends on.
pub struct EnvInput<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub node: &'a NodeFacts,
    /// The pod's IPs (the node's for `hostNetwork` pods), primary first.
    pub pod_ips: &'a [IpAddr],
    pub objects: &'a dyn ObjectSource,
    /// The Service variables ([`service_env`]).
    pub service_env: &'a [(String, String)],
}

/// The namespace whose `kubernetes` Service every pod gets variables for, whatever
/// `enableServiceLinks` says (upstream's master service namespace).
const MASTER_NAMESPACE: &str = "default";

fn env_name(service: &str) -> String {
    service.to_ascii_uppercase().replace('-', "_")
}

/// The Service environment variables of a pod in `namespace` (upstream `getServiceEnvVarMap` and
/// `envvars.FromServices`): for each Service of the namespace with a cluster IP (all of them
/// unless `enable_service_links` is false) and for `default/kubernetes`, `{SVC}_SERVICE_HOST`,
/// `{SVC}_SERVICE_PORT`, `{SVC}_SERVICE_PORT_{NAME}` per named port, and the Docker link
/// variables `{SVC}_PORT`, `{SVC}_PORT_{P}_{PROTO}[_PROTO|_PORT|_ADDR]`. Sorted by Service name.
pub fn service_env<'a>(
    namespace: &str,
    enable_service_links: bool,
    services: impl IntoIterator<Item = &'a Service>,
) -> Vec<(String, String)> {
    let mut chosen: BTreeMap<&str, &Service> = BTreeMap::new();
    for svc in services {
        let (Some(name), Some(ns)) = (svc.metadata.name.as_deref(), svc.metadata.namespace.as_deref()) else {
            continue;
        };
        let Some(ip) = svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) else { continue };
        if ip.is_empty() || ip == "None" {
            continue;
        }
        if ns == MASTER_NAMESPACE && name == "kubernetes" {
            chosen.entry(name).or_insert(svc);
        } else if ns == namespace && enable_service_links {
            chosen.insert(name, svc);
        }
    }
    let mut out = Vec::new();
    for (name, svc) in chosen {
        let Some(spec) = svc.spec.as_ref() else { continue };
        let ip = spec.cluster_ip.clone().unwrap_or_default();
        let ports = spec.ports.as_deref().unwrap_or(&[]);
        let prefix = env_name(name);
        out.push((format!("{prefix}_SERVICE_HOST"), ip.clone()));
        let Some(first) = ports.first() else { continue };
        out.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        for p in ports {
            if let Some(pn) = p.name.as_deref().filter(|n| !n.is_empty()) {
                out.push((format!("{prefix}_SERVICE_PORT_{}", env_name(pn)), p.port.to_string()));
            }
        }
        let host = if ip.contains(':') { format!("[{ip}]") } else { ip.clone() };
        let proto = |p: &k8s_openapi::api::core::v1::ServicePort| p.protocol.clone().unwrap_or_else(|| "TCP".into());
        out.push((format!("{prefix}_PORT"), format!("{}://{host}:{}", proto(first).to_lowercase(), first.port)));
        for p in ports {
            let proto = proto(p);
            let var = format!("{prefix}_PORT_{}_{}", p.port, proto.to_ascii_uppercase());
            out.push((var.clone(), format!("{}://{host}:{}", proto.to_lowercase(), p.port)));
            out.push((format!("{var}_PROTO"), proto.to_lowercase()));
            out.push((format!("{var}_PORT"), p.port.to_string()));
            out.push((format!("{var}_ADDR"), ip.clone()));
        }
    }
    out
}

fn namespace(pod: &Pod) -> String {
    pod.metadata.namespace.clone().unwrap_or_default()
}

/// The container's environment, resolved and expanded.
pub fn environment(input: &EnvInput<'_>) -> Result<Vec<(String, String)>, ConfigError> {
    let c = input.container;
    let ns = namespace(input.pod);
    let lookup = |kind: &'static str, name: &str, source: LookupError| ConfigError::Lookup {
        kind,
        namespace: ns.clone(),
        name: name.to_string(),
        source,
    };
    let mut env = Env::default();
    let service_var = |n: &str| input.service_env.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match input.objects.config_map(&r.name) {
                Ok(Some(data)) => {
                    for (k, v) in data {
                        env.set(format!("{prefix}{k}"), v.clone());
                    }
                }
                Ok(None) if r.optional == Some(true) => {}
                Ok(None) => return Err(ConfigError::ConfigMapNotFound { name: r.name.clone() }),
                Err(e) => return Err(lookup("configmap", &r.name, e)),
            }
        } else if let Some(r) = &from.secret_ref {
            match input.objects.secret(&r.name) {
                Ok(Some(data)) => {
                    for (k, v) in data {
                        env.set(format!("{prefix}{k}"), String::from_utf8_lossy(v).into_owned());
                    }
                }
                Ok(None) if r.optional == Some(true) => {}
                Ok(None) => return Err(ConfigError::SecretNotFound { name: r.name.clone() }),
                Err(e) => return Err(lookup("secret", &r.name, e)),
            }
        }
    }
    for e in c.env.iter().flatten() {
        let value = match (e.value.as_deref(), e.value_from.as_ref()) {
            (Some(v), _) if !v.is_empty() => expand(v, |n| env.get(n).or_else(|| service_var(n))),
            (_, Some(src)) => match value_from(input, src, &ns)? {
                Some(v) => v,
                // An optional reference to something missing: no variable.
                None => continue,
            },
            _ => String::new(),
        };
        env.set(e.name.clone(), value);
    }
    for (k, v) in input.service_env {
        if env.get(k).is_none() {
            env.set(k.clone(), v.clone());
        }
    }
    Ok(env.vars)
}

/// One `valueFrom`; None when an optional reference found nothing.
fn value_from(input: &EnvInput<'_>, src: &EnvVarSource, ns: &str) -> Result<Option<String>, ConfigError> {
    if let Some(f) = &src.field_ref {
        return field_value(input, f).map(Some);
    }
    if let Some(r) = &src.resource_field_ref {
        return resource_value(input, r).map(Some);
    }
    let lookup = |kind: &'static str, name: &str, source: LookupError| ConfigError::Lookup {
        kind,
        namespace: ns.to_string(),
        name: name.to_string(),
        source,
    };
    if let Some(r) = &src.config_map_key_ref {
        let optional = r.optional == Some(true);
        let data = match input.objects.config_map(&r.name) {
            Ok(Some(d)) => d,
            Ok(None) if optional => return Ok(None),
            Ok(None) => return Err(ConfigError::ConfigMapNotFound { name: r.name.clone() }),
            Err(e) => return Err(lookup("configmap", &r.name, e)),
        };
        return match data.get(&r.key) {
            Some(v) => Ok(Some(v.clone())),
            None if optional => Ok(None),
            None => Err(ConfigError::ConfigMapKeyNotFound {
                namespace: ns.to_string(),
                name: r.name.clone(),
                key: r.key.clone(),
            }),
        };
    }
    if let Some(r) = &src.secret_key_ref {
        let optional = r.optional == Some(true);
        let data = match input.objects.secret(&r.name) {
            Ok(Some(d)) => d,
            Ok(None) if optional => return Ok(None),
            Ok(None) => return Err(ConfigError::SecretNotFound { name: r.name.clone() }),
            Err(e) => return Err(lookup("secret", &r.name, e)),
        };
        return match data.get(&r.key) {
            Some(v) => Ok(Some(String::from_utf8_lossy(v).into_owned())),
            None if optional => Ok(None),
            None => Err(ConfigError::SecretKeyNotFound {
                namespace: ns.to_string(),
                name: r.name.clone(),
                key: r.key.clone(),
            }),
        };
    }
    // A source this kubelet does not know (e.g. fileKeyRef, alpha): as upstream without the gate.
    Ok(Some(String::new()))
}

/// `metadata.labels['k']` → (`metadata.labels`, `k`) (upstream `SplitMaybeSubscriptedPath`).
fn subscripted(path: &str) -> Option<(&str, &str)> {
    let inner = path.strip_suffix("']")?;
    let (base, key) = inner.split_once("['")?;
    (!base.is_empty()).then_some((base, key))
}

/// Go's `%q` of a string: double quotes, backslash escapes for quotes, backslashes and
/// control characters.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A whole label or annotation map as the downward API prints it: `k="v"` lines, sorted.
fn format_map(m: Option<&BTreeMap<String, String>>) -> String {
    m.into_iter().flatten().map(|(k, v)| format!("{k}={}", go_quote(v))).collect::<Vec<_>>().join("\n")
}

/// A `fieldRef` (upstream `podFieldSelectorRuntimeValue` and `ExtractFieldPathAsString`).
fn field_value(input: &EnvInput<'_>, f: &ObjectFieldSelector) -> Result<String, ConfigError> {
    let version = f.api_version.as_deref().unwrap_or_default();
    if !(version.is_empty() || version == "v1") {
        return Err(ConfigError::FieldVersion(version.to_string()));
    }
    let pod = input.pod;
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let path = f.field_path.as_str();
    let ips = || input.pod_ips.iter().map(IpAddr::to_string).collect::<Vec<_>>();
    let value = match path {
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => input.node.host_ip.to_string(),
        "status.podIP" => ips().into_iter().next().unwrap_or_default(),
        "status.podIPs" => ips().join(","),
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        _ => match subscripted(path) {
            Some(("metadata.labels", key)) => {
                meta.labels.as_ref().and_then(|l| l.get(key)).cloned().unwrap_or_default()
            }
            Some(("metadata.annotations", key)) => {
                meta.annotations.as_ref().and_then(|a| a.get(key)).cloned().unwrap_or_default()
            }
            _ => return Err(ConfigError::FieldPath(path.to_string())),
        },
    };
    Ok(value)
}

fn ceil_div(a: i128, b: i128) -> i128 {
    if b <= 0 {
        return a;
    }
    if a <= 0 {
        a / b
    } else {
        (a + b - 1) / b
    }
}

/// A `resourceFieldRef` (upstream `ExtractContainerResourceValue` on the container with its
/// unset limits defaulted to the node's allocatable), rounded up to whole divisors.
fn resource_value(input: &EnvInput<'_>, r: &ResourceFieldSelector) -> Result<String, ConfigError> {
    let target = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
        None => input.container,
        Some(name) => {
            let spec = input.pod.spec.as_ref();
            let mut all = spec.into_iter().flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()));
            all.find(|c| c.name == name).ok_or_else(|| ConfigError::ResourceContainer(name.to_string()))?
        }
    };
    let resources = with_default_limits(target.resources.as_ref(), &input.node.allocatable);
    let unsupported = || ConfigError::Resource(r.resource.clone());
    let (list, name) = match r.resource.split_once('.') {
        Some(("limits", n)) => (resources.limits.as_ref(), n),
        Some(("requests", n)) => (resources.requests.as_ref(), n),
        _ => return Err(unsupported()),
    };
    let cpu = match name {
        "cpu" => true,
        "memory" | "ephemeral-storage" => false,
        n if n.starts_with("hugepages-") => false,
        _ => return Err(unsupported()),
    };
    let divisor = match r.divisor.as_ref().map(|d| api::quantity::parse(&d.0)) {
        None => None,
        Some(Ok(d)) if d.is_zero() => None,
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => return Err(ConfigError::Divisor(r.divisor.as_ref().map(|d| d.0.clone()).unwrap_or_default())),
    };
    let scaled = |q: &api::quantity::Quantity| i128::from(if cpu { q.milli_value() } else { q.value() });
    let divisor = divisor.as_ref().map(scaled).unwrap_or(if cpu { 1000 } else { 1 });
    let value = match list.and_then(|l| l.get(name)).map(|q| api::quantity::parse(&q.0)) {
        None => 0,
        Some(Ok(q)) => scaled(&q),
        Some(Err(_)) => return Err(unsupported()),
    };
    Ok(ceil_div(value, divisor).to_string())
}
