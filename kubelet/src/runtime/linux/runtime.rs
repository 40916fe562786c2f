//! The built-in Linux runtime behind [`Runtime`]: sandboxes are pinned namespaces plus a veth on
//! the node bridge; containers are started and supervised by `skiff shim` processes; everything
//! is recorded under the node's `<data-dir>/agent/` so that a restarted kubelet finds it again.
//!
//! Layout (all under `root` = `<data-dir>/agent`):
//! - `sandboxes/<id>/sandbox.json`, `ns/{net,uts,ipc}` (pinned), `hosts`, `hostname`, `resolv.conf`;
//! - `containers/<id>/meta.json` (what CRI reports), `spec.json` (what the shim runs),
//!   `state.json` / `exit.json` (written by the shim), `upper/`, `work/`, `rootfs/`;
//! - `store/` (images), `snapshots/` (unpacked layers), `logs/` (CRI logs, by the kubelet).
//!
//! This process never forks, unshares or pivots itself (see [`Runtime`]); it spawns the shim
//! with fork+exec and reads and writes files.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::cgroups::{Cgroup, Layout};
use super::image_gc;
use super::images::{Image, ImageStore};
use super::registry::auth::Credentials;
use super::registry::hosts::RegistriesFile;
use super::registry::{PullError, Registry};

/// Image GC leaves unreferenced blobs younger than this (an import writes its blobs before it
/// records the image's reference).
const BLOB_MIN_AGE: Duration = Duration::from_secs(60);
use super::network::{hosts_file, NodeNetwork};
use super::shim::{
    self, pause::PauseReport, read_json, write_json, ExitRecord, MountKind, MountSpec, ShimSpec, ShimState,
    StartReport, UserSpec, EXIT_FILE, SHIM_VERSION, SPEC_FILE, STATE_FILE,
};
use super::snapshots::Snapshots;
use super::{netns, shim::process_alive};
use crate::runtime::{
    AuthConfig, ContainerConfig, ContainerEvent, ContainerEventKind, ContainerFilter, ContainerState, ContainerStatus,
    ExecOutput, ExecRequest, ExecSession, ImageGcPolicy, ImageGcReport, ImageInfo, LogOptions, NamespaceMode,
    PodSandboxConfig, PodSandboxStatus, Runtime, RuntimeError, RuntimeResult, RuntimeVersion, SandboxMetadata,
    SandboxState,
};

/// How long the shim may take to report a start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long after SIGKILL a container's shim may take to record the exit.
const KILL_GRACE: Duration = Duration::from_secs(10);

fn failed(action: &'static str, id: &str, message: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Failed { action, id: id.to_string(), message: message.to_string() }
}

fn not_found(kind: &'static str, id: &str) -> RuntimeError {
    RuntimeError::NotFound { kind, id: id.to_string() }
}

fn new_id() -> String {
    let a: u128 = rand::random();
    let b: u128 = rand::random();
    format!("{a:032x}{b:032x}")
}

/// How long a port-forward waits for the pod's port to accept.
const PORT_FORWARD_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

/// `sandboxes/<id>/sandbox.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SandboxRecord {
    version: u32,
    id: String,
    name: String,
    namespace: String,
    uid: String,
    attempt: u32,
    created_at: String,
    ip: Option<IpAddr>,
    ready: bool,
    labels: BTreeMap<String, String>,
    cgroup_parent: String,
    /// Has its own network namespace (not `hostNetwork`).
    own_network: bool,
    /// The pod's log directory, removed with the sandbox.
    #[serde(default)]
    log_directory: Option<PathBuf>,
    /// The first process of the pod's shared pid namespace (`shareProcessNamespace`): pid and
    /// start time, from `skiff shim pause`.
    #[serde(default)]
    pause: Option<(u32, u64)>,
}

/// `containers/<id>/meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ContainerRecord {
    version: u32,
    id: String,
    sandbox_id: String,
    name: String,
    attempt: u32,
    image: String,
    image_ref: String,
    labels: BTreeMap<String, String>,
    created_at: String,
    log_path: Option<PathBuf>,
    /// The container's cgroup, relative to the cgroupfs mount.
    cgroup: String,
}

/// The image's own defaults (the `config` of its OCI config blob).
#[derive(Debug, Default, Deserialize)]
struct ImageConfig {
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
    #[serde(rename = "Entrypoint", default)]
    entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    cmd: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default)]
    working_dir: Option<String>,
    #[serde(rename = "User", default)]
    user: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ImageConfigFile {
    #[serde(default)]
    config: Option<ImageConfig>,
}

/// The command a container runs, as Kubernetes merges it with the image: `command` replaces the
/// entrypoint (and drops the image's cmd), `args` replace the cmd.
pub fn merge_command(command: &[String], args: &[String], entrypoint: &[String], cmd: &[String]) -> Vec<String> {
    match (command.is_empty(), args.is_empty()) {
        (false, _) => command.iter().chain(args).cloned().collect(),
        (true, false) => entrypoint.iter().chain(args).cloned().collect(),
        (true, true) => entrypoint.iter().chain(cmd).cloned().collect(),
    }
}

/// The environment: the image's, then `HOSTNAME`, then the container's (later names win, order kept).
pub fn merge_env(image: &[String], hostname: &str, container: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| match out.iter_mut().find(|(name, _)| name == k) {
        Some(slot) => slot.1 = v.to_string(),
        None => out.push((k.to_string(), v.to_string())),
    };
    for e in image {
        let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
        set(k, v);
    }
    if !hostname.is_empty() {
        set("HOSTNAME", hostname);
    }
    for (k, v) in container {
        set(k, v);
    }
    if !out.iter().any(|(k, _)| k == "PATH") {
        out.insert(0, ("PATH".into(), shim::DEFAULT_PATH_ENV.into()));
    }
    out.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The capabilities a container keeps: the default set, plus `add`, minus `drop` (`ALL` as upstream).
pub fn capabilities(add: &[String], drop: &[String]) -> Vec<String> {
    let norm = |s: &String| s.strip_prefix("CAP_").unwrap_or(s).to_ascii_uppercase();
    let add: Vec<String> = add.iter().map(norm).collect();
    let drop: Vec<String> = drop.iter().map(norm).collect();
    let mut out: Vec<String> = if add.iter().any(|c| c == "ALL") {
        shim::ALL_CAPABILITIES.iter().map(|s| s.to_string()).collect()
    } else {
        shim::DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).chain(add.iter().cloned()).collect()
    };
    if drop.iter().any(|c| c == "ALL") {
        out.retain(|c| add.contains(c) && !add.iter().any(|a| a == "ALL"));
    }
    out.retain(|c| !drop.contains(c));
    out.sort();
    out.dedup();
    out
}

#[derive(Default)]
struct State {
    sandboxes: HashMap<String, SandboxRecord>,
    containers: HashMap<String, ContainerRecord>,
    subscribers: Vec<mpsc::UnboundedSender<ContainerEvent>>,
}

pub struct LinuxRuntime {
    root: PathBuf,
    store: ImageStore,
    registry: Arc<Registry>,
    /// Image GC's view of each image (manifest digest): when last in use, when first seen.
    image_seen: Mutex<HashMap<String, (Option<std::time::Instant>, std::time::Instant)>>,
    snapshots: Snapshots,
    cgroups: Layout,
    shim: PathBuf,
    network: tokio::sync::OnceCell<NodeNetwork>,
    state: Arc<Mutex<State>>,
    /// Stops the image drop-directory watcher when the runtime goes.
    stop: tokio_util::sync::CancellationToken,
    /// Container log rotation: (max bytes, files kept), for the containers created from now on.
    log_rotation: Mutex<(u64, u32)>,
}

/// Upstream's `--container-log-max-size` and `--container-log-max-files` defaults.
pub const DEFAULT_LOG_MAX_SIZE: u64 = 10 * 1024 * 1024;
pub const DEFAULT_LOG_MAX_FILES: u32 = 5;

impl Drop for LinuxRuntime {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl LinuxRuntime {
    /// Opens the runtime of the node whose state is under `root` (`<data-dir>/agent`), with
    /// cgroupfs at `cgroup_mount` and the shim started as `shim` (normally `/proc/self/exe`).
    /// Finds the sandboxes and containers recorded there and watches the running ones.
    pub fn open(root: &Path, cgroup_mount: &Path, shim: &Path) -> Result<Arc<LinuxRuntime>, RuntimeError> {
        LinuxRuntime::open_with_registries(root, cgroup_mount, shim, RegistriesFile::default())
    }

    /// [`LinuxRuntime::open`] pulling images as the registries config says (mirrors, auth, TLS).
    /// Rotates the logs of containers created from now on past `max_size` bytes, keeping
    /// `max_files` files (0 bytes: never).
    pub fn set_log_rotation(&self, max_size: u64, max_files: u32) {
        *self.log_rotation.lock().unwrap_or_else(|e| e.into_inner()) = (max_size, max_files);
    }

    pub fn open_with_registries(
        root: &Path,
        cgroup_mount: &Path,
        shim: &Path,
        registries: RegistriesFile,
    ) -> Result<Arc<LinuxRuntime>, RuntimeError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| failed("open the Linux runtime", "", format!("{what}: {e}"));
        let store = ImageStore::open(&root.join("store")).map_err(|e| fail("image store", &e))?;
        let snapshots = Snapshots::open(&root.join("snapshots")).map_err(|e| fail("snapshots", &e))?;
        let cgroups = super::cgroups::ensure_mounted(cgroup_mount).map_err(|e| fail("cgroups", &e))?;
        for d in ["sandboxes", "containers", "logs"] {
            std::fs::create_dir_all(root.join(d)).map_err(|e| fail(d, &e))?;
        }
        let rt = Arc::new(LinuxRuntime {
            root: root.to_path_buf(),
            registry: Registry::new(registries, store.clone()),
            image_seen: Mutex::default(),
            store,
            snapshots,
            cgroups,
            shim: shim.to_path_buf(),
            network: tokio::sync::OnceCell::new(),
            state: Arc::new(Mutex::new(State::default())),
            stop: tokio_util::sync::CancellationToken::new(),
            log_rotation: Mutex::new((DEFAULT_LOG_MAX_SIZE, DEFAULT_LOG_MAX_FILES)),
        });
        rt.load();
        // Tarballs in `<data-dir>/agent/images/` are imported now and whenever one is added.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let images = root.join("images");
            handle.spawn(super::dropdir::watch(rt.store.clone(), images, rt.stop.clone()));
        }
        Ok(rt)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.root.join("sandboxes").join(id)
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// Reads the records on disk; running containers get an exit watcher.
    fn load(&self) {
        let mut sandboxes = HashMap::new();
        if let Ok(entries) = std::fs::read_dir(self.root.join("sandboxes")) {
            for e in entries.flatten() {
                match read_json::<SandboxRecord>(&e.path().join("sandbox.json")) {
                    Ok(r) if r.version <= SHIM_VERSION => {
                        sandboxes.insert(r.id.clone(), r);
                    }
                    Ok(r) => {
                        tracing::warn!(sandbox = %r.id, version = r.version, "sandbox from a newer version left alone")
                    }
                    Err(err) => tracing::warn!(dir = %e.path().display(), error = %err, "unreadable sandbox record"),
                }
            }
        }
        let mut containers = HashMap::new();
        if let Ok(entries) = std::fs::read_dir(self.root.join("containers")) {
            for e in entries.flatten() {
                match read_json::<ContainerRecord>(&e.path().join("meta.json")) {
                    Ok(r) if r.version <= SHIM_VERSION => {
                        containers.insert(r.id.clone(), r);
                    }
                    Ok(r) => {
                        tracing::warn!(container = %r.id, version = r.version, "container from a newer version left alone")
                    }
                    Err(err) => tracing::warn!(dir = %e.path().display(), error = %err, "unreadable container record"),
                }
            }
        }
        let running: Vec<ContainerRecord> = containers
            .values()
            .filter(|c| matches!(self.read_state(&c.id), Some(s) if process_alive(s.shim_pid, s.shim_start)))
            .cloned()
            .collect();
        {
            let mut st = self.lock();
            st.sandboxes = sandboxes;
            st.containers = containers;
        }
        tracing::info!(running = running.len(), "Linux runtime opened");
        for c in running {
            self.watch_exit(&c);
        }
    }

    fn read_state(&self, id: &str) -> Option<ShimState> {
        read_json(&self.container_dir(id).join(STATE_FILE)).ok()
    }

    fn read_exit(&self, id: &str) -> Option<ExitRecord> {
        read_json(&self.container_dir(id).join(EXIT_FILE)).ok()
    }

    fn emit(&self, c: &ContainerRecord, kind: ContainerEventKind) {
        emit(&self.state, c, kind);
    }

    async fn network(&self) -> RuntimeResult<&NodeNetwork> {
        self.network
            .get_or_try_init(|| async { NodeNetwork::new() })
            .await
            .map_err(|e| failed("set up the pod network", "", e))
    }

    /// Waits (in a task) for the container's shim to end, then emits `Stopped`.
    fn watch_exit(&self, c: &ContainerRecord) {
        let Some(state) = self.read_state(&c.id) else { return };
        let shared = self.state.clone();
        let record = c.clone();
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        handle.spawn(async move {
            wait_for_exit(state.shim_pid, state.shim_start).await;
            emit(&shared, &record, ContainerEventKind::Stopped);
        });
    }

    fn status_of(&self, c: &ContainerRecord) -> ContainerStatus {
        let state = self.read_state(&c.id);
        let exit = self.read_exit(&c.id);
        let created_at = parse_time(&c.created_at).unwrap_or_else(Timestamp::now);
        let mut s = ContainerStatus {
            id: c.id.clone(),
            sandbox_id: c.sandbox_id.clone(),
            name: c.name.clone(),
            restart_count: c.attempt,
            state: ContainerState::Created,
            created_at,
            started_at: state.as_ref().and_then(|s| parse_time(&s.started_at)),
            finished_at: None,
            exit_code: None,
            reason: None,
            message: None,
            image: c.image.clone(),
            image_ref: c.image_ref.clone(),
            labels: c.labels.clone(),
        };
        match (state, exit) {
            (_, Some(exit)) => {
                s.state = ContainerState::Exited;
                s.finished_at = parse_time(&exit.finished_at);
                s.exit_code = Some(exit.exit_code);
                s.reason = exit.reason.clone();
                s.message = exit.message.clone();
                if s.reason.is_none() && exit.signal == Some(9) && self.oom_killed(c) {
                    s.reason = Some("OOMKilled".into());
                } else if s.reason.is_none() {
                    s.reason = Some(if exit.exit_code == 0 { "Completed" } else { "Error" }.into());
                }
            }
            (Some(st), None) => {
                if process_alive(st.shim_pid, st.shim_start) || process_alive(st.pid, st.pid_start) {
                    s.state = ContainerState::Running;
                } else {
                    // The shim is gone without recording the exit (killed from outside).
                    s.state = ContainerState::Exited;
                    s.exit_code = Some(137);
                    s.reason = Some("ContainerStatusUnknown".into());
                    s.message = Some("The container's supervisor ended without recording its exit".into());
                    s.finished_at = Some(Timestamp::now());
                }
            }
            (None, None) => {}
        }
        s
    }

    fn oom_killed(&self, c: &ContainerRecord) -> bool {
        Cgroup::new(self.cgroups.clone(), &c.cgroup).and_then(|g| g.oom_kills()).map(|n| n > 0).unwrap_or(false)
    }

    fn image(&self, reference: &str) -> RuntimeResult<Image> {
        match self.store.resolve(reference) {
            Ok(Some(i)) => Ok(i),
            Ok(None) => Err(RuntimeError::ImageNotPresent(reference.to_string())),
            Err(e) => Err(RuntimeError::InvalidImage { reference: reference.to_string(), message: e.to_string() }),
        }
    }

    /// One image GC pass (see [`super::image_gc`]).
    async fn gc_images(&self, policy: ImageGcPolicy, reclaim_all: bool) -> RuntimeResult<ImageGcReport> {
        let fail = |e: &dyn std::fmt::Display| failed("collect images", "", e);
        let fs = rustix::fs::statvfs(self.store.root()).map_err(|e| fail(&e))?;
        let (capacity, available) = (fs.f_blocks.saturating_mul(fs.f_frsize), fs.f_bavail.saturating_mul(fs.f_frsize));
        let to_free = if reclaim_all {
            u64::MAX
        } else {
            image_gc::bytes_to_free(capacity, available, policy.high_percent, policy.low_percent)
        };
        let in_use: HashSet<String> = self
            .lock()
            .containers
            .values()
            .filter_map(|c| c.image_ref.rsplit_once('@').map(|(_, d)| d.to_string()))
            .collect();
        let images = self.store.list().map_err(|e| fail(&e))?;
        let pinned = self.store.pinned().map_err(|e| fail(&e))?;
        // An image one of whose references is pinned (imported) is never a candidate.
        let pinned_digests: HashSet<&str> =
            images.iter().filter(|i| pinned.contains(&i.reference)).map(|i| i.manifest_digest.as_str()).collect();
        let now = std::time::Instant::now();
        let candidates: Vec<image_gc::Candidate> = {
            let mut seen = self.image_seen.lock().unwrap_or_else(|e| e.into_inner());
            let present: HashSet<&str> = images.iter().map(|i| i.manifest_digest.as_str()).collect();
            seen.retain(|d, _| present.contains(d.as_str()));
            let mut out: HashMap<String, image_gc::Candidate> = HashMap::new();
            for i in &images {
                let entry = seen.entry(i.manifest_digest.clone()).or_insert((None, now));
                if in_use.contains(&i.manifest_digest) {
                    entry.0 = Some(now);
                }
                if pinned_digests.contains(i.manifest_digest.as_str()) {
                    continue;
                }
                out.entry(i.manifest_digest.clone()).or_insert(image_gc::Candidate {
                    digest: i.manifest_digest.clone(),
                    size: i.size,
                    last_used: entry.0,
                    first_seen: entry.1,
                });
            }
            out.into_values().collect()
        };
        let mut report = ImageGcReport::default();
        if to_free == 0 {
            return Ok(report);
        }
        let selected: HashSet<String> =
            image_gc::select(candidates, &in_use, to_free, policy.min_age, now).into_iter().collect();
        if !selected.is_empty() {
            report.images = self.store.remove_digests(&selected).map_err(|e| fail(&e))?;
        }
        // No pull runs while blobs go (a pull may count on a blob it found present).
        let gate = self.registry.gate().write_owned().await;
        let (store, snapshots) = (self.store.clone(), self.snapshots.clone());
        let (blobs, bytes, layers) = tokio::task::spawn_blocking(move || {
            let _gate = gate;
            let reachable = store.reachable(&in_use).map_err(|e| e.to_string())?;
            let (blobs, bytes) = store.remove_blobs(&reachable, BLOB_MIN_AGE).map_err(|e| e.to_string())?;
            let layers = snapshots.remove_unused(&reachable).map_err(|e| e.to_string())?;
            Ok::<_, String>((blobs, bytes, layers.len()))
        })
        .await
        .map_err(|e| fail(&e))?
        .map_err(|e| fail(&e))?;
        (report.blobs, report.bytes, report.layers) = (blobs, bytes, layers);
        tracing::info!(
            images = ?report.images, blobs, bytes, layers, to_free, capacity, available, "image garbage collection"
        );
        Ok(report)
    }

    fn image_config(&self, image: &Image) -> RuntimeResult<ImageConfig> {
        let path = self.store.blob_path(&image.config_digest);
        let file: ImageConfigFile =
            read_json(&path).map_err(|e| failed("read the image config", &image.reference, e))?;
        Ok(file.config.unwrap_or_default())
    }

    async fn do_run_sandbox(&self, config: &PodSandboxConfig) -> RuntimeResult<String> {
        let meta = config.metadata.clone().unwrap_or(SandboxMetadata {
            name: String::new(),
            namespace: String::new(),
            uid: String::new(),
            attempt: 0,
        });
        let id = new_id();
        let dir = self.sandbox_dir(&id);
        std::fs::create_dir_all(&dir).map_err(|e| failed("create sandbox", &id, e))?;
        let record = SandboxRecord {
            version: SHIM_VERSION,
            id: id.clone(),
            name: meta.name.clone(),
            namespace: meta.namespace.clone(),
            uid: meta.uid.clone(),
            attempt: meta.attempt,
            created_at: Timestamp::now().to_string(),
            ip: config.network.as_ref().map(|n| n.ip),
            ready: true,
            labels: config.labels.clone(),
            cgroup_parent: config.linux.cgroup_parent.trim_matches('/').to_string(),
            own_network: config.network.is_some(),
            log_directory: config.log_directory.clone(),
            pause: None,
        };
        // Recorded first, so a failure below leaves something `remove_pod_sandbox` can clean.
        write_json(&dir.join("sandbox.json"), &record).map_err(|e| failed("create sandbox", &id, e))?;
        self.lock().sandboxes.insert(id.clone(), record.clone());
        match self.setup_sandbox(&id, &dir, config, &record).await {
            Ok(()) => Ok(id),
            Err(e) => {
                if let Err(cleanup) = self.do_remove_sandbox(&id).await {
                    tracing::warn!(sandbox = %id, error = %cleanup, "cleaning up a failed sandbox");
                }
                Err(e)
            }
        }
    }

    async fn setup_sandbox(
        &self,
        id: &str,
        dir: &Path,
        config: &PodSandboxConfig,
        record: &SandboxRecord,
    ) -> RuntimeResult<()> {
        let hostname = record.own_network.then(|| config.hostname.clone());
        let ns_dir = dir.join("ns");
        let ns = tokio::task::spawn_blocking(move || netns::create(&ns_dir, hostname.as_deref()))
            .await
            .map_err(|e| failed("create the pod's namespaces", id, e))?
            .map_err(|e| failed("create the pod's namespaces", id, e))?;
        if !record.cgroup_parent.is_empty() {
            let g = Cgroup::new(self.cgroups.clone(), &record.cgroup_parent)
                .map_err(|e| failed("create the pod cgroup", id, e))?;
            g.create().map_err(|e| failed("create the pod cgroup", id, e))?;
        }
        if let (Some(net), Some(path)) = (&config.network, &ns.net) {
            self.network().await?.attach(id, path, net).await.map_err(|e| failed("set up the pod network", id, e))?;
        }
        if config.linux.security_context.namespace_options.pid == NamespaceMode::Pod {
            self.start_pause(id, dir, record).await?;
        }
        let node_hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string();
        let hostname = if record.own_network { config.hostname.clone() } else { node_hostname };
        let hosts = if record.own_network {
            hosts_file(record.ip, &hostname, None)
        } else {
            std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| hosts_file(None, &hostname, None))
        };
        let resolv = match &config.dns_config {
            Some(d) => {
                let mut s = String::new();
                if !d.searches.is_empty() {
                    s.push_str(&format!("search {}\n", d.searches.join(" ")));
                }
                for server in &d.servers {
                    s.push_str(&format!("nameserver {server}\n"));
                }
                if !d.options.is_empty() {
                    s.push_str(&format!("options {}\n", d.options.join(" ")));
                }
                s
            }
            None => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        };
        for (name, text) in [("hosts", hosts), ("hostname", format!("{hostname}\n")), ("resolv.conf", resolv)] {
            std::fs::write(dir.join(name), text).map_err(|e| failed("write the pod's /etc files", id, e))?;
        }
        Ok(())
    }

    /// Starts the first process of the pod's shared pid namespace (`skiff shim pause`), in the
    /// pod's cgroup, and records it.
    async fn start_pause(&self, id: &str, dir: &Path, record: &SandboxRecord) -> RuntimeResult<()> {
        let fail = |e: &dyn std::fmt::Display| failed("start the pod's shared pid namespace", id, e.to_string());
        let mut cmd = tokio::process::Command::new(&self.shim);
        cmd.args(["shim", "pause"]);
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null());
        let out = tokio::time::timeout(START_TIMEOUT, cmd.output())
            .await
            .map_err(|_| fail(&"the pause process did not report in time"))?
            .map_err(|e| fail(&format!("run {}: {e}", self.shim.display())))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let report: PauseReport = serde_json::from_str(text.trim())
            .map_err(|_| fail(&format!("the pause process answered {:?}", text.trim())))?;
        let (Some(pid), Some(start), true) = (report.pid, report.pid_start, report.ok) else {
            return Err(fail(&report.error.unwrap_or_else(|| "unknown error".into())));
        };
        let mut rec = record.clone();
        rec.pause = Some((pid, start));
        // Recorded before anything else can fail, so a stop finds it.
        self.lock().sandboxes.insert(id.to_string(), rec.clone());
        write_json(&dir.join("sandbox.json"), &rec).map_err(|e| fail(&e))?;
        if !rec.cgroup_parent.is_empty() {
            let g = Cgroup::new(self.cgroups.clone(), &rec.cgroup_parent).map_err(|e| fail(&e))?;
            g.add_process(pid).map_err(|e| fail(&e))?;
        }
        Ok(())
    }

    async fn do_stop_sandbox(&self, id: &str) -> RuntimeResult<()> {
        let Some(record) = self.lock().sandboxes.get(id).cloned() else { return Ok(()) };
        let ids: Vec<String> =
            self.lock().containers.values().filter(|c| c.sandbox_id == id).map(|c| c.id.clone()).collect();
        for c in ids {
            self.do_stop_container(&c, Duration::ZERO).await?;
        }
        if let Some((pid, start)) = record.pause.filter(|(pid, start)| process_alive(*pid, *start)) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
            if tokio::time::timeout(KILL_GRACE, wait_for_exit(pid, start)).await.is_err() {
                return Err(failed("stop sandbox", id, "the pod's pid namespace init did not end after SIGKILL"));
            }
        }
        if record.own_network {
            self.network().await?.detach(id).await.map_err(|e| failed("tear down the pod network", id, e))?;
        }
        let mut st = self.lock();
        if let Some(r) = st.sandboxes.get_mut(id) {
            r.ready = false;
            let _ = write_json(&self.sandbox_dir(id).join("sandbox.json"), r);
        }
        Ok(())
    }

    async fn do_remove_sandbox(&self, id: &str) -> RuntimeResult<()> {
        self.do_stop_sandbox(id).await?;
        let ids: Vec<String> =
            self.lock().containers.values().filter(|c| c.sandbox_id == id).map(|c| c.id.clone()).collect();
        for c in ids {
            self.do_remove_container(&c).await?;
        }
        let dir = self.sandbox_dir(id);
        netns::remove(&dir.join("ns")).map_err(|e| failed("remove the pod's namespaces", id, e))?;
        let record = self.lock().sandboxes.get(id).cloned();
        if let Some(r) = record.filter(|r| !r.cgroup_parent.is_empty()) {
            if let Ok(g) = Cgroup::new(self.cgroups.clone(), &r.cgroup_parent) {
                g.remove().map_err(|e| failed("remove the pod cgroup", id, e))?;
            }
        }
        let logs = self.lock().sandboxes.get(id).and_then(|r| r.log_directory.clone());
        for d in std::iter::once(dir).chain(logs) {
            match std::fs::remove_dir_all(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(failed("remove sandbox", id, format!("{}: {e}", d.display()))),
            }
        }
        self.lock().sandboxes.remove(id);
        Ok(())
    }

    fn do_create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        sandbox_config: &PodSandboxConfig,
    ) -> RuntimeResult<String> {
        let sandbox = self.lock().sandboxes.get(sandbox_id).cloned().ok_or_else(|| not_found("sandbox", sandbox_id))?;
        let image = self.image(&config.image)?;
        let image_config = self.image_config(&image)?;
        let lower_dirs =
            self.snapshots.prepare(&self.store, &image).map_err(|e| failed("unpack the image", &config.image, e))?;
        let id = new_id();
        let dir = self.container_dir(&id);
        let sdir = self.sandbox_dir(sandbox_id);
        for d in ["upper", "work", "rootfs"] {
            std::fs::create_dir_all(dir.join(d)).map_err(|e| failed("create container", &id, e))?;
        }
        let cgroup = format!("{}/{}", sandbox.cgroup_parent, &id[..32]).trim_matches('/').to_string();
        let g =
            Cgroup::new(self.cgroups.clone(), &cgroup).map_err(|e| failed("create the container cgroup", &id, e))?;
        g.create().map_err(|e| failed("create the container cgroup", &id, e))?;
        g.apply(&config.linux.resources).map_err(|e| failed("set the container's resources", &id, e))?;
        let sec = &config.linux.security_context;
        let hostname = if sandbox.own_network { sandbox_config.hostname.clone() } else { String::new() };
        let entrypoint = image_config.entrypoint.clone().unwrap_or_default();
        let cmd = image_config.cmd.clone().unwrap_or_default();
        let args = merge_command(&config.command, &config.args, &entrypoint, &cmd);
        let env = merge_env(image_config.env.as_deref().unwrap_or(&[]), &hostname, &config.env);
        let cwd = config
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .or_else(|| image_config.working_dir.clone().filter(|w| !w.is_empty()))
            .unwrap_or_else(|| "/".into());
        let mut mounts: Vec<MountSpec> = ["hosts", "hostname", "resolv.conf"]
            .iter()
            .map(|f| MountSpec {
                destination: format!("/etc/{f}"),
                kind: MountKind::Bind { source: sdir.join(f).display().to_string(), recursive: false },
                readonly: false,
            })
            .collect();
        for m in &config.mounts {
            mounts.push(MountSpec {
                destination: m.container_path.clone(),
                kind: MountKind::Bind { source: m.host_path.clone(), recursive: true },
                readonly: m.readonly,
            });
        }
        let own = sandbox.own_network;
        let ns = |name: &str| self.sandbox_namespace(sandbox_id, name);
        let (net_ns, uts_ns) = if own { (Some(ns("net")?), Some(ns("uts")?)) } else { (None, None) };
        let ipc_ns = ns("ipc")?;
        let pid_ns = match sec.namespace_options.pid {
            NamespaceMode::Node => Some(PathBuf::from("/proc/self/ns/pid")),
            NamespaceMode::Pod => match sandbox.pause.filter(|(pid, start)| process_alive(*pid, *start)) {
                Some((pid, _)) => Some(PathBuf::from(format!("/proc/{pid}/ns/pid"))),
                None => {
                    return Err(failed(
                        "create container",
                        sandbox_id,
                        "the pod's shared pid namespace is gone (its first process ended)",
                    ))
                }
            },
            NamespaceMode::Container => None,
        };
        let log_path = match (&sandbox_config.log_directory, &config.log_path) {
            (Some(d), Some(p)) => Some(d.join(p)),
            _ => None,
        };
        let (log_max_size, log_max_files) = *self.log_rotation.lock().unwrap_or_else(|e| e.into_inner());
        let spec = ShimSpec {
            version: SHIM_VERSION,
            id: id.clone(),
            lower_dirs,
            upper_dir: dir.join("upper"),
            work_dir: dir.join("work"),
            rootfs: dir.join("rootfs"),
            readonly_rootfs: sec.readonly_rootfs,
            net_ns,
            uts_ns,
            ipc_ns: Some(ipc_ns),
            pid_ns,
            hostname,
            args,
            env,
            cwd,
            user: UserSpec {
                user: image_config.user.clone().unwrap_or_default(),
                uid: sec.run_as_user.and_then(|u| u32::try_from(u).ok()),
                gid: sec.run_as_group.and_then(|g| u32::try_from(g).ok()),
                additional_gids: sec.supplemental_groups.iter().filter_map(|g| u32::try_from(*g).ok()).collect(),
            },
            mounts,
            cgroup_procs: g.dirs().into_iter().map(|d| d.join("cgroup.procs")).collect(),
            log_path: log_path.clone(),
            privileged: sec.privileged,
            no_new_privs: sec.no_new_privs,
            capabilities: capabilities(&sec.capabilities.add, &sec.capabilities.drop),
            masked_paths: sec.masked_paths.clone(),
            readonly_paths: sec.readonly_paths.clone(),
            oom_score_adj: config.linux.resources.oom_score_adj,
            sysctls: sandbox_config.linux.sysctls.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            stdin: config.stdin,
            stdin_once: config.stdin_once,
            tty: config.tty,
            log_max_size,
            log_max_files,
        };
        write_json(&dir.join(SPEC_FILE), &spec).map_err(|e| failed("create container", &id, e))?;
        let record = ContainerRecord {
            version: SHIM_VERSION,
            id: id.clone(),
            sandbox_id: sandbox_id.to_string(),
            name: config.name.clone(),
            attempt: config.attempt,
            image: config.image.clone(),
            image_ref: format!("{}@{}", image_name(&image.reference), image.manifest_digest),
            labels: config.labels.clone(),
            created_at: Timestamp::now().to_string(),
            log_path,
            cgroup,
        };
        write_json(&dir.join("meta.json"), &record).map_err(|e| failed("create container", &id, e))?;
        self.lock().containers.insert(id.clone(), record.clone());
        self.emit(&record, ContainerEventKind::Created);
        Ok(id)
    }

    /// A path to one of the sandbox's namespaces: its pin, when this process's mount namespace
    /// shows it (the pin is a bind mount, visible only in the mount namespace it was made in and
    /// those that share it — a kubelet restarted under a new `ip netns exec` has a new one), or
    /// else the namespace of one of the pod's running containers.
    fn sandbox_namespace(&self, sandbox_id: &str, name: &str) -> RuntimeResult<PathBuf> {
        const NSFS_MAGIC: i64 = 0x6e73_6673;
        let pin = self.sandbox_dir(sandbox_id).join("ns").join(name);
        // `f_type` is i64 here but a narrower type on some architectures.
        #[allow(clippy::unnecessary_cast)]
        if rustix::fs::statfs(&pin).is_ok_and(|s| s.f_type as i64 == NSFS_MAGIC) {
            return Ok(pin);
        }
        let ids: Vec<String> =
            self.lock().containers.values().filter(|c| c.sandbox_id == sandbox_id).map(|c| c.id.clone()).collect();
        for id in ids {
            if let Some(st) = self.read_state(&id).filter(|st| process_alive(st.pid, st.pid_start)) {
                if self.read_exit(&id).is_none() {
                    return Ok(PathBuf::from(format!("/proc/{}/ns/{name}", st.pid)));
                }
            }
        }
        Err(failed(
            "create container",
            sandbox_id,
            format!("the pod's {name} namespace is not reachable from this kubelet (its pin is in another mount namespace and no container of the pod runs)"),
        ))
    }

    async fn do_start_container(&self, id: &str) -> RuntimeResult<()> {
        let record = self.lock().containers.get(id).cloned().ok_or_else(|| not_found("container", id))?;
        if self.read_state(id).is_some() || self.read_exit(id).is_some() {
            return Err(failed("start container", id, "the container was started before"));
        }
        let dir = self.container_dir(id);
        let mut cmd = tokio::process::Command::new(&self.shim);
        cmd.arg("shim").arg("run").arg(&dir);
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null());
        cmd.kill_on_drop(false);
        let out = tokio::time::timeout(START_TIMEOUT, cmd.output())
            .await
            .map_err(|_| failed("start container", id, "the shim did not report in time"))?
            .map_err(|e| failed("start container", id, format!("run {}: {e}", self.shim.display())))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let report: StartReport = serde_json::from_str(text.trim())
            .map_err(|_| failed("start container", id, format!("the shim answered {:?}", text.trim())))?;
        if !report.ok {
            self.emit(&record, ContainerEventKind::Stopped);
            return Err(failed("start container", id, report.error.unwrap_or_else(|| "unknown error".into())));
        }
        self.emit(&record, ContainerEventKind::Started);
        self.watch_exit(&record);
        Ok(())
    }

    async fn do_stop_container(&self, id: &str, timeout: Duration) -> RuntimeResult<()> {
        let record = self.lock().containers.get(id).cloned().ok_or_else(|| not_found("container", id))?;
        let Some(state) = self.read_state(id) else { return Ok(()) };
        if self.read_exit(id).is_some() {
            return Ok(());
        }
        let shim_alive = process_alive(state.shim_pid, state.shim_start);
        if !shim_alive && !process_alive(state.pid, state.pid_start) {
            return Ok(());
        }
        let signal = |sig| {
            if process_alive(state.pid, state.pid_start) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(state.pid as i32), sig);
            }
        };
        if !timeout.is_zero() {
            signal(nix::sys::signal::Signal::SIGTERM);
            let _ = tokio::time::timeout(timeout, wait_for_exit(state.pid, state.pid_start)).await;
        }
        // Everything in the container's cgroup, so that nothing it forked survives it.
        if let Ok(g) = Cgroup::new(self.cgroups.clone(), &record.cgroup) {
            let kill = |pid: u32| {
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            };
            if let Err(e) = g.kill_all(kill) {
                tracing::warn!(container = %id, error = %e, "killing the container's processes");
            }
        }
        signal(nix::sys::signal::Signal::SIGKILL);
        let (pid, start) = if shim_alive { (state.shim_pid, state.shim_start) } else { (state.pid, state.pid_start) };
        if tokio::time::timeout(KILL_GRACE, wait_for_exit(pid, start)).await.is_err() {
            return Err(failed("stop container", id, "it did not end after SIGKILL"));
        }
        Ok(())
    }

    async fn do_remove_container(&self, id: &str) -> RuntimeResult<()> {
        let Some(record) = self.lock().containers.get(id).cloned() else { return Ok(()) };
        self.do_stop_container(id, Duration::ZERO).await?;
        if let Ok(g) = Cgroup::new(self.cgroups.clone(), &record.cgroup) {
            g.remove().map_err(|e| failed("remove the container cgroup", id, e))?;
        }
        if let Some(log) = &record.log_path {
            for file in std::iter::once(log.clone()).chain(shim::logs::rotated_files(log)) {
                match std::fs::remove_file(&file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!(container = %id, error = %e, "removing the container's log"),
                }
            }
        }
        let dir = self.container_dir(id);
        let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir))
            .await
            .map_err(|e| failed("remove container", id, e))?;
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed("remove container", id, e)),
        }
        self.lock().containers.remove(id);
        self.emit(&record, ContainerEventKind::Deleted);
        Ok(())
    }

    fn image_info(&self, image: &Image) -> ImageInfo {
        let refs = self.store.refs().unwrap_or_default();
        let tags: Vec<String> = refs
            .iter()
            .filter(|(r, d)| **d == image.manifest_digest && !r.contains('@'))
            .map(|(r, _)| r.clone())
            .collect();
        let mut digests: Vec<String> =
            tags.iter().map(|t| format!("{}@{}", image_name(t), image.manifest_digest)).collect();
        digests.sort();
        digests.dedup();
        ImageInfo { id: image.config_digest.clone(), repo_tags: tags, repo_digests: digests, size: image.size }
    }

    fn logs(&self, id: &str, options: &LogOptions) -> RuntimeResult<BoxStream<'static, RuntimeResult<Vec<u8>>>> {
        let record = self.lock().containers.get(id).cloned().ok_or_else(|| not_found("container", id))?;
        let Some(path) = record.log_path.clone() else {
            return Ok(futures::stream::empty().boxed());
        };
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(failed("read the log", id, e)),
        };
        let mut lines: Vec<Vec<u8>> = text.split_inclusive(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
        if let Some(since) = options.since {
            lines.retain(|l| {
                let ts = l.split(|b| *b == b' ').next().and_then(|t| std::str::from_utf8(t).ok());
                ts.and_then(parse_time).is_none_or(|t| t >= since)
            });
        }
        if let Some(t) = options.tail_lines {
            let t = usize::try_from(t).unwrap_or(usize::MAX);
            let skip = lines.len().saturating_sub(t);
            lines.drain(..skip);
        }
        let head = futures::stream::iter(lines.into_iter().map(Ok));
        if !options.follow {
            return Ok(head.boxed());
        }
        let offset = text.len() as u64;
        let dir = self.container_dir(id);
        let follow = futures::stream::unfold((path, offset, dir, false), |(path, offset, dir, ended)| async move {
            if ended {
                return None;
            }
            loop {
                let exited = dir.join(EXIT_FILE).exists() || !dir.exists();
                let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(offset);
                if len > offset {
                    let chunk = read_range(&path, offset, len);
                    // Hand out whole records only.
                    let whole = chunk.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                    if whole > 0 {
                        let data = chunk[..whole].to_vec();
                        return Some((Ok(data), (path, offset + whole as u64, dir, false)));
                    }
                }
                if exited {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Ok(head.chain(follow).boxed())
    }

    /// `exec` with a terminal: the shim relays a pty of the container's devpts; window sizes go
    /// to it through a FIFO in the container's directory, removed when the command ends.
    async fn exec_tty(&self, id: &str, request: &ExecRequest) -> RuntimeResult<ExecSession> {
        if !self.lock().containers.contains_key(id) {
            return Err(not_found("container", id));
        }
        let fifo = self.container_dir(id).join(format!("exec-{:016x}.resize", rand::random::<u64>()));
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(|e| failed("exec in container", id, e))?;
        // Opened for reading and writing, so that neither side blocks on the other's open.
        let writer = std::fs::OpenOptions::new().read(true).write(true).open(&fifo);
        let writer = match writer {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_file(&fifo);
                return Err(failed("exec in container", id, e));
            }
        };
        let mut cmd = tokio::process::Command::new(&self.shim);
        cmd.arg("shim").arg("exec").arg("--tty").arg("--resize").arg(&fifo).arg(self.container_dir(id));
        cmd.arg("--").args(&request.command).kill_on_drop(true);
        cmd.stdin(if request.stdin { std::process::Stdio::piped() } else { std::process::Stdio::null() });
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_file(&fifo);
                return Err(failed("exec in container", id, e));
            }
        };
        let stdin = child.stdin.take().map(|s| Box::pin(s) as _);
        let stdout = child.stdout.take().ok_or_else(|| failed("exec in container", id, "no stdout"))?;
        let (resize_tx, mut resize_rx) = mpsc::channel::<(u16, u16)>(8);
        tokio::spawn(async move {
            use std::io::Write;
            let mut writer = writer;
            while let Some((cols, rows)) = resize_rx.recv().await {
                if writer.write_all(format!("{cols} {rows}\n").as_bytes()).is_err() {
                    break;
                }
            }
        });
        let owned = id.to_string();
        let exit = async move {
            let status = child.wait().await;
            let _ = std::fs::remove_file(&fifo);
            let status = status.map_err(|e| failed("exec in container", &owned, e))?;
            Ok(status.code().unwrap_or(128))
        }
        .boxed();
        Ok(ExecSession { stdin, stdout: Box::pin(stdout), stderr: None, resize: Some(resize_tx), exit })
    }

    fn exec_command(&self, id: &str, command: &[String]) -> RuntimeResult<tokio::process::Command> {
        if !self.lock().containers.contains_key(id) {
            return Err(not_found("container", id));
        }
        if command.is_empty() {
            return Err(failed("exec in container", id, "no command"));
        }
        let mut cmd = tokio::process::Command::new(&self.shim);
        cmd.arg("shim").arg("exec").arg(self.container_dir(id)).arg("--").args(command);
        cmd.kill_on_drop(true);
        Ok(cmd)
    }
}

/// Attaches through the shim's `attach.sock` (see `shim::attach`): its output messages are
/// split into stdout and stderr; stdin, its end and window sizes go back as messages.
async fn attach_socket(dir: &Path, request: &ExecRequest) -> std::io::Result<ExecSession> {
    use shim::attach::{message, take_messages, RESIZE, STDERR, STDIN, STDIN_CLOSE};
    use std::os::fd::AsRawFd;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The directory's path may be longer than a socket address takes: connect through its fd.
    let handle = std::fs::File::open(dir)?;
    let path = format!("/proc/self/fd/{}/{}", handle.as_raw_fd(), shim::attach::SOCKET);
    let stream = tokio::net::UnixStream::connect(&path).await?;
    drop(handle);
    let (mut rd, mut wr) = stream.into_split();
    let (out_w, out_r) = tokio::io::duplex(64 * 1024);
    let (err_w, err_r) = tokio::io::duplex(64 * 1024);
    let tty = request.tty;
    // The socket stays open both ways until the output ends: the shim takes a client's end of
    // input as its going away.
    let read_done = tokio_util::sync::CancellationToken::new();
    let done = read_done.clone();
    let reader = tokio::spawn(async move {
        let _done = done.drop_guard();
        let (mut out_w, mut err_w) = (out_w, err_w);
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            let Ok(msgs) = take_messages(&mut buf) else { return };
            for (kind, data) in msgs {
                let target = if kind == STDERR && !tty { &mut err_w } else { &mut out_w };
                if target.write_all(&data).await.is_err() {
                    return;
                }
            }
        }
    });
    let (msg_tx, mut msg_rx) = mpsc::channel::<Vec<u8>>(16);
    tokio::spawn(async move {
        while let Some(m) = msg_rx.recv().await {
            if wr.write_all(&m).await.is_err() {
                return;
            }
        }
        read_done.cancelled().await;
        drop(wr);
    });
    let stdin = if request.stdin {
        let (stdin_w, mut stdin_r) = tokio::io::duplex(64 * 1024);
        let tx = msg_tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match stdin_r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(message(STDIN, &buf[..n])).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = tx.send(message(STDIN_CLOSE, &[])).await;
        });
        Some(Box::pin(stdin_w) as std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>)
    } else {
        None
    };
    let (resize_tx, mut resize_rx) = mpsc::channel::<(u16, u16)>(8);
    tokio::spawn(async move {
        while let Some((cols, rows)) = resize_rx.recv().await {
            let mut size = cols.to_be_bytes().to_vec();
            size.extend_from_slice(&rows.to_be_bytes());
            if msg_tx.send(message(RESIZE, &size)).await.is_err() {
                return;
            }
        }
    });
    let exit = async move {
        let _ = reader.await;
        Ok(0)
    }
    .boxed();
    let stderr = (!tty).then(|| Box::pin(err_r) as std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>);
    Ok(ExecSession { stdin, stdout: Box::pin(out_r), stderr, resize: tty.then_some(resize_tx), exit })
}

/// Writes the text of CRI log records to `stdout` and `stderr` (or all to `stdout` when there
/// is no `stderr`), until the records end or the reader goes away.
async fn demux_cri(
    mut records: BoxStream<'static, RuntimeResult<Vec<u8>>>,
    mut stdout: tokio::io::DuplexStream,
    mut stderr: Option<tokio::io::DuplexStream>,
) {
    use tokio::io::AsyncWriteExt;
    while let Some(Ok(chunk)) = records.next().await {
        for line in chunk.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            // `<time> <stream> <F|P> <text>`
            let mut fields = line.splitn(4, |b| *b == b' ');
            let (_, stream, tag) = (fields.next(), fields.next(), fields.next());
            let mut text = fields.next().unwrap_or_default().to_vec();
            if tag != Some(b"P".as_slice()) {
                text.push(b'\n');
            }
            let target = match (&mut stderr, stream) {
                (Some(e), Some(b"stderr")) => e,
                _ => &mut stdout,
            };
            if target.write_all(&text).await.is_err() {
                return;
            }
        }
    }
}

fn read_range(path: &Path, from: u64, to: u64) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else { return Vec::new() };
    if f.seek(SeekFrom::Start(from)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    let _ = f.take(to.saturating_sub(from)).read_to_end(&mut buf);
    buf
}

/// The repository part of a normalised reference (`docker.io/library/busybox:1.36` → `docker.io/library/busybox`).
fn image_name(reference: &str) -> &str {
    if let Some((name, _)) = reference.split_once('@') {
        return name;
    }
    match reference.rfind(':') {
        Some(i) if !reference[i..].contains('/') => &reference[..i],
        _ => reference,
    }
}

fn emit(state: &Mutex<State>, c: &ContainerRecord, kind: ContainerEventKind) {
    let event = ContainerEvent {
        container_id: c.id.clone(),
        sandbox_id: c.sandbox_id.clone(),
        pod_uid: c.labels.get(crate::runtime::LABEL_POD_UID).cloned().unwrap_or_default(),
        kind,
        at: Timestamp::now(),
    };
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    st.subscribers.retain(|tx| tx.send(event.clone()).is_ok());
}

/// Resolves when the process `pid` (started at `start`) has ended: through a pidfd, which becomes
/// readable when the process exits (it need not be our child); polling /proc if pidfds are missing.
async fn wait_for_exit(pid: u32, start: u64) {
    if !process_alive(pid, start) {
        return;
    }
    let fd = rustix::process::Pid::from_raw(pid as i32)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    if let Some(fd) = fd {
        // The pid may have been reused between the check and the open: check again.
        if !process_alive(pid, start) {
            return;
        }
        // SAFETY: the AsyncFd owns the pidfd; nothing else closes it while it is registered.
        let registered = unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) };
        if let Ok(afd) = registered {
            let _ = afd.readable().await;
            return;
        }
    }
    while process_alive(pid, start) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Runtime for LinuxRuntime {
    fn version(&self) -> RuntimeVersion {
        RuntimeVersion { name: "skiff".into(), version: env!("CARGO_PKG_VERSION").into() }
    }

    fn run_pod_sandbox<'a>(&'a self, config: &'a PodSandboxConfig) -> BoxFuture<'a, RuntimeResult<String>> {
        self.do_run_sandbox(config).boxed()
    }

    fn stop_pod_sandbox<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<()>> {
        self.do_stop_sandbox(id).boxed()
    }

    fn remove_pod_sandbox<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<()>> {
        self.do_remove_sandbox(id).boxed()
    }

    fn pod_sandbox_status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<PodSandboxStatus>> {
        let r = self.lock().sandboxes.get(id).map(sandbox_status).ok_or_else(|| not_found("sandbox", id));
        futures::future::ready(r).boxed()
    }

    fn list_pod_sandboxes(&self) -> BoxFuture<'_, RuntimeResult<Vec<PodSandboxStatus>>> {
        let list = self.lock().sandboxes.values().map(sandbox_status).collect();
        futures::future::ready(Ok(list)).boxed()
    }

    fn create_container<'a>(
        &'a self,
        sandbox_id: &'a str,
        config: &'a ContainerConfig,
        sandbox_config: &'a PodSandboxConfig,
    ) -> BoxFuture<'a, RuntimeResult<String>> {
        // Blocking work (the image's layers unpacked on first use, directories, cgroups, records):
        // off the async workers when the runtime has others to give their tasks to.
        let run = || self.do_create_container(sandbox_id, config, sandbox_config);
        let r = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(run)
            }
            _ => run(),
        };
        futures::future::ready(r).boxed()
    }

    fn start_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<()>> {
        self.do_start_container(id).boxed()
    }

    fn stop_container<'a>(&'a self, id: &'a str, timeout: Duration) -> BoxFuture<'a, RuntimeResult<()>> {
        self.do_stop_container(id, timeout).boxed()
    }

    fn remove_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<()>> {
        self.do_remove_container(id).boxed()
    }

    fn container_status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<ContainerStatus>> {
        let record = self.lock().containers.get(id).cloned();
        let r = record.map(|c| self.status_of(&c)).ok_or_else(|| not_found("container", id));
        futures::future::ready(r).boxed()
    }

    fn list_containers<'a>(
        &'a self,
        filter: &'a ContainerFilter,
    ) -> BoxFuture<'a, RuntimeResult<Vec<ContainerStatus>>> {
        let records: Vec<ContainerRecord> = self
            .lock()
            .containers
            .values()
            .filter(|c| filter.sandbox_id.as_ref().is_none_or(|s| *s == c.sandbox_id))
            .cloned()
            .collect();
        let list = records
            .iter()
            .map(|c| self.status_of(c))
            .filter(|s| filter.state.is_none_or(|want| want == s.state))
            .collect();
        futures::future::ready(Ok(list)).boxed()
    }

    fn pull_image<'a>(&'a self, image: &'a str, auth: Option<&'a AuthConfig>) -> BoxFuture<'a, RuntimeResult<String>> {
        async move {
            let creds = auth.map(|a| {
                Credentials::new(a.username.as_deref(), a.password.as_deref(), None, a.identity_token.as_deref())
            });
            self.registry.pull(image, creds).await.map_err(|e| match e {
                PullError::BadReference(_) => {
                    RuntimeError::InvalidImage { reference: image.to_string(), message: e.to_string() }
                }
                e => failed("pull image", image, e),
            })?;
            let i = self.image(image)?;
            Ok(format!("{}@{}", image_name(&i.reference), i.manifest_digest))
        }
        .boxed()
    }

    fn image_status<'a>(&'a self, image: &'a str) -> BoxFuture<'a, RuntimeResult<Option<ImageInfo>>> {
        let r = match self.image(image) {
            Ok(i) => Ok(Some(self.image_info(&i))),
            Err(RuntimeError::ImageNotPresent(_)) => Ok(None),
            Err(e) => Err(e),
        };
        futures::future::ready(r).boxed()
    }

    fn list_images(&self) -> BoxFuture<'_, RuntimeResult<Vec<ImageInfo>>> {
        let r = self.store.list().map_err(|e| failed("list images", "", e)).map(|images| {
            let mut seen = std::collections::HashSet::new();
            images.iter().filter(|i| seen.insert(i.manifest_digest.clone())).map(|i| self.image_info(i)).collect()
        });
        futures::future::ready(r).boxed()
    }

    fn collect_images(&self, policy: ImageGcPolicy, reclaim_all: bool) -> BoxFuture<'_, RuntimeResult<ImageGcReport>> {
        self.gc_images(policy, reclaim_all).boxed()
    }

    fn container_logs<'a>(
        &'a self,
        id: &'a str,
        options: &'a LogOptions,
    ) -> BoxFuture<'a, RuntimeResult<BoxStream<'static, RuntimeResult<Vec<u8>>>>> {
        futures::future::ready(self.logs(id, options)).boxed()
    }

    fn exec_sync<'a>(
        &'a self,
        id: &'a str,
        command: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, RuntimeResult<ExecOutput>> {
        async move {
            let mut cmd = self.exec_command(id, command)?;
            cmd.stdin(std::process::Stdio::null());
            let run = cmd.output();
            let out = if timeout.is_zero() {
                run.await
            } else {
                tokio::time::timeout(timeout, run)
                    .await
                    .map_err(|_| failed("exec in container", id, format!("command timed out after {timeout:?}")))?
            }
            .map_err(|e| failed("exec in container", id, e))?;
            Ok(ExecOutput { stdout: out.stdout, stderr: out.stderr, exit_code: out.status.code().unwrap_or(128) })
        }
        .boxed()
    }

    fn exec<'a>(&'a self, id: &'a str, request: &'a ExecRequest) -> BoxFuture<'a, RuntimeResult<ExecSession>> {
        async move {
            if request.tty {
                return self.exec_tty(id, request).await;
            }
            let mut cmd = self.exec_command(id, &request.command)?;
            cmd.stdin(if request.stdin { std::process::Stdio::piped() } else { std::process::Stdio::null() });
            cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().map_err(|e| failed("exec in container", id, e))?;
            let stdin = child.stdin.take().map(|s| Box::pin(s) as _);
            let stdout = child.stdout.take().ok_or_else(|| failed("exec in container", id, "no stdout"))?;
            let stderr = child.stderr.take().ok_or_else(|| failed("exec in container", id, "no stderr"))?;
            let owned = id.to_string();
            let exit = async move {
                let status = child.wait().await.map_err(|e| failed("exec in container", &owned, e))?;
                Ok(status.code().unwrap_or(128))
            }
            .boxed();
            Ok(ExecSession { stdin, stdout: Box::pin(stdout), stderr: Some(Box::pin(stderr)), resize: None, exit })
        }
        .boxed()
    }

    fn attach<'a>(&'a self, id: &'a str, request: &'a ExecRequest) -> BoxFuture<'a, RuntimeResult<ExecSession>> {
        async move {
            let dir = self.container_dir(id);
            if dir.join(shim::attach::SOCKET).exists() {
                return attach_socket(&dir, request).await.map_err(|e| failed("attach to container", id, e));
            }
            // The output as the shim writes it to the CRI log, from its current end on.
            let options = LogOptions { follow: true, tail_lines: Some(0), ..LogOptions::default() };
            let records = self.logs(id, &options)?;
            let (out_w, out_r) = tokio::io::duplex(64 * 1024);
            let (err_w, err_r) = tokio::io::duplex(64 * 1024);
            // A terminal has one stream.
            let err_w = if request.tty { None } else { Some(err_w) };
            let copy = tokio::spawn(demux_cri(records, out_w, err_w));
            let exit = async move {
                let _ = copy.await;
                Ok(0)
            }
            .boxed();
            let stderr = (!request.tty).then(|| Box::pin(err_r) as _);
            Ok(ExecSession { stdin: None, stdout: Box::pin(out_r), stderr, resize: None, exit })
        }
        .boxed()
    }

    fn port_forward<'a>(
        &'a self,
        sandbox_id: &'a str,
        port: u16,
    ) -> BoxFuture<'a, RuntimeResult<tokio::net::TcpStream>> {
        async move {
            let sandbox =
                self.lock().sandboxes.get(sandbox_id).cloned().ok_or_else(|| not_found("sandbox", sandbox_id))?;
            let fail = |e: &dyn std::fmt::Display| failed("port-forward", sandbox_id, e);
            let target = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let stream = if sandbox.own_network {
                // A socket keeps the namespace it was made in: connect there, use it here.
                let netns = self.sandbox_namespace(sandbox_id, "net")?;
                let connect = move || std::net::TcpStream::connect_timeout(&target, PORT_FORWARD_CONNECT_TIMEOUT);
                tokio::task::spawn_blocking(move || super::netns::in_netns(&netns, connect))
                    .await
                    .map_err(|e| fail(&e))?
                    .map_err(|e| fail(&e))?
            } else {
                std::net::TcpStream::connect_timeout(&target, PORT_FORWARD_CONNECT_TIMEOUT).map_err(|e| fail(&e))?
            };
            stream.set_nonblocking(true).map_err(|e| fail(&e))?;
            tokio::net::TcpStream::from_std(stream).map_err(|e| fail(&e))
        }
        .boxed()
    }

    fn events(&self) -> BoxStream<'static, ContainerEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().subscribers.push(tx);
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) }).boxed()
    }
}

fn sandbox_status(r: &SandboxRecord) -> PodSandboxStatus {
    PodSandboxStatus {
        id: r.id.clone(),
        metadata: SandboxMetadata {
            name: r.name.clone(),
            namespace: r.namespace.clone(),
            uid: r.uid.clone(),
            attempt: r.attempt,
        },
        state: if r.ready { SandboxState::Ready } else { SandboxState::NotReady },
        created_at: parse_time(&r.created_at).unwrap_or_else(Timestamp::now),
        ip: r.ip,
        labels: r.labels.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn command_merges_as_kubernetes_does() {
        let (ep, cmd) = (s(&["/entry"]), s(&["default"]));
        assert_eq!(merge_command(&[], &[], &ep, &cmd), s(&["/entry", "default"]));
        assert_eq!(merge_command(&[], &s(&["x"]), &ep, &cmd), s(&["/entry", "x"]));
        assert_eq!(merge_command(&s(&["sh"]), &[], &ep, &cmd), s(&["sh"]));
        assert_eq!(merge_command(&s(&["sh"]), &s(&["-c", "true"]), &ep, &cmd), s(&["sh", "-c", "true"]));
    }

    #[test]
    fn env_merges_image_hostname_then_container() {
        let env = merge_env(&s(&["PATH=/bin", "A=1"]), "web-0", &[("A".into(), "2".into()), ("B".into(), "3".into())]);
        assert_eq!(env, s(&["PATH=/bin", "A=2", "HOSTNAME=web-0", "B=3"]));
        let env = merge_env(&[], "", &[]);
        assert_eq!(env, vec![format!("PATH={}", shim::DEFAULT_PATH_ENV)]);
    }

    #[test]
    fn capability_sets() {
        let d = capabilities(&[], &[]);
        assert!(d.contains(&"CHOWN".to_string()) && !d.contains(&"NET_ADMIN".to_string()));
        let c = capabilities(&s(&["NET_ADMIN"]), &s(&["CAP_CHOWN"]));
        assert!(c.contains(&"NET_ADMIN".to_string()) && !c.contains(&"CHOWN".to_string()));
        assert_eq!(capabilities(&s(&["NET_BIND_SERVICE"]), &s(&["ALL"])), s(&["NET_BIND_SERVICE"]));
        assert!(capabilities(&[], &s(&["ALL"])).is_empty());
        assert!(capabilities(&s(&["ALL"]), &[]).contains(&"SYS_ADMIN".to_string()));
    }

    #[test]
    fn image_names() {
        assert_eq!(image_name("docker.io/library/busybox:1.36"), "docker.io/library/busybox");
        assert_eq!(image_name("localhost:5000/x/y:2"), "localhost:5000/x/y");
        assert_eq!(image_name("localhost:5000/x/y"), "localhost:5000/x/y");
        assert_eq!(image_name("a/b@sha256:00"), "a/b");
    }
}
