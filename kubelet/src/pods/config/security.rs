//! Namespaces and security contexts, as upstream's kubelet derives them: `NamespacesForPod`,
//! `DetermineEffectiveSecurityContext` (the pod's context, then the container's on top),
//! `determineEffectiveSecurityContext` and `generatePodSandboxLinuxConfig`.

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};

use crate::runtime::{
    Capability, LinuxContainerSecurityContext, LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption,
};

/// Paths masked in every container unless `procMount: Unmasked` (upstream `defaultMaskedPaths`,
/// kept in sync with moby's).
pub const DEFAULT_MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths read-only in every container unless `procMount: Unmasked` (upstream
/// `defaultReadonlyPaths`).
pub const DEFAULT_READONLY_PATHS: [&str; 5] =
    ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// `hostNetwork`/`hostPID`/`hostIPC` → NODE; `shareProcessNamespace` → a POD pid namespace;
/// otherwise a pid namespace per container and the pod's network and IPC namespaces.
pub fn namespaces(spec: &PodSpec) -> NamespaceOption {
    let node_or =
        |host: Option<bool>, other: NamespaceMode| if host == Some(true) { NamespaceMode::Node } else { other };
    let pid = if spec.host_pid == Some(true) {
        NamespaceMode::Node
    } else if spec.share_process_namespace == Some(true) {
        NamespaceMode::Pod
    } else {
        NamespaceMode::Container
    };
    NamespaceOption {
        network: node_or(spec.host_network, NamespaceMode::Pod),
        pid,
        ipc: node_or(spec.host_ipc, NamespaceMode::Pod),
    }
}

/// `fsGroup`, then `supplementalGroups`.
fn supplemental_groups(spec: &PodSpec) -> Vec<i64> {
    let Some(sc) = spec.security_context.as_ref() else { return Vec::new() };
    sc.fs_group.into_iter().chain(sc.supplemental_groups.iter().flatten().copied()).collect()
}

fn all_containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.init_containers.iter().flatten().chain(&spec.containers)
}

fn privileged(c: &Container) -> bool {
    c.security_context.as_ref().and_then(|s| s.privileged) == Some(true)
}

/// The sandbox's security context: the pod's user and groups, its namespaces, and whether any
/// container is privileged.
pub fn sandbox_security(spec: &PodSpec) -> LinuxSandboxSecurityContext {
    let sc = spec.security_context.as_ref();
    LinuxSandboxSecurityContext {
        namespace_options: namespaces(spec),
        run_as_user: sc.and_then(|s| s.run_as_user),
        run_as_group: sc.and_then(|s| s.run_as_group),
        readonly_rootfs: false,
        supplemental_groups: supplemental_groups(spec),
        privileged: all_containers(spec).any(privileged)
            || spec
                .ephemeral_containers
                .iter()
                .flatten()
                .any(|e| e.security_context.as_ref().and_then(|s| s.privileged) == Some(true)),
    }
}

/// A container's effective security context: `runAsUser`/`runAsGroup` from the pod unless the
/// container sets them; capabilities, privileged, read-only rootfs, `allowPrivilegeEscalation`
/// and `procMount` from the container; groups and namespaces from the pod.
pub fn container_security(pod: &Pod, c: &Container) -> LinuxContainerSecurityContext {
    let spec = pod.spec.as_ref();
    let pod_sc = spec.and_then(|s| s.security_context.as_ref());
    let sc = c.security_context.as_ref();
    let caps = sc.and_then(|s| s.capabilities.as_ref());
    let unmasked = sc.and_then(|s| s.proc_mount.as_deref()) == Some("Unmasked");
    let paths = |list: &[&str]| if unmasked { Vec::new() } else { list.iter().map(|p| p.to_string()).collect() };
    LinuxContainerSecurityContext {
        capabilities: Capability {
            add: caps.and_then(|c| c.add.clone()).unwrap_or_default(),
            drop: caps.and_then(|c| c.drop.clone()).unwrap_or_default(),
        },
        privileged: privileged(c),
        namespace_options: spec.map(namespaces).unwrap_or_default(),
        run_as_user: sc.and_then(|s| s.run_as_user).or_else(|| pod_sc.and_then(|s| s.run_as_user)),
        run_as_group: sc.and_then(|s| s.run_as_group).or_else(|| pod_sc.and_then(|s| s.run_as_group)),
        readonly_rootfs: sc.and_then(|s| s.read_only_root_filesystem) == Some(true),
        supplemental_groups: spec.map(supplemental_groups).unwrap_or_default(),
        // Upstream `AddNoNewPrivileges`: only an explicit `allowPrivilegeEscalation: false`.
        no_new_privs: sc.and_then(|s| s.allow_privilege_escalation) == Some(false),
        masked_paths: paths(&DEFAULT_MASKED_PATHS),
        readonly_paths: paths(&DEFAULT_READONLY_PATHS),
    }
}
