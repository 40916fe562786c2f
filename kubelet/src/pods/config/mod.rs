//! Pod → runtime config: what [`sandbox_config`] and [`container_config`] make of a pod for the
//! runtime, following upstream's kubelet (`kuberuntime_sandbox.go`,
//! `kuberuntime_container_linux.go`, `kubelet_pods.go`). Pure functions: the node's facts and
//! the ConfigMaps and Secrets the environment needs come in as inputs, so every rule is
//! table-tested without a cluster.
//!
//! - [`resources`]: QoS class, CPU shares and quota, memory limit, OOM score, the pod's cgroup;
//! - [`security`]: namespaces, the merged security context;
//! - [`dns`]: resolv.conf and hostname;
//! - [`env`]: `env`/`envFrom` with `valueFrom` resolved;
//! - [`expansion`]: `$(VAR)` in env values, command, args and `subPathExpr`;
//! - [`mounts`]: volume mounts (`hostPath`, and the volumes the kubelet makes under
//!   [`NodeFacts::pods_root`], see [`crate::pods::volumes`]).
//!
//! A container whose config cannot be made (a missing ConfigMap, an unsupported field path)
//! fails with a [`ConfigError`]; the pod worker reports it as upstream does, as the container
//! waiting with reason `CreateContainerConfigError`, and tries again later.

pub mod dns;
pub mod env;
pub mod expansion;
pub mod mounts;
pub mod resources;
pub mod security;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::runtime::{
    ContainerConfig, DnsConfig, LinuxContainerConfig, LinuxPodSandboxConfig, PodNetwork, PodSandboxConfig, PortMapping,
    Protocol, SandboxMetadata, LABEL_CONTAINER_NAME, LABEL_CONTAINER_TYPE, LABEL_POD_NAME, LABEL_POD_NAMESPACE,
    LABEL_POD_UID, LABEL_RESTART_POLICY,
};
pub use dns::ClusterDns;
pub use env::{LookupError, ObjectSource, Objects, References};

/// The reason a container waits with when its config cannot be made.
pub const CONFIG_ERROR_REASON: &str = "CreateContainerConfigError";
/// The node's cgroup root (DESIGN §10: `skiff/` under each v1 controller, `skiff.slice/` in v2).
pub const DEFAULT_CGROUP_ROOT: &str = "/skiff";

/// Why a container's (or the sandbox's) config could not be made. Messages follow upstream's,
/// which users see in the container's waiting state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("configmap {name:?} not found")]
    ConfigMapNotFound { name: String },
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKeyNotFound { namespace: String, name: String, key: String },
    #[error("secret {name:?} not found")]
    SecretNotFound { name: String },
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKeyNotFound { namespace: String, name: String, key: String },
    /// Reading a ConfigMap or Secret failed (retryable).
    #[error("get {kind} {namespace}/{name}: {source}")]
    Lookup {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: LookupError,
    },
    #[error("unsupported pod version: {0}")]
    FieldVersion(String),
    #[error("unsupported fieldPath: {0}")]
    FieldPath(String),
    #[error("unsupported container resource: {0}")]
    Resource(String),
    #[error("container {0} not found")]
    ResourceContainer(String),
    #[error("invalid divisor {0:?}")]
    Divisor(String),
    #[error("cannot find volume {volume:?} to mount into container {container:?}")]
    VolumeNotFound { volume: String, container: String },
    #[error("invalid MountPropagation mode: {0:?}")]
    Propagation(String),
    #[error("volume mount {mount}: {message}")]
    SubPath { mount: String, message: String },
    #[error("{0}")]
    Hostname(String),
    /// A volume of the pod could not be set up (upstream reports it as the FailedMount event).
    #[error("MountVolume.SetUp failed for volume {volume:?} : {message}")]
    VolumeSetUp { volume: String, message: String },
}

/// What the translation needs to know about the node (fixed for the life of the node).
#[derive(Debug, Clone)]
pub struct NodeFacts {
    pub name: String,
    pub host_ip: IpAddr,
    /// Allocatable resources: default limits for `resourceFieldRef`, memory capacity for the OOM
    /// score.
    pub allocatable: BTreeMap<String, Quantity>,
    pub cluster_dns: ClusterDns,
    /// The node's own resolv.conf (for `dnsPolicy: Default` and the host search path).
    pub host_dns: DnsConfig,
    /// See [`DEFAULT_CGROUP_ROOT`].
    pub cgroup_root: String,
    /// Where pod log directories go (`<root>/<ns>_<name>_<uid>`); None: not on disk.
    pub log_root: Option<PathBuf>,
    /// `pids.max` of each pod; None: unlimited.
    pub pod_pids_limit: Option<i64>,
    /// Where pod directories go (`<root>/<uid>/volumes/...`, upstream's `/var/lib/kubelet/pods`);
    /// None: the kubelet makes no volumes (hollow nodes), and only `hostPath` volumes are mounted.
    pub pods_root: Option<PathBuf>,
}

impl NodeFacts {
    /// Facts with the defaults: cluster DNS 10.96.0.10 in `cluster.local`, no host resolv.conf,
    /// cgroup root `/skiff`, no log root, no pids limit, no pods root.
    pub fn new(name: impl Into<String>, host_ip: IpAddr, allocatable: BTreeMap<String, Quantity>) -> Self {
        NodeFacts {
            name: name.into(),
            host_ip,
            allocatable,
            cluster_dns: ClusterDns::default(),
            host_dns: DnsConfig::default(),
            cgroup_root: DEFAULT_CGROUP_ROOT.to_string(),
            log_root: None,
            pod_pids_limit: None,
            pods_root: None,
        }
    }

    /// Memory capacity in bytes (what the OOM score is relative to).
    fn memory_capacity(&self) -> i128 {
        let q = self.allocatable.get("memory").and_then(|q| api::quantity::parse(&q.0).ok());
        q.map(|q| i128::from(q.value())).unwrap_or(0)
    }
}

/// Init or app container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerRole {
    Init,
    App,
}

fn protocol(p: Option<&str>) -> Protocol {
    match p {
        Some("UDP") => Protocol::Udp,
        Some("SCTP") => Protocol::Sctp,
        _ => Protocol::Tcp,
    }
}

/// The app containers' ports (upstream `MakePortMappings`: a port repeated in one container, by
/// name or by family/protocol/IP/ports, counts once).
fn port_mappings(pod: &Pod) -> Vec<PortMapping> {
    let mut out = Vec::new();
    for c in pod.spec.iter().flat_map(|s| &s.containers) {
        let mut seen = std::collections::HashSet::new();
        for p in c.ports.iter().flatten() {
            let host_ip = p.host_ip.clone().unwrap_or_default();
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            let family = match host_ip.parse::<IpAddr>() {
                _ if host_ip.is_empty() => "any",
                Ok(IpAddr::V6(_)) => "v6",
                _ => "v4",
            };
            let host_port = p.host_port.unwrap_or(0);
            let key = match p.name.as_deref().filter(|n| !n.is_empty()) {
                Some(n) => n.to_string(),
                None => format!("{family}-{proto}-{host_ip}:{}:{host_port}", p.container_port),
            };
            if !seen.insert(key) {
                continue;
            }
            out.push(PortMapping {
                protocol: protocol(Some(proto)),
                container_port: p.container_port,
                host_port,
                host_ip,
            });
        }
    }
    out
}

fn meta(pod: &Pod) -> (String, String, String) {
    let m = &pod.metadata;
    (m.name.clone().unwrap_or_default(), m.namespace.clone().unwrap_or_default(), m.uid.clone().unwrap_or_default())
}

/// The sandbox of `pod` (upstream `generatePodSandboxConfig`). `network` is the IP the kubelet
/// allocated (None for `hostNetwork` pods).
pub fn sandbox_config(
    pod: &Pod,
    node: &NodeFacts,
    network: Option<PodNetwork>,
) -> Result<PodSandboxConfig, ConfigError> {
    let (name, namespace, uid) = meta(pod);
    let no_spec = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&no_spec);
    let policy = spec.restart_policy.clone().unwrap_or_else(|| "Always".into());
    let mut resources = resources::pod_resources(pod);
    resources.pids_limit = node.pod_pids_limit;
    let linux = LinuxPodSandboxConfig {
        cgroup_parent: resources::cgroup_parent(&node.cgroup_root, pod),
        security_context: security::sandbox_security(spec),
        sysctls: spec
            .security_context
            .iter()
            .flat_map(|s| s.sysctls.iter().flatten())
            .map(|s| (s.name.clone(), s.value.clone()))
            .collect(),
        overhead: resources::overhead(pod),
        resources,
    };
    Ok(PodSandboxConfig {
        metadata: Some(SandboxMetadata {
            name: name.clone(),
            namespace: namespace.clone(),
            uid: uid.clone(),
            attempt: 0,
        }),
        hostname: dns::hostname(pod, &node.cluster_dns.domain)?,
        log_directory: node.log_root.as_ref().map(|r| r.join(format!("{namespace}_{name}_{uid}"))),
        dns_config: Some(dns::pod_dns(pod, &node.cluster_dns, &node.host_dns)),
        port_mappings: port_mappings(pod),
        network,
        labels: [
            (LABEL_POD_NAME.to_string(), name),
            (LABEL_POD_NAMESPACE.to_string(), namespace),
            (LABEL_POD_UID.to_string(), uid),
            (LABEL_RESTART_POLICY.to_string(), policy),
        ]
        .into(),
        annotations: pod.metadata.annotations.clone().unwrap_or_default(),
        linux,
    })
}

/// Everything one container's config depends on.
pub struct ContainerInput<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub role: ContainerRole,
    /// How many times the container was restarted before (CRI `metadata.attempt`).
    pub attempt: u32,
    pub node: &'a NodeFacts,
    /// The pod's IPs (the node's for `hostNetwork` pods), primary first.
    pub pod_ips: &'a [IpAddr],
    pub objects: &'a dyn ObjectSource,
    /// The Service environment variables ([`env::service_env`]).
    pub service_env: &'a [(String, String)],
}

/// The config of one container (upstream `generateContainerConfig`): environment resolved, command
/// and args expanded against it, mounts, resources and security context.
pub fn container_config(input: &ContainerInput<'_>) -> Result<ContainerConfig, ConfigError> {
    let (pod, c) = (input.pod, input.container);
    let (name, namespace, uid) = meta(pod);
    let env = env::environment(&env::EnvInput {
        pod,
        container: c,
        node: input.node,
        pod_ips: input.pod_ips,
        objects: input.objects,
        service_env: input.service_env,
    })?;
    let mounts = mounts::mounts(pod, c, &env, input.node.pods_root.as_deref())?;
    let vars: std::collections::HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let expand_all = |list: Option<&Vec<String>>| -> Vec<String> {
        list.into_iter().flatten().map(|s| expansion::expand(s, |n| vars.get(n).copied())).collect()
    };
    let command = expand_all(c.command.as_ref());
    let args = expand_all(c.args.as_ref());
    let mut resources = resources::container_resources(c);
    resources.oom_score_adj = resources::oom_score_adj(pod, c, input.node.memory_capacity());
    let role = match input.role {
        ContainerRole::Init => "init",
        ContainerRole::App => "app",
    };
    let attempt = input.attempt;
    Ok(ContainerConfig {
        name: c.name.clone(),
        attempt,
        image: c.image.clone().unwrap_or_default(),
        command,
        args,
        working_dir: c.working_dir.clone().filter(|w| !w.is_empty()),
        env,
        mounts,
        labels: [
            (LABEL_CONTAINER_NAME.to_string(), c.name.clone()),
            (LABEL_CONTAINER_TYPE.to_string(), role.to_string()),
            (LABEL_POD_NAME.to_string(), name),
            (LABEL_POD_NAMESPACE.to_string(), namespace),
            (LABEL_POD_UID.to_string(), uid),
        ]
        .into(),
        annotations: BTreeMap::new(),
        log_path: Some(format!("{}/{attempt}.log", c.name).into()),
        tty: c.tty == Some(true),
        stdin: c.stdin == Some(true),
        stdin_once: c.stdin_once == Some(true),
        linux: LinuxContainerConfig { resources, security_context: security::container_security(pod, c) },
    })
}
