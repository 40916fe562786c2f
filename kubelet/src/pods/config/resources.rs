//! Requests and limits → cgroup settings, as upstream's kubelet computes them: the pod's QoS
//! class (`ComputePodQOS`), CPU shares and CFS quota (`calculateLinuxResources`), the OOM score
//! adjustment (`GetContainerOOMScoreAdjust`), the pod's summed resources
//! (`calculateSandboxResources`) and its cgroup by QoS tier.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::runtime::LinuxContainerResources;

/// The CFS period the kubelet sets (100 ms, in µs).
pub const CPU_PERIOD_US: i64 = 100_000;
/// The smallest CPU weight (upstream `MinShares`).
pub const MIN_SHARES: i64 = 2;
/// The largest CPU weight (upstream `MaxShares`).
pub const MAX_SHARES: i64 = 262_144;
/// The smallest CFS quota (upstream `MinQuotaPeriod`, 1 ms in µs).
pub const MIN_QUOTA_US: i64 = 1_000;
/// `oom_score_adj` of Guaranteed (and node-critical) containers.
pub const GUARANTEED_OOM_SCORE_ADJ: i64 = -997;
/// `oom_score_adj` of BestEffort containers.
pub const BEST_EFFORT_OOM_SCORE_ADJ: i64 = 1000;
/// Priority from which a pod is critical (upstream `SystemCriticalPriority`).
const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;
/// Annotation of a mirror pod (the API copy of a static pod).
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// A pod's QoS class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl QosClass {
    /// The class's cgroup tier under the node's cgroup root (DESIGN §10).
    pub fn tier(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "guaranteed",
            QosClass::Burstable => "burstable",
            QosClass::BestEffort => "besteffort",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "Guaranteed" => Some(QosClass::Guaranteed),
            "Burstable" => Some(QosClass::Burstable),
            "BestEffort" => Some(QosClass::BestEffort),
            _ => None,
        }
    }
}

/// A quantity in thousandths (CPU) or units (everything else). An unparsable quantity (which
/// admission never lets through) counts as absent.
fn amount(resource: &str, q: &Quantity) -> Option<i128> {
    let q = api::quantity::parse(&q.0).ok()?;
    Some(i128::from(if resource == "cpu" { q.milli_value() } else { q.value() }))
}

fn get(list: Option<&BTreeMap<String, Quantity>>, resource: &str) -> Option<i128> {
    list.and_then(|l| l.get(resource)).and_then(|q| amount(resource, q))
}

fn requests(c: &Container) -> Option<&BTreeMap<String, Quantity>> {
    c.resources.as_ref().and_then(|r| r.requests.as_ref())
}

fn limits(c: &Container) -> Option<&BTreeMap<String, Quantity>> {
    c.resources.as_ref().and_then(|r| r.limits.as_ref())
}

fn saturate(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The pod's QoS class: `status.qosClass` when the API server set it, else computed from the
/// containers' CPU and memory requests and limits as upstream's `ComputePodQOS`.
pub fn qos_class(pod: &Pod) -> QosClass {
    if let Some(q) = pod.status.as_ref().and_then(|s| s.qos_class.as_deref()).and_then(QosClass::parse) {
        return q;
    }
    compute_qos_class(pod)
}

/// Upstream's `ComputePodQOS` (without pod-level resources).
pub fn compute_qos_class(pod: &Pod) -> QosClass {
    let Some(spec) = pod.spec.as_ref() else { return QosClass::BestEffort };
    let mut req: BTreeMap<&str, i128> = BTreeMap::new();
    let mut lim: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        for r in ["cpu", "memory"] {
            if let Some(v) = get(requests(c), r).filter(|v| *v > 0) {
                *req.entry(r).or_default() += v;
            }
        }
        let mut found = 0;
        for r in ["cpu", "memory"] {
            if let Some(v) = get(limits(c), r).filter(|v| *v > 0) {
                *lim.entry(r).or_default() += v;
                found += 1;
            }
        }
        if found < 2 {
            guaranteed = false;
        }
    }
    if req.is_empty() && lim.is_empty() {
        return QosClass::BestEffort;
    }
    if guaranteed && req.iter().all(|(r, v)| lim.get(r) == Some(v)) && req.len() == lim.len() {
        return QosClass::Guaranteed;
    }
    QosClass::Burstable
}

/// The pod's cgroup: `<root>/<tier>/pod<uid>`.
pub fn cgroup_parent(root: &str, pod: &Pod) -> String {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    format!("{}/{}/pod{uid}", root.trim_end_matches('/'), qos_class(pod).tier())
}

/// Upstream `MilliCPUToShares`.
pub fn milli_cpu_to_shares(milli: i128) -> i64 {
    if milli <= 0 {
        return MIN_SHARES;
    }
    saturate(milli * 1024 / 1000).clamp(MIN_SHARES, MAX_SHARES)
}

/// Upstream `milliCPUToQuota`: 0 (no quota) without a limit.
pub fn milli_cpu_to_quota(milli: i128, period: i64) -> i64 {
    if milli <= 0 {
        return 0;
    }
    saturate(milli * i128::from(period) / 1000).max(MIN_QUOTA_US)
}

/// Upstream `calculateLinuxResources`: shares from the CPU request (from the limit when no
/// request is given), CFS quota from the CPU limit over a 100 ms period, the memory limit.
/// `cpu_request` is None when the request is absent (not when it is zero).
pub fn linux_resources(cpu_request: Option<i128>, cpu_limit: i128, memory_limit: i128) -> LinuxContainerResources {
    let cpu_shares = match cpu_request {
        None => milli_cpu_to_shares(cpu_limit),
        Some(r) => milli_cpu_to_shares(r),
    };
    LinuxContainerResources {
        cpu_period: CPU_PERIOD_US,
        cpu_quota: milli_cpu_to_quota(cpu_limit, CPU_PERIOD_US),
        cpu_shares,
        memory_limit_in_bytes: saturate(memory_limit.max(0)),
        ..Default::default()
    }
}

/// The resources of one container, without the OOM score.
pub fn container_resources(c: &Container) -> LinuxContainerResources {
    linux_resources(get(requests(c), "cpu"), get(limits(c), "cpu").unwrap_or(0), get(limits(c), "memory").unwrap_or(0))
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// Upstream `IsNodeCriticalPod`: a critical pod (mirror pod, or system-critical priority) of the
/// `system-node-critical` class.
fn is_node_critical(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return false };
    let mirror = pod.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(MIRROR_ANNOTATION));
    let critical = mirror || spec.priority.is_some_and(|p| p >= SYSTEM_CRITICAL_PRIORITY);
    critical && spec.priority_class_name.as_deref() == Some("system-node-critical")
}

/// Upstream `GetContainerOOMScoreAdjust`: -997 for Guaranteed and node-critical pods, 1000 for
/// BestEffort, and for Burstable `1000 - 1000 × request / capacity` kept within 3 … 999 (a
/// sidecar gets at most the score of the pod's smallest regular container).
pub fn oom_score_adj(pod: &Pod, c: &Container, memory_capacity: i128) -> i64 {
    if is_node_critical(pod) {
        return GUARANTEED_OOM_SCORE_ADJ;
    }
    match qos_class(pod) {
        QosClass::Guaranteed => return GUARANTEED_OOM_SCORE_ADJ,
        QosClass::BestEffort => return BEST_EFFORT_OOM_SCORE_ADJ,
        QosClass::Burstable => {}
    }
    let capacity = memory_capacity.max(1);
    let score_for = |request: i128| 1000 - (1000 * request) / capacity;
    let mut score = score_for(get(requests(c), "memory").unwrap_or(0));
    let init = pod.spec.as_ref().and_then(|s| s.init_containers.as_deref()).unwrap_or(&[]);
    if is_sidecar(c) && init.iter().any(|i| i.name == c.name) {
        let regular = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or(&[]);
        let min = regular.iter().map(|r| get(requests(r), "memory").unwrap_or(0)).min().unwrap_or(0);
        if min != 0 {
            score = score.min(score_for(min));
        }
    }
    let floor = 1000 + GUARANTEED_OOM_SCORE_ADJ;
    if score < i128::from(floor) {
        return floor;
    }
    if score == i128::from(BEST_EFFORT_OOM_SCORE_ADJ) {
        return BEST_EFFORT_OOM_SCORE_ADJ - 1;
    }
    saturate(score)
}

/// What the pod's containers need together, as upstream's `PodRequests`/`PodLimits`: app
/// containers and sidecars add up, and a plain init container (which runs alone, next to the
/// sidecars started before it) counts when it needs more.
fn pod_totals(pod: &Pod, pick: fn(&Container) -> Option<&BTreeMap<String, Quantity>>, r: &str) -> Option<i128> {
    let spec = pod.spec.as_ref()?;
    let mut any = false;
    let mut value = |c: &Container| {
        let v = get(pick(c), r);
        any |= v.is_some();
        v.unwrap_or(0)
    };
    let mut sidecars = 0i128;
    let mut init_peak = 0i128;
    for c in spec.init_containers.iter().flatten() {
        let v = value(c);
        let need = if is_sidecar(c) {
            sidecars += v;
            sidecars
        } else {
            v + sidecars
        };
        init_peak = init_peak.max(need);
    }
    let app: i128 = spec.containers.iter().map(&mut value).sum::<i128>() + sidecars;
    any.then_some(app.max(init_peak))
}

/// The pod's summed resources for its sandbox cgroup (upstream `calculateSandboxResources`).
pub fn pod_resources(pod: &Pod) -> LinuxContainerResources {
    linux_resources(
        pod_totals(pod, requests, "cpu"),
        pod_totals(pod, limits, "cpu").unwrap_or(0),
        pod_totals(pod, limits, "memory").unwrap_or(0),
    )
}

/// `spec.overhead` as resources (upstream `convertOverheadToLinuxResources`).
pub fn overhead(pod: &Pod) -> Option<LinuxContainerResources> {
    let o = pod.spec.as_ref()?.overhead.as_ref()?;
    let cpu = o.get("cpu").and_then(|q| amount("cpu", q)).unwrap_or(0);
    let memory = o.get("memory").and_then(|q| amount("memory", q)).unwrap_or(0);
    Some(linux_resources(Some(cpu), cpu, memory))
}

/// A container's resources with every unset limit of CPU, memory and ephemeral storage set to
/// the node's allocatable (upstream `MergeContainerResourceLimits`, for the downward API).
pub fn with_default_limits(
    r: Option<&ResourceRequirements>,
    allocatable: &BTreeMap<String, Quantity>,
) -> ResourceRequirements {
    let mut out = r.cloned().unwrap_or_default();
    let limits = out.limits.get_or_insert_with(BTreeMap::new);
    for name in ["cpu", "memory", "ephemeral-storage"] {
        if !limits.contains_key(name) {
            if let Some(q) = allocatable.get(name) {
                limits.insert(name.to_string(), q.clone());
            }
        }
    }
    out
}
