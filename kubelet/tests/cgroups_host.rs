//! The cgroup layer on the host's real cgroup filesystem (root only, as CI runs): a group under a
//! test-unique root gets its limits from the kernel's point of view, holds a process, stops it
//! (on this project's hybrid hosts through the v1 freezer), and is removed without a trace. The
//! group and the process are cleaned up on failure too.

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use kubelet::runtime::linux::cgroups::{Cgroup, Layout};
use kubelet::runtime::linux_config::LinuxContainerResources;

const MOUNT: &str = "/sys/fs/cgroup";

struct Cleanup {
    group: Cgroup,
    root: Cgroup,
    child: Option<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.group.remove();
        let _ = self.root.remove();
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

#[test]
fn a_real_group_limits_holds_and_stops_a_process_and_leaves_nothing() {
    assert!(is_root(), "this test creates cgroups: run it as root, as CI does");
    let layout = Layout::detect(Path::new(MOUNT)).expect("a cgroup filesystem at /sys/fs/cgroup");
    let root = Cgroup::new(layout.clone(), &format!("skiff-test-{}", std::process::id())).expect("root path");
    let group = root.child("besteffort").and_then(|g| g.child("pod1")).expect("group path");
    let mut guard = Cleanup { group: group.clone(), root: root.clone(), child: None };

    group.create().expect("create the group");
    let limits = LinuxContainerResources {
        cpu_period: 100_000,
        cpu_quota: 20_000,
        cpu_shares: 256,
        memory_limit_in_bytes: 32 << 20,
        oom_score_adj: 0,
        pids_limit: Some(16),
    };
    group.apply(&limits).expect("apply limits");
    let (memory, pids) = match &layout {
        Layout::V1(m) => (
            m.join("memory").join(group.path()).join("memory.limit_in_bytes"),
            m.join("pids").join(group.path()).join("pids.max"),
        ),
        Layout::V2(m) => (m.join(group.path()).join("memory.max"), m.join(group.path()).join("pids.max")),
    };
    assert_eq!(std::fs::read_to_string(&memory).expect("read memory limit").trim(), (32u64 << 20).to_string());
    assert_eq!(std::fs::read_to_string(&pids).expect("read pids limit").trim(), "16");

    let child = Command::new("sleep").arg("300").spawn().expect("start sleep");
    let pid = child.id();
    guard.child = Some(child);
    group.add_process(pid).expect("move the process in");
    assert_eq!(group.processes().expect("list"), vec![pid]);
    assert_eq!(group.oom_kills().expect("oom kills"), 0);

    group.kill_all(|p| Command::new("kill").args(["-9", &p.to_string()]).status().map(|_| ())).expect("stop the group");
    let status = guard.child.as_mut().map(|c| c.wait().expect("wait")).expect("child");
    guard.child = None;
    assert!(!status.success(), "the process was killed: {status:?}");

    // The kernel may take a moment to empty the group after the exit.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !group.processes().expect("list").is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    group.remove().expect("remove the group");
    root.remove().expect("remove the test root");
    for dir in group.dirs().into_iter().chain(root.dirs()) {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}
