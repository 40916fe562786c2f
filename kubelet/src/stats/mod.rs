//! Resource usage of the node and its pods, in the shape of upstream's `/stats/summary`
//! (`k8s.io/kubelet/pkg/apis/stats/v1alpha1`), read from cgroups ([`cgroup`], v1 and v2),
//! `/proc` and the data dir.
//!
//! A [`Sampler`] reads every [`SAMPLE_EVERY`] and on demand (a request finding a reading older
//! than [`MIN_INTERVAL`]); CPU is reported as upstream does both as the cumulative
//! `usageCoreNanoSeconds` and as `usageNanoCores`, the rate between this reading and the one
//! before it (absent on the first). Pods are found by their cgroups under the node's
//! `--cgroup-root` (`<root>/<tier>/pod<uid>/<container id prefix>`) and named through the
//! runtime's sandboxes and containers. Ephemeral storage is the disk (not tmpfs) the pod's
//! volumes, its containers' writable layers and its logs take.

pub mod cgroup;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::node::host;
use crate::runtime::linux::cgroups::Layout;
use crate::runtime::{ContainerFilter, ContainerState, Runtime, SandboxState, LABEL_CONTAINER_NAME};

/// How often the sampler reads without being asked (upstream's cAdvisor housekeeping is 10 s).
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// A request is answered from a reading at most this old.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Linux's `USER_HZ` (the unit of `/proc/stat`), fixed by the kernel ABI.
const USER_HZ: u64 = 100;
const QOS_TIERS: [&str; 3] = ["guaranteed", "burstable", "besteffort"];

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CpuStats {
    pub time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_nano_cores: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_core_nano_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    pub time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_set_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_faults: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub major_page_faults: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FsStats {
    pub time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inodes_free: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inodes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inodes_used: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InterfaceStats {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_errors: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkStats {
    pub time: String,
    /// The default interface's figures, inline as upstream.
    #[serde(flatten)]
    pub default: InterfaceStats,
    pub interfaces: Vec<InterfaceStats>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeStats {
    pub image_fs: FsStats,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeStats {
    pub node_name: String,
    pub start_time: String,
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs: Option<FsStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeStats>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, Hash)]
pub struct PodReference {
    pub name: String,
    pub namespace: String,
    pub uid: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStats {
    pub name: String,
    pub start_time: String,
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<FsStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<FsStats>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodStats {
    pub pod_ref: PodReference,
    pub start_time: String,
    pub containers: Vec<ContainerStats>,
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    #[serde(rename = "ephemeral-storage", skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<FsStats>,
}

/// `/stats/summary`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    pub node: NodeStats,
    pub pods: Vec<PodStats>,
}

/// CPU used between two readings `(time, cumulative core-ns)`, in nanocores; None when the
/// readings do not follow each other (a counter reset, a clock step).
pub fn rate(prev: (Timestamp, u64), cur: (Timestamp, u64)) -> Option<u64> {
    let elapsed = cur.0.duration_since(prev.0).as_nanos();
    if elapsed <= 0 || cur.1 < prev.1 {
        return None;
    }
    let used = u128::from(cur.1 - prev.1);
    u64::try_from(used * 1_000_000_000 / elapsed.unsigned_abs()).ok()
}

/// The machine's CPU time from `/proc/stat`'s `cpu` line (all but idle and iowait), in ns.
pub fn parse_proc_stat_cpu(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line.split_whitespace().skip(1).filter_map(|n| n.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|i| f.get(*i)).sum();
    Some(busy.saturating_mul(1_000_000_000 / USER_HZ))
}

/// `/proc/net/dev`: every interface but loopback.
pub fn parse_net_dev(text: &str) -> Vec<InterfaceStats> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let n: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            let name = name.trim();
            (name != "lo" && n.len() >= 11).then(|| InterfaceStats {
                name: name.to_string(),
                rx_bytes: n[0],
                rx_errors: n[2],
                tx_bytes: n[8],
                tx_errors: n[10],
            })
        })
        .collect()
}

/// Disk blocks used under `path` on the filesystem of `path` itself (a tmpfs mounted below is
/// not counted), and the inodes; (0, 0) for what does not exist.
pub fn disk_usage(path: &Path) -> (u64, u64) {
    let Ok(meta) = fs::symlink_metadata(path) else { return (0, 0) };
    let dev = meta.dev();
    let mut bytes = 0u64;
    let mut inodes = 0u64;
    let mut stack = vec![(path.to_path_buf(), meta)];
    while let Some((p, m)) = stack.pop() {
        if m.dev() != dev {
            continue;
        }
        bytes = bytes.saturating_add(m.blocks().saturating_mul(512));
        inodes += 1;
        if m.is_dir() {
            if let Ok(entries) = fs::read_dir(&p) {
                for e in entries.flatten() {
                    if let Ok(em) = e.metadata() {
                        stack.push((e.path(), em));
                    }
                }
            }
        }
    }
    (bytes, inodes)
}

/// Where a node's pods keep their disk.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    /// The data dir (nodefs, imagefs).
    pub data_dir: PathBuf,
    /// `<data-dir>/agent/containers` (`<id>/upper` is a container's writable layer).
    pub containers: Option<PathBuf>,
    /// `<pods root>/<uid>` (volumes).
    pub pods_root: Option<PathBuf>,
    /// `<log root>/<ns>_<name>_<uid>/<container>/`.
    pub log_root: Option<PathBuf>,
}

struct Inner {
    /// The previous CPU reading of each group (and `""` for the node).
    cpu: HashMap<String, (Timestamp, u64)>,
    last: Option<(Instant, Arc<Summary>)>,
}

/// Reads the node's usage, keeps the readings CPU rates need, and caches the last summary.
pub struct Sampler {
    node_name: String,
    cgroup_root: String,
    /// None: no cgroupfs (hollow nodes); pods are then listed without usage.
    layout: Option<Layout>,
    runtime: Arc<dyn Runtime>,
    paths: Paths,
    started: Timestamp,
    inner: tokio::sync::Mutex<()>,
    state: Mutex<Inner>,
}

fn ts(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Sampler {
    pub fn new(
        node_name: &str,
        cgroup_root: &str,
        layout: Option<Layout>,
        runtime: Arc<dyn Runtime>,
        paths: Paths,
    ) -> Arc<Sampler> {
        Arc::new(Sampler {
            node_name: node_name.to_string(),
            cgroup_root: cgroup_root.trim_matches('/').to_string(),
            layout,
            runtime,
            paths,
            started: Timestamp::now(),
            inner: tokio::sync::Mutex::new(()),
            state: Mutex::new(Inner { cpu: HashMap::new(), last: None }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Samples every [`SAMPLE_EVERY`] until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let _ = self.sample().await;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(SAMPLE_EVERY) => {}
            }
        }
    }

    /// The latest summary: the cached one when fresh enough, else a new reading.
    pub async fn summary(self: &Arc<Self>) -> Arc<Summary> {
        if let Some((at, s)) = self.state().last.as_ref() {
            if at.elapsed() < MIN_INTERVAL {
                return s.clone();
            }
        }
        self.sample().await
    }

    /// Reads everything now (the files on a blocking thread: a pod's disk usage walks its
    /// directories).
    pub async fn sample(self: &Arc<Self>) -> Arc<Summary> {
        let _one = self.inner.lock().await;
        if let Some((at, s)) = self.state().last.as_ref() {
            if at.elapsed() < MIN_INTERVAL / 2 {
                return s.clone();
            }
        }
        let sandboxes = self.runtime.list_pod_sandboxes().await.unwrap_or_else(|e| {
            tracing::debug!(error = %e, "stats: cannot list sandboxes");
            Vec::new()
        });
        let containers = self.runtime.list_containers(&ContainerFilter::default()).await.unwrap_or_default();
        // The newest ready sandbox of each pod.
        let mut pods: HashMap<String, (crate::runtime::PodSandboxStatus, Vec<crate::runtime::ContainerStatus>)> =
            HashMap::new();
        for sb in sandboxes.into_iter().filter(|s| s.state == SandboxState::Ready) {
            let newer = pods.get(&sb.metadata.uid).is_none_or(|(o, _)| o.created_at < sb.created_at);
            if newer {
                pods.insert(sb.metadata.uid.clone(), (sb, Vec::new()));
            }
        }
        for c in containers.into_iter().filter(|c| c.state == ContainerState::Running) {
            if let Some((_, list)) = pods.values_mut().find(|(sb, _)| sb.id == c.sandbox_id) {
                list.push(c);
            }
        }
        let now = Timestamp::now();
        let me = self.clone();
        let pods = pods.into_values().collect();
        let summary = match tokio::task::spawn_blocking(move || me.read(now, pods)).await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::warn!(error = %e, "stats: reading usage failed");
                return Arc::new(Summary::default());
            }
        };
        self.state().last = Some((Instant::now(), summary.clone()));
        summary
    }

    /// A CPU reading of `key` at `now`: the stats with the rate since the previous reading.
    fn cpu(
        &self,
        key: &str,
        now: Timestamp,
        ns: Option<u64>,
        seen: &mut HashMap<String, (Timestamp, u64)>,
    ) -> CpuStats {
        let Some(ns) = ns else { return CpuStats { time: ts(now), ..Default::default() } };
        let prev = self.state().cpu.get(key).copied();
        seen.insert(key.to_string(), (now, ns));
        CpuStats {
            time: ts(now),
            usage_nano_cores: prev.and_then(|p| rate(p, (now, ns))),
            usage_core_nano_seconds: Some(ns),
        }
    }

    fn read(
        &self,
        now: Timestamp,
        pods: Vec<(crate::runtime::PodSandboxStatus, Vec<crate::runtime::ContainerStatus>)>,
    ) -> Summary {
        let mut seen = HashMap::new();
        let time = ts(now);
        let node_cpu = fs::read_to_string("/proc/stat").ok().and_then(|t| parse_proc_stat_cpu(&t));
        let cpu = self.cpu("", now, node_cpu, &mut seen);
        let meminfo = fs::read_to_string("/proc/meminfo").map(|t| host::parse_meminfo(&t)).unwrap_or_default();
        let free_kib = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| cgroup::parse_flat_keyed(&t.replace(':', " ")).get("MemFree").copied());
        let total = meminfo.total_kib.map(|k| k * 1024);
        let available = meminfo.available_kib.map(|k| k * 1024);
        let memory = MemoryStats {
            time: time.clone(),
            available_bytes: available,
            usage_bytes: total.zip(free_kib).map(|(t, f)| t.saturating_sub(f * 1024)),
            working_set_bytes: total.zip(available).map(|(t, a)| t.saturating_sub(a)),
            ..Default::default()
        };
        let interfaces = fs::read_to_string("/proc/net/dev").map(|t| parse_net_dev(&t)).unwrap_or_default();
        let network = interfaces.first().cloned().map(|default| NetworkStats {
            time: time.clone(),
            default,
            interfaces: interfaces.clone(),
        });
        let fs_stats = host::fs_stats(&self.paths.data_dir).ok().map(|f| FsStats {
            time: time.clone(),
            available_bytes: Some(f.available_bytes),
            capacity_bytes: Some(f.capacity_bytes),
            used_bytes: Some(f.capacity_bytes.saturating_sub(f.available_bytes)),
            inodes_free: Some(f.inodes_free),
            inodes: Some(f.inodes),
            inodes_used: Some(f.inodes.saturating_sub(f.inodes_free)),
        });
        let node = NodeStats {
            node_name: self.node_name.clone(),
            start_time: ts(self.started),
            cpu,
            memory,
            network,
            runtime: fs_stats.clone().map(|image_fs| RuntimeStats { image_fs }),
            fs: fs_stats,
        };
        // pod<uid> → its group, under each QoS tier.
        let mut groups: HashMap<String, String> = HashMap::new();
        if let Some(layout) = &self.layout {
            for tier in QOS_TIERS {
                let parent = format!("{}/{tier}", self.cgroup_root);
                for child in cgroup::children(layout, &parent) {
                    if let Some(uid) = child.strip_prefix("pod") {
                        groups.insert(uid.to_string(), format!("{parent}/{child}"));
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(pods.len());
        for (sb, containers) in pods {
            let uid = sb.metadata.uid.clone();
            let group = groups.get(&uid);
            let usage = |path: &str| self.layout.as_ref().map(|l| cgroup::read(l, path)).unwrap_or_default();
            let pod_usage = group.map(|g| usage(g)).unwrap_or_default();
            let log_dir = self
                .paths
                .log_root
                .as_ref()
                .map(|r| r.join(format!("{}_{}_{}", sb.metadata.namespace, sb.metadata.name, uid)));
            let mut used = 0u64;
            let mut inodes = 0u64;
            let mut stats = Vec::new();
            for c in &containers {
                let name = c.labels.get(LABEL_CONTAINER_NAME).cloned().unwrap_or_else(|| c.name.clone());
                let short = &c.id[..c.id.len().min(32)];
                let cu = group.map(|g| usage(&format!("{g}/{short}"))).unwrap_or_default();
                let rootfs = self.paths.containers.as_ref().map(|d| {
                    let (b, i) = disk_usage(&d.join(&c.id).join("upper"));
                    used += b;
                    inodes += i;
                    FsStats { time: time.clone(), used_bytes: Some(b), inodes_used: Some(i), ..Default::default() }
                });
                let logs = log_dir.as_ref().map(|d| {
                    let (b, i) = disk_usage(&d.join(&name));
                    FsStats { time: time.clone(), used_bytes: Some(b), inodes_used: Some(i), ..Default::default() }
                });
                stats.push(ContainerStats {
                    start_time: ts(c.started_at.unwrap_or(c.created_at)),
                    cpu: self.cpu(&format!("{uid}/{}", c.id), now, cu.cpu_ns, &mut seen),
                    memory: memory_stats(&time, &cu),
                    rootfs,
                    logs,
                    name,
                });
            }
            stats.sort_by(|a, b| a.name.cmp(&b.name));
            if let Some(d) = &log_dir {
                let (b, i) = disk_usage(d);
                used += b;
                inodes += i;
            }
            if let Some(root) = &self.paths.pods_root {
                let (b, i) = disk_usage(&root.join(&uid));
                used += b;
                inodes += i;
            }
            let disk_known = self.paths.containers.is_some() || self.paths.pods_root.is_some();
            out.push(PodStats {
                pod_ref: PodReference { name: sb.metadata.name.clone(), namespace: sb.metadata.namespace.clone(), uid },
                start_time: ts(sb.created_at),
                containers: stats,
                cpu: self.cpu(&format!("pod/{}", sb.metadata.uid), now, pod_usage.cpu_ns, &mut seen),
                memory: memory_stats(&time, &pod_usage),
                ephemeral_storage: disk_known.then(|| FsStats {
                    time: time.clone(),
                    used_bytes: Some(used),
                    inodes_used: Some(inodes),
                    ..Default::default()
                }),
            });
        }
        out.sort_by(|a, b| (&a.pod_ref.namespace, &a.pod_ref.name).cmp(&(&b.pod_ref.namespace, &b.pod_ref.name)));
        // Readings of groups that are gone are dropped with them.
        self.state().cpu = seen;
        Summary { node, pods: out }
    }
}

fn memory_stats(time: &str, u: &cgroup::Usage) -> MemoryStats {
    MemoryStats {
        time: time.to_string(),
        available_bytes: None,
        usage_bytes: u.memory_usage,
        working_set_bytes: u.working_set,
        rss_bytes: u.rss,
        page_faults: u.page_faults,
        major_page_faults: u.major_page_faults,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_rate_between_two_readings() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let t1 = t0 + Duration::from_secs(10);
        // 5 s of CPU in 10 s: half a core.
        assert_eq!(rate((t0, 1_000_000_000), (t1, 6_000_000_000)), Some(500_000_000));
        assert_eq!(rate((t0, 0), (t0 + Duration::from_millis(500), 1_000_000_000)), Some(2_000_000_000));
        assert_eq!(rate((t0, 5), (t1, 5)), Some(0));
        assert_eq!(rate((t0, 10), (t1, 5)), None, "a reset counter");
        assert_eq!(rate((t1, 0), (t0, 5)), None, "time going back");
        assert_eq!(rate((t0, 0), (t0, 5)), None, "no time passed");
    }

    #[test]
    fn proc_stat_and_net_dev() {
        let stat = "cpu  100 20 30 1000 50 5 5 10 0 0\ncpu0 1 2 3 4\n";
        assert_eq!(parse_proc_stat_cpu(stat), Some(170 * 10_000_000));
        assert_eq!(parse_proc_stat_cpu("intr 1\n"), None);
        let dev = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n\
            \x20   lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: 2000 10 1 0 0 0 0 0 3000 12 2 0 0 0 0 0\n";
        assert_eq!(
            parse_net_dev(dev),
            vec![InterfaceStats { name: "eth0".into(), rx_bytes: 2000, rx_errors: 1, tx_bytes: 3000, tx_errors: 2 }]
        );
    }

    #[test]
    fn disk_usage_counts_blocks() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir(dir.path().join("d")).expect("mkdir");
        fs::write(dir.path().join("d/f"), vec![1u8; 64 * 1024]).expect("write");
        let (bytes, inodes) = disk_usage(dir.path());
        assert!(bytes >= 64 * 1024, "{bytes}");
        assert_eq!(inodes, 3);
        assert_eq!(disk_usage(&dir.path().join("missing")), (0, 0));
    }

    #[test]
    fn summary_serializes_in_upstreams_shape() {
        let s = Summary {
            node: NodeStats {
                node_name: "n1".into(),
                cpu: CpuStats { time: "t".into(), usage_nano_cores: Some(5), usage_core_nano_seconds: Some(9) },
                ..Default::default()
            },
            pods: vec![PodStats {
                ephemeral_storage: Some(FsStats { used_bytes: Some(1), ..Default::default() }),
                ..Default::default()
            }],
        };
        let v = serde_json::to_value(&s).expect("json");
        assert_eq!(v["node"]["nodeName"], "n1");
        assert_eq!(v["node"]["cpu"]["usageNanoCores"], 5);
        assert_eq!(v["node"]["cpu"]["usageCoreNanoSeconds"], 9);
        assert_eq!(v["pods"][0]["ephemeral-storage"]["usedBytes"], 1);
        assert!(v["pods"][0]["podRef"].is_object());
    }
}
