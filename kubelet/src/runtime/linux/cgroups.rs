//! Control groups for the Linux runtime, on both layouts:
//!
//! - **v2** (unified; most current distributions): one tree, controllers enabled for children
//!   through each parent's `cgroup.subtree_control`; `cpu.weight`, `cpu.max`, `memory.max`,
//!   `pids.max`; `cgroup.kill` stops every process at once; OOM kills are counted in
//!   `memory.events`.
//! - **v1** (what this project's development hosts run: a v1/v2 hybrid with every controller on
//!   v1): one hierarchy per controller (`cpu`, `memory`, `pids`, `freezer`, and `cpuacct` where
//!   it is not co-mounted with `cpu`: the kubelet's stats read CPU usage there); `cpu.shares`,
//!   `cpu.cfs_quota_us`/`cpu.cfs_period_us`, `memory.limit_in_bytes`, `pids.max`; there is no
//!   `cgroup.kill`, so a group is stopped by freezing it, killing what is in it and thawing it (a
//!   forking process cannot escape); OOM kills are counted in `memory.oom_control`.
//!
//! A [`Cgroup`] is named by its path relative to the mount point (`skiff/burstable/pod<uid>/<id>`,
//! the same on both layouts); the node's `--cgroup-root` is its first component, so a node only
//! ever touches groups under its own root. Nothing here forks or reads global state: the mount
//! point is a parameter, and the unit tests run against a cgroupfs-shaped temp dir.

use super::{io_err, IoError};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use super::super::linux_config::LinuxContainerResources;

/// The controllers the runtime uses.
pub const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];
/// v1 hierarchies a group is created in (the freezer to stop it; `cpuacct` is usually co-mounted
/// with `cpu`).
const V1_HIERARCHIES: [&str; 4] = ["cpu", "memory", "pids", "freezer"];

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup filesystem at {0} (neither cgroup.controllers nor a memory hierarchy found)")]
    NoCgroupFs(PathBuf),
    #[error("cgroup path {0:?} must be relative, without `..`")]
    BadPath(String),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("cgroup {path} still has processes after {attempts} attempts to stop them")]
    Busy { path: PathBuf, attempts: u32 },
}

/// Which layout the host mounts, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// The unified tree mounted at this path (usually `/sys/fs/cgroup`).
    V2(PathBuf),
    /// One hierarchy per controller below this path (`/sys/fs/cgroup/memory`, …).
    V1(PathBuf),
}

impl Layout {
    /// Detects the layout under `mount` (normally `/sys/fs/cgroup`). A hybrid host — v1
    /// controllers plus an empty v2 tree at `unified/` — is v1: that is where its controllers are.
    pub fn detect(mount: &Path) -> Result<Layout, CgroupError> {
        let v2_controllers = fs::read_to_string(mount.join("cgroup.controllers")).ok();
        if let Some(list) = v2_controllers {
            if CONTROLLERS.iter().all(|c| list.split_whitespace().any(|x| x == *c)) {
                return Ok(Layout::V2(mount.to_path_buf()));
            }
        }
        if mount.join("memory").is_dir() {
            return Ok(Layout::V1(mount.to_path_buf()));
        }
        Err(CgroupError::NoCgroupFs(mount.to_path_buf()))
    }
}

/// `cpu.shares` (v1, 2…262144) as `cpu.weight` (v2, 1…10000), the conversion runc and systemd use.
pub fn shares_to_weight(shares: i64) -> i64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// The files a resource setting writes, relative to the group's directory (v1: to the
/// hierarchy's group directory, named by the first path component), in the order to write them.
pub fn resource_files(layout: &Layout, r: &LinuxContainerResources) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match layout {
        Layout::V2(_) => {
            if r.cpu_shares > 0 {
                out.push(("cpu.weight".into(), shares_to_weight(r.cpu_shares).to_string()));
            }
            let period = if r.cpu_period > 0 { r.cpu_period } else { 100_000 };
            if r.cpu_quota > 0 {
                out.push(("cpu.max".into(), format!("{} {period}", r.cpu_quota)));
            } else if r.cpu_period > 0 {
                out.push(("cpu.max".into(), format!("max {period}")));
            }
            if r.memory_limit_in_bytes > 0 {
                out.push(("memory.max".into(), r.memory_limit_in_bytes.to_string()));
            }
            if let Some(p) = r.pids_limit {
                out.push(("pids.max".into(), if p > 0 { p.to_string() } else { "max".into() }));
            }
        }
        Layout::V1(_) => {
            if r.cpu_shares > 0 {
                out.push(("cpu/cpu.shares".into(), r.cpu_shares.clamp(2, 262_144).to_string()));
            }
            // The period first: a quota is checked against the current period.
            if r.cpu_period > 0 {
                out.push(("cpu/cpu.cfs_period_us".into(), r.cpu_period.to_string()));
            }
            if r.cpu_quota > 0 {
                out.push(("cpu/cpu.cfs_quota_us".into(), r.cpu_quota.to_string()));
            } else if r.cpu_period > 0 {
                out.push(("cpu/cpu.cfs_quota_us".into(), "-1".into()));
            }
            if r.memory_limit_in_bytes > 0 {
                out.push(("memory/memory.limit_in_bytes".into(), r.memory_limit_in_bytes.to_string()));
            }
            if let Some(p) = r.pids_limit {
                out.push(("pids/pids.max".into(), if p > 0 { p.to_string() } else { "max".into() }));
            }
        }
    }
    out
}

/// One control group (on v1: the same relative path in every hierarchy the runtime uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    layout: Layout,
    path: String,
}

fn check_relative(path: &str) -> Result<String, CgroupError> {
    let trimmed = path.trim_matches('/');
    let ok = !trimmed.is_empty() && trimmed.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(trimmed.to_string())
    } else {
        Err(CgroupError::BadPath(path.to_string()))
    }
}

impl Cgroup {
    /// The group at `path` (cgroupfs syntax, relative to the mount: `skiff/besteffort/pod<uid>`).
    pub fn new(layout: Layout, path: &str) -> Result<Cgroup, CgroupError> {
        Ok(Cgroup { layout, path: check_relative(path)? })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The directories of this group: one on v2, one per hierarchy on v1.
    pub fn dirs(&self) -> Vec<PathBuf> {
        match &self.layout {
            Layout::V2(root) => vec![root.join(&self.path)],
            Layout::V1(root) => {
                let mut out: Vec<PathBuf> = V1_HIERARCHIES.iter().map(|h| root.join(h).join(&self.path)).collect();
                if separate_cpuacct(root) {
                    out.push(root.join("cpuacct").join(&self.path));
                }
                out
            }
        }
    }

    /// A child group.
    pub fn child(&self, name: &str) -> Result<Cgroup, CgroupError> {
        Cgroup::new(self.layout.clone(), &format!("{}/{}", self.path, check_relative(name)?))
    }

    /// Creates the group (and its parents). On v2 it enables the runtime's controllers for the
    /// children of every ancestor below the mount, so limits can be set on this group.
    pub fn create(&self) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::V2(root) => {
                let mut dir = root.clone();
                for component in self.path.split('/') {
                    enable_controllers(&dir)?;
                    dir.push(component);
                    match fs::create_dir(&dir) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(io_err("create", &dir)(e).into()),
                    }
                }
                Ok(())
            }
            Layout::V1(_) => {
                for dir in self.dirs() {
                    fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
                }
                Ok(())
            }
        }
    }

    /// Writes the resource limits.
    pub fn apply(&self, resources: &LinuxContainerResources) -> Result<(), CgroupError> {
        for (file, value) in resource_files(&self.layout, resources) {
            let path = self.file(&file);
            fs::write(&path, value).map_err(io_err("write", &path))?;
        }
        Ok(())
    }

    /// Moves a process into the group (every hierarchy on v1).
    pub fn add_process(&self, pid: u32) -> Result<(), CgroupError> {
        for dir in self.dirs() {
            let path = dir.join("cgroup.procs");
            fs::write(&path, pid.to_string()).map_err(io_err("add a process to", &path))?;
        }
        Ok(())
    }

    /// The processes in the group (on v1 as the memory hierarchy lists them).
    pub fn processes(&self) -> Result<Vec<u32>, CgroupError> {
        let path = match &self.layout {
            Layout::V2(root) => root.join(&self.path).join("cgroup.procs"),
            Layout::V1(root) => root.join("memory").join(&self.path).join("cgroup.procs"),
        };
        match fs::read_to_string(&path) {
            Ok(text) => Ok(text.split_whitespace().filter_map(|p| p.parse().ok()).collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_err("read", &path)(e).into()),
        }
    }

    /// How many times the kernel's OOM killer killed a process of this group.
    pub fn oom_kills(&self) -> Result<u64, CgroupError> {
        let (path, key) = match &self.layout {
            Layout::V2(root) => (root.join(&self.path).join("memory.events"), "oom_kill"),
            Layout::V1(root) => (root.join("memory").join(&self.path).join("memory.oom_control"), "oom_kill"),
        };
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_err("read", &path)(e).into()),
        };
        Ok(text
            .lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0))
    }

    /// Stops every process in the group: `cgroup.kill` on v2; on v1, freeze, SIGKILL each
    /// process, thaw (a frozen process cannot fork, so none escapes). `kill` sends the signal
    /// (injected so the logic is testable; the runtime passes `kill(2)`).
    pub fn kill_all(&self, kill: impl Fn(u32) -> io::Result<()>) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::V2(root) => {
                let path = root.join(&self.path).join("cgroup.kill");
                if path.exists() {
                    return Ok(fs::write(&path, "1").map_err(io_err("write", &path))?);
                }
                // Kernels before 5.14 have no cgroup.kill: signal each process.
                for pid in self.processes()? {
                    let _ = kill(pid);
                }
                Ok(())
            }
            Layout::V1(root) => {
                let state = root.join("freezer").join(&self.path).join("freezer.state");
                fs::write(&state, "FROZEN").map_err(io_err("freeze", &state))?;
                for pid in self.processes()? {
                    // A process that is already gone is fine.
                    let _ = kill(pid);
                }
                Ok(fs::write(&state, "THAWED").map_err(io_err("thaw", &state))?)
            }
        }
    }

    /// Removes the group (children first; every hierarchy on v1). A group with processes cannot
    /// be removed: this retries briefly while the last processes exit, then reports it busy.
    pub fn remove(&self) -> Result<(), CgroupError> {
        const ATTEMPTS: u32 = 20;
        for dir in self.dirs() {
            let mut attempt = 0;
            loop {
                match remove_tree(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) if attempt + 1 < ATTEMPTS && e.raw_os_error() == Some(16) => {
                        // EBUSY: processes still exiting.
                        attempt += 1;
                        thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) if e.raw_os_error() == Some(16) => {
                        return Err(CgroupError::Busy { path: dir, attempts: ATTEMPTS });
                    }
                    Err(e) => return Err(io_err("remove", &dir)(e).into()),
                }
            }
        }
        Ok(())
    }

    fn file(&self, name: &str) -> PathBuf {
        match &self.layout {
            Layout::V2(root) => root.join(&self.path).join(name),
            Layout::V1(root) => match name.split_once('/') {
                Some((hierarchy, file)) => root.join(hierarchy).join(&self.path).join(file),
                None => root.join(&self.path).join(name),
            },
        }
    }
}

/// The hierarchies `/proc/self/cgroup` names: `Some(controllers)` per v1 hierarchy with
/// controllers (`cpu,cpuacct`, `memory`, …; named ones like `name=systemd` left out), or
/// `None` when the process is on the unified (v2) tree only.
pub fn v1_hierarchies(proc_self_cgroup: &str) -> Option<Vec<String>> {
    let v1: Vec<String> = proc_self_cgroup
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .filter(|c| !c.is_empty() && !c.starts_with("name="))
        .map(str::to_string)
        .collect();
    (!v1.is_empty()).then_some(v1)
}

/// Makes cgroupfs visible at `mount` when it is not (e.g. under `ip netns exec`, which mounts a
/// fresh sysfs over /sys in its private mount namespace, hiding /sys/fs/cgroup): the host's
/// hierarchies, as `/proc/self/cgroup` lists them, are mounted again there — a tmpfs holding one
/// mount per v1 hierarchy (with a link per co-mounted controller), or the v2 tree. Only ever
/// called when detection failed; the mounts stay in this process's mount namespace.
pub fn ensure_mounted(mount: &Path) -> Result<Layout, CgroupError> {
    if let Ok(layout) = Layout::detect(mount) {
        return Ok(layout);
    }
    let failed = |what: String, e: nix::Error| -> CgroupError {
        IoError { action: "mount", path: PathBuf::from(what), source: io::Error::from(e) }.into()
    };
    let own = fs::read_to_string("/proc/self/cgroup").map_err(io_err("read", Path::new("/proc/self/cgroup")))?;
    use nix::mount::{mount as mnt, MsFlags};
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    match v1_hierarchies(&own) {
        Some(hierarchies) => {
            fs::create_dir_all(mount).map_err(io_err("create", mount))?;
            mnt(Some("tmpfs"), mount, Some("tmpfs"), flags, Some("mode=755"))
                .map_err(|e| failed(mount.display().to_string(), e))?;
            for h in hierarchies {
                let dir = mount.join(&h);
                fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
                mnt(Some("cgroup"), &dir, Some("cgroup"), flags, Some(h.as_str()))
                    .map_err(|e| failed(dir.display().to_string(), e))?;
                if h.contains(',') {
                    for c in h.split(',') {
                        let link = mount.join(c);
                        if !link.exists() {
                            std::os::unix::fs::symlink(&h, &link).map_err(io_err("link", &link))?;
                        }
                    }
                }
            }
        }
        None => {
            fs::create_dir_all(mount).map_err(io_err("create", mount))?;
            mnt(Some("cgroup2"), mount, Some("cgroup2"), flags, None::<&str>)
                .map_err(|e| failed(mount.display().to_string(), e))?;
        }
    }
    tracing::info!(mount = %mount.display(), "mounted cgroupfs, which this mount namespace did not show");
    Layout::detect(mount)
}

/// Whether v1 mounts `cpuacct` as a hierarchy of its own (not co-mounted with `cpu`): groups
/// are then made there too, for the CPU usage the kubelet's stats read (`cpuacct.usage`).
fn separate_cpuacct(root: &Path) -> bool {
    let acct = root.join("cpuacct");
    acct.is_dir() && fs::canonicalize(&acct).ok() != fs::canonicalize(root.join("cpu")).ok()
}

/// Enables the runtime's controllers for the children of `dir` (v2), those the tree offers.
fn enable_controllers(dir: &Path) -> Result<(), CgroupError> {
    let available = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let enabled = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    let missing: Vec<String> = CONTROLLERS
        .iter()
        .filter(|c| available.split_whitespace().any(|a| a == **c))
        .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let path = dir.join("cgroup.subtree_control");
    Ok(fs::write(&path, missing.join(" ")).map_err(io_err("enable controllers in", &path))?)
}

/// Removes a cgroup directory and its child groups, deepest first. On cgroupfs a group's
/// directory is removed with `rmdir` even though it lists files; in a plain directory (tests)
/// the files are removed first.
fn remove_tree(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_tree(&entry.path())?;
        }
    }
    match fs::remove_dir(dir) {
        Err(e) if e.raw_os_error() == Some(39) => {
            // ENOTEMPTY: not a cgroupfs (a test's temp dir): drop the plain files and retry.
            for entry in fs::read_dir(dir)? {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    fs::remove_file(entry.path())?;
                }
            }
            fs::remove_dir(dir)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn hierarchies_from_proc_self_cgroup() {
        let hybrid = "9:name=systemd:/\n4:memory:/x\n2:cpu,cpuacct:/\n1:pids:/\n0::/\n";
        assert_eq!(v1_hierarchies(hybrid), Some(vec!["memory".into(), "cpu,cpuacct".into(), "pids".into()]));
        assert_eq!(v1_hierarchies("0::/user.slice\n"), None);
    }

    fn resources() -> LinuxContainerResources {
        LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: 50_000,
            cpu_shares: 512,
            memory_limit_in_bytes: 64 << 20,
            oom_score_adj: 0,
            pids_limit: Some(100),
        }
    }

    /// A temp dir shaped like a cgroup v2 mount: the root offers cpu, memory, pids and io.
    fn v2_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join("cgroup.controllers"), "cpuset cpu io memory pids\n").expect("write");
        fs::write(dir.path().join("cgroup.subtree_control"), "").expect("write");
        dir
    }

    /// A temp dir shaped like this project's hybrid hosts: every controller on v1, an empty v2
    /// tree at `unified/`.
    fn v1_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for h in ["cpu", "memory", "pids", "freezer", "unified"] {
            fs::create_dir(dir.path().join(h)).expect("mkdir");
        }
        fs::write(dir.path().join("unified/cgroup.controllers"), "").expect("write");
        dir
    }

    #[test]
    fn layouts_are_detected() {
        let v2 = v2_root();
        assert_eq!(Layout::detect(v2.path()).ok(), Some(Layout::V2(v2.path().to_path_buf())));
        let v1 = v1_root();
        assert_eq!(Layout::detect(v1.path()).ok(), Some(Layout::V1(v1.path().to_path_buf())));
        // The hybrid's unified tree alone has no controllers: not usable as v2.
        assert!(matches!(Layout::detect(&v1.path().join("unified")), Err(CgroupError::NoCgroupFs(_))));
        let empty = tempfile::tempdir().expect("temp dir");
        assert!(matches!(Layout::detect(empty.path()), Err(CgroupError::NoCgroupFs(_))));
    }

    #[test]
    fn shares_map_to_weights_as_runc_does() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(0), 1, "clamped");
        assert_eq!(shares_to_weight(1 << 40), 10_000, "clamped");
    }

    #[test]
    fn resource_files_table() {
        let v2 = Layout::V2(PathBuf::from("/x"));
        let v1 = Layout::V1(PathBuf::from("/x"));
        let files = |l: &Layout, r: LinuxContainerResources| resource_files(l, &r);
        let pairs = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        assert_eq!(
            files(&v2, resources()),
            pairs(&[
                ("cpu.weight", "20"),
                ("cpu.max", "50000 100000"),
                ("memory.max", "67108864"),
                ("pids.max", "100")
            ])
        );
        assert_eq!(
            files(&v1, resources()),
            pairs(&[
                ("cpu/cpu.shares", "512"),
                ("cpu/cpu.cfs_period_us", "100000"),
                ("cpu/cpu.cfs_quota_us", "50000"),
                ("memory/memory.limit_in_bytes", "67108864"),
                ("pids/pids.max", "100"),
            ])
        );
        // No quota (no CPU limit) with a period: unlimited.
        let unlimited = LinuxContainerResources { cpu_quota: 0, ..resources() };
        assert!(files(&v2, unlimited).contains(&("cpu.max".into(), "max 100000".into())));
        assert!(files(&v1, unlimited).contains(&("cpu/cpu.cfs_quota_us".into(), "-1".into())));
        // Nothing specified: nothing written.
        assert!(files(&v2, LinuxContainerResources::default()).is_empty());
        assert!(files(&v1, LinuxContainerResources::default()).is_empty());
        let zero_pids = LinuxContainerResources { pids_limit: Some(0), ..Default::default() };
        assert_eq!(files(&v2, zero_pids), pairs(&[("pids.max", "max")]));
    }

    #[test]
    fn paths_stay_under_the_mount() {
        let l = Layout::V2(PathBuf::from("/sys/fs/cgroup"));
        for bad in ["", "/", "a/../b", "..", "a//b", "./a"] {
            assert!(matches!(Cgroup::new(l.clone(), bad), Err(CgroupError::BadPath(_))), "{bad:?}");
        }
        let g = Cgroup::new(l.clone(), "/skiff/burstable/pod1/").expect("valid");
        assert_eq!(g.path(), "skiff/burstable/pod1");
        assert!(g.child("../escape").is_err());
        assert_eq!(
            g.child("c1").map(|c| c.dirs()).ok(),
            Some(vec![PathBuf::from("/sys/fs/cgroup/skiff/burstable/pod1/c1")])
        );
    }

    #[test]
    fn v2_create_enables_controllers_and_apply_writes_limits() {
        let root = v2_root();
        let layout = Layout::detect(root.path()).expect("v2");
        let g = Cgroup::new(layout, "skiff/burstable/pod1").expect("path");
        g.create().expect("create");
        assert_eq!(fs::read_to_string(root.path().join("cgroup.subtree_control")).expect("read"), "+cpu +memory +pids");
        assert!(root.path().join("skiff/burstable/pod1").is_dir());
        g.apply(&resources()).expect("apply");
        let read = |f: &str| fs::read_to_string(root.path().join("skiff/burstable/pod1").join(f)).expect("read");
        assert_eq!(read("cpu.max"), "50000 100000");
        assert_eq!(read("memory.max"), "67108864");
        g.add_process(4242).expect("add");
        assert_eq!(g.processes().expect("procs"), vec![4242]);
        fs::write(root.path().join("skiff/burstable/pod1/memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
            .expect("write");
        assert_eq!(g.oom_kills().expect("oom"), 1);
        g.kill_all(|_| Ok(())).expect("kill");
        g.remove().expect("remove");
        assert!(!root.path().join("skiff/burstable/pod1").exists());
        assert!(root.path().join("skiff/burstable").exists(), "only the group itself goes");
    }

    #[test]
    fn v1_groups_live_in_every_hierarchy_and_are_stopped_through_the_freezer() {
        let root = v1_root();
        let layout = Layout::detect(root.path()).expect("v1");
        let g = Cgroup::new(layout, "skiff/besteffort/pod2").expect("path");
        g.create().expect("create");
        for h in ["cpu", "memory", "pids", "freezer"] {
            assert!(root.path().join(h).join("skiff/besteffort/pod2").is_dir(), "{h}");
        }
        g.apply(&resources()).expect("apply");
        let read = |h: &str, f: &str| fs::read_to_string(root.path().join(h).join("skiff/besteffort/pod2").join(f));
        assert_eq!(read("cpu", "cpu.cfs_quota_us").ok().as_deref(), Some("50000"));
        assert_eq!(read("memory", "memory.limit_in_bytes").ok().as_deref(), Some("67108864"));
        assert_eq!(read("pids", "pids.max").ok().as_deref(), Some("100"));
        g.add_process(7).expect("add");
        fs::write(root.path().join("memory/skiff/besteffort/pod2/cgroup.procs"), "7\n8\n").expect("write");
        let killed = RefCell::new(Vec::new());
        g.kill_all(|pid| {
            // Each kill happens while the group is frozen.
            assert_eq!(read("freezer", "freezer.state").ok().as_deref(), Some("FROZEN"));
            killed.borrow_mut().push(pid);
            Ok(())
        })
        .expect("kill");
        assert_eq!(killed.into_inner(), vec![7, 8]);
        assert_eq!(read("freezer", "freezer.state").ok().as_deref(), Some("THAWED"));
        fs::write(
            root.path().join("memory/skiff/besteffort/pod2/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .expect("write");
        assert_eq!(g.oom_kills().expect("oom"), 2);
        g.remove().expect("remove");
        for h in ["cpu", "memory", "pids", "freezer"] {
            assert!(!root.path().join(h).join("skiff/besteffort/pod2").exists(), "{h}");
        }
    }
}
