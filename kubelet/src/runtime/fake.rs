//! The hollow-node runtime: sandboxes, containers and images kept in memory, no processes.
//!
//! How a fake container behaves (the "workload model"):
//! - an init container (label `skiff.io/container-type: init`) exits 0 right after it starts;
//! - an app container of a pod whose restartPolicy (sandbox label `skiff.io/restart-policy`) is
//!   `Never` or `OnFailure` exits 0 after the configured run time (`--fake-pod-run-seconds`);
//!   under `Always` it runs until stopped;
//! - the pod annotation [`EXIT_CODE_ANNOTATION`] (`skiff.io/fake-exit-code: "<n>"`) makes every app
//!   container of the pod exit with `n` after the run time, whatever the restartPolicy (so tests can
//!   make Job pods fail, or an `Always` pod crash-loop);
//! - a container stopped by the kubelet exits 0 (its process "honours SIGTERM").
//!
//! Logs (CRI format, kept in memory, the last [`MAX_LOG_LINES`] per container): a line when a
//! container starts and one when it exits; the pod annotation [`LOG_INTERVAL_ANNOTATION`]
//! (`skiff.io/fake-log-interval: "500ms"`) makes its app containers also print `tick N` on stdout
//! at that interval while they run. A follow read streams new lines until the container exits.
//!
//! Streaming exec runs a few built-in commands in a running container: `echo ARGS` prints its
//! arguments, `cat` copies stdin to stdout, `sh -c 'exit N'` exits with N (`sh -c 'echo ...'`
//! prints); anything else prints `executable file not found` on stderr and exits 127.
//! `exec_sync` (exec probes) succeeds with no output in a running container.
//!
//! Pulls always succeed: an image's digest is a stable hash of its normalised reference, so
//! `imageID` looks like `docker.io/library/busybox@sha256:<64 hex>` and never changes.
//!
//! A `FakeRuntime` is a handle: clones share one node's state, so a test can hand the runtime of
//! a stopped kubelet to a restarted one (which finds its sandboxes and containers still there),
//! and read back the configs a sandbox or container was made from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use jiff::Timestamp;
use tokio::sync::mpsc;

use super::image_ref::ImageRef;
use super::*;

/// Pod annotation: the exit code of the pod's app containers (see the module docs).
pub const EXIT_CODE_ANNOTATION: &str = "skiff.io/fake-exit-code";
/// Pod annotation: how often the pod's app containers log a `tick N` line (see the module docs).
pub const LOG_INTERVAL_ANNOTATION: &str = "skiff.io/fake-log-interval";
/// Log lines kept per container (older ones are dropped, as a rotated log would lose them).
pub const MAX_LOG_LINES: usize = 10_000;

struct Sandbox {
    status: PodSandboxStatus,
    config: PodSandboxConfig,
}

struct Container {
    status: ContainerStatus,
    log: Vec<String>,
    /// How many lines were dropped from the front of `log` (line numbers stay stable for followers).
    log_base: u64,
    /// Woken when a line is added or the container exits.
    log_changed: Arc<tokio::sync::Notify>,
    config: ContainerConfig,
}

impl Container {
    fn new(status: ContainerStatus, config: ContainerConfig) -> Container {
        Container { status, log: Vec::new(), log_base: 0, log_changed: Arc::default(), config }
    }

    fn push_log(&mut self, line: String) {
        if self.log.len() >= MAX_LOG_LINES {
            self.log.remove(0);
            self.log_base += 1;
        }
        self.log.push(line);
        self.log_changed.notify_waiters();
    }
}

#[derive(Default)]
struct State {
    sandboxes: HashMap<String, Sandbox>,
    containers: HashMap<String, Container>,
    images: HashMap<String, ImageInfo>,
    next_id: u64,
}

struct Shared {
    state: Mutex<State>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<ContainerEvent>>>,
    id_prefix: u64,
}

/// The in-memory runtime of one hollow node (clones share it).
#[derive(Clone)]
pub struct FakeRuntime {
    shared: Arc<Shared>,
    run_for: Duration,
}

impl FakeRuntime {
    /// A runtime whose finite containers run for `run_for` before they exit.
    pub fn new(run_for: Duration) -> Self {
        let shared = Shared {
            state: Mutex::new(State::default()),
            subscribers: Mutex::new(Vec::new()),
            id_prefix: rand::random(),
        };
        FakeRuntime { shared: Arc::new(shared), run_for }
    }

    /// The config sandbox `id` was made from.
    pub fn sandbox_config(&self, id: &str) -> Option<PodSandboxConfig> {
        self.shared.lock().sandboxes.get(id).map(|s| s.config.clone())
    }

    /// The config container `id` was made from.
    pub fn container_config(&self, id: &str) -> Option<ContainerConfig> {
        self.shared.lock().containers.get(id).map(|c| c.config.clone())
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that matters
        // to a fake; keep going with the data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_id(&self, state: &mut State) -> String {
        state.next_id += 1;
        format!("{:016x}{:016x}", self.id_prefix, state.next_id)
    }

    fn emit(&self, container: &ContainerStatus, pod_uid: &str, kind: ContainerEventKind) {
        let event = ContainerEvent {
            container_id: container.id.clone(),
            sandbox_id: container.sandbox_id.clone(),
            pod_uid: pod_uid.to_string(),
            kind,
            at: Timestamp::now(),
        };
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subs.retain(|tx| tx.send(event.clone()).is_ok());
    }

    /// Marks a running container exited and tells subscribers.
    fn exit(&self, id: &str, code: i32) {
        let mut state = self.lock();
        let Some(c) = state.containers.get_mut(id) else { return };
        if c.status.state != ContainerState::Running {
            return;
        }
        let now = Timestamp::now();
        c.status.state = ContainerState::Exited;
        c.status.finished_at = Some(now);
        c.status.exit_code = Some(code);
        c.push_log(log_line(now, &format!("skiff-fake: exited with code {code}")));
        let status = c.status.clone();
        let uid = pod_uid(&state, &status.sandbox_id);
        drop(state);
        self.emit(&status, &uid, ContainerEventKind::Stopped);
    }
}

fn pod_uid(state: &State, sandbox_id: &str) -> String {
    state.sandboxes.get(sandbox_id).map(|s| s.status.metadata.uid.clone()).unwrap_or_default()
}

fn log_line(at: Timestamp, msg: &str) -> String {
    format!("{at} stdout F {msg}\n")
}

fn not_found(kind: &'static str, id: &str) -> RuntimeError {
    RuntimeError::NotFound { kind, id: id.to_string() }
}

/// 64 hex digits that depend only on `input` (four FNV-1a 64 passes with different seeds).
pub fn stable_digest(input: &str) -> String {
    let mut out = String::with_capacity(64);
    for seed in 0u64..4 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for b in input.bytes().chain(seed.to_le_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

/// When and how an app container of this sandbox exits on its own, if it does.
fn planned_exit(sandbox: &Sandbox, init: bool, run_for: Duration) -> Option<(Duration, i32)> {
    if init {
        return Some((Duration::ZERO, 0));
    }
    if let Some(code) = sandbox.config.annotations.get(EXIT_CODE_ANNOTATION).and_then(|v| v.trim().parse::<i32>().ok())
    {
        return Some((run_for, code));
    }
    match sandbox.status.labels.get(LABEL_RESTART_POLICY).map(String::as_str) {
        Some("Never" | "OnFailure") => Some((run_for, 0)),
        _ => None,
    }
}

/// The interval of a sandbox's `tick N` log lines, if its pod asks for them.
fn log_interval(sandbox: &Sandbox) -> Option<Duration> {
    let v = sandbox.config.annotations.get(LOG_INTERVAL_ANNOTATION)?;
    api::duration::parse(v).ok().filter(|d| !d.is_zero())
}

/// Logs `tick N` every `every` while container `id` runs.
async fn tick_logs(shared: std::sync::Weak<Shared>, id: String, every: Duration) {
    let mut n: u64 = 0;
    loop {
        tokio::time::sleep(every).await;
        let Some(shared) = shared.upgrade() else { return };
        let mut state = shared.lock();
        let Some(c) = state.containers.get_mut(&id) else { return };
        if c.status.state != ContainerState::Running {
            return;
        }
        n += 1;
        c.push_log(log_line(Timestamp::now(), &format!("tick {n}")));
    }
}

/// The lines of container `id` from line number `from` on (counting dropped lines), and whether
/// more may come (it is running); None once it is gone.
fn log_from(shared: &Shared, id: &str, from: u64) -> Option<(Vec<String>, u64, bool, Arc<tokio::sync::Notify>)> {
    let state = shared.lock();
    let c = state.containers.get(id)?;
    let skip = usize::try_from(from.saturating_sub(c.log_base)).unwrap_or(usize::MAX).min(c.log.len());
    let lines = c.log[skip..].to_vec();
    let next = c.log_base + c.log.len() as u64;
    let live = matches!(c.status.state, ContainerState::Created | ContainerState::Running);
    Some((lines, next, live, c.log_changed.clone()))
}

/// A follow read: the lines from `from` on, then new ones as they come, until the container has
/// exited (or is gone) and every line was sent.
fn follow_logs(shared: std::sync::Weak<Shared>, id: String, from: u64) -> BoxStream<'static, RuntimeResult<Vec<u8>>> {
    futures::stream::unfold((shared, id, from, false), |(shared, id, mut from, ended)| async move {
        if ended {
            return None;
        }
        loop {
            let strong = shared.upgrade()?;
            let (lines, next, live, changed) = log_from(&strong, &id, from)?;
            // Registered before the state is read again, so a line added in between still wakes us.
            let notified = changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !lines.is_empty() {
                from = next;
                let chunk = lines.concat().into_bytes();
                return Some((Ok(chunk), (shared, id, from, false)));
            }
            if !live {
                return None;
            }
            drop(strong);
            notified.await;
        }
    })
    .boxed()
}

/// Runs one of the fake's built-in commands (see the module docs): (stdout, stderr, exit code).
async fn run_command(
    command: &[String],
    stdin: Option<tokio::io::DuplexStream>,
    out: &mut (impl tokio::io::AsyncWrite + Unpin),
    err: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> std::io::Result<i32> {
    use tokio::io::AsyncWriteExt;
    let (prog, args) = match command.split_first() {
        Some((p, a)) => (p.as_str(), a),
        None => return Ok(127),
    };
    let base = prog.rsplit('/').next().unwrap_or(prog);
    match (base, args) {
        ("echo", args) => {
            out.write_all(format!("{}\n", args.join(" ")).as_bytes()).await?;
            Ok(0)
        }
        ("cat", []) => {
            if let Some(mut input) = stdin {
                tokio::io::copy(&mut input, out).await?;
            }
            Ok(0)
        }
        ("sh", [flag, script, ..]) if flag == "-c" => {
            let script = script.trim();
            if let Some(code) = script.strip_prefix("exit").map(str::trim) {
                return Ok(if code.is_empty() { 0 } else { code.parse().unwrap_or(2) });
            }
            if let Some(text) = script.strip_prefix("echo ").or((script == "echo").then_some("")) {
                out.write_all(format!("{}\n", text.trim()).as_bytes()).await?;
                return Ok(0);
            }
            err.write_all(format!("sh: {script}: not found\n").as_bytes()).await?;
            Ok(127)
        }
        _ => {
            err.write_all(format!("skiff-fake: exec: {prog:?}: executable file not found in $PATH\n").as_bytes())
                .await?;
            Ok(127)
        }
    }
}

/// Size of the in-memory pipes of a fake exec session.
const EXEC_PIPE_BYTES: usize = 64 * 1024;

fn exec_session(command: Vec<String>, request: &ExecRequest) -> ExecSession {
    use tokio::io::AsyncWriteExt;
    let (mut out_w, out_r) = tokio::io::duplex(EXEC_PIPE_BYTES);
    let (mut err_w, err_r) = tokio::io::duplex(EXEC_PIPE_BYTES);
    let (stdin_w, stdin_r) = if request.stdin {
        let (w, r) = tokio::io::duplex(EXEC_PIPE_BYTES);
        (Some(w), Some(r))
    } else {
        (None, None)
    };
    let (resize_tx, mut resize_rx) = mpsc::channel::<(u16, u16)>(4);
    let (exit_tx, exit_rx) = tokio::sync::oneshot::channel();
    let tty = request.tty;
    tokio::spawn(async move {
        let result = if tty {
            // A terminal merges stderr into stdout.
            let (mut merged_w, mut merged_r) = tokio::io::duplex(EXEC_PIPE_BYTES);
            let r = run_command(&command, stdin_r, &mut out_w, &mut merged_w).await;
            drop(merged_w);
            let _ = tokio::io::copy(&mut merged_r, &mut out_w).await;
            r
        } else {
            run_command(&command, stdin_r, &mut out_w, &mut err_w).await
        };
        let _ = out_w.shutdown().await;
        let _ = err_w.shutdown().await;
        let _ = exit_tx.send(result);
    });
    // Terminal sizes are accepted and ignored.
    tokio::spawn(async move { while resize_rx.recv().await.is_some() {} });
    let exit = async move {
        match exit_rx.await {
            Ok(Ok(code)) => Ok(code),
            Ok(Err(e)) => Err(RuntimeError::Failed { action: "exec", id: String::new(), message: e.to_string() }),
            Err(_) => Err(RuntimeError::Failed { action: "exec", id: String::new(), message: "session ended".into() }),
        }
    };
    ExecSession {
        stdin: stdin_w.map(|w| Box::pin(w) as Pin<Box<dyn tokio::io::AsyncWrite + Send>>),
        stdout: Box::pin(out_r),
        stderr: if tty { None } else { Some(Box::pin(err_r)) },
        resize: Some(resize_tx),
        exit: exit.boxed(),
    }
}

impl FakeRuntime {
    /// Appends a raw CRI log line (`<time> <stdout|stderr> <P|F> <text>`; a newline is added when
    /// missing) to container `id`'s log, as its process would have written it.
    pub fn write_log(&self, id: &str, raw: &str) -> RuntimeResult<()> {
        let mut state = self.shared.lock();
        let c = state.containers.get_mut(id).ok_or_else(|| not_found("container", id))?;
        let mut line = raw.to_string();
        if !line.ends_with('\n') {
            line.push('\n');
        }
        c.push_log(line);
        Ok(())
    }

    /// The state of container `id` unless it is running: exec needs a running container.
    fn check_running(&self, id: &str) -> RuntimeResult<()> {
        match self.shared.lock().containers.get(id).map(|c| c.status.state) {
            Some(ContainerState::Running) => Ok(()),
            Some(_) => Err(RuntimeError::Failed {
                action: "exec in container",
                id: id.to_string(),
                message: "container is not running".into(),
            }),
            None => Err(not_found("container", id)),
        }
    }
}

impl Runtime for FakeRuntime {
    fn version(&self) -> RuntimeVersion {
        RuntimeVersion { name: "skiff-fake".into(), version: "0.1".into() }
    }

    fn run_pod_sandbox<'a>(&'a self, config: &'a PodSandboxConfig) -> BoxFuture<'a, RuntimeResult<String>> {
        async move {
            let metadata = config.metadata.clone().ok_or_else(|| RuntimeError::Failed {
                action: "run sandbox",
                id: config.hostname.clone(),
                message: "sandbox config without metadata".into(),
            })?;
            let mut state = self.shared.lock();
            let id = self.shared.new_id(&mut state);
            let status = PodSandboxStatus {
                id: id.clone(),
                metadata,
                state: SandboxState::Ready,
                created_at: Timestamp::now(),
                ip: config.network.as_ref().map(|n| n.ip),
                labels: config.labels.clone(),
            };
            let sandbox = Sandbox { status, config: config.clone() };
            state.sandboxes.insert(id.clone(), sandbox);
            Ok(id)
        }
        .boxed()
    }

    fn stop_pod_sandbox<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<()>> {
        async move {
            let ids: Vec<String> = {
                let state = self.shared.lock();
                if !state.sandboxes.contains_key(id) {
                    return Ok(());
                }
                state.containers.values().filter(|c| c.status.sandbox_id == id).map(|c| c.status.id.clone()).collect()
            };
            for c in ids {
                self.stop_container(&c, Duration::ZERO).await?;
            }
            if let Some(s) = self.shared.lock().sandboxes.get_mut(id) {
                s.status.state = SandboxState::NotReady;
            }
            Ok(())
        }
        .boxed()
    }

    fn remove_pod_sandbox<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<()>> {
        async move {
            self.stop_pod_sandbox(id).await?;
            let ids: Vec<String> = {
                let state = self.shared.lock();
                state.containers.values().filter(|c| c.status.sandbox_id == id).map(|c| c.status.id.clone()).collect()
            };
            for c in ids {
                self.remove_container(&c).await?;
            }
            self.shared.lock().sandboxes.remove(id);
            Ok(())
        }
        .boxed()
    }

    fn pod_sandbox_status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<PodSandboxStatus>> {
        let r = self.shared.lock().sandboxes.get(id).map(|s| s.status.clone()).ok_or_else(|| not_found("sandbox", id));
        futures::future::ready(r).boxed()
    }

    fn list_pod_sandboxes(&self) -> BoxFuture<'_, RuntimeResult<Vec<PodSandboxStatus>>> {
        let all = self.shared.lock().sandboxes.values().map(|s| s.status.clone()).collect();
        futures::future::ready(Ok(all)).boxed()
    }

    fn create_container<'a>(
        &'a self,
        sandbox_id: &'a str,
        config: &'a ContainerConfig,
        _sandbox_config: &'a PodSandboxConfig,
    ) -> BoxFuture<'a, RuntimeResult<String>> {
        async move {
            let image = ImageRef::parse(&config.image)?;
            let mut state = self.shared.lock();
            match state.sandboxes.get(sandbox_id) {
                Some(s) if s.status.state == SandboxState::Ready => {}
                Some(_) => {
                    return Err(RuntimeError::Failed {
                        action: "create container",
                        id: config.name.clone(),
                        message: format!("sandbox {sandbox_id} is not ready"),
                    })
                }
                None => return Err(not_found("sandbox", sandbox_id)),
            }
            let image_ref = match state.images.get(&image.full()).and_then(|i| i.repo_digests.first()) {
                Some(r) => r.clone(),
                None => return Err(RuntimeError::ImageNotPresent(config.image.clone())),
            };
            let id = self.shared.new_id(&mut state);
            let now = Timestamp::now();
            let status = ContainerStatus {
                id: id.clone(),
                sandbox_id: sandbox_id.to_string(),
                name: config.name.clone(),
                restart_count: config.attempt,
                state: ContainerState::Created,
                created_at: now,
                started_at: None,
                finished_at: None,
                exit_code: None,
                reason: None,
                message: None,
                image: config.image.clone(),
                image_ref,
                labels: config.labels.clone(),
            };
            let container = Container::new(status.clone(), config.clone());
            state.containers.insert(id.clone(), container);
            let uid = pod_uid(&state, sandbox_id);
            drop(state);
            self.shared.emit(&status, &uid, ContainerEventKind::Created);
            Ok(id)
        }
        .boxed()
    }

    fn start_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<()>> {
        async move {
            let mut state = self.shared.lock();
            let c = state.containers.get_mut(id).ok_or_else(|| not_found("container", id))?;
            if c.status.state != ContainerState::Created {
                return Err(RuntimeError::Failed {
                    action: "start container",
                    id: id.to_string(),
                    message: "container is not in the created state".into(),
                });
            }
            let now = Timestamp::now();
            c.status.state = ContainerState::Running;
            c.status.started_at = Some(now);
            c.push_log(log_line(now, "skiff-fake: started"));
            let status = c.status.clone();
            let init = status.labels.get(LABEL_CONTAINER_TYPE).map(String::as_str) == Some("init");
            let plan = state.sandboxes.get(&status.sandbox_id).and_then(|s| planned_exit(s, init, self.run_for));
            let ticks = if init { None } else { state.sandboxes.get(&status.sandbox_id).and_then(log_interval) };
            let uid = pod_uid(&state, &status.sandbox_id);
            drop(state);
            self.shared.emit(&status, &uid, ContainerEventKind::Started);
            if let Some(every) = ticks {
                tokio::spawn(tick_logs(Arc::downgrade(&self.shared), id.to_string(), every));
            }
            if let Some((after, code)) = plan {
                let shared = Arc::downgrade(&self.shared);
                let id = id.to_string();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    if let Some(shared) = shared.upgrade() {
                        shared.exit(&id, code);
                    }
                });
            }
            Ok(())
        }
        .boxed()
    }

    fn stop_container<'a>(&'a self, id: &'a str, _timeout: Duration) -> BoxFuture<'a, RuntimeResult<()>> {
        async move {
            let known = self.shared.lock().containers.contains_key(id);
            if !known {
                return Err(not_found("container", id));
            }
            self.shared.exit(id, 0);
            Ok(())
        }
        .boxed()
    }

    fn remove_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<()>> {
        async move {
            let mut state = self.shared.lock();
            let Some(c) = state.containers.remove(id) else { return Ok(()) };
            c.log_changed.notify_waiters();
            let uid = pod_uid(&state, &c.status.sandbox_id);
            drop(state);
            self.shared.emit(&c.status, &uid, ContainerEventKind::Deleted);
            Ok(())
        }
        .boxed()
    }

    fn container_status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<ContainerStatus>> {
        let r =
            self.shared.lock().containers.get(id).map(|c| c.status.clone()).ok_or_else(|| not_found("container", id));
        futures::future::ready(r).boxed()
    }

    fn list_containers<'a>(
        &'a self,
        filter: &'a ContainerFilter,
    ) -> BoxFuture<'a, RuntimeResult<Vec<ContainerStatus>>> {
        let state = self.shared.lock();
        let mut out: Vec<ContainerStatus> = state
            .containers
            .values()
            .map(|c| &c.status)
            .filter(|s| filter.sandbox_id.as_deref().is_none_or(|id| s.sandbox_id == id))
            .filter(|s| filter.state.is_none_or(|st| s.state == st))
            .cloned()
            .collect();
        drop(state);
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        futures::future::ready(Ok(out)).boxed()
    }

    fn pull_image<'a>(&'a self, image: &'a str, _auth: Option<&'a AuthConfig>) -> BoxFuture<'a, RuntimeResult<String>> {
        async move {
            let parsed = ImageRef::parse(image)?;
            let full = parsed.full();
            let digest = parsed.digest.clone().unwrap_or_else(|| format!("sha256:{}", stable_digest(&full)));
            let repo_digest = format!("{}@{digest}", parsed.name);
            let info = ImageInfo {
                id: format!("sha256:{}", stable_digest(&format!("config {full}"))),
                repo_tags: parsed.tag.iter().map(|t| format!("{}:{t}", parsed.name)).collect(),
                repo_digests: vec![repo_digest.clone()],
                size: 1 << 20,
            };
            self.shared.lock().images.insert(full, info);
            Ok(repo_digest)
        }
        .boxed()
    }

    fn image_status<'a>(&'a self, image: &'a str) -> BoxFuture<'a, RuntimeResult<Option<ImageInfo>>> {
        let r = ImageRef::parse(image).map(|p| self.shared.lock().images.get(&p.full()).cloned());
        futures::future::ready(r).boxed()
    }

    fn list_images(&self) -> BoxFuture<'_, RuntimeResult<Vec<ImageInfo>>> {
        let mut all: Vec<ImageInfo> = self.shared.lock().images.values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        futures::future::ready(Ok(all)).boxed()
    }

    fn container_logs<'a>(
        &'a self,
        id: &'a str,
        options: &'a LogOptions,
    ) -> BoxFuture<'a, RuntimeResult<BoxStream<'static, RuntimeResult<Vec<u8>>>>> {
        // The tail is where the read starts (in lines); a follow read then streams on.
        let start = self.shared.lock().containers.get(id).map(|c| {
            let end = c.log_base + c.log.len() as u64;
            match options.tail_lines {
                Some(t) => end.saturating_sub(t).max(c.log_base),
                None => c.log_base,
            }
        });
        let r = match start {
            None => Err(not_found("container", id)),
            Some(from) if options.follow => Ok(follow_logs(Arc::downgrade(&self.shared), id.to_string(), from)),
            Some(from) => {
                let lines = log_from(&self.shared, id, from).map(|(lines, ..)| lines).unwrap_or_default();
                Ok(futures::stream::iter(lines.into_iter().map(|l| Ok(l.into_bytes()))).boxed())
            }
        };
        futures::future::ready(r).boxed()
    }

    fn exec_sync<'a>(
        &'a self,
        id: &'a str,
        _command: &'a [String],
        _timeout: Duration,
    ) -> BoxFuture<'a, RuntimeResult<ExecOutput>> {
        let state = self.shared.lock().containers.get(id).map(|c| c.status.state);
        let r = match state {
            Some(ContainerState::Running) => Ok(ExecOutput { stdout: Vec::new(), stderr: Vec::new(), exit_code: 0 }),
            Some(_) => Err(RuntimeError::Failed {
                action: "exec in container",
                id: id.to_string(),
                message: "container is not running".into(),
            }),
            None => Err(not_found("container", id)),
        };
        futures::future::ready(r).boxed()
    }

    fn exec<'a>(&'a self, id: &'a str, request: &'a ExecRequest) -> BoxFuture<'a, RuntimeResult<ExecSession>> {
        let r = self.check_running(id).map(|()| exec_session(request.command.clone(), request));
        futures::future::ready(r).boxed()
    }

    fn events(&self) -> BoxStream<'static, ContainerEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.shared.subscribers.lock().unwrap_or_else(|e| e.into_inner()).push(tx);
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) }).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox_config(policy: &str, exit: Option<&str>) -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: Some(SandboxMetadata { name: "p".into(), namespace: "ns".into(), uid: "u1".into(), attempt: 0 }),
            labels: [(LABEL_RESTART_POLICY.to_string(), policy.to_string())].into(),
            annotations: exit.map(|e| (EXIT_CODE_ANNOTATION.to_string(), e.to_string())).into_iter().collect(),
            ..Default::default()
        }
    }

    async fn start(rt: &FakeRuntime, sb: &PodSandboxConfig, init: bool) -> (String, String) {
        let sandbox = rt.run_pod_sandbox(sb).await.expect("sandbox");
        rt.pull_image("busybox:1.36", None).await.expect("pull");
        let kind = if init { "init" } else { "app" };
        let config = ContainerConfig {
            name: "c".into(),
            image: "busybox:1.36".into(),
            labels: [(LABEL_CONTAINER_TYPE.to_string(), kind.to_string())].into(),
            ..Default::default()
        };
        let id = rt.create_container(&sandbox, &config, sb).await.expect("create");
        rt.start_container(&id).await.expect("start");
        (sandbox, id)
    }

    #[tokio::test]
    async fn pulled_images_are_listed() {
        let rt = FakeRuntime::new(Duration::from_secs(1));
        assert_eq!(rt.list_images().await.expect("list"), vec![]);
        rt.pull_image("busybox:1.36", None).await.expect("pull");
        rt.pull_image("registry.local/app:v1", None).await.expect("pull");
        let tags: Vec<Vec<String>> = rt.list_images().await.expect("list").into_iter().map(|i| i.repo_tags).collect();
        assert_eq!(tags.len(), 2);
        assert!(tags.contains(&vec!["docker.io/library/busybox:1.36".to_string()]), "{tags:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn workload_model() {
        let run = Duration::from_secs(2);
        // (restartPolicy, annotation, init?, expected exit code after the run time; None = still running)
        let cases = [
            ("Always", None, false, None),
            ("Never", None, false, Some(0)),
            ("OnFailure", None, false, Some(0)),
            ("Never", Some("3"), false, Some(3)),
            ("Always", Some("1"), false, Some(1)),
            ("Always", None, true, Some(0)),
            ("Never", Some("junk"), false, Some(0)),
        ];
        for (policy, exit, init, want) in cases {
            let rt = FakeRuntime::new(run);
            let mut events = rt.events();
            let sb = sandbox_config(policy, exit);
            let (_, id) = start(&rt, &sb, init).await;
            let status = rt.container_status(&id).await.expect("status");
            assert_eq!(status.state, ContainerState::Running);
            assert!(status.image_ref.starts_with("docker.io/library/busybox@sha256:"));
            tokio::time::sleep(run + Duration::from_millis(10)).await;
            let status = rt.container_status(&id).await.expect("status");
            match want {
                None => assert_eq!(status.state, ContainerState::Running, "{policy} {exit:?}"),
                Some(code) => {
                    assert_eq!(status.state, ContainerState::Exited, "{policy} {exit:?}");
                    assert_eq!(status.exit_code, Some(code), "{policy} {exit:?}");
                }
            }
            let mut kinds = Vec::new();
            while let Some(Some(e)) = events.next().now_or_never() {
                assert_eq!(e.pod_uid, "u1");
                kinds.push(e.kind);
            }
            let mut expected = vec![ContainerEventKind::Created, ContainerEventKind::Started];
            if want.is_some() {
                expected.push(ContainerEventKind::Stopped);
            }
            assert_eq!(kinds, expected, "{policy} {exit:?}");
        }
    }

    #[tokio::test]
    async fn create_needs_a_pulled_image_and_a_ready_sandbox() {
        let rt = FakeRuntime::new(Duration::from_secs(1));
        let sb = sandbox_config("Always", None);
        let sandbox = rt.run_pod_sandbox(&sb).await.expect("sandbox");
        let config = ContainerConfig { name: "c".into(), image: "busybox:1.36".into(), ..Default::default() };
        assert!(matches!(rt.create_container(&sandbox, &config, &sb).await, Err(RuntimeError::ImageNotPresent(_))));
        rt.pull_image("busybox:1.36", None).await.expect("pull");
        rt.stop_pod_sandbox(&sandbox).await.expect("stop");
        assert!(rt.create_container(&sandbox, &config, &sb).await.is_err());
        rt.remove_pod_sandbox(&sandbox).await.expect("remove");
        rt.remove_pod_sandbox(&sandbox).await.expect("remove twice");
        assert!(rt.list_pod_sandboxes().await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn stop_and_remove_are_idempotent() {
        let rt = FakeRuntime::new(Duration::from_secs(1));
        let sb = sandbox_config("Always", None);
        let (sandbox, id) = start(&rt, &sb, false).await;
        rt.stop_container(&id, Duration::ZERO).await.expect("stop");
        rt.stop_container(&id, Duration::ZERO).await.expect("stop again");
        let s = rt.container_status(&id).await.expect("status");
        assert_eq!((s.state, s.exit_code), (ContainerState::Exited, Some(0)));
        rt.remove_pod_sandbox(&sandbox).await.expect("remove");
        assert!(matches!(rt.container_status(&id).await, Err(RuntimeError::NotFound { .. })));
    }

    #[test]
    fn digests_are_stable_and_distinct() {
        let a = stable_digest("docker.io/library/busybox:1.36");
        assert_eq!(a.len(), 64);
        assert_eq!(a, stable_digest("docker.io/library/busybox:1.36"));
        assert_ne!(a, stable_digest("docker.io/library/busybox:1.37"));
        // Pinned so that a change of the hash (and of every imageID a cluster reported) is noticed.
        assert_eq!(
            &stable_digest("")[..16],
            &format!("{:016x}", {
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                for b in 0u64.to_le_bytes() {
                    h ^= u64::from(b);
                    h = h.wrapping_mul(0x0000_0100_0000_01b3);
                }
                h
            })
        );
    }

    async fn read_all(stream: BoxStream<'static, RuntimeResult<Vec<u8>>>) -> String {
        let chunks: Vec<Vec<u8>> = stream.map(|c| c.expect("chunk")).collect().await;
        String::from_utf8(chunks.concat()).expect("utf-8")
    }

    fn texts(log: &str) -> Vec<&str> {
        log.lines().map(|l| l.splitn(4, ' ').nth(3).unwrap_or("")).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn logs_tick_and_follow_until_exit() {
        let rt = FakeRuntime::new(Duration::from_secs(10));
        let mut sb = sandbox_config("Never", None);
        sb.annotations.insert(LOG_INTERVAL_ANNOTATION.into(), "1s".into());
        let (_, id) = start(&rt, &sb, false).await;
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let all = read_all(rt.container_logs(&id, &LogOptions::default()).await.expect("logs")).await;
        assert_eq!(texts(&all), ["skiff-fake: started", "tick 1", "tick 2", "tick 3"]);
        let tail = LogOptions { tail_lines: Some(1), ..Default::default() };
        assert_eq!(texts(&read_all(rt.container_logs(&id, &tail).await.expect("logs")).await), ["tick 3"]);

        // A follow read from the tail gets every new line and ends when the container exits.
        let follow = LogOptions { follow: true, tail_lines: Some(1), ..Default::default() };
        let stream = rt.container_logs(&id, &follow).await.expect("logs");
        let followed = tokio::spawn(read_all(stream));
        tokio::time::sleep(Duration::from_secs(10)).await;
        let got = followed.await.expect("join");
        let got = texts(&got);
        assert_eq!(got.first(), Some(&"tick 3"));
        assert_eq!(got.last(), Some(&"skiff-fake: exited with code 0"));
        assert!(got.contains(&"tick 9"), "{got:?}");
        rt.write_log(&id, "2024-01-01T00:00:00Z stderr P half").expect("write");
        let all = read_all(rt.container_logs(&id, &LogOptions::default()).await.expect("logs")).await;
        assert!(all.ends_with("2024-01-01T00:00:00Z stderr P half\n"), "{all}");
    }

    async fn exec(rt: &FakeRuntime, id: &str, command: &[&str], stdin: Option<&str>) -> (String, String, i32) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let request = ExecRequest {
            command: command.iter().map(|s| s.to_string()).collect(),
            tty: false,
            stdin: stdin.is_some(),
        };
        let mut s = rt.exec(id, &request).await.expect("exec");
        if let (Some(mut w), Some(input)) = (s.stdin.take(), stdin) {
            w.write_all(input.as_bytes()).await.expect("stdin");
            w.shutdown().await.expect("close stdin");
        }
        let (mut out, mut err) = (String::new(), String::new());
        s.stdout.read_to_string(&mut out).await.expect("stdout");
        if let Some(mut e) = s.stderr.take() {
            e.read_to_string(&mut err).await.expect("stderr");
        }
        (out, err, s.exit.await.expect("exit"))
    }

    #[tokio::test]
    async fn exec_runs_the_built_in_commands() {
        let rt = FakeRuntime::new(Duration::from_secs(1));
        let (_, id) = start(&rt, &sandbox_config("Always", None), false).await;
        assert_eq!(exec(&rt, &id, &["echo", "hello", "world"], None).await, ("hello world\n".into(), String::new(), 0));
        assert_eq!(exec(&rt, &id, &["sh", "-c", "exit 3"], None).await, (String::new(), String::new(), 3));
        assert_eq!(exec(&rt, &id, &["/bin/cat"], Some("piped\n")).await, ("piped\n".into(), String::new(), 0));
        let (out, err, code) = exec(&rt, &id, &["ls"], None).await;
        assert_eq!((out.as_str(), code), ("", 127));
        assert!(err.contains("executable file not found"), "{err}");
        rt.stop_container(&id, Duration::ZERO).await.expect("stop");
        let request = ExecRequest { command: vec!["echo".into()], ..Default::default() };
        assert!(rt.exec(&id, &request).await.is_err(), "exec needs a running container");
    }
}
