//! Real-pod benchmark: starts its own `skiff server` with a real node (the built-in Linux runtime)
//! and measures pod start — create → Running as seen by a watch, image present — for N pods in
//! sequence and N created at once; then the memory the node uses for them. Prints a report.
//! `--density N` instead starts N sleeping pods on the node (50 creates in flight) and reports
//! how long they took and what they cost: the server's RSS, the shims' PSS, the containers' own
//! PSS, and the host's MemAvailable drop per pod.
//!
//! With `--agent-apart` the node is a `skiff agent` process of its own beside a `--disable-agent`
//! server, so the kubelet's memory is measured apart from the control plane's.
//!
//! Usage (as root, inside a network namespace you made, from the repository root):
//! `ip netns exec NS pod_bench [--skiff PATH] [--pods N | --density N] [--agent-apart]` (see
//! bench/README.md).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use bench::client::Api;
use bench::server::{NodeAgent, Rss, SkiffServer};
use bench::stats::{describe, summarize};
use futures::StreamExt as _;
use serde_json::{json, Value};
use tokio::sync::Notify;

const USAGE: &str =
    "usage: pod_bench [--skiff PATH (default target/release/skiff)] [--pods N (default 100) | --density N (up to 2000)] [--agent-apart]";
const IMAGE: &str = "localhost/busybox:1.36";
const RUNNING_TIMEOUT: Duration = Duration::from_secs(120);

struct Config {
    skiff: PathBuf,
    pods: usize,
    /// Density mode: this many sleeping pods at once.
    density: Option<usize>,
    /// The node as a `skiff agent` process of its own.
    agent_apart: bool,
}

/// The server and, with `--agent-apart`, the node's agent.
struct Cluster {
    server: SkiffServer,
    agent: Option<NodeAgent>,
}

impl Cluster {
    /// The data dir holding the node's state (`agent/`).
    fn node_dir(&self) -> &Path {
        self.agent.as_ref().map_or(&self.server.data_dir, |a| &a.data_dir)
    }

    fn check_alive(&mut self) -> Result<()> {
        self.server.check_alive()?;
        if let Some(a) = self.agent.as_mut() {
            a.check_alive()?;
        }
        Ok(())
    }

    /// (server RSS, agent RSS when apart).
    fn rss(&self) -> Result<(Rss, Option<Rss>)> {
        Ok((self.server.rss()?, self.agent.as_ref().map(NodeAgent::rss).transpose()?))
    }

    fn print_rss(&self, when: &str) -> Result<()> {
        let (server, agent) = self.rss()?;
        match agent {
            None => {
                println!("server process (API server, controllers, scheduler, kubelet) {when}: {}", server.describe())
            }
            Some(a) => {
                println!("server process (API server, controllers, scheduler) {when}: {}", server.describe());
                println!("agent process (kubelet) {when}: {}", a.describe());
            }
        }
        Ok(())
    }

    fn log_tail(&self, n: usize) -> String {
        let mut out = self.server.log_tail(n);
        if let Some(a) = &self.agent {
            out.push_str("\n--- agent ---\n");
            out.push_str(&a.log_tail(n));
        }
        out
    }

    fn stop(&mut self) {
        if let Some(a) = self.agent.as_mut() {
            let _ = a.stop();
        }
        let _ = self.server.stop();
    }
}

fn parse_args() -> Result<Config> {
    let mut cfg = Config { skiff: PathBuf::from("target/release/skiff"), pods: 100, density: None, agent_apart: false };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--skiff" => cfg.skiff = PathBuf::from(args.next().context("--skiff needs a path")?),
            "--pods" => {
                let n = args.next().context("--pods needs a count")?;
                cfg.pods = n.parse().with_context(|| format!("--pods {n:?} is not a count"))?;
                if cfg.pods == 0 || cfg.pods > 1000 {
                    bail!("--pods must be between 1 and 1000");
                }
            }
            "--density" => {
                let n = args.next().context("--density needs a count")?;
                let n: usize = n.parse().with_context(|| format!("--density {n:?} is not a count"))?;
                if n == 0 || n > 2000 {
                    bail!("--density must be between 1 and 2000");
                }
                cfg.density = Some(n);
            }
            "--agent-apart" => cfg.agent_apart = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(cfg)
}

/// When each pod was first seen Running by the watch.
#[derive(Default)]
struct Seen {
    running: Mutex<HashMap<String, Instant>>,
    changed: Notify,
}

async fn watch_pods(api: Api, seen: Arc<Seen>) -> Result<()> {
    let resp = api.request(reqwest::Method::GET, "/api/v1/namespaces/default/pods?watch=1").send().await?;
    let mut body = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = body.next().await {
        buf.extend_from_slice(&chunk?);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let Ok(ev) = serde_json::from_slice::<Value>(&line) else { continue };
            let pod = &ev["object"];
            if pod.pointer("/status/phase").and_then(Value::as_str) == Some("Running") {
                if let Some(name) = pod.pointer("/metadata/name").and_then(Value::as_str) {
                    let mut m = seen.running.lock().unwrap_or_else(|e| e.into_inner());
                    m.entry(name.to_string()).or_insert_with(Instant::now);
                    seen.changed.notify_waiters();
                }
            }
        }
    }
    Ok(())
}

async fn wait_running(seen: &Seen, name: &str) -> Result<Instant> {
    let deadline = Instant::now() + RUNNING_TIMEOUT;
    loop {
        let notified = seen.changed.notified();
        if let Some(t) = seen.running.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Ok(*t);
        }
        if tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), notified).await.is_err() {
            bail!("pod {name} not Running after {RUNNING_TIMEOUT:?}");
        }
    }
}

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": IMAGE, "imagePullPolicy": "Never", "command": ["sleep", "3600"]}]
        }
    })
}

async fn create(api: &Api, name: &str) -> Result<Instant> {
    let t0 = Instant::now();
    let r = api.post_json("/api/v1/namespaces/default/pods", &pod(name)).await?;
    if r.status != 201 {
        bail!("create pod {name}: HTTP {} {}", r.status, r.message());
    }
    Ok(t0)
}

/// Proportional set size of a process (kB), from `/proc/PID/smaps_rollup`.
fn pss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Pss:"))?;
    line[4..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// The PSS and count of the processes a field of the node's container state files names
/// (`shim_pid`: the shims; `pid`: the containers' own processes).
fn state_pss(data_dir: &Path, field: &str) -> (u64, usize) {
    let mut total = 0;
    let mut n = 0;
    if let Ok(entries) = std::fs::read_dir(data_dir.join("agent").join("containers")) {
        for e in entries.flatten() {
            let Ok(text) = std::fs::read_to_string(e.path().join("state.json")) else { continue };
            let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
            if let Some(p) = v[field].as_u64().and_then(|p| pss_kib(p as u32)) {
                total += p;
                n += 1;
            }
        }
    }
    (total, n)
}

fn shims_pss(data_dir: &Path) -> (u64, usize) {
    state_pss(data_dir, "shim_pid")
}

/// Kills what the node left in its cgroups (the containers; their shims then end) and removes them.
fn cleanup_cgroups(root: &str) {
    for h in ["cpu", "memory", "pids", "freezer"] {
        let dir = Path::new("/sys/fs/cgroup").join(h).join(root);
        if dir.exists() {
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "find {0} -name cgroup.procs -exec cat {{}} + | xargs -r kill -9; sleep 1; find {0} -depth -type d -exec rmdir {{}} \\;",
                    dir.display()
                ))
                .status();
        }
    }
}

async fn run(cfg: &Config) -> Result<bool> {
    let tmp = tempfile::tempdir().context("temp dir")?;
    let tar = tmp.path().join("busybox.tar");
    let built = Command::new("scripts/busybox-image")
        .arg(&tar)
        .arg(IMAGE)
        .output()
        .context("scripts/busybox-image (run from the repository root)")?;
    if !built.status.success() {
        bail!("scripts/busybox-image: {}", String::from_utf8_lossy(&built.stderr));
    }
    let cgroup_root = format!("skiff-bench-{}", std::process::id());
    let max_pods = cfg.density.map_or(2 * cfg.pods + 10, |n| n + 100).to_string();
    let mut flags: Vec<String> = [
        "--node-name",
        "bench",
        "--node-ip",
        "127.0.0.1",
        "--cgroup-root",
        &cgroup_root,
        "--max-pods",
        &max_pods,
        // The figures must not depend on how full the host's disk is (under the default
        // thresholds a full disk taints the node and nothing schedules).
        "--eviction-hard",
        "memory.available<100Mi,nodefs.available<1%,imagefs.available<1%",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if cfg.density.is_some_and(|n| n > 250) {
        // A /21 per node: 2,046 pod IPs.
        flags.extend(["--node-cidr-mask-size".to_string(), "21".to_string()]);
    }
    let mut cluster = if cfg.agent_apart {
        let mut server = SkiffServer::start(&cfg.skiff).await?;
        if cfg.density.is_some_and(|n| n > 250) {
            // The server assigns podCIDRs; the agent's flag would be ignored.
            server.stop()?;
            bail!("--agent-apart with --density over 250 needs a server started with --node-cidr-mask-size 21");
        }
        let agent = NodeAgent::start(&cfg.skiff, &server, &tar, &flags)?;
        Cluster { server, agent: Some(agent) }
    } else {
        Cluster { server: SkiffServer::start_with_node(&cfg.skiff, &tar, &flags).await?, agent: None }
    };
    let result = match cfg.density {
        Some(n) => density(n, &mut cluster).await,
        None => measure(cfg, &mut cluster).await,
    };
    let tail = cluster.log_tail(20);
    cluster.stop();
    cleanup_cgroups(&cgroup_root);
    let ok = result.with_context(|| format!("server log tail:\n{tail}"))?;
    Ok(ok)
}

/// The host's MemAvailable (KiB).
fn mem_available_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    line["MemAvailable:".len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

fn containers_pss(data_dir: &Path) -> (u64, usize) {
    state_pss(data_dir, "pid")
}

/// N sleeping pods on the node at once: how long they take, and what they cost.
async fn density(n: usize, cluster: &mut Cluster) -> Result<bool> {
    let api = Api::new(&cluster.server.creds, Some(Duration::from_secs(60)))?;
    let watch_api = Api::new(&cluster.server.creds, None)?;
    wait_node_ready(&api).await?;
    let seen = Arc::new(Seen::default());
    let watcher = tokio::spawn(watch_pods(watch_api, seen.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = create(&api, "warmup").await?;
    wait_running(&seen, "warmup").await?;
    println!("first pod (unpacks the image): {:.1} ms", (Instant::now() - t0).as_secs_f64() * 1000.0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_before, agent_before) = cluster.rss()?;
    let avail_before = mem_available_kib().context("/proc/meminfo")?;

    let start = Instant::now();
    let names: Vec<String> = (0..n).map(|i| format!("dense-{i}")).collect();
    let mut creates = futures::stream::iter(names.iter().map(|name| {
        let api = &api;
        async move { create(api, name).await }
    }))
    .buffer_unordered(50);
    while let Some(r) = creates.next().await {
        r?;
    }
    let created = start.elapsed();
    for name in &names {
        wait_running(&seen, name).await?;
    }
    let all = start.elapsed();
    println!(
        "{n} pods created in {:.1} s, all Running after {:.1} s ({:.1} pods/s)",
        created.as_secs_f64(),
        all.as_secs_f64(),
        n as f64 / all.as_secs_f64()
    );
    // Let the node settle (status writes, page cache) before reading memory.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let avail_after = mem_available_kib().context("/proc/meminfo")?;
    let (shim_pss, shims) = shims_pss(cluster.node_dir());
    let (own_pss, own) = containers_pss(cluster.node_dir());
    let pods = n + 1;
    cluster.print_rss(&format!("with {pods} pods"))?;
    println!("  server before the {n} pods (1 pod running): {}", rss_before.describe());
    if let Some(a) = agent_before {
        println!("  agent before the {n} pods (1 pod running): {}", a.describe());
    }
    let per = |kib: u64, count: usize| if count == 0 { 0.0 } else { kib as f64 / count as f64 };
    println!(
        "shims: {shims} running, PSS {:.1} MiB in all, {:.0} KiB per pod",
        shim_pss as f64 / 1024.0,
        per(shim_pss, shims)
    );
    println!("containers' own processes: {own} running, PSS {:.0} KiB per pod", per(own_pss, own));
    let drop_kib = avail_before.saturating_sub(avail_after);
    println!(
        "host MemAvailable dropped {:.1} MiB for {n} pods: {:.0} KiB per pod in all, {:.0} KiB beyond the container's own process",
        drop_kib as f64 / 1024.0,
        per(drop_kib, n),
        per(drop_kib, n) - per(own_pss, own)
    );
    watcher.abort();
    cluster.check_alive()?;
    delete_all(&api, cluster, pods).await?;
    Ok(true)
}

async fn wait_node_ready(api: &Api) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = api.get("/api/v1/nodes/bench").await?;
        let ready = r.status == 200
            && r.json()?["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
        if ready {
            break;
        }
        if Instant::now() > deadline {
            bail!("node not Ready after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn measure(cfg: &Config, cluster: &mut Cluster) -> Result<bool> {
    let api = Api::new(&cluster.server.creds, Some(Duration::from_secs(30)))?;
    let watch_api = Api::new(&cluster.server.creds, None)?;
    wait_node_ready(&api).await?;
    let seen = Arc::new(Seen::default());
    let watcher = tokio::spawn(watch_pods(watch_api, seen.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Warm-up: the image's layer is unpacked by the first pod.
    let t0 = create(&api, "warmup").await?;
    let first = wait_running(&seen, "warmup").await? - t0;
    println!("first pod (unpacks the image): {:.1} ms", first.as_secs_f64() * 1000.0);

    let mut sequential = Vec::new();
    for i in 0..cfg.pods {
        let name = format!("seq-{i}");
        let t0 = create(&api, &name).await?;
        sequential.push(wait_running(&seen, &name).await? - t0);
    }
    println!("pod start, {} in sequence:  {}", cfg.pods, describe(summarize(sequential)));

    let burst_start = Instant::now();
    let creates = futures::future::join_all((0..cfg.pods).map(|i| {
        let api = &api;
        async move {
            let name = format!("burst-{i}");
            create(api, &name).await.map(|t| (name, t))
        }
    }))
    .await;
    let mut burst = Vec::new();
    for c in creates {
        let (name, t0) = c?;
        burst.push(wait_running(&seen, &name).await? - t0);
    }
    let all = burst_start.elapsed();
    println!(
        "pod start, {} at once:      {} (all Running after {:.2} s)",
        cfg.pods,
        describe(summarize(burst)),
        all.as_secs_f64()
    );

    let (pss, shims) = shims_pss(cluster.node_dir());
    let pods = 2 * cfg.pods + 1;
    cluster.print_rss(&format!("with {pods} pods"))?;
    if shims > 0 {
        println!(
            "shims: {shims} running, PSS {:.1} MiB in all, {:.0} KiB per pod",
            pss as f64 / 1024.0,
            pss as f64 / shims as f64
        );
    }
    watcher.abort();
    cluster.check_alive()?;
    delete_all(&api, cluster, pods).await?;
    Ok(true)
}

/// Everything removed through the API, so the node cleans up after itself.
async fn delete_all(api: &Api, cluster: &Cluster, pods: usize) -> Result<()> {
    let t0 = Instant::now();
    let r = api.send(reqwest::Method::DELETE, "/api/v1/namespaces/default/pods?gracePeriodSeconds=0", None).await?;
    if r.status != 200 {
        bail!("delete the pods: HTTP {} {}", r.status, r.message());
    }
    let sandboxes = cluster.node_dir().join("agent").join("sandboxes");
    let timeout = RUNNING_TIMEOUT.max(Duration::from_millis(200) * u32::try_from(pods).unwrap_or(u32::MAX));
    let deadline = Instant::now() + timeout;
    while std::fs::read_dir(&sandboxes).map(|d| d.count()).unwrap_or(0) > 0 {
        if Instant::now() > deadline {
            bail!("the node still has sandboxes {timeout:?} after the pods were deleted");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("{pods} pods deleted and cleaned up on the node in {:.2} s", t0.elapsed().as_secs_f64());
    Ok(())
}

fn main() -> ExitCode {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pod_bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pod_bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&cfg)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("pod_bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
