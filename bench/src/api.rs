//! The API server benchmark: durable create rate and latency, LIST of many pods, watch fan-out,
//! server memory, and store growth under update churn. See `bench/README.md`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use futures::StreamExt as _;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::client::{Api, Creds};
use crate::server::{mib, FileSize, SkiffServer};
use crate::stats::{self, describe, ms, summarize, Errors};

/// Per-request timeout of the ordinary (non-watch) clients.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// A worker gives up after this many failed requests (the server is likely down).
const MAX_ERRORS_PER_WORKER: usize = 200;

/// What to run; `Config::full()` is the real benchmark, `Config::quick()` a ~10x smaller smoke run.
#[derive(Clone, Debug)]
pub struct Config {
    pub skiff: PathBuf,
    pub quick: bool,
    /// Concurrency levels of the create benchmark.
    pub create_levels: Vec<usize>,
    /// How long each create level runs, and a cap on objects per level.
    pub create_duration: Duration,
    pub create_max_per_level: usize,
    /// Concurrent clients that create the LIST and churn fixtures.
    pub fill_concurrency: usize,
    pub list_pods: usize,
    pub list_runs: usize,
    pub watchers: usize,
    /// Watch streams per shared client (connection pool).
    pub watchers_per_client: usize,
    pub watch_writes: usize,
    pub watch_interval: Duration,
    pub churn_objects: usize,
    pub churn_updates: usize,
    pub churn_samples: usize,
    pub churn_concurrency: usize,
    /// Upper bound on each phase's fill or update loop.
    pub phase_timeout: Duration,
}

impl Config {
    pub fn full(skiff: PathBuf) -> Config {
        Config {
            skiff,
            quick: false,
            create_levels: vec![1, 16, 64],
            create_duration: Duration::from_secs(5),
            create_max_per_level: 100_000,
            fill_concurrency: 64,
            list_pods: 10_000,
            list_runs: 7,
            watchers: 1000,
            watchers_per_client: 50,
            watch_writes: 100,
            watch_interval: Duration::from_millis(100),
            churn_objects: 1000,
            churn_updates: 100_000,
            churn_samples: 4,
            churn_concurrency: 32,
            phase_timeout: Duration::from_secs(600),
        }
    }

    pub fn quick(skiff: PathBuf) -> Config {
        Config {
            quick: true,
            create_duration: Duration::from_millis(1000),
            create_max_per_level: 5_000,
            list_pods: 1000,
            list_runs: 3,
            watchers: 100,
            watchers_per_client: 25,
            watch_writes: 20,
            churn_objects: 100,
            churn_updates: 10_000,
            phase_timeout: Duration::from_secs(120),
            ..Config::full(skiff)
        }
    }
}

/// The report: one line per figure, printed to stdout at the end (also after an error).
#[derive(Default)]
pub struct Report {
    pub lines: Vec<String>,
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
}

fn progress(s: impl AsRef<str>) {
    eprintln!("-- {}", s.as_ref());
}

/// Run every phase against `server`, appending figures to `report`.
pub async fn run(cfg: &Config, server: &mut SkiffServer, report: &mut Report) -> Result<()> {
    let creds = server.creds.clone();
    let admin = Api::new(&creds, Some(REQUEST_TIMEOUT))?;

    report.section("server");
    report.line(format!("load average at start (1/5/15 min): {}", loadavg()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    report.line(format!("RSS idle right after start: {}", server.rss()?.describe()));
    report.line(format!("store file right after start: {}", FileSize::of(&server.store_path())?.describe()));

    list_phase(cfg, &creds, &admin, server, report).await.context("LIST benchmark")?;
    server.check_alive()?;
    create_phase(cfg, &creds, &admin, report).await.context("create benchmark")?;
    server.check_alive()?;
    watch_phase(cfg, &creds, &admin, report).await.context("watch fan-out benchmark")?;
    server.check_alive()?;
    report.line(format!("RSS after the phases above (all their objects stored): {}", server.rss()?.describe()));

    // The churn runs on a fresh server, so the store file holds only the churned objects and
    // their history, not the leftovers of the phases above.
    progress("starting a fresh server for the churn phase");
    let mut fresh = SkiffServer::start(&cfg.skiff).await.context("start a fresh server for the churn phase")?;
    let fresh_creds = fresh.creds.clone();
    let fresh_admin = Api::new(&fresh_creds, Some(REQUEST_TIMEOUT))?;
    let churn = churn_phase(cfg, &fresh_creds, &fresh_admin, &mut fresh, report).await.context("churn benchmark");
    if churn.is_err() {
        eprintln!("-- churn server log tail:\n{}", fresh.log_tail(20));
    }
    let stopped = fresh.stop().context("stop the churn server")?;
    report.line(format!("churn server stopped: {stopped}"));
    churn?;

    report.section("end");
    report.line(format!("load average at the end (1/5/15 min): {}", loadavg()));
    Ok(())
}

/// `/proc/loadavg`'s first three fields: other work on the machine skews every figure.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

async fn ensure_namespace(api: &Api, ns: &str) -> Result<()> {
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    let r = api.post_json("/api/v1/namespaces", &body).await.with_context(|| format!("create namespace {ns}"))?;
    if r.status != 201 && r.status != 409 {
        bail!("create namespace {ns}: HTTP {}: {}", r.status, r.message());
    }
    Ok(())
}

fn configmap(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"bench": "skiff"}}, "data": data})
}

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}
    })
}

/// Outcome of a pool of workers that each send requests until a shared counter reaches `total`
/// (or the deadline passes).
struct PoolResult {
    ok: usize,
    latencies: Vec<Duration>,
    errors: Errors,
    elapsed: Duration,
}

/// Run `workers` clients (each with its own connection pool) that take indexes `start..start+total`
/// from a shared counter and call `op(api, index)`; a 2xx answer counts as success.
async fn run_pool<F, Fut>(
    creds: &Creds,
    workers: usize,
    start: usize,
    total: usize,
    deadline: Instant,
    op: F,
) -> Result<PoolResult>
where
    F: Fn(Api, usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<crate::client::Resp, reqwest::Error>> + Send,
{
    let next = Arc::new(AtomicUsize::new(start));
    let end = start + total;
    let t0 = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..workers.max(1) {
        let api = Api::new(creds, Some(REQUEST_TIMEOUT))?;
        let next = next.clone();
        let op = op.clone();
        set.spawn(async move {
            let mut lat = Vec::new();
            let mut errors = Errors::default();
            let mut failed = 0usize;
            while Instant::now() < deadline && failed < MAX_ERRORS_PER_WORKER {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    break;
                }
                let t = Instant::now();
                match op(api.clone(), i).await {
                    Ok(r) if (200..300).contains(&r.status) => lat.push(t.elapsed()),
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
            (lat, errors)
        });
    }
    let mut res = PoolResult { ok: 0, latencies: Vec::new(), errors: Errors::default(), elapsed: Duration::ZERO };
    while let Some(j) = set.join_next().await {
        let (lat, errors) = j.context("worker task failed")?;
        res.ok += lat.len();
        res.latencies.extend(lat);
        res.errors.merge(errors);
    }
    res.elapsed = t0.elapsed();
    Ok(res)
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn report_errors(report: &mut Report, what: &str, errors: &Errors) {
    if !errors.is_empty() {
        report.line(format!("  !! {what}: {} failed requests: {}", errors.total(), errors.describe()));
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Durable creates

async fn create_phase(cfg: &Config, creds: &Creds, admin: &Api, report: &mut Report) -> Result<()> {
    report.section("durable creates (POST ConfigMap, 201 = committed)");
    let ns = "bench-create";
    ensure_namespace(admin, ns).await?;
    for &c in &cfg.create_levels {
        progress(format!("creates with {c} concurrent clients for {:?}", cfg.create_duration));
        let deadline = Instant::now() + cfg.create_duration;
        let path = format!("/api/v1/namespaces/{ns}/configmaps");
        let res = run_pool(creds, c, 0, cfg.create_max_per_level, deadline, move |api, i| {
            let path = path.clone();
            async move { api.post_json(&path, &configmap(&format!("c{c}-{i}"), json!({"key": "value"}))).await }
        })
        .await?;
        report.line(format!(
            "creates, {c:>2} clients: {:.0} creates/s ({} in {:.2} s); latency {}",
            rate(res.ok, res.elapsed),
            res.ok,
            res.elapsed.as_secs_f64(),
            describe(summarize(res.latencies))
        ));
        report_errors(report, &format!("creates with {c} clients"), &res.errors);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. LIST of many pods (and 4. RSS with them stored)

async fn list_phase(
    cfg: &Config,
    creds: &Creds,
    admin: &Api,
    server: &mut SkiffServer,
    report: &mut Report,
) -> Result<()> {
    report.section(&format!("LIST of {} pods", cfg.list_pods));
    let ns = "bench-list";
    ensure_namespace(admin, ns).await?;
    progress(format!("creating {} pods with {} clients", cfg.list_pods, cfg.fill_concurrency));
    let path = format!("/api/v1/namespaces/{ns}/pods");
    let p = path.clone();
    let res =
        run_pool(creds, cfg.fill_concurrency, 0, cfg.list_pods, Instant::now() + cfg.phase_timeout, move |api, i| {
            let p = p.clone();
            async move { api.post_json(&p, &pod(&format!("pod-{i:05}"))).await }
        })
        .await?;
    report.line(format!(
        "pod creates ({} clients): {:.0} creates/s ({} of {} in {:.2} s); latency {}",
        cfg.fill_concurrency,
        rate(res.ok, res.elapsed),
        res.ok,
        cfg.list_pods,
        res.elapsed.as_secs_f64(),
        describe(summarize(res.latencies))
    ));
    report_errors(report, "pod creates", &res.errors);
    server.check_alive()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    report.line(format!("RSS with {} pods stored: {}", res.ok, server.rss()?.describe()));
    report.line(format!("store file with {} pods stored: {}", res.ok, FileSize::of(&server.store_path())?.describe()));

    progress(format!("LIST {path} x{}", cfg.list_runs + 1));
    let mut times = Vec::new();
    let mut size = 0usize;
    for run in 0..=cfg.list_runs {
        let t = Instant::now();
        let r = admin.get(&path).await.with_context(|| format!("GET {path}"))?;
        let d = t.elapsed();
        if r.status != 200 {
            bail!("GET {path}: HTTP {}: {}", r.status, r.message());
        }
        if run == 0 {
            // The first run also checks the answer (and warms the connection); it is not timed.
            let v = r.json()?;
            let items = v["items"].as_array().map(Vec::len).unwrap_or(0);
            if items != res.ok {
                report.line(format!("  !! LIST returned {items} items, expected {}", res.ok));
            }
            report.line(format!("LIST first (untimed warm-up) run: {}", ms(d)));
        } else {
            times.push(d);
        }
        size = r.body.len();
    }
    let med = stats::median(times.clone()).ok_or_else(|| anyhow!("no LIST runs"))?;
    let (min, max) = (times.iter().min().copied().unwrap_or_default(), times.iter().max().copied().unwrap_or_default());
    report.line(format!(
        "LIST {} pods (JSON): median {} over {} runs (min {}, max {}); response {:.2} MiB ({size} bytes)",
        res.ok,
        ms(med),
        times.len(),
        ms(min),
        ms(max),
        mib(size as u64)
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. Watch fan-out

struct WatchResult {
    /// (write index, arrival time) of each `fan-<i>` event seen.
    seen: Vec<(usize, Instant)>,
    error: Option<String>,
}

struct WatchShared {
    connected: AtomicUsize,
    warm_seen: AtomicUsize,
    done: AtomicUsize,
    stop: AtomicBool,
    notify: tokio::sync::Notify,
}

async fn watcher(api: Api, path: String, n_writes: usize, shared: Arc<WatchShared>, deadline: Instant) -> WatchResult {
    let mut out = WatchResult { seen: Vec::with_capacity(n_writes), error: None };
    let send = tokio::time::timeout(Duration::from_secs(60), api.request(reqwest::Method::GET, &path).send()).await;
    let resp = match send {
        Err(_) => {
            out.error = Some("no response headers within 60 s".to_string());
            return out;
        }
        Ok(Err(e)) => {
            out.error = Some(format!("transport: {e:#}"));
            return out;
        }
        Ok(Ok(r)) => r,
    };
    if resp.status() != 200 {
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        out.error = Some(format!("HTTP {status}: {}", &body[..body.len().min(200)]));
        return out;
    }
    shared.connected.fetch_add(1, Ordering::SeqCst);
    let mut stream = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut warm = false;
    let sleep = tokio::time::sleep_until(deadline.into());
    tokio::pin!(sleep);
    'outer: loop {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let chunk = tokio::select! {
            c = stream.next() => c,
            _ = shared.notify.notified() => continue,
            _ = &mut sleep => break,
        };
        let now = Instant::now();
        let bytes = match chunk {
            None => {
                out.error = Some("the server ended the watch early".to_string());
                break;
            }
            Some(Err(e)) => {
                out.error = Some(format!("stream: {e:#}"));
                break;
            }
            Some(Ok(b)) => b,
        };
        buf.extend_from_slice(&bytes);
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let ev: Value = match serde_json::from_slice(&line) {
                Ok(v) => v,
                Err(e) => {
                    out.error = Some(format!("bad watch line: {e}"));
                    break 'outer;
                }
            };
            if ev["type"] == "ERROR" {
                out.error = Some(format!("ERROR event: {}", ev["object"]["message"]));
                break 'outer;
            }
            let name = ev["object"]["metadata"]["name"].as_str().unwrap_or_default();
            if name == "warm" && !warm {
                warm = true;
                shared.warm_seen.fetch_add(1, Ordering::SeqCst);
            } else if let Some(i) = name.strip_prefix("fan-").and_then(|s| s.parse::<usize>().ok()) {
                out.seen.push((i, now));
                if out.seen.len() == n_writes {
                    shared.done.fetch_add(1, Ordering::SeqCst);
                    break 'outer;
                }
            }
        }
    }
    out
}

/// Wait (polling, bounded) until `cond` holds; false on timeout.
async fn wait_until(timeout: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

async fn watch_phase(cfg: &Config, creds: &Creds, admin: &Api, report: &mut Report) -> Result<()> {
    report.section(&format!("watch fan-out ({} watchers on one namespace's configmaps)", cfg.watchers));
    let ns = "bench-watch";
    ensure_namespace(admin, ns).await?;
    let list_path = format!("/api/v1/namespaces/{ns}/configmaps");
    let r = admin.get(&list_path).await.context("list configmaps")?;
    if r.status != 200 {
        bail!("GET {list_path}: HTTP {}: {}", r.status, r.message());
    }
    let rv = r.json()?["metadata"]["resourceVersion"]
        .as_str()
        .ok_or_else(|| anyhow!("list has no metadata.resourceVersion"))?
        .to_string();
    let watch_path = format!("{list_path}?watch=true&resourceVersion={rv}&timeoutSeconds=900");

    let shared = Arc::new(WatchShared {
        connected: AtomicUsize::new(0),
        warm_seen: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        notify: tokio::sync::Notify::new(),
    });
    // Hard bound for every watcher, whatever happens below.
    let deadline = Instant::now() + cfg.phase_timeout;
    progress(format!("opening {} watches", cfg.watchers));
    let t_connect = Instant::now();
    let mut set = JoinSet::new();
    let mut api = Api::new(creds, None)?;
    for w in 0..cfg.watchers {
        if w > 0 && w % cfg.watchers_per_client == 0 {
            api = Api::new(creds, None)?;
        }
        set.spawn(watcher(api.clone(), watch_path.clone(), cfg.watch_writes, shared.clone(), deadline));
    }
    let all = wait_until(Duration::from_secs(120), || shared.connected.load(Ordering::SeqCst) >= cfg.watchers).await;
    let connected = shared.connected.load(Ordering::SeqCst);
    report.line(format!(
        "watches established: {connected}/{} in {:.2} s",
        cfg.watchers,
        t_connect.elapsed().as_secs_f64()
    ));
    if !all {
        report.line(format!("  !! only {connected} of {} watches got a 200 within 120 s", cfg.watchers));
    }

    // Warm-up write: every stream has delivered at least one event before measuring.
    let t = Instant::now();
    let r = admin.post_json(&list_path, &configmap("warm", json!({"k": "v"}))).await.context("warm-up write")?;
    if r.status != 201 {
        bail!("warm-up write: HTTP {}: {}", r.status, r.message());
    }
    let warmed = wait_until(Duration::from_secs(60), || shared.warm_seen.load(Ordering::SeqCst) >= connected).await;
    let warm_seen = shared.warm_seen.load(Ordering::SeqCst);
    report
        .line(format!("warm-up event reached {warm_seen}/{connected} watchers in {:.2} s", t.elapsed().as_secs_f64()));
    if !warmed {
        report.line(format!("  !! warm-up event reached only {warm_seen} of {connected} watchers within 60 s"));
    }

    progress(format!("{} writes, one every {:?}", cfg.watch_writes, cfg.watch_interval));
    let mut starts = vec![None; cfg.watch_writes];
    let mut commits = vec![None; cfg.watch_writes];
    let mut write_lat = Vec::new();
    let mut write_errors = Errors::default();
    let t_writes = Instant::now();
    for i in 0..cfg.watch_writes {
        let tick = t_writes + cfg.watch_interval * i as u32;
        tokio::time::sleep_until(tick.into()).await;
        let t0 = Instant::now();
        let body = configmap(&format!("fan-{i}"), json!({"seq": i.to_string()}));
        match admin.post_json(&list_path, &body).await {
            Ok(r) if r.status == 201 => {
                let t1 = Instant::now();
                starts[i] = Some(t0);
                commits[i] = Some(t1);
                write_lat.push(t1 - t0);
            }
            Ok(r) => write_errors.add(format!("HTTP {}", r.status), r.message()),
            Err(e) => write_errors.add("transport", format!("{e:#}")),
        }
    }
    let ok_writes = starts.iter().filter(|s| s.is_some()).count();
    // Watchers stop themselves once they saw every write; wait for that, bounded.
    let complete = wait_until(Duration::from_secs(30), || {
        ok_writes < cfg.watch_writes || shared.done.load(Ordering::SeqCst) >= connected
    })
    .await;
    if ok_writes < cfg.watch_writes {
        // Some writes failed, so no watcher can see them all: give deliveries a moment.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    shared.stop.store(true, Ordering::SeqCst);
    shared.notify.notify_waiters();

    let mut from_start = Vec::new();
    let mut from_commit = Vec::new();
    let mut before_commit = 0usize;
    let mut last_delivery: Vec<Option<Instant>> = vec![None; cfg.watch_writes];
    let mut watch_errors = Errors::default();
    let mut delivered = 0usize;
    while let Some(j) = set.join_next().await {
        let res = j.context("watcher task failed")?;
        if let Some(e) = res.error {
            let kind = e.split(':').next().unwrap_or("error").to_string();
            watch_errors.add(kind, e);
        }
        for (i, at) in res.seen {
            let (Some(Some(s)), Some(Some(c))) = (starts.get(i), commits.get(i)) else { continue };
            delivered += 1;
            from_start.push(at.saturating_duration_since(*s));
            if at < *c {
                before_commit += 1;
            }
            from_commit.push(at.saturating_duration_since(*c));
            let last = &mut last_delivery[i];
            if last.is_none_or(|l| at > l) {
                *last = Some(at);
            }
        }
    }
    let fanout: Vec<Duration> = last_delivery
        .iter()
        .zip(&starts)
        .filter_map(|(l, s)| Some(l.as_ref()?.saturating_duration_since(*s.as_ref()?)))
        .collect();

    report.line(format!(
        "writes: {ok_writes}/{} created, one every {}; write latency {}",
        cfg.watch_writes,
        ms(cfg.watch_interval),
        describe(summarize(write_lat))
    ));
    report_errors(report, "fan-out writes", &write_errors);
    report.line(format!(
        "events delivered: {delivered}/{} ({} watchers x {ok_writes} writes){}",
        connected * ok_writes,
        connected,
        if complete { "" } else { " -- incomplete after 30 s" }
    ));
    report.line(format!("delivery latency from write start: {}", describe(summarize(from_start))));
    report.line(format!(
        "delivery latency from the write's 201: {} ({before_commit} deliveries arrived before the 201, counted as 0)",
        describe(summarize(from_commit))
    ));
    report.line(format!("fan-out completion (last watcher) from write start: {}", describe(summarize(fanout))));
    if !watch_errors.is_empty() {
        report.line(format!("  !! watch streams that failed: {}", watch_errors.describe()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 5. Store growth under update churn (and RSS)

async fn churn_phase(
    cfg: &Config,
    creds: &Creds,
    admin: &Api,
    server: &mut SkiffServer,
    report: &mut Report,
) -> Result<()> {
    report.section(&format!(
        "store growth on a fresh server: {} merge-PATCH updates to {} ConfigMaps ({} clients)",
        cfg.churn_updates, cfg.churn_objects, cfg.churn_concurrency
    ));
    let ns = "bench-churn";
    ensure_namespace(admin, ns).await?;
    let base = format!("/api/v1/namespaces/{ns}/configmaps");
    progress(format!("creating {} configmaps", cfg.churn_objects));
    let b = base.clone();
    let res = run_pool(
        creds,
        cfg.fill_concurrency,
        0,
        cfg.churn_objects,
        Instant::now() + cfg.phase_timeout,
        move |api, i| {
            let b = b.clone();
            async move { api.post_json(&b, &configmap(&format!("cm-{i:04}"), json!({"v": "0"}))).await }
        },
    )
    .await?;
    report_errors(report, "churn fixture creates", &res.errors);
    if res.ok < cfg.churn_objects {
        bail!("only {} of {} churn configmaps were created", res.ok, cfg.churn_objects);
    }
    let store = server.store_path();
    report.line(format!(
        "before updates ({} ConfigMaps stored): store {}; RSS {}",
        res.ok,
        FileSize::of(&store)?.describe(),
        server.rss()?.describe()
    ));

    let per_sample = cfg.churn_updates / cfg.churn_samples.max(1);
    let n_objects = cfg.churn_objects;
    let mut done = 0usize;
    let mut applied = 0usize;
    for s in 0..cfg.churn_samples.max(1) {
        let total = if s + 1 == cfg.churn_samples { cfg.churn_updates - done } else { per_sample };
        progress(format!("updates {}..{}", done, done + total));
        let b = base.clone();
        let res =
            run_pool(creds, cfg.churn_concurrency, done, total, Instant::now() + cfg.phase_timeout, move |api, i| {
                let path = format!("{b}/cm-{:04}", i % n_objects);
                // Changing data of a stable size: the update counter and a pad derived from it.
                let pad = format!("{:0>120}", i.wrapping_mul(2_654_435_761) % 1_000_000_007);
                async move { api.merge_patch(&path, &json!({"data": {"v": i.to_string(), "pad": pad}})).await }
            })
            .await?;
        done += total;
        applied += res.ok;
        server.check_alive()?;
        let size = FileSize::of(&store)?;
        report.line(format!(
            "after {:>6} updates: store {}; {:.0} updates/s in this interval (latency {}); RSS {}",
            applied,
            size.describe(),
            rate(res.ok, res.elapsed),
            describe(summarize(res.latencies)),
            server.rss()?.describe()
        ));
        report_errors(report, &format!("updates up to {done}"), &res.errors);
        if res.ok + (res.errors.total() as usize) < total {
            report.line(format!("  !! only {} of {total} updates were sent before the time bound", res.ok));
        }
    }
    // Does the file shrink or settle once the churn stops?
    tokio::time::sleep(Duration::from_secs(if cfg.quick { 2 } else { 10 })).await;
    report.line(format!(
        "store file {} s after the churn stopped: {}",
        if cfg.quick { 2 } else { 10 },
        FileSize::of(&store)?.describe()
    ));
    Ok(())
}
