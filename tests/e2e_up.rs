//! The README's first command: `scripts/up` in a fresh lab namespace (only loopback, no network)
//! brings up a server with its node, builds and imports the busybox image offline, and ends with
//! the sample app Running and answering (the script itself checks the page and fails otherwise).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::lab::{cleanup_node, RealNode};
use common::{repo_root, skiff_bin};

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn scripts_up_runs_the_sample_app_in_a_fresh_lab_namespace() {
    let ns = Netns(format!("skiff-up-{}", std::process::id()));
    assert!(Command::new("ip").args(["netns", "add", &ns.0]).status().expect("ip").success(), "ip netns add");
    assert!(Command::new("ip").args(["-n", &ns.0, "link", "set", "lo", "up"]).status().expect("ip").success());
    let dir = tempfile::Builder::new().prefix("skiff-up-").tempdir().expect("temp dir");
    let data: PathBuf = dir.path().join("data");
    let node = RealNode {
        name: String::new(),
        ip: "127.0.0.1".into(),
        cgroup_root: format!("skiff-up-{}", std::process::id()),
        data_dir: data.clone(),
    };
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(repo_root().join("scripts").join("up"))
        .env("SKIFF_BIN", skiff_bin())
        .env("SKIFF_DATA_DIR", &data)
        .env("SKIFF_CGROUP_ROOT", &node.cgroup_root)
        // As the lab's nodes: the test must not depend on how full the host's disk is (under the
        // default 10 % / 15 % thresholds the node taints itself with disk-pressure).
        .env("SKIFF_EVICTION_HARD", "memory.available<100Mi,nodefs.available<1%,imagefs.available<1%")
        .output()
        .expect("run scripts/up");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    // Stop the server (by the PID the script wrote) and what its node left, pass or fail.
    if let Ok(pid) = std::fs::read_to_string(data.join("server.pid")) {
        let _ = Command::new("kill").args(["-9", pid.trim()]).status();
    }
    let log = std::fs::read_to_string(data.join("server.log")).unwrap_or_default();
    cleanup_node(&node);
    assert!(out.status.success(), "scripts/up failed:\n{stdout}\n{stderr}\n--- server log tail:\n{}", tail(&log));
    assert!(stdout.contains("skiff is up") && stdout.contains("curl http://10.244."), "{stdout}");
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
