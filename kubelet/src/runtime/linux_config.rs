//! The Linux parts of sandbox and container configs, modelled on the CRI's
//! `LinuxPodSandboxConfig` and `LinuxContainerConfig` (k8s.io/cri-api `api.proto`): cgroups and
//! resources, security context, namespaces, mounts, DNS and ports. Plain data with `Default`
//! (CRI's zero values: 0 and empty mean "not specified"); the kubelet fills them from the pod
//! (`pods::config`), a runtime applies them. No proto types: these are the kubelet's own.

use std::collections::BTreeMap;

/// How a namespace is shared (CRI `NamespaceMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NamespaceMode {
    /// Shared by all containers of the pod (the sandbox's).
    #[default]
    Pod,
    /// The container's own.
    Container,
    /// The node's (`hostNetwork`, `hostPID`, `hostIPC`).
    Node,
}

/// Which namespaces a sandbox or container gets (CRI `NamespaceOption`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NamespaceOption {
    pub network: NamespaceMode,
    /// Note the kubelet sets `Container` for pods without `shareProcessNamespace` (the CRI default
    /// is `Pod`, the Pod API's is a PID namespace per container).
    pub pid: NamespaceMode,
    pub ipc: NamespaceMode,
}

/// Resources of a container or (summed) of a pod (CRI `LinuxContainerResources`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinuxContainerResources {
    /// CFS period in microseconds (0: not specified).
    pub cpu_period: i64,
    /// CFS quota in microseconds per period (0: not specified, i.e. no limit).
    pub cpu_quota: i64,
    /// Relative CPU weight (cgroup v1 `cpu.shares`; v2 maps it to `cpu.weight`).
    pub cpu_shares: i64,
    /// Memory limit in bytes (0: not specified).
    pub memory_limit_in_bytes: i64,
    /// The container processes' `oom_score_adj` (-1000 … 1000).
    pub oom_score_adj: i64,
    /// Maximum number of processes (`pids.max`); None: unlimited.
    pub pids_limit: Option<i64>,
}

/// Capabilities to add to or drop from the runtime's default set (CRI `Capability`). Names as in
/// the Pod API (`NET_ADMIN`, `ALL`), without the `CAP_` prefix.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capability {
    pub add: Vec<String>,
    pub drop: Vec<String>,
}

/// Security settings of a sandbox (CRI `LinuxSandboxSecurityContext`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinuxSandboxSecurityContext {
    pub namespace_options: NamespaceOption,
    pub run_as_user: Option<i64>,
    /// Only with `run_as_user`.
    pub run_as_group: Option<i64>,
    pub readonly_rootfs: bool,
    /// `fsGroup` first, then `supplementalGroups`.
    pub supplemental_groups: Vec<i64>,
    /// Some container of the pod is privileged.
    pub privileged: bool,
}

/// Security settings of a container (CRI `LinuxContainerSecurityContext`): the pod's security
/// context merged with the container's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinuxContainerSecurityContext {
    pub capabilities: Capability,
    pub privileged: bool,
    pub namespace_options: NamespaceOption,
    /// None: the image's user.
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub readonly_rootfs: bool,
    pub supplemental_groups: Vec<i64>,
    /// Set `no_new_privs` on the container process (`allowPrivilegeEscalation: false`).
    pub no_new_privs: bool,
    /// Paths to mask (bind /dev/null or an empty tmpfs over them); empty with `procMount: Unmasked`.
    pub masked_paths: Vec<String>,
    /// Paths to make read-only; empty with `procMount: Unmasked`.
    pub readonly_paths: Vec<String>,
}

/// Linux settings of a sandbox (CRI `LinuxPodSandboxConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinuxPodSandboxConfig {
    /// The pod's cgroup, cgroupfs syntax (`/skiff/burstable/pod<uid>`): the node's cgroup root, the
    /// QoS tier, the pod. A runtime maps it onto the v1 hierarchies or the v2 tree.
    pub cgroup_parent: String,
    pub security_context: LinuxSandboxSecurityContext,
    /// Namespaced sysctls (`spec.securityContext.sysctls`).
    pub sysctls: BTreeMap<String, String>,
    /// `spec.overhead` (RuntimeClass overhead), if any.
    pub overhead: Option<LinuxContainerResources>,
    /// What the pod's containers need together (requests and limits summed as the scheduler does).
    pub resources: LinuxContainerResources,
}

/// Linux settings of a container (CRI `LinuxContainerConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinuxContainerConfig {
    pub resources: LinuxContainerResources,
    pub security_context: LinuxContainerSecurityContext,
}

/// Mount propagation (CRI `MountPropagation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MountPropagation {
    /// `rprivate`.
    #[default]
    Private,
    /// `rslave`: host mounts appear in the container.
    HostToContainer,
    /// `rshared`: both ways.
    Bidirectional,
}

/// A host path mounted into a container (CRI `Mount`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mount {
    pub container_path: String,
    pub host_path: String,
    pub readonly: bool,
    pub propagation: MountPropagation,
}

/// The sandbox's resolv.conf (CRI `DNSConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    /// `ndots:5`, `edns0`, … as they appear on the `options` line.
    pub options: Vec<String>,
}

/// Transport protocol of a port mapping (CRI `Protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

/// A container port published on the node (CRI `PortMapping`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortMapping {
    pub protocol: Protocol,
    pub container_port: i32,
    /// 0: not published on the node.
    pub host_port: i32,
    /// Empty: every node address.
    pub host_ip: String,
}
