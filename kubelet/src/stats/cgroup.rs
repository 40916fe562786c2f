//! What a cgroup has used, read from its files on both layouts (cAdvisor's figures):
//!
//! - CPU: cumulative core-nanoseconds (v2 `cpu.stat` `usage_usec` × 1000; v1 `cpuacct.usage`);
//! - memory: usage (v2 `memory.current`; v1 `memory.usage_in_bytes`), the working set (usage
//!   less inactive file pages, never below 0, as cAdvisor), RSS (v2 `anon`; v1 `total_rss`) and
//!   page faults.
//!
//! Parsers are pure; [`read`] is a thin reader around them, tested against a cgroupfs-shaped
//! temp dir for v2 (this project's hosts are v1).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::runtime::linux::cgroups::Layout;

/// One reading of a cgroup; None where a file was missing or unreadable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu_ns: Option<u64>,
    pub memory_usage: Option<u64>,
    pub working_set: Option<u64>,
    pub rss: Option<u64>,
    pub page_faults: Option<u64>,
    pub major_page_faults: Option<u64>,
}

/// `key value` lines (`memory.stat`, `cpu.stat`).
pub fn parse_flat_keyed(text: &str) -> HashMap<&str, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?, it.next()?.parse().ok()?))
        })
        .collect()
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Usage from the files of one group: `usage` (bytes in use), `stat` (`memory.stat`), and
/// whether the stat keys are v1's hierarchical `total_*` ones.
pub fn memory_from(usage: Option<u64>, stat: &str, v1: bool) -> (Option<u64>, Option<u64>, Option<u64>, Option<u64>) {
    let s = parse_flat_keyed(stat);
    let key = |k: &str| if v1 { s.get(format!("total_{k}").as_str()).copied() } else { s.get(k).copied() };
    let inactive = key("inactive_file").unwrap_or(0);
    let working_set = usage.map(|u| u.saturating_sub(inactive));
    let rss = if v1 { key("rss") } else { key("anon") };
    (working_set, rss, key("pgfault"), key("pgmajfault"))
}

/// Reads the group at `path` (relative to the mount, e.g. `skiff/burstable/pod<uid>`).
pub fn read(layout: &Layout, path: &str) -> Usage {
    let (cpu_ns, memory_usage, stat, v1) = match layout {
        Layout::V2(root) => {
            let dir = root.join(path);
            let cpu = fs::read_to_string(dir.join("cpu.stat"))
                .ok()
                .and_then(|t| parse_flat_keyed(&t).get("usage_usec").map(|u| u.saturating_mul(1000)));
            (cpu, read_u64(&dir.join("memory.current")), fs::read_to_string(dir.join("memory.stat")), false)
        }
        Layout::V1(root) => {
            let at = |h: &str, f: &str| -> PathBuf { root.join(h).join(path).join(f) };
            let cpu = read_u64(&at("cpu", "cpuacct.usage")).or_else(|| read_u64(&at("cpuacct", "cpuacct.usage")));
            let mem = read_u64(&at("memory", "memory.usage_in_bytes"));
            (cpu, mem, fs::read_to_string(at("memory", "memory.stat")), true)
        }
    };
    let (working_set, rss, page_faults, major_page_faults) = match stat {
        Ok(text) => memory_from(memory_usage, &text, v1),
        Err(_) => (memory_usage, None, None, None),
    };
    Usage { cpu_ns, memory_usage, working_set, rss, page_faults, major_page_faults }
}

/// The child groups of `path` (directory names), on the memory hierarchy for v1.
pub fn children(layout: &Layout, path: &str) -> Vec<String> {
    let dir = match layout {
        Layout::V2(root) => root.join(path),
        Layout::V1(root) => root.join("memory").join(path),
    };
    let Ok(entries) = fs::read_dir(&dir) else { return Vec::new() };
    let mut out: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_set_is_usage_less_inactive_file() {
        let v2 = "anon 1000\nfile 5000\ninactive_file 3000\npgfault 7\npgmajfault 1\n";
        assert_eq!(memory_from(Some(10_000), v2, false), (Some(7000), Some(1000), Some(7), Some(1)));
        let v1 = "rss 1\ninactive_file 1\ntotal_rss 2000\ntotal_inactive_file 500\ntotal_pgfault 9\n";
        assert_eq!(memory_from(Some(4000), v1, true), (Some(3500), Some(2000), Some(9), None));
        // Never below zero.
        assert_eq!(memory_from(Some(10), "inactive_file 30\n", false).0, Some(0));
        assert_eq!(memory_from(None, "", false), (None, None, None, None));
    }

    #[test]
    fn v2_and_v1_groups_are_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let g = dir.path().join("skiff/burstable/pod1");
        fs::create_dir_all(g.join("c1")).expect("mkdir");
        fs::write(g.join("cpu.stat"), "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n").expect("write");
        fs::write(g.join("memory.current"), "8192\n").expect("write");
        fs::write(g.join("memory.stat"), "anon 4096\ninactive_file 1024\n").expect("write");
        let u = read(&Layout::V2(dir.path().to_path_buf()), "skiff/burstable/pod1");
        assert_eq!(u.cpu_ns, Some(2_500_000));
        assert_eq!((u.memory_usage, u.working_set, u.rss), (Some(8192), Some(7168), Some(4096)));
        assert_eq!(children(&Layout::V2(dir.path().to_path_buf()), "skiff/burstable/pod1"), vec!["c1".to_string()]);

        let v1 = tempfile::tempdir().expect("temp dir");
        let cpu = v1.path().join("cpu/skiff/besteffort/pod2");
        let mem = v1.path().join("memory/skiff/besteffort/pod2");
        fs::create_dir_all(&cpu).expect("mkdir");
        fs::create_dir_all(&mem).expect("mkdir");
        fs::write(cpu.join("cpuacct.usage"), "123456789\n").expect("write");
        fs::write(mem.join("memory.usage_in_bytes"), "10000\n").expect("write");
        fs::write(mem.join("memory.stat"), "total_rss 6000\ntotal_inactive_file 1000\n").expect("write");
        let u = read(&Layout::V1(v1.path().to_path_buf()), "skiff/besteffort/pod2");
        assert_eq!(u.cpu_ns, Some(123_456_789));
        assert_eq!((u.memory_usage, u.working_set, u.rss), (Some(10_000), Some(9000), Some(6000)));
        assert_eq!(read(&Layout::V1(v1.path().to_path_buf()), "nope"), Usage::default());
    }
}
