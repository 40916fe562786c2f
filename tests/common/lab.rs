//! A lab host for tests that start node agents (DESIGN §8, §10): a network namespace the test
//! creates, with only its own loopback up, in which the server, the agents and kubectl all run.
//! Nothing the cluster does can touch the machine's own network; the namespace, the processes
//! (killed by PID) and the temp dir are removed when the `Lab` is dropped, also on panic (after
//! printing every process's log tail). The processes run under `ip netns exec`, so the server is
//! started here rather than by `testkit`'s harness; waits use `testkit::eventually_blocking`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use testkit::{eventually_blocking, tail_of_file};

use super::{skiff_bin, KOut, Kubectl};

const PORT: &str = "6443";

static SEQ: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> Result<(), String> {
    let out =
        Command::new("ip").args(args).output().map_err(|e| format!("run ip {args:?}: {e} (is iproute2 installed?)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

/// One server plus hollow-node agents inside a fresh network namespace.
pub struct Lab {
    netns: String,
    dir: TempDir,
    server: Option<Proc>,
    agents: Vec<Option<Proc>>,
    kubeconfig: PathBuf,
    kubectl: Kubectl,
    /// The server's arguments (for a restart).
    server_args: Vec<String>,
    /// The real node `skiff server` runs, if any.
    node: Option<RealNode>,
    /// A tmpfs mounted as the node's data dir (unmounted on drop).
    tmpfs: Option<PathBuf>,
}

/// What a real node (the Linux runtime) leaves on the host, for the checks and the cleanup.
pub struct RealNode {
    pub name: String,
    pub ip: String,
    pub cgroup_root: String,
    pub data_dir: PathBuf,
}

/// The uplink of a lab host with a real node: a veth pair inside the namespace, this address on
/// `up0`, and a default route through it (DESIGN §10); nothing leaves the namespace.
const UPLINK_IP: &str = "192.168.240.1";

/// The busybox test image (built once per test process by `scripts/busybox-image`).
pub const BUSYBOX: &str = "localhost/busybox:1.36";

pub fn busybox_tarball() -> &'static Path {
    static TAR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    TAR.get_or_init(|| {
        // Built once into the tests' scratch dir under target/ (the script's output is
        // deterministic: concurrent test processes write their own file and rename it in).
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        fs::create_dir_all(&dir).expect("image dir");
        let out = dir.join("busybox.tar");
        let tmp = dir.join(format!("busybox-{}.tar", std::process::id()));
        let status = Command::new(super::repo_root().join("scripts").join("busybox-image"))
            .arg(&tmp)
            .arg(BUSYBOX)
            .stdout(Stdio::null())
            .status()
            .expect("run scripts/busybox-image");
        assert!(status.success(), "scripts/busybox-image failed (is busybox-static installed?)");
        fs::rename(&tmp, &out).expect("rename the busybox image into place");
        out
    })
}

impl Lab {
    /// Creates the namespace and starts `skiff server --disable-agent` in it with `flags`.
    pub fn start(flags: &[&str]) -> Lab {
        let mut lab = Lab::start_netns_only();
        let data = lab.dir.path().join("server");
        let mut args: Vec<String> = vec![
            "server".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--bind-address".into(),
            "127.0.0.1".into(),
            "--port".into(),
            PORT.into(),
            "--disable-agent".into(),
        ];
        args.extend(flags.iter().map(|s| s.to_string()));
        lab.server = Some(lab.spawn("server", &args));
        lab.server_args = args;
        lab.wait_ready();
        lab
    }

    /// A lab host whose `skiff server` runs a real node (the Linux runtime) with the busybox
    /// image imported; returns once the node is Ready.
    pub fn start_with_node(flags: &[&str]) -> Lab {
        Lab::start_with_node_on(None, flags)
    }

    /// [`Lab::start_with_node`] with the node's data dir on a tmpfs of `size` (e.g. `256m`): a
    /// filesystem small enough for disk-pressure tests.
    pub fn start_with_node_on_tmpfs(size: &str, flags: &[&str]) -> Lab {
        Lab::start_with_node_on(Some(size), flags)
    }

    fn start_with_node_on(tmpfs: Option<&str>, flags: &[&str]) -> Lab {
        let mut lab = Lab::start_netns_only();
        if let Some(size) = tmpfs {
            let data = lab.dir.path().join("server");
            fs::create_dir_all(&data).expect("data dir");
            let out = Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
                .arg(&data)
                .output()
                .expect("run mount");
            assert!(out.status.success(), "mount a tmpfs data dir: {}", String::from_utf8_lossy(&out.stderr));
            lab.tmpfs = Some(data);
        }
        let up = |args: &[&str]| {
            let mut full = vec!["-n", lab.netns.as_str()];
            full.extend_from_slice(args);
            ip(&full).unwrap_or_else(|e| panic!("lab uplink: {e}"))
        };
        up(&["link", "add", "up0", "type", "veth", "peer", "name", "up1"]);
        up(&["addr", "add", &format!("{UPLINK_IP}/24"), "dev", "up0"]);
        up(&["link", "set", "up0", "up"]);
        up(&["link", "set", "up1", "up"]);
        up(&["route", "add", "default", "dev", "up0"]);
        let data = lab.dir.path().join("server");
        let node = RealNode {
            name: "lab-node".into(),
            ip: UPLINK_IP.into(),
            cgroup_root: format!("skiff-test-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst)),
            data_dir: data.clone(),
        };
        let import = Command::new(skiff_bin())
            .args(["images", "import", "--data-dir"])
            .arg(&data)
            .arg(busybox_tarball())
            .output()
            .expect("skiff images import");
        assert!(import.status.success(), "skiff images import: {}", String::from_utf8_lossy(&import.stderr));
        let mut args: Vec<String> = [
            "server",
            "--data-dir",
            &data.display().to_string(),
            "--bind-address",
            "127.0.0.1",
            "--port",
            PORT,
            "--node-name",
            &node.name,
            "--node-ip",
            &node.ip,
            "--cgroup-root",
            &node.cgroup_root,
            "--node-status-update-frequency",
            "2s",
            // The tests must not depend on how full the host's disk is (a node under the default
            // 10 % / 15 % thresholds taints itself with disk-pressure and nothing schedules).
            "--eviction-hard",
            "memory.available<100Mi,nodefs.available<1%,imagefs.available<1%",
            // Nor on it for image GC (pulled images stay until the test ends).
            "--image-gc-high-threshold",
            "100",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(flags.iter().map(|s| s.to_string()));
        lab.node = Some(node);
        lab.server = Some(lab.spawn("server", &args));
        lab.server_args = args;
        lab.wait_ready();
        lab.wait_ready_nodes(1);
        lab
    }

    fn start_netns_only() -> Lab {
        assert!(
            nix_is_root(),
            "the lab tests need root (they create a network namespace with `ip netns add`); run them as root, as CI does"
        );
        let netns = format!("skiff-lab-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst));
        let _ = ip(&["netns", "del", &netns]);
        ip(&["netns", "add", &netns]).unwrap_or_else(|e| panic!("create lab namespace: {e}"));
        let dir = tempfile::Builder::new().prefix("skiff-lab-").tempdir().expect("lab temp dir");
        let kubeconfig = dir.path().join("server").join("kubeconfig.yaml");
        let kubectl = Kubectl::new_in_netns(&kubeconfig, dir.path(), &netns);
        // Dropped (and the namespace deleted) if the panic below fires.
        let lab = Lab {
            netns,
            dir,
            server: None,
            agents: Vec::new(),
            kubeconfig,
            kubectl,
            server_args: Vec::new(),
            node: None,
            tmpfs: None,
        };
        if let Err(e) = ip(&["-n", &lab.netns, "link", "set", "lo", "up"]) {
            panic!("bring up loopback in {}: {e}", lab.netns);
        }
        lab
    }

    pub fn node(&self) -> &RealNode {
        self.node.as_ref().expect("this lab runs a real node")
    }

    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// Runs a command inside the lab namespace; returns (success, stdout, stderr).
    pub fn exec_in(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new("ip").args(["netns", "exec", &self.netns]).args(args).output().expect("ip netns exec");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
    }

    /// The server's PID (the `ip netns exec` process execs it).
    pub fn server_pid(&self) -> u32 {
        self.server.as_ref().map(|p| p.child.id()).expect("server running")
    }

    /// SIGKILLs the server (its node's shims and containers are meant to live on).
    pub fn kill_server(&mut self) {
        if let Some(mut p) = self.server.take() {
            let _ = p.child.kill();
            let _ = p.child.wait();
            // Keep its log for the failure output.
            let old = p.log.with_extension("killed.log");
            let _ = fs::rename(&p.log, &old);
        }
    }

    /// Starts the server again with the same arguments and waits for `/readyz`.
    pub fn restart_server(&mut self) {
        let args = self.server_args.clone();
        self.server = Some(self.spawn("server", &args));
        self.wait_ready();
    }
    fn spawn(&self, name: &str, args: &[String]) -> Proc {
        let log = self.dir.path().join(format!("{name}.log"));
        let out = File::create(&log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns, skiff_bin()])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Proc { name: name.to_string(), child, log }
    }

    /// Waits until the server answers `/readyz`, asked with kubectl inside the namespace (the
    /// test process is outside it, so `testkit`'s probe cannot reach the server).
    fn wait_ready(&mut self) {
        eventually_blocking("the lab server to answer /readyz", Duration::from_secs(90), || {
            if let Some(p) = self.server.as_mut() {
                if let Ok(Some(status)) = p.child.try_wait() {
                    panic!("skiff server exited early ({status}):\n{}", tail_of_file(&p.log, 40));
                }
            }
            if !self.kubeconfig.exists() {
                return None;
            }
            let out = self.kubectl.run(&["get", "--raw", "/readyz"]);
            (out.success() && out.stdout.trim() == "ok").then_some(())
        });
    }

    /// Starts `skiff agent --runtime fake --count N --node-name NAME` with `flags`; returns its index.
    pub fn start_agents(&mut self, name: &str, count: u32, flags: &[&str]) -> usize {
        let mut args: Vec<String> = vec![
            "agent".into(),
            "--data-dir".into(),
            self.dir.path().join(format!("agent-{name}")).display().to_string(),
            "--kubeconfig".into(),
            self.kubeconfig.display().to_string(),
            "--runtime".into(),
            "fake".into(),
            "--count".into(),
            count.to_string(),
            "--node-name".into(),
            name.into(),
        ];
        args.extend(flags.iter().map(|s| s.to_string()));
        let p = self.spawn(&format!("agent-{name}"), &args);
        self.agents.push(Some(p));
        self.agents.len() - 1
    }

    /// Kills an agent process (its nodes stop heartbeating).
    pub fn kill_agent(&mut self, idx: usize) {
        if let Some(Some(mut p)) = self.agents.get_mut(idx).map(Option::take) {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    pub fn kubectl(&self, args: &[&str]) -> KOut {
        self.kubectl.run(args)
    }

    /// kubectl that must succeed; returns stdout.
    #[track_caller]
    pub fn k(&self, args: &[&str]) -> String {
        let out = self.kubectl.run(args);
        assert!(out.success(), "kubectl {args:?} failed: {}\n{}\n--- logs:\n{}", out.stdout, out.stderr, self.logs());
        out.stdout
    }

    /// `kubectl ... -o json`, parsed.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["-o", "json"]);
        let out = self.k(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("kubectl {args:?} gave invalid JSON: {e}\n{out}"))
    }

    /// kubectl with `stdin` (for `apply -f -`).
    #[track_caller]
    pub fn apply(&self, yaml: &str) -> String {
        let out = self.kubectl.run_with_stdin(&["apply", "-f", "-"], Some(yaml));
        assert!(out.success(), "kubectl apply failed: {}\n{}\n--- logs:\n{}", out.stdout, out.stderr, self.logs());
        out.stdout
    }

    pub fn kubectl_handle(&self) -> &Kubectl {
        &self.kubectl
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of every process's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for p in self.server.iter().chain(self.agents.iter().flatten()) {
            out.push_str(&format!("--- {} ---\n{}\n", p.name, tail_of_file(&p.log, 25)));
        }
        out
    }

    /// How many Nodes report Ready=True.
    pub fn ready_nodes(&self) -> usize {
        self.json(&["get", "nodes"])["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|n| {
                        n.pointer("/status/conditions")
                            .and_then(Value::as_array)
                            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    /// Waits until at least `n` Nodes are Ready.
    #[track_caller]
    pub fn wait_ready_nodes(&self, n: usize) {
        eventually_blocking(&format!("{n} Ready nodes"), Duration::from_secs(60), || {
            (self.ready_nodes() >= n).then_some(())
        });
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed {
            eprintln!("lab logs:\n{}", self.logs());
        }
        for p in self.agents.iter_mut().flatten().chain(self.server.iter_mut()) {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        if let Some(node) = &self.node {
            cleanup_node(node);
        }
        if let Some(dir) = &self.tmpfs {
            let _ = Command::new("umount").arg("-l").arg(dir).status();
        }
        let _ = ip(&["netns", "del", &self.netns]);
        let _ = fs::remove_dir_all(self.dir.path());
    }
}

/// The cgroup directories of a node's root on this host (one per v1 hierarchy, or the v2 group).
pub fn cgroup_dirs(root: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    if base.join("cgroup.controllers").exists() && !base.join("memory").exists() {
        return vec![base.join(root)];
    }
    ["cpu", "cpuacct", "memory", "pids", "freezer"].iter().map(|h| base.join(h).join(root)).collect()
}

/// Every process in the groups under `dir`.
pub fn cgroup_processes(dir: &Path) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(cgroup_processes(&e.path()));
            }
        }
    }
    out
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

/// What a test's real node leaves when its server is killed (its containers and shims live on by
/// design): the containers' processes (by the PIDs in its cgroups), its shims (by the PIDs in its
/// state files), then its cgroups. The pinned namespaces go with the last process of the mount
/// namespace they were made in; the veths with the lab namespace.
pub fn cleanup_node(node: &RealNode) {
    let mut shims = Vec::new();
    if let Ok(entries) = fs::read_dir(node.data_dir.join("agent").join("containers")) {
        for e in entries.flatten() {
            if let Ok(text) = fs::read_to_string(e.path().join("state.json")) {
                if let Ok(v) = serde_json::from_str::<Value>(&text) {
                    if let (Some(pid), Some(start)) = (v["shim_pid"].as_u64(), v["shim_start"].as_u64()) {
                        shims.push((pid, start));
                    }
                }
            }
        }
    }
    for _ in 0..50 {
        let pids: Vec<u32> = cgroup_dirs(&node.cgroup_root).iter().flat_map(|d| cgroup_processes(d)).collect();
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Each shim ends once it has recorded its container's exit; one that does not is killed (by
    // its PID, checked against its start time so that a reused PID is left alone).
    for _ in 0..50 {
        if !shims.iter().any(|(pid, start)| start_time(*pid) == Some(*start)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for (pid, start) in shims {
        if start_time(pid) == Some(start) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
    for d in cgroup_dirs(&node.cgroup_root) {
        remove_cgroup_tree(&d);
    }
}

/// A process's start time (`/proc/PID/stat` field 22), if it exists.
pub fn start_time(pid: u64) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn nix_is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}
