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
}

impl Lab {
    /// Creates the namespace and starts `skiff server --disable-agent` in it with `flags`.
    pub fn start(flags: &[&str]) -> Lab {
        assert!(
            nix_is_root(),
            "the lab tests need root (they create a network namespace with `ip netns add`); run them as root, as CI does"
        );
        let netns = format!("skiff-lab-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst));
        let _ = ip(&["netns", "del", &netns]);
        ip(&["netns", "add", &netns]).unwrap_or_else(|e| panic!("create lab namespace: {e}"));
        if let Err(e) = ip(&["-n", &netns, "link", "set", "lo", "up"]) {
            let _ = ip(&["netns", "del", &netns]);
            panic!("bring up loopback in {netns}: {e}");
        }
        let dir = tempfile::Builder::new().prefix("skiff-lab-").tempdir().expect("lab temp dir");
        let data = dir.path().join("server");
        let kubeconfig = data.join("kubeconfig.yaml");
        let kubectl = Kubectl::new_in_netns(&kubeconfig, dir.path(), &netns);
        let mut lab = Lab { netns, dir, server: None, agents: Vec::new(), kubeconfig, kubectl };
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
        lab.wait_ready();
        lab
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
        let _ = ip(&["netns", "del", &self.netns]);
        let _ = fs::remove_dir_all(self.dir.path());
    }
}

fn nix_is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}
