//! Node-pressure eviction (upstream `pkg/kubelet/eviction`): every [`MONITOR_EVERY`] the
//! eviction signals are measured ([`host::Observations`]) and compared with `--eviction-hard`
//! (met at once) and `--eviction-soft` (met once crossed for its `--eviction-soft-grace-period`).
//! While one is met, one pod at a time is evicted, ranked as upstream:
//!
//! - memory: pods whose working set exceeds their memory request first, then by priority
//!   (lowest first), then by how far usage is above the request;
//! - nodefs/imagefs/containerfs: the same over ephemeral storage (writable layers, logs and
//!   disk-backed volumes);
//! - pids: by priority.
//!
//! The pod's worker is told through [`crate::pods::PodEvent::Evict`]: it kills the containers
//! (grace 0 for a hard threshold; for a soft one the pod's grace capped by
//! `--eviction-max-pod-grace-period`), tears the sandbox down and writes `phase: Failed`,
//! `reason: Evicted`, upstream's message and a `DisruptionTarget` condition; it never restarts
//! them. The node conditions (and through them the taints) come from [`crate::node::host`].
//! Under pressure the node's pods are listed once from the API (a one-shot read, like adoption's).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::node::host::{Observations, Signal, Threshold};
use crate::node::object::bytes_quantity;
use crate::pods::PodEvent;
use crate::stats::{PodStats, Sampler};

/// How often the signals are measured (upstream's `evictionMonitoringPeriod`).
pub const MONITOR_EVERY: Duration = Duration::from_secs(10);
/// The reason an evicted pod's status carries.
pub const REASON: &str = "Evicted";

/// What a pod's worker is told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    /// How long its containers get to stop.
    pub grace: Duration,
    /// The status message (upstream's `evictionMessage`).
    pub message: String,
}

/// The eviction manager's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub hard: Vec<Threshold>,
    pub soft: Vec<Threshold>,
    pub soft_grace: HashMap<Signal, Duration>,
    pub max_pod_grace: Duration,
    /// The filesystem of the data dir (nodefs, imagefs).
    pub fs_path: PathBuf,
}

impl Config {
    /// From the flags: `--eviction-soft` (parsed as `--eviction-hard`), each with a
    /// `--eviction-soft-grace-period` (`signal=duration,…`), and `--eviction-max-pod-grace-period`.
    pub fn new(
        hard: Vec<Threshold>,
        soft: Vec<Threshold>,
        soft_grace: &[String],
        max_pod_grace_seconds: i64,
        fs_path: PathBuf,
    ) -> Result<Config, crate::Error> {
        let invalid = |flag: &'static str, message: String| crate::Error::InvalidFlag { flag, message };
        let mut grace = HashMap::new();
        for item in soft_grace.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let Some((name, d)) = item.split_once('=') else {
                return Err(invalid("eviction-soft-grace-period", format!("{item:?} is not signal=duration")));
            };
            let signal = Signal::ALL.into_iter().find(|s| s.as_str() == name.trim()).ok_or_else(|| {
                invalid("eviction-soft-grace-period", format!("unsupported eviction signal {:?}", name.trim()))
            })?;
            let d = api::duration::parse(d.trim())
                .map_err(|e| invalid("eviction-soft-grace-period", format!("{name}: {e}")))?;
            grace.insert(signal, d);
        }
        if let Some(t) = soft.iter().find(|t| !grace.contains_key(&t.signal)) {
            return Err(invalid(
                "eviction-soft-grace-period",
                format!("no grace period was given for the soft eviction threshold {}", t.signal.as_str()),
            ));
        }
        Ok(Config {
            hard,
            soft,
            soft_grace: grace,
            max_pod_grace: Duration::from_secs(max_pod_grace_seconds.max(0).unsigned_abs()),
            fs_path,
        })
    }
}

/// The resource a signal is about (upstream's `signalToResource`).
pub fn resource(signal: Signal) -> &'static str {
    match signal {
        Signal::MemoryAvailable => "memory",
        Signal::NodeFsAvailable | Signal::ImageFsAvailable | Signal::ContainerFsAvailable => "ephemeral-storage",
        Signal::NodeFsInodesFree | Signal::ImageFsInodesFree | Signal::ContainerFsInodesFree => "inodes",
        Signal::PidAvailable => "pids",
    }
}

/// A threshold met now, and whether it is a hard one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Met {
    pub threshold: Threshold,
    pub hard: bool,
}

/// Tracks soft thresholds over time and decides which thresholds are met.
#[derive(Debug, Default)]
pub struct Thresholds {
    /// When each crossed soft threshold was first seen crossed.
    soft_since: HashMap<Signal, Instant>,
}

impl Thresholds {
    /// The thresholds met at `now`, memory first (upstream's `byEvictionPriority`), then in the
    /// order given.
    pub fn met(&mut self, cfg: &Config, obs: &Observations, now: Instant) -> Vec<Met> {
        let mut out: Vec<Met> =
            cfg.hard.iter().filter(|t| obs.crossed(t)).map(|t| Met { threshold: *t, hard: true }).collect();
        for t in &cfg.soft {
            if obs.crossed(t) {
                let since = *self.soft_since.entry(t.signal).or_insert(now);
                let grace = cfg.soft_grace.get(&t.signal).copied().unwrap_or_default();
                if now.duration_since(since) >= grace {
                    out.push(Met { threshold: *t, hard: false });
                }
            } else {
                self.soft_since.remove(&t.signal);
            }
        }
        out.sort_by_key(|m| m.threshold.signal != Signal::MemoryAvailable);
        out
    }
}

/// Upstream's `SystemCriticalPriority`: pods at or above it are never evicted.
const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// Whether the kubelet may evict the pod (upstream's `IsCriticalPod` refuses critical pods:
/// mirror pods and those of system-critical priority).
pub fn evictable(pod: &Pod) -> bool {
    let mirror = pod.metadata.annotations.as_ref().is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    let priority = pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
    !mirror && priority < SYSTEM_CRITICAL_PRIORITY
}

/// What ranking needs of a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub uid: String,
    pub priority: i32,
    /// The pod's request of the resource (bytes).
    pub request: u64,
    /// Its usage of the resource; None without stats.
    pub usage: Option<u64>,
}

/// Orders candidates as upstream's `rankMemoryPressure` / `rankDiskPressureFunc` (usage over
/// request first, then lowest priority, then most usage above the request); for pids (no usage
/// measured per pod here), by priority.
pub fn rank(candidates: &mut [Candidate], signal: Signal) {
    if signal == Signal::PidAvailable {
        candidates.sort_by_key(|c| c.priority);
        return;
    }
    candidates.sort_by(|a, b| {
        let exceeds = |c: &Candidate| c.usage.is_some_and(|u| u > c.request);
        let above = |c: &Candidate| c.usage.map(|u| i128::from(u) - i128::from(c.request));
        // Pods with stats first, then those over their request.
        b.usage
            .is_some()
            .cmp(&a.usage.is_some())
            .then(exceeds(b).cmp(&exceeds(a)))
            .then(a.priority.cmp(&b.priority))
            .then(above(b).cmp(&above(a)))
    });
}

fn quantity_bytes(q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity) -> u64 {
    api::quantity::parse(&q.0).map(|q| q.value().max(0).unsigned_abs()).unwrap_or(0)
}

fn container_request(c: &k8s_openapi::api::core::v1::Container, resource: &str) -> u64 {
    c.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get(resource)).map_or(0, quantity_bytes)
}

/// The pod's request of `resource` (upstream's `GetResourceRequestQuantity`: the larger of the
/// app containers' sum and the largest init container, plus the overhead).
pub fn pod_request(pod: &Pod, resource: &str) -> u64 {
    let Some(spec) = pod.spec.as_ref() else { return 0 };
    let sum: u64 = spec.containers.iter().map(|c| container_request(c, resource)).sum();
    let init = spec.init_containers.iter().flatten().map(|c| container_request(c, resource)).max().unwrap_or(0);
    let overhead = spec.overhead.as_ref().and_then(|o| o.get(resource)).map_or(0, quantity_bytes);
    sum.max(init) + overhead
}

fn memory_usage(s: &PodStats) -> Option<u64> {
    s.memory.working_set_bytes
}

fn disk_usage(s: &PodStats) -> Option<u64> {
    s.ephemeral_storage.as_ref().and_then(|e| e.used_bytes)
}

/// Upstream's eviction message: the resource, the threshold and what was available, and each
/// container using more than it requested.
pub fn message(
    met: &Met,
    obs_available: Option<u64>,
    capacity: Option<u64>,
    pod: &Pod,
    stats: Option<&PodStats>,
) -> String {
    let res = resource(met.threshold.signal);
    let mut msg = format!("The node was low on resource: {res}. ");
    if let (Some(avail), Some(cap)) = (obs_available, capacity) {
        let fmt = |n: u64| match met.threshold.signal {
            Signal::MemoryAvailable
            | Signal::NodeFsAvailable
            | Signal::ImageFsAvailable
            | Signal::ContainerFsAvailable => bytes_quantity(n.into()).0,
            _ => n.to_string(),
        };
        msg.push_str(&format!("Threshold quantity: {}, available: {}. ", fmt(met.threshold.amount(cap)), fmt(avail)));
    }
    let (Some(spec), Some(stats)) = (pod.spec.as_ref(), stats) else { return msg };
    if !matches!(res, "memory" | "ephemeral-storage") {
        return msg;
    }
    for c in &spec.containers {
        let Some(cs) = stats.containers.iter().find(|s| s.name == c.name) else { continue };
        let usage = if res == "memory" {
            cs.memory.working_set_bytes
        } else {
            let used = |f: &Option<crate::stats::FsStats>| f.as_ref().and_then(|f| f.used_bytes).unwrap_or(0);
            Some(used(&cs.rootfs) + used(&cs.logs))
        };
        let request = container_request(c, res);
        if let Some(u) = usage.filter(|u| *u > request) {
            msg.push_str(&format!(
                "Container {} was using {}, request is {}, has larger consumption of {res}. ",
                c.name,
                bytes_quantity(u.into()).0,
                bytes_quantity(request.into()).0
            ));
        }
    }
    msg
}

/// The status an evicted pod ends with: `Failed`/`Evicted` with the message, not ready, and a
/// `DisruptionTarget` condition (reason `TerminationByKubelet`).
pub fn evicted_status(mut status: PodStatus, message: &str, now: jiff::Timestamp) -> PodStatus {
    status.phase = Some("Failed".into());
    status.reason = Some(REASON.into());
    status.message = Some(message.to_string());
    let time = crate::pods::status::api_time(now);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    for c in conditions.iter_mut().filter(|c| c.type_ == "Ready" || c.type_ == "ContainersReady") {
        if c.status != "False" {
            c.status = "False".into();
            c.reason = Some("PodFailed".into());
            c.last_transition_time = Some(time.clone());
        }
    }
    conditions.retain(|c| c.type_ != "DisruptionTarget");
    conditions.push(PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some("TerminationByKubelet".into()),
        message: Some(message.to_string()),
        last_transition_time: Some(time),
        ..Default::default()
    });
    status
}

/// Runs the eviction manager of one node until `shutdown`.
pub async fn run(
    cfg: Config,
    node_name: String,
    client: Client,
    stats: Arc<Sampler>,
    pods: mpsc::UnboundedSender<PodEvent>,
    shutdown: CancellationToken,
) {
    let mut thresholds = Thresholds::default();
    // Pods told to go, not to be picked again.
    let mut evicted: HashSet<String> = HashSet::new();
    // The signal acted on last, to log changes only.
    let mut last_met: Option<Signal> = None;
    tracing::info!(hard = cfg.hard.len(), soft = cfg.soft.len(), "eviction manager started");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(MONITOR_EVERY) => {}
        }
        let obs = Observations::read(&cfg.fs_path);
        let met = thresholds.met(&cfg, &obs, Instant::now());
        let Some(first) = met.first().copied() else {
            if last_met.take().is_some() {
                tracing::info!("eviction thresholds no longer met");
            }
            continue;
        };
        if last_met != Some(first.threshold.signal) {
            tracing::warn!(signal = first.threshold.signal.as_str(), hard = first.hard, "eviction threshold met");
            last_met = Some(first.threshold.signal);
        }
        match evict_one(&cfg, &node_name, &client, &stats, &obs, &first, &mut evicted).await {
            Ok(Some((uid, ev))) => {
                if pods.send(PodEvent::Evict { uid, eviction: ev }).is_err() {
                    return;
                }
            }
            Ok(None) => tracing::debug!("eviction: no pod to evict"),
            Err(e) => tracing::warn!(error = %e, "eviction: cannot list the node's pods"),
        }
    }
}

/// Picks the pod to evict for `met`.
async fn evict_one(
    cfg: &Config,
    node_name: &str,
    client: &Client,
    stats: &Arc<Sampler>,
    obs: &Observations,
    met: &Met,
    evicted: &mut HashSet<String>,
) -> Result<Option<(String, Eviction)>, kube::Error> {
    let api: Api<Pod> = Api::all(client.clone());
    let lp = ListParams::default().fields(&format!("spec.nodeName={node_name}"));
    let list = api.list(&lp).await?;
    // Pods that left the API are forgotten.
    evicted.retain(|u| list.items.iter().any(|p| p.metadata.uid.as_deref() == Some(u.as_str())));
    let active: Vec<Pod> = list
        .items
        .into_iter()
        .filter(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            !matches!(phase, Some("Succeeded" | "Failed"))
                && p.metadata.deletion_timestamp.is_none()
                && evictable(p)
                && !p.metadata.uid.as_ref().is_some_and(|u| evicted.contains(u))
        })
        .collect();
    if active.is_empty() {
        return Ok(None);
    }
    let summary = stats.sample().await;
    let by_uid: HashMap<&str, &PodStats> = summary.pods.iter().map(|p| (p.pod_ref.uid.as_str(), p)).collect();
    let signal = met.threshold.signal;
    let res = resource(signal);
    let pods_by_uid: BTreeMap<String, &Pod> =
        active.iter().filter_map(|p| Some((p.metadata.uid.clone()?, p))).collect();
    let mut candidates: Vec<Candidate> = pods_by_uid
        .iter()
        .map(|(uid, p)| {
            let s = by_uid.get(uid.as_str()).copied();
            Candidate {
                uid: uid.clone(),
                priority: p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0),
                request: pod_request(p, res),
                usage: s.and_then(if res == "memory" { memory_usage } else { disk_usage }),
            }
        })
        .collect();
    rank(&mut candidates, signal);
    let Some(victim) = candidates.first() else { return Ok(None) };
    let Some(pod) = pods_by_uid.get(&victim.uid) else { return Ok(None) };
    let level = match signal {
        Signal::MemoryAvailable => obs.memory.map(|l| (l.available, l.capacity)),
        Signal::PidAvailable => obs.pids.map(|l| (l.available, l.capacity)),
        Signal::NodeFsAvailable | Signal::ImageFsAvailable | Signal::ContainerFsAvailable => {
            obs.fs.map(|f| (f.available_bytes, f.capacity_bytes))
        }
        _ => obs.fs.map(|f| (f.inodes_free, f.inodes)),
    };
    let msg = message(met, level.map(|l| l.0), level.map(|l| l.1), pod, by_uid.get(victim.uid.as_str()).copied());
    let grace = if met.hard {
        Duration::ZERO
    } else {
        let own = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30).max(0);
        Duration::from_secs(own.unsigned_abs()).min(cfg.max_pod_grace)
    };
    tracing::warn!(
        pod = format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or_default(), pod.metadata.name.as_deref().unwrap_or_default()),
        message = %msg,
        "evicting pod"
    );
    evicted.insert(victim.uid.clone());
    Ok(Some((victim.uid.clone(), Eviction { grace, message: msg })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::host::{self, FsStats, Level, ThresholdValue};

    fn cand(uid: &str, priority: i32, request: u64, usage: Option<u64>) -> Candidate {
        Candidate { uid: uid.into(), priority, request, usage }
    }

    fn order(mut c: Vec<Candidate>, signal: Signal) -> Vec<String> {
        rank(&mut c, signal);
        c.into_iter().map(|c| c.uid).collect()
    }

    #[test]
    fn ranking_as_upstream() {
        // Over its request beats priority; among those, lower priority first; then usage above request.
        let pods = vec![
            cand("within-low-prio", -10, 100, Some(50)),
            cand("over-high-prio", 1000, 100, Some(150)),
            cand("over-a-bit", 0, 100, Some(110)),
            cand("over-a-lot", 0, 100, Some(900)),
            cand("no-stats", -100, 0, None),
        ];
        assert_eq!(
            order(pods.clone(), Signal::MemoryAvailable),
            vec!["over-a-lot", "over-a-bit", "over-high-prio", "within-low-prio", "no-stats"]
        );
        assert_eq!(order(pods, Signal::PidAvailable)[0], "no-stats");
        // Best-effort pods (request 0) using the most go first among equals.
        let be = vec![cand("small", 0, 0, Some(10)), cand("big", 0, 0, Some(1000))];
        assert_eq!(order(be, Signal::NodeFsAvailable), vec!["big", "small"]);
    }

    fn cfg(hard: &str, soft: &str, grace: &[&str]) -> Config {
        let grace: Vec<String> = grace.iter().map(|s| s.to_string()).collect();
        let parse = |t: &str| host::parse_eviction_hard(t).expect("thresholds");
        Config::new(parse(hard), parse(soft), &grace, 30, PathBuf::from("/")).expect("config")
    }

    fn obs(mem_avail: u64, fs_avail: u64) -> Observations {
        Observations {
            memory: Some(Level { available: mem_avail, capacity: 1 << 30 }),
            fs: Some(FsStats { capacity_bytes: 1000, available_bytes: fs_avail, inodes: 100, inodes_free: 50 }),
            pids: None,
        }
    }

    #[test]
    fn hard_thresholds_are_met_at_once_memory_first() {
        let c = cfg("nodefs.available<10%,memory.available<100Mi", "", &[]);
        let mut t = Thresholds::default();
        let now = Instant::now();
        assert!(t.met(&c, &obs(200 << 20, 500), now).is_empty());
        let met = t.met(&c, &obs(50 << 20, 50), now);
        assert_eq!(
            met.iter().map(|m| m.threshold.signal).collect::<Vec<_>>(),
            vec![Signal::MemoryAvailable, Signal::NodeFsAvailable]
        );
        assert!(met.iter().all(|m| m.hard));
    }

    #[test]
    fn soft_thresholds_wait_for_their_grace_period() {
        let c = cfg("", "memory.available<500Mi", &["memory.available=30s"]);
        let mut t = Thresholds::default();
        let t0 = Instant::now();
        assert!(t.met(&c, &obs(100 << 20, 500), t0).is_empty(), "crossed, grace running");
        assert!(t.met(&c, &obs(100 << 20, 500), t0 + Duration::from_secs(29)).is_empty());
        let met = t.met(&c, &obs(100 << 20, 500), t0 + Duration::from_secs(30));
        assert_eq!(met.len(), 1);
        assert!(!met[0].hard);
        // Recovering resets the clock.
        assert!(t.met(&c, &obs(900 << 20, 500), t0 + Duration::from_secs(31)).is_empty());
        assert!(t.met(&c, &obs(100 << 20, 500), t0 + Duration::from_secs(32)).is_empty());
        // A soft threshold needs a grace period.
        let soft = host::parse_eviction_hard("memory.available<1Gi").expect("soft");
        let e = Config::new(vec![], soft, &[], 0, PathBuf::new()).expect_err("no grace");
        assert!(e.to_string().contains("no grace period"), "{e}");
        assert!(Config::new(vec![], vec![], &["memory.available=x".into()], 0, PathBuf::new()).is_err());
    }

    fn pod_json(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn requests_messages_and_status() {
        let pod = pod_json(serde_json::json!({
            "metadata": {"name": "hog", "uid": "u1"},
            "spec": {
                "containers": [
                    {"name": "a", "resources": {"requests": {"memory": "64Mi"}}},
                    {"name": "b"}
                ],
                "initContainers": [{"name": "i", "resources": {"requests": {"memory": "100Mi"}}}]
            }
        }));
        assert_eq!(pod_request(&pod, "memory"), 100 << 20);
        assert!(evictable(&pod));
        let critical = pod_json(serde_json::json!({"spec": {"containers": [], "priority": 2_000_001_000}}));
        assert!(!evictable(&critical), "system-critical pods stay");
        assert_eq!(pod_request(&pod, "ephemeral-storage"), 0);
        let stats = PodStats {
            containers: vec![
                crate::stats::ContainerStats {
                    name: "a".into(),
                    memory: crate::stats::MemoryStats { working_set_bytes: Some(200 << 20), ..Default::default() },
                    ..Default::default()
                },
                crate::stats::ContainerStats {
                    name: "b".into(),
                    memory: crate::stats::MemoryStats { working_set_bytes: Some(0), ..Default::default() },
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let met = Met {
            threshold: Threshold { signal: Signal::MemoryAvailable, value: ThresholdValue::Quantity(100 << 20) },
            hard: true,
        };
        let m = message(&met, Some(80 << 20), Some(1 << 30), &pod, Some(&stats));
        assert_eq!(
            m,
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi. \
             Container a was using 200Mi, request is 64Mi, has larger consumption of memory. "
        );
        let status = PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition { type_: "Ready".into(), status: "True".into(), ..Default::default() }]),
            ..Default::default()
        };
        let s = evicted_status(status, &m, jiff::Timestamp::now());
        assert_eq!((s.phase.as_deref(), s.reason.as_deref()), (Some("Failed"), Some("Evicted")));
        let conds = s.conditions.expect("conditions");
        assert!(conds.iter().any(|c| c.type_ == "Ready" && c.status == "False"));
        let dt = conds.iter().find(|c| c.type_ == "DisruptionTarget").expect("DisruptionTarget");
        assert_eq!((dt.status.as_str(), dt.reason.as_deref()), ("True", Some("TerminationByKubelet")));
    }
}
