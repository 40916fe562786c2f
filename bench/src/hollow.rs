//! A private `skiff agent --runtime fake --count N` (hollow nodes) for one benchmark run, and
//! CPU/memory readings of any process from `/proc`.
//!
//! The agent gets a temp data dir of its own and writes its log there. It is stopped by its own
//! PID (SIGTERM, then SIGKILL) by [`HollowAgent::stop`] or, on any early return, when dropped; the
//! temp dir goes with it. Hollow nodes create no interfaces: the agent only talks to the server.

use std::fs::{self, File};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context as _, Result};
use tempfile::TempDir;

/// What to start: `count` hollow nodes named `{prefix}-0 …`.
#[derive(Clone, Debug)]
pub struct AgentSpec {
    pub count: usize,
    pub prefix: String,
    /// `--pod-cidr`: node i gets the i-th /24 of it.
    pub pod_cidr: Option<String>,
}

pub struct HollowAgent {
    child: Option<Child>,
    pid: u32,
    pub log: PathBuf,
    // Declared last: removed after `Drop::drop` has stopped the process.
    _tmp: TempDir,
}

impl HollowAgent {
    /// Spawn the agent against the server of `kubeconfig`; does not wait for the nodes.
    pub fn start(bin: &Path, kubeconfig: &Path, spec: &AgentSpec) -> Result<HollowAgent> {
        if !bin.is_file() {
            bail!("skiff binary {} not found (build it with `cargo build --release --bin skiff`)", bin.display());
        }
        let tmp = tempfile::Builder::new().prefix("skiff-bench-agent-").tempdir().context("create agent temp dir")?;
        let data_dir = tmp.path().join("data");
        fs::create_dir_all(&data_dir).context("create agent data dir")?;
        let log = tmp.path().join("agent.log");
        let logf = File::create(&log).context("create agent log")?;
        let mut cmd = Command::new(bin);
        cmd.arg("agent")
            .args(["--runtime", "fake", "--count", &spec.count.to_string(), "--node-name", &spec.prefix])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--data-dir")
            .arg(&data_dir);
        if let Some(cidr) = &spec.pod_cidr {
            cmd.args(["--pod-cidr", cidr]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(logf.try_clone().context("dup agent log fd")?))
            .stderr(Stdio::from(logf))
            .spawn()
            .with_context(|| format!("spawn {} agent", bin.display()))?;
        let pid = child.id();
        Ok(HollowAgent { child: Some(child), pid, log, _tmp: tmp })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Fails when the agent process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait().context("wait for agent")? {
                self.child = None;
                bail!("skiff agent exited with {status}; log tail:\n{}", log_tail(&self.log, 30));
            }
            Ok(())
        } else {
            bail!("skiff agent is not running")
        }
    }

    pub fn log_tail(&self, n: usize) -> String {
        log_tail(&self.log, n)
    }

    /// SIGTERM to its PID, SIGKILL after a timeout; returns how it exited.
    pub fn stop(&mut self) -> Result<String> {
        let Some(child) = self.child.take() else {
            return Ok("already exited".to_string());
        };
        crate::server::stop_gracefully(child, self.pid, "agent")
    }
}

impl Drop for HollowAgent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The last `n` lines of a log file (reads at most its last 64 KiB).
pub fn log_tail(path: &Path, n: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`, else 100).
fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// User + system CPU seconds a process has used (`/proc/<pid>/stat` fields 14 and 15; `pid` 0
/// means this process).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let path = if pid == 0 { "/proc/self/stat".to_string() } else { format!("/proc/{pid}/stat") };
    let text = fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let rest = &text[text.rfind(')').ok_or_else(|| anyhow!("{path}: no ')'"))? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    let tick = |i: usize| -> Result<f64> {
        let f = fields.get(i).ok_or_else(|| anyhow!("{path}: too few fields"))?;
        f.parse::<f64>().with_context(|| format!("{path}: field {f:?}"))
    };
    Ok((tick(11)? + tick(12)?) / clk_tck())
}

/// CPU seconds (user + system) of each thread of a process, by thread id: (thread name, seconds).
pub fn thread_cpu(pid: u32) -> std::collections::HashMap<u32, (String, f64)> {
    let mut out = std::collections::HashMap::new();
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(text) = fs::read_to_string(entry.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (text.find('('), text.rfind(')')) else { continue };
        let name = text[open + 1..close].to_string();
        let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
        let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        out.insert(tid, (name, (tick(11) + tick(12)) / clk_tck()));
    }
    out
}

/// Where a process's CPU went between two [`thread_cpu`] readings: per thread name, the number
/// of threads, their total seconds and the busiest single thread's seconds, busiest names first.
pub fn thread_cpu_delta(
    before: &std::collections::HashMap<u32, (String, f64)>,
    after: &std::collections::HashMap<u32, (String, f64)>,
) -> Vec<(String, usize, f64, f64)> {
    let mut by_name: std::collections::HashMap<String, (usize, f64, f64)> = std::collections::HashMap::new();
    for (tid, (name, secs)) in after {
        let d = secs - before.get(tid).map(|b| b.1).unwrap_or(0.0);
        let e = by_name.entry(name.clone()).or_insert((0, 0.0, 0.0));
        e.0 += 1;
        e.1 += d;
        e.2 = e.2.max(d);
    }
    let mut out: Vec<(String, usize, f64, f64)> = by_name.into_iter().map(|(n, (c, t, m))| (n, c, t, m)).collect();
    out.sort_by(|a, b| b.2.total_cmp(&a.2));
    out
}

/// VmRSS and VmHWM (peak) of a process in KiB.
pub fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let path = format!("/proc/{pid}/status");
    let text = fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    let field = |name: &str| -> Result<u64> {
        let line = text.lines().find(|l| l.starts_with(name)).ok_or_else(|| anyhow!("{name} missing from {path}"))?;
        let kib = line[name.len()..].trim().trim_end_matches("kB").trim();
        kib.parse::<u64>().with_context(|| format!("parse {name} {kib:?}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// `/proc/loadavg`'s 1/5/15-minute averages.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// Lines of a log at WARN or ERROR level, grouped by their message with the timestamp and
/// numbers blanked: (count, example) by group, most frequent first. Reads at most `max_bytes`
/// from the end of the file.
pub fn log_problems(path: &Path, max_bytes: u64) -> Vec<(usize, String)> {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(max_bytes)));
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let mut groups: std::collections::HashMap<String, (usize, String)> = std::collections::HashMap::new();
    for line in text.lines() {
        let plain = strip_ansi(line);
        let Some(at) = plain.find(" WARN ").or_else(|| plain.find(" ERROR ")) else { continue };
        let msg = plain[at..].trim().to_string();
        let key: String = msg.chars().filter(|c| !c.is_ascii_digit()).take(90).collect();
        let e = groups.entry(key).or_insert((0, msg));
        e.0 += 1;
    }
    let mut out: Vec<(usize, String)> = groups.into_values().collect();
    out.sort_by_key(|g| std::cmp::Reverse(g.0));
    out
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_and_rss() {
        assert!(cpu_seconds(0).expect("own stat") >= 0.0);
        let (rss, hwm) = rss_kib(std::process::id()).expect("own status");
        assert!(rss > 0 && hwm >= rss);
    }

    #[test]
    fn problems_grouped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("log");
        fs::write(
            &p,
            "2025-01-01T00:00:01Z  INFO a: fine\n\
             2025-01-01T00:00:02Z  WARN a: pod 12 failed\n\
             \u{1b}[2m2025-01-01T00:00:03Z\u{1b}[0m \u{1b}[33m WARN\u{1b}[0m a: pod 13 failed\n\
             2025-01-01T00:00:04Z ERROR b: boom\n",
        )
        .expect("write");
        let g = log_problems(&p, 1 << 20);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].0, 2);
        assert!(g[0].1.contains("pod 12 failed"));
    }
}
