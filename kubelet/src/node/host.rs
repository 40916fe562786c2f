//! What a real node reads about its host: capacity (CPUs, memory, hugepages, the filesystem of
//! the data dir), the identity it reports in `nodeInfo`, its primary IPv4 address, and the
//! eviction signals behind its pressure conditions, with the `--eviction-hard` thresholds they
//! are compared to (upstream's `pkg/kubelet/eviction/api`). Parsers are pure functions of a
//! file's text; the readers around them are thin. Hollow nodes read none of this.
//!
//! Nothing here sends traffic: the primary address is the source the kernel would pick for the
//! default route's gateway, found by `connect` on a UDP socket, which only looks the route up.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};

/// Upstream's default `--eviction-hard` (Linux).
pub const DEFAULT_EVICTION_HARD: &str =
    "memory.available<100Mi,nodefs.available<10%,imagefs.available<15%,nodefs.inodesFree<5%";

const MEMINFO: &str = "/proc/meminfo";
const CPU_ONLINE: &str = "/sys/devices/system/cpu/online";
const HUGEPAGES: &str = "/sys/kernel/mm/hugepages";
const ROUTES: &str = "/proc/net/route";
const FIB_TRIE: &str = "/proc/net/fib_trie";
const LOADAVG: &str = "/proc/loadavg";
const PID_MAX: &str = "/proc/sys/kernel/pid_max";
const THREADS_MAX: &str = "/proc/sys/kernel/threads-max";

/// A host file that could not be read or made sense of.
#[derive(Debug, thiserror::Error)]
#[error("{action} {path}: {source}")]
pub struct HostError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

fn host_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> HostError + 'a {
    move |source| HostError { action, path: path.to_path_buf(), source }
}

fn read_trimmed(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

// --- eviction signals and thresholds ------------------------------------------------------------

/// An eviction signal (upstream `evictionapi.Signal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    MemoryAvailable,
    NodeFsAvailable,
    NodeFsInodesFree,
    ImageFsAvailable,
    ImageFsInodesFree,
    ContainerFsAvailable,
    ContainerFsInodesFree,
    PidAvailable,
}

impl Signal {
    pub const ALL: [Signal; 8] = [
        Signal::MemoryAvailable,
        Signal::NodeFsAvailable,
        Signal::NodeFsInodesFree,
        Signal::ImageFsAvailable,
        Signal::ImageFsInodesFree,
        Signal::ContainerFsAvailable,
        Signal::ContainerFsInodesFree,
        Signal::PidAvailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory.available",
            Signal::NodeFsAvailable => "nodefs.available",
            Signal::NodeFsInodesFree => "nodefs.inodesFree",
            Signal::ImageFsAvailable => "imagefs.available",
            Signal::ImageFsInodesFree => "imagefs.inodesFree",
            Signal::ContainerFsAvailable => "containerfs.available",
            Signal::ContainerFsInodesFree => "containerfs.inodesFree",
            Signal::PidAvailable => "pid.available",
        }
    }

    fn parse(s: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|sig| sig.as_str() == s)
    }
}

/// How low a signal may go: an absolute amount (bytes, inodes, pids) or a share of capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdValue {
    Quantity(u64),
    /// A fraction in (0, 1).
    Percentage(f64),
}

/// One hard eviction threshold: the signal is crossed when what is available falls below it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub signal: Signal,
    pub value: ThresholdValue,
}

impl Threshold {
    /// The threshold as an amount of a resource with this capacity (a percentage is rounded
    /// down, as upstream's `GetThresholdQuantity`).
    pub fn amount(&self, capacity: u64) -> u64 {
        match self.value {
            ThresholdValue::Quantity(q) => q,
            ThresholdValue::Percentage(p) => (capacity as f64 * p) as u64,
        }
    }
}

/// Parses `--eviction-hard`: `signal<value` pairs separated by commas, the value a positive
/// quantity or a percentage; `0%` and `100%` leave a signal out, as upstream. The error says
/// what is wrong, for the flag's message.
pub fn parse_eviction_hard(text: &str) -> Result<Vec<Threshold>, String> {
    let mut out: Vec<Threshold> = Vec::new();
    let mut seen = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((name, value)) = item.split_once('<') else {
            return Err(format!("{item:?} is not signal<value (e.g. memory.available<100Mi)"));
        };
        let (name, value) = (name.trim(), value.trim());
        let signal = Signal::parse(name).ok_or_else(|| {
            let names: Vec<&str> = Signal::ALL.iter().map(|s| s.as_str()).collect();
            format!("unsupported eviction signal {name:?} (one of {})", names.join(", "))
        })?;
        if seen.contains(&signal) {
            return Err(format!("{name} is given twice"));
        }
        seen.push(signal);
        let value = if let Some(pct) = value.strip_suffix('%') {
            let pct: f64 = match pct.parse() {
                Ok(p) if f64::is_finite(p) => p,
                _ => return Err(format!("{name}: {value:?} is not a percentage")),
            };
            if !(0.0..=100.0).contains(&pct) {
                return Err(format!("{name}: {value} is not between 0% and 100%"));
            }
            if pct == 0.0 || pct == 100.0 {
                continue;
            }
            ThresholdValue::Percentage(pct / 100.0)
        } else {
            match api::quantity::parse(value) {
                Ok(q) if !q.is_negative() && !q.is_zero() => ThresholdValue::Quantity(q.value().unsigned_abs()),
                Ok(_) => return Err(format!("{name}: {value} must be positive")),
                Err(_) => return Err(format!("{name}: {value:?} is not a quantity or a percentage")),
            }
        };
        out.push(Threshold { signal, value });
    }
    Ok(out)
}

/// What is available of a resource, and its capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub available: u64,
    pub capacity: u64,
}

/// The signals as measured once; None where a measurement failed (never counted as crossed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observations {
    /// `MemAvailable` of `MemTotal`.
    pub memory: Option<Level>,
    /// The data dir's filesystem (which holds the images and the containers' layers too).
    pub fs: Option<FsStats>,
    /// Tasks that can still be created of the most there can be.
    pub pids: Option<Level>,
}

/// The node conditions the signals drive; all false is a node without pressure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    pub memory: bool,
    pub disk: bool,
    pub pid: bool,
}

impl Observations {
    fn level(&self, signal: Signal) -> Option<Level> {
        let fs = self.fs.as_ref();
        match signal {
            Signal::MemoryAvailable => self.memory,
            Signal::NodeFsAvailable | Signal::ImageFsAvailable | Signal::ContainerFsAvailable => {
                fs.map(|f| Level { available: f.available_bytes, capacity: f.capacity_bytes })
            }
            Signal::NodeFsInodesFree | Signal::ImageFsInodesFree | Signal::ContainerFsInodesFree => {
                fs.map(|f| Level { available: f.inodes_free, capacity: f.inodes })
            }
            Signal::PidAvailable => self.pids,
        }
    }

    /// Whether the signal is below the threshold.
    pub fn crossed(&self, t: &Threshold) -> bool {
        self.level(t.signal).is_some_and(|l| l.available < t.amount(l.capacity))
    }

    /// The conditions the crossed thresholds raise (memory → MemoryPressure, filesystems →
    /// DiskPressure, pids → PIDPressure).
    pub fn pressure(&self, thresholds: &[Threshold]) -> Pressure {
        let mut p = Pressure::default();
        for t in thresholds.iter().filter(|t| self.crossed(t)) {
            match t.signal {
                Signal::MemoryAvailable => p.memory = true,
                Signal::PidAvailable => p.pid = true,
                _ => p.disk = true,
            }
        }
        p
    }

    /// Measures every signal now; a failed measurement is logged and left out.
    pub fn read(fs_path: &Path) -> Observations {
        let memory = match fs::read_to_string(MEMINFO) {
            Ok(text) => {
                let m = parse_meminfo(&text);
                match (m.available_kib, m.total_kib) {
                    (Some(a), Some(t)) => Some(Level { available: a * 1024, capacity: t * 1024 }),
                    _ => None,
                }
            }
            Err(e) => {
                tracing::warn!(path = MEMINFO, error = %e, "cannot measure memory.available");
                None
            }
        };
        let fs = match fs_stats(fs_path) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot measure nodefs");
                None
            }
        };
        Observations { memory, fs, pids: pid_level() }
    }
}

/// Where a real node's pressure conditions come from.
#[derive(Debug, Clone, PartialEq)]
pub struct PressureSource {
    /// The data dir (or its nearest existing ancestor): nodefs, imagefs and containerfs.
    pub fs_path: PathBuf,
    /// `--eviction-hard`.
    pub eviction_hard: Vec<Threshold>,
    /// The image GC thresholds (None: no image GC).
    pub image_gc: Option<crate::runtime::ImageGcPolicy>,
    /// `--eviction-soft`: they raise the conditions at once too (their grace periods only delay
    /// evictions), as upstream.
    pub eviction_soft: Vec<Threshold>,
}

impl PressureSource {
    /// Measures the host now (blocking file reads) and compares to the thresholds.
    pub fn sample(&self) -> Pressure {
        let all: Vec<Threshold> = self.eviction_hard.iter().chain(&self.eviction_soft).copied().collect();
        Observations::read(&self.fs_path).pressure(&all)
    }
}

// --- /proc and /sys parsers --------------------------------------------------------------------

/// The fields of `/proc/meminfo` the kubelet uses (kB there means KiB).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meminfo {
    pub total_kib: Option<u64>,
    pub available_kib: Option<u64>,
    pub hugepages_total: Option<u64>,
    pub hugepage_size_kib: Option<u64>,
}

pub fn parse_meminfo(text: &str) -> Meminfo {
    let mut m = Meminfo::default();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else { continue };
        let Some(n) = rest.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()) else { continue };
        match key.trim() {
            "MemTotal" => m.total_kib = Some(n),
            "MemAvailable" => m.available_kib = Some(n),
            "HugePages_Total" => m.hugepages_total = Some(n),
            "Hugepagesize" => m.hugepage_size_kib = Some(n),
            _ => {}
        }
    }
    m
}

/// `PRETTY_NAME` of an os-release file (quotes and backslash escapes undone).
pub fn parse_os_release(text: &str) -> Option<String> {
    let value = text.lines().find_map(|l| l.trim().strip_prefix("PRETTY_NAME="))?.trim();
    let unquoted = if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.extend(chars.next()),
                c => out.push(c),
            }
        }
        out
    } else if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        inner.to_string()
    } else {
        value.to_string()
    };
    Some(unquoted).filter(|s| !s.is_empty())
}

/// The default route of `/proc/net/route` (the one with the lowest metric).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRoute {
    pub interface: String,
    /// Unspecified for a route straight out of the interface.
    pub gateway: Ipv4Addr,
    pub metric: u32,
}

/// An address as `/proc/net/route` prints it: the network-order bytes read as a native u32.
fn route_addr(hex: &str) -> Option<Ipv4Addr> {
    u32::from_str_radix(hex, 16).ok().map(|n| Ipv4Addr::from(n.to_ne_bytes()))
}

pub fn parse_default_route(text: &str) -> Option<DefaultRoute> {
    const RTF_UP: u32 = 0x1;
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [iface, dest, gateway, flags, _refcnt, _use, metric, mask, ..] = f.as_slice() else { return None };
            let up = u32::from_str_radix(flags, 16).ok()? & RTF_UP != 0;
            let default = route_addr(dest)?.is_unspecified() && route_addr(mask)?.is_unspecified();
            if !(up && default) {
                return None;
            }
            Some(DefaultRoute {
                interface: iface.to_string(),
                gateway: route_addr(gateway)?,
                metric: metric.parse().ok()?,
            })
        })
        .min_by_key(|r| r.metric)
}

/// The host's own IPv4 addresses in `/proc/net/fib_trie` (`/32 host LOCAL` entries), in order,
/// each once.
pub fn parse_fib_trie_local(text: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines().map(str::trim) {
        if let Some(addr) = line.strip_prefix("|-- ") {
            last = addr.trim().parse().ok();
        } else if line.starts_with("/32 host LOCAL") {
            if let Some(a) = last.filter(|a| !out.contains(a)) {
                out.push(a);
            }
        }
    }
    out
}

/// The number of CPUs in a kernel CPU list (`0-3,6,8-9`).
pub fn parse_cpu_list(text: &str) -> Option<u32> {
    let mut n = 0u32;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                b.checked_sub(a)? + 1
            }
            None => {
                part.parse::<u32>().ok()?;
                1
            }
        };
    }
    (n > 0).then_some(n)
}

/// The tasks that exist, from `/proc/loadavg`'s fourth field (`running/total`), as upstream reads
/// it (sysinfo(2) truncates past 65,535).
pub fn parse_loadavg_tasks(text: &str) -> Option<u64> {
    text.split_whitespace().nth(3)?.split_once('/')?.1.parse().ok()
}

// --- readers -----------------------------------------------------------------------------------

/// A filesystem's size and what is free of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsStats {
    pub capacity_bytes: u64,
    /// Available to unprivileged users (`f_bavail`), as cAdvisor reports.
    pub available_bytes: u64,
    pub inodes: u64,
    pub inodes_free: u64,
}

/// `path`, or its nearest ancestor that exists (the data dir may not exist before the first start).
pub fn existing_ancestor(path: &Path) -> &Path {
    path.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"))
}

/// statvfs of the filesystem holding `path` (or its nearest existing ancestor).
pub fn fs_stats(path: &Path) -> Result<FsStats, HostError> {
    let at = existing_ancestor(path);
    let s = rustix::fs::statvfs(at).map_err(|e| host_err("statvfs", at)(e.into()))?;
    Ok(FsStats {
        capacity_bytes: s.f_blocks.saturating_mul(s.f_frsize),
        available_bytes: s.f_bavail.saturating_mul(s.f_frsize),
        inodes: s.f_files,
        inodes_free: s.f_ffree,
    })
}

/// pid.available: the lower of `kernel.pid_max` and `kernel.threads-max`, less the tasks that
/// exist (upstream `pidlimit.Stats`).
fn pid_level() -> Option<Level> {
    let max = [PID_MAX, THREADS_MAX].iter().filter_map(|p| read_trimmed(p)?.parse::<u64>().ok()).min()?;
    let tasks = parse_loadavg_tasks(&fs::read_to_string(LOADAVG).ok()?)?;
    Some(Level { available: max.saturating_sub(tasks), capacity: max })
}

/// What a real node has, as upstream's cAdvisor-based capacity reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    /// Online logical CPUs of the machine (not the process's affinity or quota).
    pub cpus: u32,
    pub memory_bytes: u64,
    /// Page size → bytes of huge pages of that size, for every size the kernel supports.
    pub hugepages: BTreeMap<u64, u64>,
    /// The data dir's filesystem.
    pub fs: FsStats,
}

/// Reads the host's capacity; `data_dir` decides the filesystem of ephemeral-storage.
pub fn capacity(data_dir: &Path) -> Result<Capacity, HostError> {
    let meminfo_path = Path::new(MEMINFO);
    let meminfo = parse_meminfo(&fs::read_to_string(meminfo_path).map_err(host_err("read", meminfo_path))?);
    let total = meminfo.total_kib.ok_or_else(|| {
        host_err("parse", meminfo_path)(io::Error::new(io::ErrorKind::InvalidData, "no MemTotal line"))
    })?;
    let cpus = read_trimmed(CPU_ONLINE)
        .and_then(|t| parse_cpu_list(&t))
        .or_else(|| std::thread::available_parallelism().ok().and_then(|n| u32::try_from(n.get()).ok()))
        .unwrap_or(1);
    Ok(Capacity { cpus, memory_bytes: total * 1024, hugepages: hugepages(&meminfo), fs: fs_stats(data_dir)? })
}

/// Huge pages by page size, from sysfs (every supported size), else the default size of meminfo.
fn hugepages(meminfo: &Meminfo) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    if let Ok(dir) = fs::read_dir(HUGEPAGES) {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(kib) = name.to_str().and_then(|n| n.strip_prefix("hugepages-")?.strip_suffix("kB")?.parse().ok())
            else {
                continue;
            };
            let kib: u64 = kib;
            let pages = fs::read_to_string(entry.path().join("nr_hugepages"))
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
                .unwrap_or(0);
            out.insert(kib * 1024, pages.saturating_mul(kib * 1024));
        }
    }
    if out.is_empty() {
        if let (Some(kib), Some(pages)) = (meminfo.hugepage_size_kib, meminfo.hugepages_total) {
            out.insert(kib * 1024, pages.saturating_mul(kib * 1024));
        }
    }
    out
}

/// What the node says about itself in `nodeInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemInfo {
    pub kernel_version: String,
    pub os_image: String,
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
}

/// Reads `nodeInfo`'s host facts; what cannot be read is left empty (`os_image`: `Linux`, the
/// os-release default; `system_uuid`: the machine id when DMI is not readable).
pub fn system_info() -> SystemInfo {
    let os_image = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| parse_os_release(&fs::read_to_string(p).ok()?))
        .unwrap_or_else(|| "Linux".into());
    let machine_id =
        ["/etc/machine-id", "/var/lib/dbus/machine-id"].iter().find_map(|p| read_trimmed(p)).unwrap_or_default();
    let system_uuid = read_trimmed("/sys/class/dmi/id/product_uuid").unwrap_or_else(|| machine_id.clone());
    SystemInfo {
        kernel_version: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default(),
        os_image,
        machine_id,
        system_uuid,
        boot_id: read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
    }
}

/// The source address the kernel picks towards `target` (a UDP `connect` only looks up the
/// route: nothing is sent).
fn source_towards(target: Ipv4Addr) -> Option<Ipv4Addr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((target, 9)).ok()?;
    match socket.local_addr().ok()?.ip() {
        std::net::IpAddr::V4(a) if !a.is_unspecified() && !a.is_loopback() => Some(a),
        _ => None,
    }
}

/// The host's primary IPv4 address: the source of the default route, else the first
/// non-loopback, non-link-local local address.
pub fn primary_ipv4() -> Option<Ipv4Addr> {
    if let Some(route) = read_trimmed(ROUTES).and_then(|t| parse_default_route(&t)) {
        // A gateway-less default route leads out of the interface for any address: take one
        // from TEST-NET-2 (RFC 5737) to look it up.
        let target = if route.gateway.is_unspecified() { Ipv4Addr::new(198, 51, 100, 1) } else { route.gateway };
        if let Some(a) = source_towards(target) {
            return Some(a);
        }
    }
    let trie = fs::read_to_string(FIB_TRIE).ok()?;
    parse_fib_trie_local(&trie).into_iter().find(|a| !a.is_loopback() && !a.is_link_local() && !a.is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO_SAMPLE: &str = "MemTotal:       16363420 kB\nMemFree:         1234567 kB\n\
        MemAvailable:    8123456 kB\nBuffers:          100000 kB\nHugePages_Total:       4\n\
        HugePages_Free:        4\nHugepagesize:       2048 kB\nHugetlb:            8192 kB\n";

    #[test]
    fn meminfo() {
        let m = parse_meminfo(MEMINFO_SAMPLE);
        assert_eq!(
            m,
            Meminfo {
                total_kib: Some(16_363_420),
                available_kib: Some(8_123_456),
                hugepages_total: Some(4),
                hugepage_size_kib: Some(2048)
            }
        );
        assert_eq!(parse_meminfo("garbage\nMemTotal: lots kB\n"), Meminfo::default());
    }

    #[test]
    fn os_release() {
        let debian = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n";
        assert_eq!(parse_os_release(debian).as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(parse_os_release("PRETTY_NAME='Alpine Linux v3.20'\n").as_deref(), Some("Alpine Linux v3.20"));
        assert_eq!(parse_os_release("PRETTY_NAME=Plain\n").as_deref(), Some("Plain"));
        assert_eq!(parse_os_release("PRETTY_NAME=\"say \\\"hi\\\" \\\\o/\"\n").as_deref(), Some("say \"hi\" \\o/"));
        assert_eq!(parse_os_release("NAME=x\n"), None);
        assert_eq!(parse_os_release("PRETTY_NAME=\"\"\n"), None);
    }

    #[test]
    fn default_route() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n\
            eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
            down0\t00000000\t01010A0A\t0002\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(
            parse_default_route(table),
            Some(DefaultRoute { interface: "eth0".into(), gateway: Ipv4Addr::new(192, 0, 2, 1), metric: 100 })
        );
        let no_default = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
            eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n";
        assert_eq!(parse_default_route(no_default), None);
        let device_route = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
            wg0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\n";
        assert_eq!(parse_default_route(device_route).map(|r| r.gateway), Some(Ipv4Addr::UNSPECIFIED));
        assert_eq!(parse_default_route("junk\nnot a route\n"), None);
    }

    #[test]
    fn local_addresses_from_fib_trie() {
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n\
            \x20    +-- 127.0.0.0/8 2 0 2\n           |-- 127.0.0.1\n              /32 host LOCAL\n\
            \x20          |-- 192.0.2.0\n              /24 link UNICAST\n\
            \x20          |-- 192.0.2.2\n              /32 host LOCAL\n\
            \x20       |-- 192.0.2.255\n           /32 link BROADCAST\n\
            Local:\n           |-- 127.0.0.1\n              /32 host LOCAL\n\
            \x20          |-- 192.0.2.2\n              /32 host LOCAL\n";
        assert_eq!(parse_fib_trie_local(trie), vec![Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(192, 0, 2, 2)]);
    }

    #[test]
    fn cpu_lists_and_tasks() {
        assert_eq!(parse_cpu_list("0-3\n"), Some(4));
        assert_eq!(parse_cpu_list("0-1,4,6-7"), Some(5));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_loadavg_tasks("4.07 2.12 0.90 5/114 13821\n"), Some(114));
        assert_eq!(parse_loadavg_tasks("4.07 2.12"), None);
    }

    #[test]
    fn eviction_hard_grammar() {
        let t = parse_eviction_hard(DEFAULT_EVICTION_HARD).expect("the default parses");
        assert_eq!(
            t,
            vec![
                Threshold { signal: Signal::MemoryAvailable, value: ThresholdValue::Quantity(100 << 20) },
                Threshold { signal: Signal::NodeFsAvailable, value: ThresholdValue::Percentage(0.10) },
                Threshold { signal: Signal::ImageFsAvailable, value: ThresholdValue::Percentage(0.15) },
                Threshold { signal: Signal::NodeFsInodesFree, value: ThresholdValue::Percentage(0.05) },
            ]
        );
        assert_eq!(t[1].amount(1000), 100);
        assert_eq!(t[0].amount(1000), 100 << 20);
        assert_eq!(parse_eviction_hard(" pid.available < 1k , ").expect("spaces").len(), 1);
        assert_eq!(parse_eviction_hard("memory.available<0%,nodefs.available<100%").expect("ignored"), vec![]);
        assert_eq!(parse_eviction_hard("").expect("none"), vec![]);
        for bad in [
            "memory.available=100Mi",
            "memory.free<100Mi",
            "memory.available<-1",
            "memory.available<0",
            "memory.available<lots",
            "nodefs.available<101%",
            "nodefs.available<x%",
            "memory.available<1Mi,memory.available<2Mi",
        ] {
            assert!(parse_eviction_hard(bad).is_err(), "{bad} is refused");
        }
    }

    #[test]
    fn pressure_from_observations() {
        let thresholds = parse_eviction_hard(&format!("{DEFAULT_EVICTION_HARD},pid.available<10%")).expect("parse");
        let fs = FsStats { capacity_bytes: 1000, available_bytes: 500, inodes: 100, inodes_free: 50 };
        let calm = Observations {
            memory: Some(Level { available: 1 << 30, capacity: 2 << 30 }),
            fs: Some(fs),
            pids: Some(Level { available: 30_000, capacity: 32_768 }),
        };
        assert_eq!(calm.pressure(&thresholds), Pressure::default());
        let low_memory =
            Observations { memory: Some(Level { available: 99 << 20, capacity: 2 << 30 }), ..calm.clone() };
        assert_eq!(low_memory.pressure(&thresholds), Pressure { memory: true, ..Default::default() });
        // imagefs is the same filesystem here: 15% is crossed before nodefs' 10%.
        let disk = Observations { fs: Some(FsStats { available_bytes: 120, ..fs }), ..calm.clone() };
        assert_eq!(disk.pressure(&thresholds), Pressure { disk: true, ..Default::default() });
        let inodes = Observations { fs: Some(FsStats { inodes_free: 4, ..fs }), ..calm.clone() };
        assert!(inodes.pressure(&thresholds).disk);
        let pids = Observations { pids: Some(Level { available: 3000, capacity: 32_768 }), ..calm.clone() };
        assert_eq!(pids.pressure(&thresholds), Pressure { pid: true, ..Default::default() });
        // Nothing measured is nothing crossed; without a pid threshold pids never press.
        assert_eq!(Observations::default().pressure(&thresholds), Pressure::default());
        assert!(!pids.pressure(&thresholds[..4]).pid);
    }

    #[test]
    fn this_host_is_readable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cap = capacity(&dir.path().join("not-yet")).expect("capacity");
        assert!(cap.cpus >= 1 && cap.memory_bytes > 0 && cap.fs.capacity_bytes > 0);
        let obs = Observations::read(dir.path());
        assert!(obs.memory.is_some() && obs.fs.is_some() && obs.pids.is_some(), "{obs:?}");
        assert!(!system_info().kernel_version.is_empty());
    }
}
