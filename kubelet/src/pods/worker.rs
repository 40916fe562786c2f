//! One pod's worker: brings the runtime in line with the pod (sandbox, images, init containers
//! in order, app containers, restartPolicy), writes the status that results, and on deletion
//! stops everything and removes the pod from the API (the kubelet's final delete).
//!
//! Level-triggered: every pass re-reads the runtime and recomputes; it runs again when the pod
//! changes, a container event arrives, the podCIDR shows up, or a backoff expires.
//!
//! Sandbox and container configs come from [`super::config`]; the ConfigMaps and Secrets a
//! container's environment reads are fetched (GET) right before it is created. A container whose
//! config cannot be made waits with reason `CreateContainerConfigError` and is tried again after
//! a growing delay. The pod's volumes ([`super::volumes`]) are set up once the sandbox is there,
//! before any container is created (the ConfigMaps and Secrets they read fetched then); while
//! one cannot be made (a missing ConfigMap or Secret) the containers wait with its message, and
//! it is tried again with the same delay. The volumes go with the sandbox; those projected from
//! objects are refreshed every `--sync-frequency`. A sandbox adopted at start ([`super::adopt`])
//! is taken over, with its containers, instead of a new one being made.
//!
//! Sidecars (init containers with `restartPolicy: Always`) start in their place among the init
//! containers, the next one waiting until the sidecar is started; they restart whatever the pod's
//! policy, do not count for the pod's completion, and stop after the app containers, in reverse
//! order. Probes ([`super::probe`]) decide `ready` and `started`; a failed liveness or startup
//! probe kills the container. Stopping a container runs its `preStop` hook first, within the
//! grace period; `postStart` runs right after the start and kills the container when it fails.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, PodSpec, PodStatus, Secret};
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::Api;
use tokio::sync::{watch, Notify};
use tokio::time::Instant as TokioInstant;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::adopt::Adopted;
use super::config::{self, ContainerRole, LookupError, Objects};
use super::events::{field_path, PodEvents};
use super::probe::{self, check, ContainerProbes};
use super::restart::{self, Next};
use super::status::{self, ContainerView, Observed};
use super::volumes::{self, VolumeObjects};
use super::NodeCtx;
use crate::error::{code, Error};
use crate::runtime::{self as rt, ContainerFilter, PodNetwork, PodSandboxConfig, LABEL_CONTAINER_NAME};

/// How the manager talks to a worker.
pub(super) struct Handle {
    pub pod: watch::Sender<Arc<Pod>>,
    pub wake: Arc<Notify>,
    /// Cancelled when the pod left the API: the worker tears down and ends.
    pub gone: CancellationToken,
    /// Set by the eviction manager: the worker kills the pod and fails it (never restarts it).
    pub evict: Arc<std::sync::Mutex<Option<crate::eviction::Eviction>>>,
}

/// Starts the worker of `pod`; `adopted` is the sandbox a previous kubelet left for it.
pub(super) fn spawn(ctx: Arc<NodeCtx>, pod: Arc<Pod>, adopted: Option<Adopted>, shutdown: CancellationToken) -> Handle {
    let (tx, rx) = watch::channel(pod.clone());
    let wake = Arc::new(Notify::new());
    let gone = CancellationToken::new();
    let key = format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    );
    let span = tracing::info_span!("pod", object.ref = %key);
    let events = PodEvents::new(ctx.recorder.clone(), &pod);
    let evict = Arc::new(std::sync::Mutex::new(None));
    let worker = Worker {
        evict: evict.clone(),
        events,
        probes: HashMap::new(),
        wake: wake.clone(),
        initialized: false,
        backoff_noted: HashSet::new(),
        volumes_refresh_at: None,
        released: false,
        ctx,
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        sandbox: None,
        adopted,
        ip: None,
        owns_ip: false,
        pulled: HashSet::new(),
        pull_failures: HashMap::new(),
        last_written: pod.status.clone(),
        written_rv: None,
        final_status: None,
        deleted: false,
        failures: 0,
        config_failures: 0,
        volumes_ready: false,
        volume_error: None,
    };
    tokio::spawn(worker.run(rx, wake.clone(), gone.clone(), shutdown).instrument(span));
    Handle { pod: tx, wake, gone, evict }
}

struct Sandbox {
    id: String,
    config: PodSandboxConfig,
}

struct Worker {
    ctx: Arc<NodeCtx>,
    events: PodEvents,
    /// The probes of running containers, by container name.
    probes: HashMap<String, ContainerProbes>,
    /// Wakes this worker (probe results, container events).
    wake: Arc<Notify>,
    /// Every init container completed once (sidecars started): they do not run again.
    initialized: bool,
    /// Container instances whose back-off was recorded as an Event.
    backoff_noted: HashSet<String>,
    /// When the volumes projected from objects are next refreshed.
    volumes_refresh_at: Option<Timestamp>,
    /// The pod finished and its sandbox was stopped (kept, with its containers' logs, until the
    /// pod is deleted).
    released: bool,
    uid: String,
    namespace: String,
    name: String,
    sandbox: Option<Sandbox>,
    /// A sandbox found at start, taken over on the first pass.
    adopted: Option<Adopted>,
    ip: Option<IpAddr>,
    /// Whether `ip` came from the node's pool (not a hostNetwork pod).
    owns_ip: bool,
    pulled: HashSet<String>,
    /// Failed pulls by image: how many in a row, when the next may be tried, the last error.
    pull_failures: HashMap<String, (u32, Timestamp, String)>,
    last_written: Option<PodStatus>,
    /// resourceVersion of the pod after our last status write.
    written_rv: Option<String>,
    /// The terminal status, once the pod finished (written until it sticks).
    final_status: Option<PodStatus>,
    /// The final DELETE went through.
    deleted: bool,
    failures: u32,
    /// Passes in a row in which some container's config could not be made.
    config_failures: u32,
    /// The pod's volumes are set up.
    volumes_ready: bool,
    /// Why they could not be (the containers wait with it).
    volume_error: Option<config::ConfigError>,
    /// An eviction to carry out (see [`Handle::evict`]).
    evict: Arc<std::sync::Mutex<Option<crate::eviction::Eviction>>>,
}

/// Why containers are not running although they should (by container name).
#[derive(Default)]
struct Waits {
    /// CrashLoopBackOff messages.
    backoffs: HashMap<String, String>,
    /// CreateContainerConfigError messages.
    config_errors: HashMap<String, String>,
    /// Why a container's image is not there: (ErrImagePull | ImagePullBackOff | ErrImageNeverPull, message).
    image_errors: HashMap<String, (String, String)>,
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// (ready, started) of `c`'s latest instance as its probes say: the initial results until the
/// probes of that instance run.
fn probe_results(c: &Container, latest: Option<&rt::ContainerStatus>, probes: &Probes) -> (bool, bool) {
    match (latest, probes.get(&c.name)) {
        (Some(l), Some(p)) if p.container_id == l.id => {
            let r = p.results();
            (r.ready, r.started)
        }
        _ => (c.readiness_probe.is_none(), c.startup_probe.is_none()),
    }
}

type Probes = HashMap<String, ContainerProbes>;

fn view<'a>(
    c: &'a Container,
    instances: &'a Instances,
    waits: &Waits,
    init_pending: bool,
    probes: &Probes,
) -> ContainerView<'a> {
    let v = instances.get(&c.name);
    let latest = v.and_then(|v| v.first());
    let (ready, started) = probe_results(c, latest, probes);
    ContainerView {
        name: &c.name,
        image: c.image.as_deref().unwrap_or_default(),
        ready: Some(ready),
        started: Some(started),
        sidecar: is_sidecar(c),
        latest,
        previous: v.and_then(|v| v.get(1)),
        backoff: waits.backoffs.get(&c.name).cloned(),
        config_error: waits.config_errors.get(&c.name).cloned(),
        image_error: waits.image_errors.get(&c.name).cloned(),
        init_pending,
    }
}

/// Instances of each spec container in the runtime, newest first.
type Instances = HashMap<String, Vec<rt::ContainerStatus>>;

fn is_terminal(phase: Option<&str>) -> bool {
    matches!(phase, Some("Succeeded" | "Failed"))
}

fn retry_delay(failures: u32) -> Duration {
    let base =
        Duration::from_secs(1).saturating_mul(1 << failures.saturating_sub(1).min(5)).min(Duration::from_secs(30));
    base.mul_f64(rand::random_range(0.8..1.2))
}

fn instant_at(at: Timestamp) -> Instant {
    let wait = at.duration_since(Timestamp::now());
    Instant::now() + Duration::try_from(wait).unwrap_or(Duration::ZERO)
}

fn seconds(s: i64) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

/// What is left of a grace period after a preStop hook is at least this (upstream's
/// `minimumGracePeriodInSeconds`).
const MIN_GRACE: Duration = Duration::from_secs(2);
/// How long a container start waits for the Service cache's first list.
const SERVICES_SYNC_WAIT: Duration = Duration::from_secs(5);
/// How long a postStart hook may run before it counts as failed.
const POST_START_TIMEOUT: Duration = Duration::from_secs(120);

/// Stops one container as upstream's `killContainer`: its preStop hook within the grace period,
/// then SIGTERM and, when what is left of it (at least [`MIN_GRACE`]) ran out, SIGKILL.
struct StopContainer {
    events: PodEvents,
    target: check::Target,
    container: Container,
    field_path: String,
}

impl StopContainer {
    fn new(ctx: &NodeCtx, events: &PodEvents, ip: Option<IpAddr>, pod: &Pod, c: &Container, id: &str) -> Self {
        StopContainer {
            events: events.clone(),
            target: check::Target { runtime: ctx.runtime.clone(), container_id: id.to_string(), pod_ip: ip },
            container: c.clone(),
            field_path: field_path(pod, &c.name),
        }
    }

    async fn run(self, grace: Duration) {
        let deadline = Instant::now() + grace;
        if let Some(h) = self.container.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) {
            if let check::Outcome::Failure(msg) = check::hook(h, &self.container, &self.target, grace).await {
                tracing::warn!(container = %self.container.name, error = %msg, "preStop hook failed");
                self.events.warning(
                    Some(self.field_path.clone()),
                    "FailedPreStopHook",
                    format!("PreStopHook failed: {msg}"),
                );
            }
        }
        let left = deadline.saturating_duration_since(Instant::now()).max(MIN_GRACE);
        if let Err(e) = self.target.runtime.stop_container(&self.target.container_id, left).await {
            tracing::warn!(container = %self.container.name, error = %e, "stopping the container failed");
        }
    }
}

impl Worker {
    async fn run(
        mut self,
        mut pod_rx: watch::Receiver<Arc<Pod>>,
        wake: Arc<Notify>,
        gone: CancellationToken,
        shutdown: CancellationToken,
    ) {
        let mut cidr = self.ctx.cidr.clone();
        loop {
            let pod = pod_rx.borrow_and_update().clone();
            let wake_at = match self.sync(&pod).await {
                Ok(at) => {
                    self.failures = 0;
                    at.map(instant_at)
                }
                Err(e) => {
                    self.failures += 1;
                    let delay = retry_delay(self.failures);
                    tracing::warn!(error = %e, retry_in = ?delay, "pod sync failed");
                    Some(Instant::now() + delay)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = gone.cancelled() => break,
                // The manager dropped the pod's sender: at shutdown (containers keep running, for
                // the next kubelet to adopt) or because the pod is gone.
                r = pod_rx.changed() => if r.is_err() {
                    if shutdown.is_cancelled() {
                        return;
                    }
                    break;
                },
                _ = wake.notified() => {}
                r = cidr.changed() => if r.is_err() { return },
                _ = tokio::time::sleep_until(wake_at.unwrap_or_else(Instant::now)), if wake_at.is_some() => {}
            }
        }
        self.teardown().await;
        tracing::debug!("pod worker ended");
    }

    /// One pass; returns when to look again at the latest (a backoff expiring), if ever.
    async fn sync(&mut self, pod: &Pod) -> Result<Option<Timestamp>, Error> {
        if self.deleted {
            return Ok(None);
        }
        // First, so that a pod deleted or finished meanwhile stops and removes what it took over.
        if let Some(a) = self.adopted.take() {
            self.take_over(pod, a).await;
        }
        if pod.metadata.deletion_timestamp.is_some() {
            self.terminate(pod).await?;
            return Ok(None);
        }
        let eviction = self.evict.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(ev) = eviction.filter(|_| self.final_status.is_none()) {
            self.evict(pod, ev).await?;
        }
        if let Some(s) = self.final_status.clone() {
            self.write_status(pod, s).await?;
            return Ok(None);
        }
        if is_terminal(pod.status.as_ref().and_then(|s| s.phase.as_deref())) {
            self.release().await;
            return Ok(None);
        }
        let Some(spec) = pod.spec.as_ref() else { return Ok(None) };
        if self.sandbox.is_none() && !self.start_sandbox(pod, spec).await? {
            return Ok(None);
        }
        if !self.volumes_ready {
            self.set_up_volumes(pod).await;
        }
        let mut image_errors = HashMap::new();
        for c in spec.init_containers.iter().flatten().chain(&spec.containers) {
            if let Some(e) = self.ensure_image(pod, c).await? {
                image_errors.insert(c.name.clone(), e);
            }
        }

        let now = Timestamp::now();
        let policy = spec.restart_policy.as_deref().unwrap_or("Always");
        // Init containers are retried unless the pod never restarts anything.
        let init_policy = if policy == "Never" { "Never" } else { "OnFailure" };
        let mut instances = self.instances().await?;
        let mut wake: Option<Timestamp> = None;
        let mut waits = Waits { image_errors, ..Waits::default() };
        if let Some(retry) = self.pull_failures.values().map(|(_, at, _)| *at).min() {
            wake = Some(wake.map_or(retry, |w: Timestamp| w.min(retry)));
        }
        let mut started = false;
        let mut init_done = true;
        for c in spec.init_containers.iter().flatten() {
            let latest = instances.get(&c.name).and_then(|v| v.first());
            if is_sidecar(c) {
                let next = restart::next("Always", latest, now);
                started |= self.act(pod, c, ContainerRole::Init, next, &mut wake, &mut waits).await?;
                let running = latest.is_some_and(|l| l.state == rt::ContainerState::Running);
                if self.initialized || (running && probe_results(c, latest, &self.probes).1) {
                    continue;
                }
                init_done = false;
                break;
            }
            if self.initialized {
                continue;
            }
            let next = restart::next(init_policy, latest, now);
            if next == Next::Done && latest.and_then(|l| l.exit_code) == Some(0) {
                continue;
            }
            init_done = false;
            started |= self.act(pod, c, ContainerRole::Init, next, &mut wake, &mut waits).await?;
            break;
        }
        if init_done {
            self.initialized = true;
            for c in &spec.containers {
                let next = restart::next(policy, instances.get(&c.name).and_then(|v| v.first()), now);
                started |= self.act(pod, c, ContainerRole::App, next, &mut wake, &mut waits).await?;
            }
        }
        if waits.config_errors.is_empty() {
            self.config_failures = 0;
        } else {
            self.config_failures += 1;
            let retry = Timestamp::now() + retry_delay(self.config_failures);
            wake = Some(wake.map_or(retry, |w| w.min(retry)));
        }
        if started {
            instances = self.instances().await?;
        }
        self.collect_old_instances(&instances).await;
        self.sync_probes(pod, spec, &instances);
        if let Some(at) = self.refresh_volumes(pod).await {
            wake = Some(wake.map_or(at, |w| w.min(at)));
        }

        let mut status = self.status(pod, spec, &instances, &waits, !init_done, true, now);
        if is_terminal(status.phase.as_deref()) {
            tracing::info!(phase = status.phase.as_deref().unwrap_or_default(), "pod finished");
            // Sidecars stop after the app containers, gracefully, and show as terminated.
            if self.stop_sidecars(pod, spec).await {
                instances = self.instances().await?;
            }
            self.release().await;
            status = self.status(pod, spec, &instances, &waits, !init_done, false, now);
            self.final_status = Some(status.clone());
            wake = None;
        }
        self.write_status(pod, status).await?;
        Ok(wake)
    }

    /// Starts the probes of running containers that have them (a new set per container
    /// instance), stops those of containers that stopped, and kills the containers whose
    /// liveness or startup probe failed (restarted by the next pass, per restartPolicy).
    fn sync_probes(&mut self, pod: &Pod, spec: &PodSpec, instances: &Instances) {
        let probed = spec.init_containers.iter().flatten().filter(|c| is_sidecar(c)).chain(&spec.containers);
        let mut keep = HashSet::new();
        for c in probed.filter(|c| probe::has_probes(c)) {
            let Some(latest) = instances.get(&c.name).and_then(|v| v.first()) else { continue };
            if latest.state != rt::ContainerState::Running {
                continue;
            }
            keep.insert(c.name.clone());
            if self.probes.get(&c.name).is_some_and(|p| p.container_id == latest.id) {
                continue;
            }
            let sink = probe::Sink {
                wake: self.wake.clone(),
                events: self.events.clone(),
                field_path: field_path(pod, &c.name),
            };
            let p = probe::start(self.ctx.runtime.clone(), self.ip, c, &latest.id, latest.started_at, sink);
            self.probes.insert(c.name.clone(), p);
        }
        self.probes.retain(|name, _| keep.contains(name));
        let grace_of_pod = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30);
        for (name, p) in self.probes.iter_mut().filter(|(_, p)| !p.killing) {
            let Some((kind, _)) = p.results().kill else { continue };
            p.killing = true;
            let Some(c) = spec.init_containers.iter().flatten().chain(&spec.containers).find(|c| &c.name == name)
            else {
                continue;
            };
            let probe_grace = match kind {
                probe::Kind::Liveness => c.liveness_probe.as_ref(),
                _ => c.startup_probe.as_ref(),
            }
            .and_then(|p| p.termination_grace_period_seconds);
            let grace = seconds(probe_grace.unwrap_or(grace_of_pod));
            let kind = kind.name().to_lowercase();
            tracing::info!(container = %name, probe = %kind, "probe failed; killing the container");
            self.events.normal(
                Some(field_path(pod, name)),
                "Killing",
                format!("Container {name} failed {kind} probe, will be restarted"),
            );
            let stop = StopContainer::new(&self.ctx, &self.events, self.ip, pod, c, &p.container_id);
            tokio::spawn(stop.run(grace));
        }
    }

    /// Brings the volumes projected from objects (configMap, secret, downwardAPI, projected) up
    /// to date every `--sync-frequency` (the atomic writer rewrites only what changed).
    /// Returns when to look again.
    async fn refresh_volumes(&mut self, pod: &Pod) -> Option<Timestamp> {
        if !self.volumes_ready || self.ctx.facts.pods_root.is_none() {
            return None;
        }
        let has_projected =
            pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()).any(|v| {
                v.config_map.is_some() || v.secret.is_some() || v.downward_api.is_some() || v.projected.is_some()
            });
        if !has_projected {
            return None;
        }
        let period = self.ctx.sync_frequency;
        let due = *self.volumes_refresh_at.get_or_insert_with(|| Timestamp::now() + period);
        if Timestamp::now() < due {
            return Some(due);
        }
        self.set_up_volumes(pod).await;
        if let Some(e) = &self.volume_error {
            tracing::warn!(error = %e, "refreshing the pod's volumes failed");
        }
        let next = Timestamp::now() + period;
        self.volumes_refresh_at = Some(next);
        Some(next)
    }

    /// Stops the pod's running sidecars in reverse order, each with its preStop hook and the pod's
    /// grace period; true if it stopped any.
    async fn stop_sidecars(&mut self, pod: &Pod, spec: &PodSpec) -> bool {
        let Some(sb) = self.sandbox.as_ref() else { return false };
        let filter = ContainerFilter { sandbox_id: Some(sb.id.clone()), state: Some(rt::ContainerState::Running) };
        let Ok(running) = self.ctx.runtime.list_containers(&filter).await else { return false };
        let grace = seconds(spec.termination_grace_period_seconds.unwrap_or(30));
        let deadline = TokioInstant::now() + grace;
        let mut any = false;
        for c in spec.init_containers.iter().flatten().filter(|c| is_sidecar(c)).rev() {
            for r in running.iter().filter(|r| r.labels.get(LABEL_CONTAINER_NAME) == Some(&c.name)) {
                self.probes.remove(&c.name);
                self.events.normal(Some(field_path(pod, &c.name)), "Killing", format!("Stopping container {}", c.name));
                let left = deadline.saturating_duration_since(TokioInstant::now());
                StopContainer::new(&self.ctx, &self.events, self.ip, pod, c, &r.id).run(left).await;
                any = true;
            }
        }
        any
    }

    /// Carries out `next` for one container; true if it started one. A container whose config
    /// cannot be made is recorded in `waits` (not an error of the pass).
    async fn act(
        &mut self,
        pod: &Pod,
        c: &Container,
        role: ContainerRole,
        next: Next,
        wake: &mut Option<Timestamp>,
        waits: &mut Waits,
    ) -> Result<bool, Error> {
        let attempt = match next {
            Next::Start => 0,
            Next::Restart { attempt } => attempt,
            Next::BackOff { at } => {
                *wake = Some(wake.map_or(at, |w| w.min(at)));
                let secs = at.duration_since(Timestamp::now()).as_secs().max(0);
                waits.backoffs.insert(
                    c.name.clone(),
                    format!(
                        "back-off {secs}s restarting failed container={} pod={}_{}({})",
                        c.name, self.name, self.namespace, self.uid
                    ),
                );
                if self.backoff_noted.len() > 64 {
                    self.backoff_noted.clear();
                }
                if self.backoff_noted.insert(format!("{}/{at}", c.name)) {
                    self.events.warning(
                        Some(field_path(pod, &c.name)),
                        "BackOff",
                        format!(
                            "Back-off restarting failed container {} in pod {}_{}({})",
                            c.name, self.name, self.namespace, self.uid
                        ),
                    );
                }
                return Ok(false);
            }
            Next::Keep | Next::Done => return Ok(false),
        };
        if waits.image_errors.contains_key(&c.name) {
            return Ok(false);
        }
        if let Some(e) = &self.volume_error {
            waits.config_errors.insert(c.name.clone(), e.to_string());
            return Ok(false);
        }
        match self.start_container(pod, c, attempt, role).await {
            Ok(()) => Ok(true),
            Err(Error::ContainerConfig { container, source }) => {
                tracing::warn!(container, error = %source, "cannot make the container's config");
                waits.config_errors.insert(container, source.to_string());
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Allocates the pod IP and starts the sandbox; false while the node has no podCIDR.
    async fn start_sandbox(&mut self, pod: &Pod, spec: &PodSpec) -> Result<bool, Error> {
        let network = if spec.host_network == Some(true) {
            self.ip = Some(self.ctx.facts.host_ip);
            None
        } else {
            let Some(cidr) = *self.ctx.cidr.borrow() else {
                tracing::debug!("waiting for the node's podCIDR");
                return Ok(false);
            };
            let preferred: Option<IpAddr> =
                pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).and_then(|ip| ip.parse().ok());
            let (ip, gateway) = {
                let mut pool = self.ctx.ips();
                pool.set_cidr(cidr);
                (pool.allocate(&self.uid, preferred)?, pool.gateway())
            };
            self.ip = Some(ip);
            self.owns_ip = true;
            Some(PodNetwork { ip, prefix_len: cidr.prefix(), gateway: gateway.unwrap_or(ip) })
        };
        let config = config::sandbox_config(pod, &self.ctx.facts, network).map_err(Error::SandboxConfig)?;
        let id = self.ctx.runtime.run_pod_sandbox(&config).await?;
        tracing::debug!(sandbox = %id, ip = ?self.ip, "sandbox started");
        self.sandbox = Some(Sandbox { id, config });
        Ok(true)
    }

    /// Pulls an image unless present (or, with `imagePullPolicy: Always`, once per pod). A pull
    /// that fails is not an error of the pass: it comes back as the container's waiting reason
    /// (`ErrImagePull`, then `ImagePullBackOff` while the back-off of 10 s doubling to 5 min
    /// runs; `ErrImageNeverPull` for an absent image with `imagePullPolicy: Never`), as upstream.
    async fn ensure_image(&mut self, pod: &Pod, c: &Container) -> Result<Option<(String, String)>, Error> {
        let Some(image) = c.image.as_deref() else { return Ok(None) };
        if self.pulled.contains(image) {
            return Ok(None);
        }
        let policy = c.image_pull_policy.as_deref();
        let present = self.ctx.runtime.image_status(image).await?.is_some();
        let path = field_path(pod, &c.name);
        let fp = || Some(path.clone());
        if policy == Some("Never") {
            if !present {
                let message = format!("Container image \"{image}\" is not present with pull policy of Never");
                if self.backoff_noted.insert(format!("never:{image}")) {
                    self.events.warning(fp(), "ErrImageNeverPull", message.clone());
                }
                return Ok(Some(("ErrImageNeverPull".into(), message)));
            }
            self.events.normal(fp(), "Pulled", format!("Container image \"{image}\" already present on machine"));
        } else if policy != Some("Always") && present {
            self.events.normal(fp(), "Pulled", format!("Container image \"{image}\" already present on machine"));
        } else {
            let now = Timestamp::now();
            if let Some((_, next, last)) = self.pull_failures.get(image) {
                if *next > now {
                    // With the last pull's error, as upstream words it.
                    let message = format!("Back-off pulling image \"{image}\": ErrImagePull: {last}");
                    return Ok(Some(("ImagePullBackOff".into(), message)));
                }
            }
            self.events.normal(fp(), "Pulling", format!("Pulling image \"{image}\""));
            let began = Instant::now();
            match self.pull(pod, image).await {
                Ok(image_ref) => {
                    tracing::debug!(image, image_ref, "pulled image");
                    self.pull_failures.remove(image);
                    let took = began.elapsed();
                    self.events.normal(fp(), "Pulled", format!("Successfully pulled image \"{image}\" in {took:?}"));
                }
                Err(e) => {
                    self.events.warning(fp(), "Failed", format!("Failed to pull image \"{image}\": {e}"));
                    let n = self.pull_failures.get(image).map_or(1, |(n, _, _)| n + 1);
                    let delay = std::time::Duration::from_secs((10u64 << (n - 1).min(5)).min(300));
                    self.pull_failures.insert(image.to_string(), (n, now + delay, e.to_string()));
                    tracing::warn!(image, error = %e, "pulling the image failed");
                    return Ok(Some(("ErrImagePull".into(), e.to_string())));
                }
            }
        }
        self.pulled.insert(image.to_string());
        Ok(None)
    }

    /// Pulls `image` with each credential of the pod's imagePullSecrets that matches it in turn
    /// (anonymously when none does), as upstream; the last failure if none works.
    async fn pull(&self, pod: &Pod, image: &str) -> Result<String, crate::runtime::RuntimeError> {
        let names: Vec<String> =
            pod.spec.iter().flat_map(|s| s.image_pull_secrets.iter().flatten()).map(|r| r.name.clone()).collect();
        let mut fetched_all = self.secrets(names.clone()).await;
        let mut secrets = Vec::new();
        for name in names {
            let Some(fetched) = fetched_all.remove(&name) else { continue };
            match fetched {
                Ok(Some(data)) => secrets.push(data),
                Ok(None) => tracing::warn!(secret = %name, "image pull secret not found; pulling without it"),
                Err(e) => {
                    tracing::warn!(secret = %name, error = %e.0, "image pull secret unreadable; pulling without it")
                }
            }
        }
        let creds = super::pull_secrets::credentials_for(image, &secrets);
        if creds.is_empty() {
            return self.ctx.runtime.pull_image(image, None).await;
        }
        let mut last = None;
        for auth in &creds {
            match self.ctx.runtime.pull_image(image, Some(auth)).await {
                Ok(r) => return Ok(r),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| crate::runtime::RuntimeError::ImageNotPresent(image.to_string())))
    }

    /// Takes over a sandbox found at start (with its containers), unless it does not fit the pod
    /// (network mode changed): then it is removed and the next pass makes a new one.
    async fn take_over(&mut self, pod: &Pod, a: Adopted) {
        let host_ip = self.ctx.facts.host_ip;
        let host_network = pod.spec.as_ref().and_then(|s| s.host_network) == Some(true);
        let ip = match (host_network, a.ip) {
            (true, None) => host_ip,
            (true, Some(ip)) | (false, Some(ip)) if (ip == host_ip) == host_network => ip,
            _ => {
                tracing::info!(sandbox = %a.id, "the sandbox found at start does not fit the pod; replacing it");
                self.sandbox = Some(Sandbox { id: a.id, config: PodSandboxConfig::default() });
                self.owns_ip = true;
                self.teardown().await;
                return;
            }
        };
        let network = (!host_network).then(|| {
            let cidr = *self.ctx.cidr.borrow();
            let gateway = cidr.and_then(|c| c.nth(1)).unwrap_or(ip);
            let full = if ip.is_ipv4() { 32 } else { 128 };
            PodNetwork { ip, prefix_len: cidr.map_or(full, |c| c.prefix()), gateway }
        });
        let config = config::sandbox_config(pod, &self.ctx.facts, network).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot make the adopted sandbox's config");
            PodSandboxConfig::default()
        });
        tracing::info!(sandbox = %a.id, ip = %ip, "took over the sandbox found at start");
        self.ip = Some(ip);
        self.owns_ip = !host_network;
        self.sandbox = Some(Sandbox { id: a.id, config });
    }

    /// The ConfigMaps and Secrets `c`'s environment reads, fetched now.
    async fn objects(&self, c: &Container) -> Objects {
        let refs = config::env::references(c);
        let mut out = Objects::default();
        let failed = |e: kube::Error| LookupError(e.to_string());
        let config_maps: Api<ConfigMap> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        for name in refs.config_maps {
            let r = config_maps.get_opt(&name).await.map(|o| o.map(|cm| cm.data.unwrap_or_default()));
            out.config_maps.insert(name, r.map_err(failed));
        }
        out.secrets = self.secrets(refs.secrets).await;
        out
    }

    /// The `data` of the named Secrets, fetched now (for the environment and for volumes).
    async fn secrets(
        &self,
        names: impl IntoIterator<Item = String>,
    ) -> HashMap<String, config::env::Fetched<BTreeMap<String, Vec<u8>>>> {
        let api: Api<Secret> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        let mut out = HashMap::new();
        for name in names {
            let r = api
                .get_opt(&name)
                .await
                .map(|o| o.map(|s| s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect()))
                .map_err(|e| LookupError(e.to_string()));
            out.insert(name, r);
        }
        out
    }

    /// The ConfigMaps (`data` and `binaryData`) and Secrets the pod's volumes read, fetched now.
    async fn volume_objects(&self, pod: &Pod) -> VolumeObjects {
        let refs = volumes::references(pod);
        let mut out = VolumeObjects::default();
        let failed = |e: kube::Error| LookupError(e.to_string());
        let config_maps: Api<ConfigMap> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        for name in refs.config_maps {
            let r = config_maps.get_opt(&name).await.map(|o| {
                o.map(|cm| {
                    let text = cm.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes()));
                    text.chain(cm.binary_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0))).collect()
                })
            });
            out.config_maps.insert(name, r.map_err(failed));
        }
        out.secrets = self.secrets(refs.secrets).await;
        out
    }

    /// Sets up the pod's volumes (nothing on a node without a pods root); a failure is kept in
    /// `volume_error` for the containers to wait with.
    async fn set_up_volumes(&mut self, pod: &Pod) {
        let Some(root) = self.ctx.facts.pods_root.clone() else {
            self.volumes_ready = true;
            return;
        };
        let objects = self.volume_objects(pod).await;
        let pod_ips: Vec<IpAddr> = self.ip.into_iter().collect();
        let input = volumes::PayloadInput { pod, node: &self.ctx.facts, pod_ips: &pod_ips, objects: &objects };
        match volumes::set_up(&root, &input) {
            Ok(()) => {
                self.volumes_ready = true;
                self.volume_error = None;
            }
            Err(e) => self.volume_error = Some(e),
        }
    }

    async fn start_container(
        &mut self,
        pod: &Pod,
        c: &Container,
        attempt: u32,
        role: ContainerRole,
    ) -> Result<(), Error> {
        let Some(sb) = self.sandbox.as_ref() else { return Ok(()) };
        let objects = self.objects(c).await;
        let pod_ips: Vec<IpAddr> = self.ip.into_iter().collect();
        let service_env = self.service_env(pod).await;
        let mut config = config::container_config(&config::ContainerInput {
            pod,
            container: c,
            role,
            attempt,
            node: &self.ctx.facts,
            pod_ips: &pod_ips,
            objects: &objects,
            service_env: &service_env,
        })
        .map_err(|source| Error::ContainerConfig { container: c.name.clone(), source })?;
        if let Some(root) = self.ctx.facts.pods_root.as_deref() {
            volumes::prepare_sub_paths(root, pod, &mut config.mounts)
                .map_err(|source| Error::ContainerConfig { container: c.name.clone(), source })?;
        }
        let path = field_path(pod, &c.name);
        let failed = |e: rt::RuntimeError| {
            self.events.warning(Some(path.clone()), "Failed", format!("Error: {e}"));
            Error::from(e)
        };
        let id = self.ctx.runtime.create_container(&sb.id, &config, &sb.config).await.map_err(failed)?;
        self.events.normal(Some(path.clone()), "Created", format!("Created container: {}", c.name));
        self.ctx.runtime.start_container(&id).await.map_err(failed)?;
        self.events.normal(Some(path.clone()), "Started", format!("Started container {}", c.name));
        tracing::debug!(container = %c.name, attempt, ?role, "started container");
        if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            let target = check::Target { runtime: self.ctx.runtime.clone(), container_id: id.clone(), pod_ip: self.ip };
            if let check::Outcome::Failure(msg) = check::hook(h, c, &target, POST_START_TIMEOUT).await {
                tracing::warn!(container = %c.name, error = %msg, "postStart hook failed; killing the container");
                self.events.warning(Some(path), "FailedPostStartHook", format!("PostStartHook failed: {msg}"));
                let grace = seconds(pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30));
                tokio::spawn(StopContainer::new(&self.ctx, &self.events, self.ip, pod, c, &id).run(grace));
            }
        }
        Ok(())
    }

    /// The Service variables for the pod's containers, from the Service cache (waited for
    /// briefly after the kubelet starts, as upstream waits for its Service informer).
    async fn service_env(&self, pod: &Pod) -> Vec<(String, String)> {
        let store = &self.ctx.services;
        if tokio::time::timeout(SERVICES_SYNC_WAIT, store.wait_until_ready()).await.is_err() {
            tracing::warn!("the Service cache is not ready; starting the container without Service variables");
        }
        let links = pod.spec.as_ref().and_then(|s| s.enable_service_links).unwrap_or(true);
        let services = store.state();
        config::env::service_env(&self.namespace, links, services.iter().map(|s| s.as_ref()))
    }

    async fn instances(&self) -> Result<Instances, Error> {
        let Some(sb) = self.sandbox.as_ref() else { return Ok(Instances::new()) };
        let filter = ContainerFilter { sandbox_id: Some(sb.id.clone()), state: None };
        let mut out = Instances::new();
        for c in self.ctx.runtime.list_containers(&filter).await? {
            let name = c.labels.get(LABEL_CONTAINER_NAME).cloned().unwrap_or_else(|| c.name.clone());
            out.entry(name).or_default().push(c);
        }
        for v in out.values_mut() {
            v.sort_by_key(|c| std::cmp::Reverse((c.restart_count, c.created_at)));
        }
        Ok(out)
    }

    /// Removes exited instances older than the last two of each container (status needs only
    /// the current one and `lastState`).
    async fn collect_old_instances(&self, instances: &Instances) {
        for c in instances.values().flat_map(|v| v.iter().skip(2)) {
            if let Err(e) = self.ctx.runtime.remove_container(&c.id).await {
                tracing::debug!(container = %c.id, error = %e, "removing an old container failed");
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn status(
        &self,
        pod: &Pod,
        spec: &PodSpec,
        instances: &Instances,
        waits: &Waits,
        init_pending: bool,
        sandbox_ready: bool,
        now: Timestamp,
    ) -> PodStatus {
        let observed = Observed {
            pod,
            sandbox_ready,
            pod_ip: self.ip,
            host_ip: self.ctx.facts.host_ip,
            init: spec
                .init_containers
                .iter()
                .flatten()
                .map(|c| view(c, instances, waits, false, &self.probes))
                .collect(),
            app: spec.containers.iter().map(|c| view(c, instances, waits, init_pending, &self.probes)).collect(),
            scheme: &self.ctx.scheme,
            now,
        };
        status::pod_status(&observed)
    }

    /// PATCHes pods/status when the status changed since our last write, or when someone else
    /// changed it since.
    async fn write_status(&mut self, pod: &Pod, status: PodStatus) -> Result<(), Error> {
        let ours_changed = self.last_written.as_ref() != Some(&status);
        let api_differs = pod.status.as_ref() != Some(&status)
            && pod.metadata.resource_version.is_some()
            && pod.metadata.resource_version != self.written_rv;
        if !ours_changed && !api_differs {
            return Ok(());
        }
        let old_phase = pod.status.as_ref().and_then(|s| s.phase.clone());
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        let patch = serde_json::json!({ "status": &status });
        match api.patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(p) => {
                if old_phase != status.phase {
                    tracing::info!(phase = status.phase.as_deref().unwrap_or_default(), ip = ?self.ip, "pod status");
                }
                self.written_rv = p.metadata.resource_version;
                self.last_written = Some(status);
                Ok(())
            }
            // Gone: the watch will say so.
            Err(e) if code(&e) == Some(404) => Ok(()),
            Err(e) => Err(Error::api("update status of pod", format!("{}/{}", self.namespace, self.name), e)),
        }
    }

    /// Stops the pod's containers within its grace period, tears the sandbox down and removes the
    /// pod from the API.
    async fn terminate(&mut self, pod: &Pod) -> Result<(), Error> {
        let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(30).max(0);
        self.probes.clear();
        if let Some(sb) = self.sandbox.as_ref() {
            let filter = ContainerFilter { sandbox_id: Some(sb.id.clone()), state: Some(rt::ContainerState::Running) };
            let running = self.ctx.runtime.list_containers(&filter).await?;
            let deadline = Instant::now() + seconds(grace);
            let specs: Vec<&Container> =
                pod.spec.iter().flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers)).collect();
            let sidecars: Vec<&Container> = specs.iter().copied().filter(|c| is_sidecar(c)).collect();
            let stop = |r: &rt::ContainerStatus| {
                let name = r.labels.get(LABEL_CONTAINER_NAME).cloned().unwrap_or_else(|| r.name.clone());
                let fallback = Container { name: name.clone(), ..Default::default() };
                let c = specs.iter().find(|c| c.name == name).copied().unwrap_or(&fallback);
                self.events.normal(Some(field_path(pod, &name)), "Killing", format!("Stopping container {name}"));
                StopContainer::new(&self.ctx, &self.events, self.ip, pod, c, &r.id)
            };
            let is_sidecar_instance =
                |r: &rt::ContainerStatus| sidecars.iter().any(|c| r.labels.get(LABEL_CONTAINER_NAME) == Some(&c.name));
            // The app containers first, together; then the sidecars, last one first.
            let first = running.iter().filter(|r| !is_sidecar_instance(r)).map(|r| stop(r).run(seconds(grace)));
            futures::future::join_all(first).await;
            for c in sidecars.iter().rev() {
                for r in running.iter().filter(|r| r.labels.get(LABEL_CONTAINER_NAME) == Some(&c.name)) {
                    stop(r).run(deadline.saturating_duration_since(Instant::now())).await;
                }
            }
            tracing::info!(containers = running.len(), grace_seconds = grace, "stopped pod");
        }
        self.teardown().await;
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions { uid: Some(self.uid.clone()), resource_version: None }),
            ..Default::default()
        };
        match api.delete(&self.name, &dp).await {
            Ok(_) => tracing::info!("pod deleted"),
            // Already gone, or the name now belongs to another pod.
            Err(e) if matches!(code(&e), Some(404 | 409)) => {}
            Err(e) => return Err(Error::api("delete pod", format!("{}/{}", self.namespace, self.name), e)),
        }
        self.deleted = true;
        Ok(())
    }

    /// Node-pressure eviction: kills the containers within `ev.grace`, tears the pod down and
    /// makes its final status `Failed`/`Evicted` (written by the pass, never restarted).
    async fn evict(&mut self, pod: &Pod, ev: crate::eviction::Eviction) -> Result<(), Error> {
        self.probes.clear();
        self.events.warning(None, "Evicted", ev.message.clone());
        if let Some(sb) = self.sandbox.as_ref() {
            let filter = ContainerFilter { sandbox_id: Some(sb.id.clone()), state: Some(rt::ContainerState::Running) };
            let running = self.ctx.runtime.list_containers(&filter).await?;
            let stops = running.iter().map(|c| self.ctx.runtime.stop_container(&c.id, ev.grace));
            for r in futures::future::join_all(stops).await {
                r?;
            }
        }
        let instances = self.instances().await?;
        let now = Timestamp::now();
        let status = match pod.spec.as_ref() {
            Some(spec) => self.status(pod, spec, &instances, &Waits::default(), false, false, now),
            None => pod.status.clone().unwrap_or_default(),
        };
        self.teardown().await;
        tracing::info!(message = %ev.message, "pod evicted");
        self.final_status = Some(crate::eviction::evicted_status(status, &ev.message, now));
        Ok(())
    }

    /// What a finished pod gives back while it stays in the API: its sandbox is stopped (nothing
    /// runs, its network is detached), its volumes removed and its IP freed, but its containers
    /// and their logs are kept until the pod is deleted, so `kubectl logs` of a completed pod
    /// works, as upstream's kubelet keeps exited containers (idempotent).
    async fn release(&mut self) {
        self.probes.clear();
        if let Some(sb) = self.sandbox.as_ref().filter(|_| !self.released) {
            if let Err(e) = self.ctx.runtime.stop_pod_sandbox(&sb.id).await {
                tracing::warn!(sandbox = %sb.id, error = %e, "stopping the sandbox failed");
                return;
            }
            self.released = true;
        }
        self.free_volumes_and_ip();
    }

    fn free_volumes_and_ip(&mut self) {
        if let Some(root) = self.ctx.facts.pods_root.as_deref() {
            if let Err(e) = volumes::tear_down(root, &self.uid) {
                tracing::warn!(error = %e, "removing the pod's volumes failed");
            }
            self.volumes_ready = false;
            self.volume_error = None;
        }
        if self.owns_ip {
            self.ctx.ips().release(&self.uid);
            self.owns_ip = false;
        }
    }

    /// Stops and removes the sandbox, removes the pod's volumes and frees the pod IP
    /// (idempotent). The IP stays in the status that was written.
    async fn teardown(&mut self) {
        self.probes.clear();
        if let Some(sb) = self.sandbox.take() {
            for r in
                [self.ctx.runtime.stop_pod_sandbox(&sb.id).await, self.ctx.runtime.remove_pod_sandbox(&sb.id).await]
            {
                if let Err(e) = r {
                    tracing::warn!(sandbox = %sb.id, error = %e, "tearing down the sandbox failed");
                }
            }
        }
        self.released = false;
        self.free_volumes_and_ip();
    }
}
