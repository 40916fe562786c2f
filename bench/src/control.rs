//! The scheduler and controller benchmark on hollow nodes (issue 3, "Performance"): binding
//! throughput, a large Deployment from create to Running, and CPU and memory of the control plane
//! at 1,000 nodes / 30,000 pods. See `bench/README.md`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use futures::StreamExt as _;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::client::{Api, Creds};
use crate::hollow::{self, AgentSpec, HollowAgent};
use crate::server::SkiffServer;
use crate::stats::{describe, summarize, Errors};

/// Per-request timeout of the ordinary (non-watch) clients.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// A create/patch worker gives up after this many failed requests.
const MAX_ERRORS_PER_WORKER: usize = 50;
/// Reconnects of one pod watch before it gives up.
const MAX_WATCH_RECONNECTS: usize = 50;
/// Name prefix of the hollow nodes.
const NODE_PREFIX: &str = "hollow";
/// Each hollow node's /24 comes from this range (1,024 of them), see `bench/README.md`.
const POD_CIDR: &str = "10.128.0.0/14";

/// What to run; `Config::full()` is the real benchmark, `Config::quick()` a ~10x smaller smoke run.
#[derive(Clone, Debug)]
pub struct Config {
    pub skiff: PathBuf,
    pub quick: bool,
    pub nodes: usize,
    /// Bare pods created while the scheduler runs (phase 1).
    pub stream_pods: usize,
    /// Bare pods created while every node is cordoned, then released at once (phase 2).
    pub backlog_pods: usize,
    /// Replicas of the Deployment timed from create to all Running (phase 3).
    pub deploy_replicas: usize,
    /// Pods in the cluster at the end; a second Deployment fills up to it (phase 4).
    pub total_pods: usize,
    /// Concurrent clients creating pods or patching nodes.
    pub concurrency: usize,
    pub nodes_timeout: Duration,
    pub phase_timeout: Duration,
    /// Idle window over which steady-state CPU is measured.
    pub idle_window: Duration,
}

impl Config {
    pub fn full(skiff: PathBuf) -> Config {
        Config {
            skiff,
            quick: false,
            nodes: 1000,
            stream_pods: 10_000,
            backlog_pods: 10_000,
            deploy_replicas: 1000,
            total_pods: 30_000,
            concurrency: 64,
            nodes_timeout: Duration::from_secs(300),
            phase_timeout: Duration::from_secs(600),
            idle_window: Duration::from_secs(20),
        }
    }

    pub fn quick(skiff: PathBuf) -> Config {
        Config {
            quick: true,
            nodes: 100,
            stream_pods: 1000,
            backlog_pods: 1000,
            deploy_replicas: 100,
            total_pods: 3000,
            nodes_timeout: Duration::from_secs(120),
            phase_timeout: Duration::from_secs(180),
            idle_window: Duration::from_secs(10),
            ..Config::full(skiff)
        }
    }
}

/// The report: figures, then anything that went wrong (`!!` lines), printed to stdout at the end.
#[derive(Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub problems: Vec<String>,
}

impl Report {
    fn line(&mut self, s: impl Into<String>) {
        let s = s.into();
        eprintln!("  {s}");
        self.lines.push(s);
    }

    fn section(&mut self, s: &str) {
        eprintln!("== {s}");
        self.lines.push(String::new());
        self.lines.push(format!("[{s}]"));
    }

    fn problem(&mut self, s: impl Into<String>) {
        let s = s.into();
        eprintln!("  !! {s}");
        self.problems.push(s);
    }
}

fn progress(s: impl AsRef<str>) {
    eprintln!("-- {}", s.as_ref());
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The processes under test; CPU and memory readings of them and of this client.
pub struct Cluster {
    pub server: SkiffServer,
    pub agent: Option<HollowAgent>,
}

impl Cluster {
    fn check_alive(&mut self) -> Result<()> {
        self.server.check_alive()?;
        if let Some(a) = self.agent.as_mut() {
            a.check_alive()?;
        }
        Ok(())
    }

    fn agent_pid(&self) -> Option<u32> {
        self.agent.as_ref().map(HollowAgent::pid)
    }

    fn cpu(&self) -> Cpu {
        Cpu {
            at: Instant::now(),
            server_threads: Arc::new(hollow::thread_cpu(self.server.pid())),
            server: hollow::cpu_seconds(self.server.pid()).unwrap_or(f64::NAN),
            agent: self.agent_pid().map(|p| hollow::cpu_seconds(p).unwrap_or(f64::NAN)).unwrap_or(0.0),
            client: hollow::cpu_seconds(0).unwrap_or(f64::NAN),
        }
    }

    fn memory(&self) -> String {
        let one = |pid: u32| match hollow::rss_kib(pid) {
            Ok((rss, hwm)) => format!("RSS {} (peak {})", mib(rss), mib(hwm)),
            Err(e) => format!("unknown ({e:#})"),
        };
        let mut s = format!("server {}", one(self.server.pid()));
        if let Some(p) = self.agent_pid() {
            s.push_str(&format!("; agent {}", one(p)));
        }
        s.push_str(&format!("; bench client {}", one(std::process::id())));
        s
    }
}

/// CPU seconds (user + system) used so far by the server, the agent and this client.
#[derive(Clone, Debug)]
struct Cpu {
    at: Instant,
    /// Per-thread CPU of the server, to tell a saturated single thread from busy workers.
    server_threads: Arc<HashMap<u32, (String, f64)>>,
    server: f64,
    agent: f64,
    client: f64,
}

impl Cpu {
    /// The server's CPU by thread name since `before`: `name xN: T s (busiest thread M s)`.
    fn server_threads_since(&self, before: &Cpu) -> String {
        let wall = self.at.duration_since(before.at).as_secs_f64().max(1e-9);
        hollow::thread_cpu_delta(&before.server_threads, &self.server_threads)
            .into_iter()
            .filter(|(_, _, total, _)| *total >= 0.05)
            .take(6)
            .map(|(name, n, total, max)| {
                format!(
                    "{name} x{n} {total:.1} s (busiest thread {max:.1} s = {:.0}% of the wall time)",
                    100.0 * max / wall
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// `server X s, agent Y s, client Z s over W s of wall time (N% of the machine's 2 cores)`.
    fn since(&self, before: &Cpu) -> String {
        let wall = self.at.duration_since(before.at).as_secs_f64().max(1e-9);
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
        let s = self.server - before.server;
        let a = self.agent - before.agent;
        let c = self.client - before.client;
        format!(
            "server {s:.1} s ({:.0}% of a core), agent {a:.1} s ({:.0}%), bench client {c:.1} s ({:.0}%) \
             over {wall:.1} s wall; together {:.0}% of the machine's {cores} cores",
            100.0 * s / wall,
            100.0 * a / wall,
            100.0 * c / wall,
            100.0 * (s + a + c) / (wall * cores),
        )
    }
}

/// Run every phase, appending figures to `report`. The caller owns (and stops) the cluster.
pub async fn run(cfg: &Config, cluster: &mut Cluster, report: &mut Report) -> Result<()> {
    let creds = cluster.server.creds.clone();
    let admin = Api::new(&creds, Some(REQUEST_TIMEOUT))?;

    report.section("machine and server");
    report.line(format!("load average at start (1/5/15 min): {}", hollow::loadavg()));
    report.line(format!("server right after /readyz: {}", cluster.memory()));

    nodes_phase(cfg, cluster, &admin, report).await.context("hollow nodes")?;
    let mut pods_so_far = 0;
    stream_phase(cfg, cluster, &creds, &admin, report).await.context("scheduling while creating")?;
    pods_so_far += cfg.stream_pods;
    backlog_phase(cfg, cluster, &creds, &admin, report).await.context("scheduling a backlog")?;
    pods_so_far += cfg.backlog_pods;
    let name = "web";
    deployment_phase(cfg, cluster, &creds, &admin, report, "bench-deploy", name, cfg.deploy_replicas)
        .await
        .context("deployment")?;
    pods_so_far += cfg.deploy_replicas;
    let fill = cfg.total_pods.saturating_sub(pods_so_far);
    if fill > 0 {
        deployment_phase(cfg, cluster, &creds, &admin, report, "bench-fill", "fill", fill)
            .await
            .context("filling the cluster")?;
    }
    steady_phase(cfg, cluster, &admin, report).await.context("steady state")?;
    report.line(format!("load average at the end (1/5/15 min): {}", hollow::loadavg()));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Phase 0: hollow nodes

async fn nodes_phase(cfg: &Config, cluster: &mut Cluster, admin: &Api, report: &mut Report) -> Result<()> {
    report.section(&format!("{} hollow nodes (one agent process)", cfg.nodes));
    let kubeconfig = cluster.server.data_dir.join("kubeconfig.yaml");
    let spec = AgentSpec { count: cfg.nodes, prefix: NODE_PREFIX.to_string(), pod_cidr: Some(POD_CIDR.to_string()) };
    let before = cluster.cpu();
    let t0 = Instant::now();
    cluster.agent = Some(HollowAgent::start(&cfg.skiff, &kubeconfig, &spec)?);
    progress(format!("agent pid {}", cluster.agent_pid().unwrap_or(0)));
    let deadline = t0 + cfg.nodes_timeout;
    let mut registered_at = None;
    let mut last_print = Instant::now();
    let ready_at = loop {
        cluster.check_alive()?;
        let (registered, ready) = count_nodes(admin).await?;
        if registered >= cfg.nodes && registered_at.is_none() {
            registered_at = Some(t0.elapsed());
        }
        if ready >= cfg.nodes {
            break t0.elapsed();
        }
        if Instant::now() >= deadline {
            report.problem(format!(
                "after {}: {registered} of {} nodes registered, {ready} Ready with a podCIDR",
                secs(cfg.nodes_timeout),
                cfg.nodes
            ));
            bail!("hollow nodes not Ready in time");
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            progress(format!("nodes: {registered} registered, {ready} Ready"));
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let after = cluster.cpu();
    if let Some(r) = registered_at {
        report.line(format!("all {} Node objects registered {} after the agent started", cfg.nodes, secs(r)));
    }
    report.line(format!("all Ready (condition Ready=True, podCIDR set) {} after the agent started", secs(ready_at)));
    report.line(format!("CPU while they came up: {}", after.since(&before)));
    // Heartbeats only: what 1,000 idle nodes cost the control plane.
    let before = cluster.cpu();
    tokio::time::sleep(cfg.idle_window).await;
    cluster.check_alive()?;
    let after = cluster.cpu();
    report.line(format!("CPU idle (heartbeats only, no pods): {}", after.since(&before)));
    report.line(format!("memory with {} nodes, no pods: {}", cfg.nodes, cluster.memory()));
    Ok(())
}

/// (registered, Ready with podCIDR) among our hollow nodes.
async fn count_nodes(admin: &Api) -> Result<(usize, usize)> {
    let r = admin.get("/api/v1/nodes").await.context("list nodes")?;
    if r.status != 200 {
        bail!("list nodes: HTTP {}: {}", r.status, r.message());
    }
    let v = r.json()?;
    let items = v["items"].as_array().cloned().unwrap_or_default();
    let ours: Vec<&Value> = items
        .iter()
        .filter(|n| n["metadata"]["name"].as_str().is_some_and(|s| s.starts_with(&format!("{NODE_PREFIX}-"))))
        .collect();
    let ready = ours
        .iter()
        .filter(|n| {
            let cidr = n["spec"]["podCIDR"].as_str().is_some_and(|s| !s.is_empty());
            cidr && condition(n, "Ready") == Some("True")
        })
        .count();
    Ok((ours.len(), ready))
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a str> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind)?["status"].as_str()
}

// ---------------------------------------------------------------------------------------------
// Pod tracking from a watch

/// What a pod watch has seen, by pod name; times are arrivals at this client.
#[derive(Default)]
struct Track {
    seen: HashMap<String, Instant>,
    bound: HashMap<String, Instant>,
    running: HashMap<String, Instant>,
    /// Pods seen with PodScheduled=False.
    unschedulable: HashSet<String>,
    /// Pods seen Failed or Succeeded.
    finished: HashSet<String>,
    /// Pods with a container restart.
    restarted: HashSet<String>,
    deleted: usize,
    events: u64,
    reconnects: usize,
    relists: usize,
    errors: Vec<String>,
    rv: String,
}

impl Track {
    fn observe(&mut self, kind: &str, pod: &Value, now: Instant) {
        self.events += 1;
        if let Some(rv) = pod["metadata"]["resourceVersion"].as_str() {
            self.rv = rv.to_string();
        }
        let Some(name) = pod["metadata"]["name"].as_str() else { return };
        if kind == "DELETED" {
            self.deleted += 1;
            return;
        }
        self.seen.entry(name.to_string()).or_insert(now);
        if pod["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty()) {
            self.bound.entry(name.to_string()).or_insert(now);
        }
        if condition(pod, "PodScheduled") == Some("False") {
            self.unschedulable.insert(name.to_string());
        }
        match pod["status"]["phase"].as_str() {
            Some("Running") if condition(pod, "Ready") == Some("True") => {
                self.running.entry(name.to_string()).or_insert(now);
            }
            Some("Failed") | Some("Succeeded") => {
                self.finished.insert(name.to_string());
            }
            _ => {}
        }
        let restarted = pod["status"]["containerStatuses"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["restartCount"].as_u64().unwrap_or(0) > 0));
        if restarted {
            self.restarted.insert(name.to_string());
        }
    }
}

struct PodWatch {
    track: Arc<Mutex<Track>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl PodWatch {
    /// Lists the namespace's pods, then watches from the list's resourceVersion until stopped.
    async fn start(creds: &Creds, ns: &str, deadline: Instant) -> Result<PodWatch> {
        let api = Api::new(creds, None)?;
        let track = Arc::new(Mutex::new(Track::default()));
        relist(&api, ns, &track).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(watch_loop(api, ns.to_string(), track.clone(), stop.clone(), deadline));
        Ok(PodWatch { track, stop, task })
    }

    fn lock(&self) -> MutexGuard<'_, Track> {
        self.track.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn stop(self) -> Track {
        self.stop.store(true, Ordering::SeqCst);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        let mut guard = self.track.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *guard)
    }
}

async fn relist(api: &Api, ns: &str, track: &Mutex<Track>) -> Result<()> {
    let path = format!("/api/v1/namespaces/{ns}/pods");
    let r = tokio::time::timeout(REQUEST_TIMEOUT, api.get(&path))
        .await
        .map_err(|_| anyhow!("GET {path}: no answer in {REQUEST_TIMEOUT:?}"))?
        .with_context(|| format!("GET {path}"))?;
    if r.status != 200 {
        bail!("GET {path}: HTTP {}: {}", r.status, r.message());
    }
    let v = r.json()?;
    let now = Instant::now();
    let mut t = track.lock().unwrap_or_else(|p| p.into_inner());
    for item in v["items"].as_array().into_iter().flatten() {
        t.observe("ADDED", item, now);
    }
    t.rv = v["metadata"]["resourceVersion"].as_str().ok_or_else(|| anyhow!("pod list has no resourceVersion"))?.into();
    Ok(())
}

async fn watch_loop(api: Api, ns: String, track: Arc<Mutex<Track>>, stop: Arc<AtomicBool>, deadline: Instant) {
    let note = |msg: String| {
        let mut t = track.lock().unwrap_or_else(|p| p.into_inner());
        if t.errors.len() < 20 {
            t.errors.push(msg);
        }
    };
    let mut need_relist = false;
    for attempt in 0..=MAX_WATCH_RECONNECTS {
        if stop.load(Ordering::SeqCst) || Instant::now() >= deadline {
            return;
        }
        if attempt > 0 {
            track.lock().unwrap_or_else(|p| p.into_inner()).reconnects += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if need_relist {
            track.lock().unwrap_or_else(|p| p.into_inner()).relists += 1;
            if let Err(e) = relist(&api, &ns, &track).await {
                note(format!("relist: {e:#}"));
                continue;
            }
            need_relist = false;
        }
        let rv = track.lock().unwrap_or_else(|p| p.into_inner()).rv.clone();
        let path = format!(
            "/api/v1/namespaces/{ns}/pods?watch=true&allowWatchBookmarks=true&timeoutSeconds=1800&resourceVersion={rv}"
        );
        let resp = match tokio::time::timeout(REQUEST_TIMEOUT, api.request(reqwest::Method::GET, &path).send()).await {
            Err(_) => {
                note("watch: no response headers within 60 s".into());
                continue;
            }
            Ok(Err(e)) => {
                note(format!("watch: transport: {e:#}"));
                continue;
            }
            Ok(Ok(r)) => r,
        };
        if resp.status().as_u16() == 410 {
            need_relist = true;
            continue;
        }
        if resp.status().as_u16() != 200 {
            note(format!("watch: HTTP {}", resp.status()));
            continue;
        }
        let mut stream = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let chunk = tokio::select! {
                c = stream.next() => c,
                _ = tokio::time::sleep(Duration::from_millis(250)) => continue,
                _ = tokio::time::sleep_until(deadline.into()) => return,
            };
            let bytes = match chunk {
                None => break,
                Some(Err(e)) => {
                    note(format!("watch stream: {e:#}"));
                    break;
                }
                Some(Ok(b)) => b,
            };
            let now = Instant::now();
            buf.extend_from_slice(&bytes);
            let mut lines = Vec::new();
            while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                lines.push(line);
            }
            let mut t = track.lock().unwrap_or_else(|p| p.into_inner());
            for line in lines {
                let Ok(ev) = serde_json::from_slice::<Value>(&line) else {
                    if t.errors.len() < 20 {
                        t.errors.push(format!("watch: unparsable line of {} bytes", line.len()));
                    }
                    continue;
                };
                match ev["type"].as_str().unwrap_or_default() {
                    "ADDED" | "MODIFIED" | "DELETED" => {
                        let kind = ev["type"].as_str().unwrap_or_default().to_string();
                        t.observe(&kind, &ev["object"], now);
                    }
                    "BOOKMARK" => {
                        if let Some(rv) = ev["object"]["metadata"]["resourceVersion"].as_str() {
                            t.rv = rv.to_string();
                        }
                    }
                    "ERROR" => {
                        let code = ev["object"]["code"].as_u64().unwrap_or(0);
                        if t.errors.len() < 20 {
                            t.errors.push(format!("watch ERROR event: {}", ev["object"]));
                        }
                        if code == 410 {
                            need_relist = true;
                        }
                    }
                    other => {
                        if t.errors.len() < 20 {
                            t.errors.push(format!("watch: unknown event type {other:?}"));
                        }
                    }
                }
            }
            if need_relist {
                break;
            }
        }
    }
    note(format!("watch gave up after {MAX_WATCH_RECONNECTS} reconnects"));
}

/// Waits until `done(track)` or the deadline, checking the processes every second and printing
/// progress every 5 s. Returns whether `done` became true.
async fn wait_for(
    cluster: &mut Cluster,
    watch: &PodWatch,
    what: &str,
    deadline: Instant,
    done: impl Fn(&Track) -> bool,
) -> Result<bool> {
    let mut last_check = Instant::now();
    let mut last_print = Instant::now();
    loop {
        {
            let t = watch.lock();
            if done(&t) {
                return Ok(true);
            }
            if last_print.elapsed() >= Duration::from_secs(5) {
                progress(format!(
                    "{what}: seen {}, bound {}, running {}, unschedulable-seen {}",
                    t.seen.len(),
                    t.bound.len(),
                    t.running.len(),
                    t.unschedulable.len()
                ));
                last_print = Instant::now();
            }
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        if last_check.elapsed() >= Duration::from_secs(1) {
            cluster.check_alive()?;
            last_check = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Instants sorted, and the rate between the first and the last.
fn rate_first_to_last(times: &[Instant]) -> Option<(Instant, Instant, f64)> {
    let first = *times.iter().min()?;
    let last = *times.iter().max()?;
    let span = last.duration_since(first).as_secs_f64();
    let rate = if span > 0.0 { (times.len() - 1) as f64 / span } else { f64::INFINITY };
    Some((first, last, rate))
}

/// Peak and median of per-second counts between the first and the last instant.
fn per_second(times: &[Instant]) -> Option<(usize, usize)> {
    let first = *times.iter().min()?;
    let mut buckets: BTreeMap<u64, usize> = BTreeMap::new();
    for t in times {
        *buckets.entry(t.duration_since(first).as_secs()).or_default() += 1;
    }
    let n = buckets.keys().last().copied().unwrap_or(0) + 1;
    let mut counts: Vec<usize> = (0..n).map(|s| buckets.get(&s).copied().unwrap_or(0)).collect();
    counts.sort_unstable();
    Some((counts[counts.len() - 1], counts[(counts.len() - 1) / 2]))
}

/// Problems a watch saw: pods never bound or Running, restarts, finished pods, watch errors.
fn report_track(report: &mut Report, what: &str, t: &Track, expected: usize) {
    if t.seen.len() != expected {
        report.problem(format!("{what}: {} pods seen, expected {expected}", t.seen.len()));
    }
    let unbound: Vec<&String> = t.seen.keys().filter(|n| !t.bound.contains_key(*n)).collect();
    if !unbound.is_empty() {
        report.problem(format!(
            "{what}: {} pods never bound (e.g. {:?})",
            unbound.len(),
            unbound.iter().take(3).collect::<Vec<_>>()
        ));
    }
    let stuck: Vec<&String> = t.bound.keys().filter(|n| !t.running.contains_key(*n)).collect();
    if !stuck.is_empty() {
        report.problem(format!(
            "{what}: {} pods bound but never Running+Ready (e.g. {:?})",
            stuck.len(),
            stuck.iter().take(3).collect::<Vec<_>>()
        ));
    }
    if !t.restarted.is_empty() {
        report.problem(format!("{what}: {} pods had a container restart", t.restarted.len()));
    }
    if !t.finished.is_empty() {
        report.problem(format!("{what}: {} pods went Failed or Succeeded", t.finished.len()));
    }
    if t.deleted > 0 {
        report.problem(format!("{what}: {} pod deletions seen", t.deleted));
    }
    if t.reconnects > 0 || t.relists > 0 {
        report.problem(format!("{what}: pod watch reconnected {} times, relisted {} times", t.reconnects, t.relists));
    }
    for e in &t.errors {
        report.problem(format!("{what}: {e}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Creating objects and patching nodes

struct Fill {
    ok: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: Errors,
}

/// Sends `n` requests from `concurrency` clients (each its own connection pool): request `i` is
/// `make(i)` = (method, path, content type, body). Bounded by `deadline` and the error cap.
async fn send_many(
    creds: &Creds,
    n: usize,
    concurrency: usize,
    deadline: Instant,
    make: Arc<dyn Fn(usize) -> (reqwest::Method, String, &'static str, Value) + Send + Sync>,
    expect: u16,
) -> Result<Fill> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    let t0 = Instant::now();
    for _ in 0..concurrency.min(n).max(1) {
        let api = Api::new(creds, Some(REQUEST_TIMEOUT))?;
        let next = next.clone();
        let make = make.clone();
        set.spawn(async move {
            let mut ok = 0;
            let mut lat = Vec::new();
            let mut errors = Errors::default();
            let mut failed = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || Instant::now() >= deadline || failed >= MAX_ERRORS_PER_WORKER {
                    break;
                }
                let (method, path, ct, body) = make(i);
                let start = Instant::now();
                match api.send(method, &path, Some((ct, body.to_string().into_bytes()))).await {
                    Ok(r) if r.status == expect => {
                        ok += 1;
                        lat.push(start.elapsed());
                    }
                    Ok(r) => {
                        failed += 1;
                        errors.add(format!("HTTP {}", r.status), r.message());
                    }
                    Err(e) => {
                        failed += 1;
                        errors.add("transport", format!("{e:#}"));
                    }
                }
            }
            (ok, lat, errors)
        });
    }
    let mut fill = Fill { ok: 0, elapsed: Duration::ZERO, latencies: Vec::new(), errors: Errors::default() };
    while let Some(r) = set.join_next().await {
        let (ok, lat, errors) = r.context("request worker panicked")?;
        fill.ok += ok;
        fill.latencies.extend(lat);
        fill.errors.merge(errors);
    }
    fill.elapsed = t0.elapsed();
    Ok(fill)
}

fn describe_fill(what: &str, n: usize, f: &Fill) -> String {
    format!(
        "{what}: {} of {n} in {} = {:.0}/s; latency {}",
        f.ok,
        secs(f.elapsed),
        f.ok as f64 / f.elapsed.as_secs_f64().max(1e-9),
        describe(summarize(f.latencies.clone()))
    )
}

fn pod_body(name: &str, app: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [pod_container()]},
    })
}

fn pod_container() -> Value {
    json!({
        "name": "app",
        "image": "registry.k8s.io/pause:3.10",
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
    })
}

async fn create_pods(creds: &Creds, ns: &str, n: usize, concurrency: usize, deadline: Instant) -> Result<Fill> {
    let ns = ns.to_string();
    let make = Arc::new(move |i: usize| {
        let name = format!("p-{i:05}");
        (reqwest::Method::POST, format!("/api/v1/namespaces/{ns}/pods"), "application/json", pod_body(&name, "bench"))
    });
    send_many(creds, n, concurrency, deadline, make, 201).await
}

async fn cordon_all(creds: &Creds, cfg: &Config, cordon: bool, deadline: Instant) -> Result<Fill> {
    let make = Arc::new(move |i: usize| {
        (
            reqwest::Method::PATCH,
            format!("/api/v1/nodes/{NODE_PREFIX}-{i}"),
            "application/merge-patch+json",
            json!({"spec": {"unschedulable": if cordon { json!(true) } else { Value::Null }}}),
        )
    });
    send_many(creds, cfg.nodes, cfg.concurrency, deadline, make, 200).await
}

/// Creates the namespace and waits (bounded) for its `default` ServiceAccount.
async fn namespace(admin: &Api, ns: &str) -> Result<()> {
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    let r = admin.post_json("/api/v1/namespaces", &body).await.with_context(|| format!("create namespace {ns}"))?;
    if r.status != 201 && r.status != 409 {
        bail!("create namespace {ns}: HTTP {}: {}", r.status, r.message());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let path = format!("/api/v1/namespaces/{ns}/serviceaccounts/default");
    while Instant::now() < deadline {
        if admin.get(&path).await.with_context(|| format!("GET {path}"))?.status == 200 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("namespace {ns}: no default ServiceAccount after 30 s")
}

// ---------------------------------------------------------------------------------------------
// Phase 1: pods created as fast as possible while the scheduler runs

async fn stream_phase(
    cfg: &Config,
    cluster: &mut Cluster,
    creds: &Creds,
    admin: &Api,
    report: &mut Report,
) -> Result<()> {
    let n = cfg.stream_pods;
    report.section(&format!("binding while creating: {n} bare pods created as fast as possible, scheduler running"));
    let ns = "bench-stream";
    namespace(admin, ns).await?;
    let deadline = Instant::now() + cfg.phase_timeout;
    let watch = PodWatch::start(creds, ns, deadline + Duration::from_secs(30)).await?;
    let before = cluster.cpu();
    let t0 = Instant::now();
    let fill = create_pods(creds, ns, n, cfg.concurrency, deadline).await?;
    let created_at = Instant::now();
    report.line(describe_fill(&format!("pod creates ({} clients)", cfg.concurrency), n, &fill));
    if !fill.errors.is_empty() {
        report.problem(format!("pod creates failed: {}", fill.errors.describe()));
    }
    let all_bound = wait_for(cluster, &watch, "binding", deadline, |t| t.bound.len() >= fill.ok).await?;
    let bound_cpu = cluster.cpu();
    let all_running = wait_for(cluster, &watch, "running", deadline, |t| t.running.len() >= fill.ok).await?;
    let after = cluster.cpu();
    let t = watch.stop().await;
    let binds: Vec<Instant> = t.bound.values().copied().collect();
    if let Some((first, last, rate)) = rate_first_to_last(&binds) {
        report.line(format!(
            "binds: {} pods; first {} after the first create, last {} after it ({} after the last create returned)",
            binds.len(),
            secs(first.duration_since(t0)),
            secs(last.duration_since(t0)),
            secs(last.saturating_duration_since(created_at)),
        ));
        report.line(format!("binding throughput, first bind to last bind: {rate:.0} pods/s"));
        let during = binds.iter().filter(|b| **b <= created_at).count();
        report.line(format!(
            "bound while creates were still running: {during}; end-to-end create start to last bind: {:.0} pods/s",
            binds.len() as f64 / last.duration_since(t0).as_secs_f64().max(1e-9)
        ));
        if let Some((peak, median)) = per_second(&binds) {
            report.line(format!("binds per 1-s bucket: peak {peak}, median {median}"));
        }
    }
    if let Some(last) = t.running.values().max() {
        report.line(format!(
            "all {} Running+Ready {} after the first create",
            t.running.len(),
            secs(last.duration_since(t0))
        ));
    }
    report.line(format!("CPU from first create to last bind: {}", bound_cpu.since(&before)));
    report.line(format!("CPU from first create to all Running: {}", after.since(&before)));
    report.line(format!("server CPU by thread: {}", after.server_threads_since(&before)));
    report.line(format!("memory: {}", cluster.memory()));
    if !all_bound || !all_running {
        report
            .problem(format!("binding while creating: not all pods bound/Running within {}", secs(cfg.phase_timeout)));
    }
    if !t.unschedulable.is_empty() {
        report.problem(format!(
            "binding while creating: {} pods were reported unschedulable (PodScheduled=False) on a cluster with room",
            t.unschedulable.len()
        ));
    }
    report_track(report, "binding while creating", &t, n);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Phase 2: a backlog of pending pods, released at once

async fn backlog_phase(
    cfg: &Config,
    cluster: &mut Cluster,
    creds: &Creds,
    admin: &Api,
    report: &mut Report,
) -> Result<()> {
    let n = cfg.backlog_pods;
    report.section(&format!(
        "binding a backlog: {n} pods created while all {} nodes are cordoned, then every node uncordoned",
        cfg.nodes
    ));
    let ns = "bench-backlog";
    namespace(admin, ns).await?;
    let deadline = Instant::now() + cfg.phase_timeout;
    let cordon = cordon_all(creds, cfg, true, deadline).await?;
    report.line(describe_fill("cordon (merge-PATCH spec.unschedulable=true)", cfg.nodes, &cordon));
    if !cordon.errors.is_empty() {
        report.problem(format!("cordon failed: {}", cordon.errors.describe()));
    }
    // Let the scheduler's node cache see every cordon before the pods arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let watch = PodWatch::start(creds, ns, deadline + Duration::from_secs(30)).await?;
    let before_create = cluster.cpu();
    let fill = create_pods(creds, ns, n, cfg.concurrency, deadline).await?;
    report.line(describe_fill(&format!("pod creates ({} clients)", cfg.concurrency), n, &fill));
    if !fill.errors.is_empty() {
        report.problem(format!("pod creates failed: {}", fill.errors.describe()));
    }
    // Wait until the scheduler has tried (and marked PodScheduled=False) every pod, bounded.
    let t_tried = Instant::now();
    let tried =
        wait_for(cluster, &watch, "backlog attempts", (t_tried + Duration::from_secs(120)).min(deadline), |t| {
            t.unschedulable.len() >= fill.ok
        })
        .await?;
    let tried_cpu = cluster.cpu();
    {
        let t = watch.lock();
        report.line(format!(
            "scheduler marked {} of {} pods PodScheduled=False {} after the creates ended{}",
            t.unschedulable.len(),
            fill.ok,
            secs(t_tried.elapsed()),
            if tried { "" } else { " (gave up waiting)" }
        ));
        if !t.bound.is_empty() {
            report.problem(format!("backlog: {} pods were bound while every node was cordoned", t.bound.len()));
        }
    }
    report.line(format!("CPU creating the backlog and marking it unschedulable: {}", tried_cpu.since(&before_create)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = cluster.cpu();
    let t0 = Instant::now();
    let uncordon = cordon_all(creds, cfg, false, deadline).await?;
    let uncordoned_at = Instant::now();
    report.line(describe_fill("uncordon (merge-PATCH spec.unschedulable=null)", cfg.nodes, &uncordon));
    if !uncordon.errors.is_empty() {
        report.problem(format!("uncordon failed: {}", uncordon.errors.describe()));
    }
    let all_bound = wait_for(cluster, &watch, "backlog binding", deadline, |t| t.bound.len() >= fill.ok).await?;
    let bound_cpu = cluster.cpu();
    let all_running = wait_for(cluster, &watch, "backlog running", deadline, |t| t.running.len() >= fill.ok).await?;
    let after = cluster.cpu();
    let t = watch.stop().await;
    let binds: Vec<Instant> = t.bound.values().copied().collect();
    if let Some((first, last, rate)) = rate_first_to_last(&binds) {
        report.line(format!(
            "binds: {} pods; first {} after the uncordon started, last {} after it (uncordon took {})",
            binds.len(),
            secs(first.saturating_duration_since(t0)),
            secs(last.saturating_duration_since(t0)),
            secs(uncordoned_at.duration_since(t0)),
        ));
        report.line(format!("binding throughput, first bind to last bind: {rate:.0} pods/s"));
        report.line(format!(
            "binding throughput, uncordon start to last bind: {:.0} pods/s",
            binds.len() as f64 / last.saturating_duration_since(t0).as_secs_f64().max(1e-9)
        ));
        if let Some((peak, median)) = per_second(&binds) {
            report.line(format!("binds per 1-s bucket: peak {peak}, median {median}"));
        }
    }
    if let Some(last) = t.running.values().max() {
        report.line(format!(
            "all {} Running+Ready {} after the uncordon started",
            t.running.len(),
            secs(last.saturating_duration_since(t0))
        ));
    }
    report.line(format!("CPU from uncordon start to last bind: {}", bound_cpu.since(&before)));
    report.line(format!("CPU from uncordon start to all Running: {}", after.since(&before)));
    report.line(format!("server CPU by thread: {}", after.server_threads_since(&before)));
    report.line(format!("memory: {}", cluster.memory()));
    if !all_bound || !all_running {
        report.problem(format!("backlog: not all pods bound/Running within {}", secs(cfg.phase_timeout)));
    }
    report_track(report, "backlog", &t, n);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Phase 3 and 4: Deployments

#[allow(clippy::too_many_arguments)]
async fn deployment_phase(
    cfg: &Config,
    cluster: &mut Cluster,
    creds: &Creds,
    admin: &Api,
    report: &mut Report,
    ns: &str,
    name: &str,
    replicas: usize,
) -> Result<()> {
    report.section(&format!("a {replicas}-replica Deployment ({ns}/{name}) from create to all pods Running"));
    namespace(admin, ns).await?;
    let deadline = Instant::now() + cfg.phase_timeout;
    let watch = PodWatch::start(creds, ns, deadline + Duration::from_secs(30)).await?;
    let body = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [pod_container()]},
            },
        },
    });
    let before = cluster.cpu();
    let t0 = Instant::now();
    let path = format!("/apis/apps/v1/namespaces/{ns}/deployments");
    let r = admin.post_json(&path, &body).await.with_context(|| format!("POST {path}"))?;
    if r.status != 201 {
        bail!("create Deployment {ns}/{name}: HTTP {}: {}", r.status, r.message());
    }
    let all_running = wait_for(cluster, &watch, name, deadline, |t| t.running.len() >= replicas).await?;
    let running_at = t0.elapsed();
    let after = cluster.cpu();
    // The Deployment's own status, as `kubectl rollout status` reads it (bounded).
    let dpath = format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}");
    let status_deadline = (Instant::now() + Duration::from_secs(60)).min(deadline + Duration::from_secs(60));
    let mut status_at = None;
    let mut last_status = Value::Null;
    while Instant::now() < status_deadline {
        let d = admin.get(&dpath).await.with_context(|| format!("GET {dpath}"))?;
        if d.status == 200 {
            last_status = d.json()?["status"].clone();
            let avail = last_status["availableReplicas"].as_u64().unwrap_or(0) as usize;
            let updated = last_status["updatedReplicas"].as_u64().unwrap_or(0) as usize;
            if avail >= replicas && updated >= replicas {
                status_at = Some(t0.elapsed());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let t = watch.stop().await;
    let existing = t.seen.len().saturating_sub(t.deleted);
    report.line(format!(
        "pods in {ns} when the watch stopped ({} after the create): {existing} ({} created, {} deleted)",
        secs(t0.elapsed()),
        t.seen.len(),
        t.deleted
    ));
    if t.seen.len() > replicas {
        report.problem(format!(
            "{ns}/{name}: {} pods created for {replicas} replicas ({} too many; {existing} still exist)",
            t.seen.len(),
            t.seen.len() - replicas
        ));
    }
    let first_seen = t.seen.values().min().map(|s| s.duration_since(t0));
    let all_seen = t.seen.values().max().map(|s| s.duration_since(t0));
    let all_bound = t.bound.values().max().map(|s| s.duration_since(t0));
    let opt = |d: Option<Duration>| d.map(secs).unwrap_or_else(|| "never".into());
    report.line(format!(
        "first pod seen {}, all {} pods seen {}, all bound {}, all Running+Ready {}{}",
        opt(first_seen),
        t.seen.len(),
        opt(all_seen),
        opt(all_bound),
        secs(running_at),
        if all_running { "" } else { " (NOT all: timed out)" }
    ));
    let seen: Vec<Instant> = t.seen.values().copied().collect();
    if let Some((_, _, rate)) = rate_first_to_last(&seen) {
        report.line(format!("pods appearing (ReplicaSet controller creates), first to last: {rate:.0} pods/s"));
    }
    let binds: Vec<Instant> = t.bound.values().copied().collect();
    if let Some((_, _, rate)) = rate_first_to_last(&binds) {
        report.line(format!("binding throughput, first bind to last bind: {rate:.0} pods/s"));
    }
    match status_at {
        Some(d) => {
            report.line(format!("Deployment status availableReplicas = updatedReplicas = {replicas} at {}", secs(d)))
        }
        None => report.problem(format!(
            "{ns}/{name}: Deployment status did not reach {replicas} available within 60 s of the pods: {last_status}"
        )),
    }
    report.line(format!("CPU from create to all Running: {}", after.since(&before)));
    report.line(format!("server CPU by thread: {}", after.server_threads_since(&before)));
    report.line(format!("memory: {}", cluster.memory()));
    if !all_running {
        report.problem(format!("{ns}/{name}: not all pods Running within {}", secs(cfg.phase_timeout)));
    }
    report_track(report, &format!("{ns}/{name}"), &t, replicas);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Steady state with everything in place

async fn steady_phase(cfg: &Config, cluster: &mut Cluster, admin: &Api, report: &mut Report) -> Result<()> {
    report.section(&format!("steady state: {} nodes, {} pods", cfg.nodes, cfg.total_pods));
    let before = cluster.cpu();
    tokio::time::sleep(cfg.idle_window).await;
    cluster.check_alive()?;
    let after = cluster.cpu();
    report.line(format!("CPU idle (heartbeats and pod status only): {}", after.since(&before)));
    report.line(format!("server CPU by thread: {}", after.server_threads_since(&before)));
    report.line(format!("memory: {}", cluster.memory()));
    if let Ok(size) = crate::server::FileSize::of(&cluster.server.store_path()) {
        report.line(format!("store file: {}", size.describe()));
    }
    for (ns, name, want) in [
        ("bench-deploy", "web", cfg.deploy_replicas),
        ("bench-fill", "fill", cfg.total_pods.saturating_sub(cfg.stream_pods + cfg.backlog_pods + cfg.deploy_replicas)),
    ] {
        if want == 0 {
            continue;
        }
        let path = format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}");
        let r = admin.get(&path).await.with_context(|| format!("GET {path}"))?;
        if r.status != 200 {
            report.problem(format!("GET {path}: HTTP {}: {}", r.status, r.message()));
            continue;
        }
        let st = r.json()?["status"].clone();
        let field = |f: &str| st[f].as_u64().unwrap_or(0) as usize;
        report.line(format!(
            "Deployment {ns}/{name} status now: replicas {}, updated {}, ready {}, available {} (want {want})",
            field("replicas"),
            field("updatedReplicas"),
            field("readyReplicas"),
            field("availableReplicas")
        ));
        if ["replicas", "updatedReplicas", "readyReplicas", "availableReplicas"].iter().any(|f| field(f) != want) {
            report.problem(format!("Deployment {ns}/{name} status still wrong at steady state: {st}"));
        }
    }
    events_tally(admin, report).await;
    Ok(())
}

/// Counts Events by namespace, type and reason (paged LIST, bounded) and reports the Warnings.
async fn events_tally(admin: &Api, report: &mut Report) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut tally: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    let mut examples: HashMap<(String, String, String), String> = HashMap::new();
    let mut cont = String::new();
    let mut total = 0usize;
    for _ in 0..1000 {
        if Instant::now() >= deadline {
            report.problem("event tally: gave up after 120 s".to_string());
            break;
        }
        let path = if cont.is_empty() {
            "/api/v1/events?limit=2000".to_string()
        } else {
            format!("/api/v1/events?limit=2000&continue={cont}")
        };
        let v = match admin.get(&path).await {
            Ok(r) if r.status == 200 => match r.json() {
                Ok(v) => v,
                Err(e) => {
                    report.problem(format!("event tally: {e:#}"));
                    break;
                }
            },
            Ok(r) => {
                report.problem(format!("event tally: GET {path}: HTTP {}: {}", r.status, r.message()));
                break;
            }
            Err(e) => {
                report.problem(format!("event tally: GET {path}: {e:#}"));
                break;
            }
        };
        for e in v["items"].as_array().into_iter().flatten() {
            total += 1;
            let key = (
                e["metadata"]["namespace"].as_str().unwrap_or_default().to_string(),
                e["type"].as_str().unwrap_or_default().to_string(),
                e["reason"].as_str().unwrap_or_default().to_string(),
            );
            *tally.entry(key.clone()).or_default() += e["count"].as_u64().unwrap_or(1).max(1) as usize;
            examples.entry(key).or_insert_with(|| e["message"].as_str().unwrap_or_default().to_string());
        }
        cont = v["metadata"]["continue"].as_str().unwrap_or_default().to_string();
        if cont.is_empty() {
            break;
        }
    }
    let summary: Vec<String> = tally.iter().map(|((ns, ty, reason), n)| format!("{ns}/{ty}/{reason} x{n}")).collect();
    report.line(format!(
        "events stored: {total} objects; by namespace/type/reason (with counts): {}",
        summary.join(", ")
    ));
    for (key, n) in &tally {
        // FailedScheduling in the backlog namespace is what that phase provokes on purpose.
        if key.1 == "Warning" && !(key.0 == "bench-backlog" && key.2 == "FailedScheduling") {
            report.problem(format!(
                "Warning events {}/{} x{n} (e.g. {:?})",
                key.0,
                key.2,
                examples.get(key).map(String::as_str).unwrap_or_default()
            ));
        }
    }
}

/// WARN/ERROR lines of the server and agent logs, grouped, into the report's problems.
pub fn log_problems(cluster: &Cluster, report: &mut Report) {
    let mut logs = vec![("server", cluster.server.log.clone())];
    if let Some(a) = &cluster.agent {
        logs.push(("agent", a.log.clone()));
    }
    for (who, path) in logs {
        let groups = hollow::log_problems(&path, 256 << 20);
        let total: usize = groups.iter().map(|g| g.0).sum();
        if total == 0 {
            report.line(format!("{who} log: no WARN or ERROR lines"));
            continue;
        }
        report.problem(format!("{who} log: {total} WARN/ERROR lines in {} kinds; the most frequent:", groups.len()));
        for (n, example) in groups.iter().take(8) {
            let ex: String = example.chars().take(400).collect();
            report.problem(format!("  x{n}: {ex}"));
        }
    }
}
