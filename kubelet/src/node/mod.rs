//! One node's lifecycle: registration (again if the Node is deleted), Lease renewal every
//! quarter of its duration and NodeStatus every `--node-status-update-frequency`, both started
//! at a random offset so that many hollow nodes spread their heartbeats; and the podCIDR, handed
//! to the pod workers once known. Each status update measures what changes: the pressure
//! conditions of a real node ([`host`]) and the runtime's images.

pub mod host;
pub mod lease;
pub mod object;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{code, Error};
use crate::runtime::Runtime;
use api::cidr::Cidr;
use host::Pressure;
use object::{NodeConfig, Observed};

/// What the shared node watch tells a node.
#[derive(Debug)]
pub enum NodeEvent {
    Apply(Arc<Node>),
    /// The Node with this uid was deleted.
    Deleted(String),
}

/// Heartbeat timing.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub status_every: Duration,
    pub lease_every: Duration,
    pub lease_seconds: i32,
}

pub struct Agent {
    cfg: NodeConfig,
    client: Client,
    /// The node's runtime, for `status.images`.
    runtime: Arc<dyn Runtime>,
    timing: Timing,
    /// Bounds concurrent registrations when many hollow nodes start at once.
    gate: Arc<Semaphore>,
    cidr: watch::Sender<Option<Cidr>>,
    current: Option<Arc<Node>>,
    /// The pressure last reported, to log its changes.
    pressure: Pressure,
    /// When image GC runs next, and the pass in flight.
    image_gc_at: Instant,
    image_gc: Option<tokio::task::JoinHandle<()>>,
}

/// How often image GC looks at the image filesystem (upstream's ImageGCPeriod).
const IMAGE_GC_PERIOD: Duration = Duration::from_secs(300);

fn jittered(period: Duration) -> Instant {
    Instant::now() + period.mul_f64(rand::random_range(0.0..1.0))
}

fn register_backoff(failures: u32) -> Duration {
    let base = Duration::from_millis(500).saturating_mul(1 << failures.min(6)).min(Duration::from_secs(30));
    base.mul_f64(rand::random_range(0.8..1.2))
}

impl Agent {
    pub fn new(
        cfg: NodeConfig,
        client: Client,
        runtime: Arc<dyn Runtime>,
        timing: Timing,
        gate: Arc<Semaphore>,
        cidr: watch::Sender<Option<Cidr>>,
    ) -> Self {
        Agent {
            cfg,
            client,
            runtime,
            timing,
            gate,
            cidr,
            current: None,
            pressure: Pressure::default(),
            image_gc_at: Instant::now(),
            image_gc: None,
        }
    }

    fn api(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    fn uid(&self) -> Option<&str> {
        self.current.as_ref().and_then(|n| n.metadata.uid.as_deref())
    }

    /// Runs until `shutdown`.
    pub async fn run(mut self, mut events: mpsc::UnboundedReceiver<NodeEvent>, shutdown: CancellationToken) {
        let mut registered = false;
        let mut failures = 0;
        let mut retry_at = Instant::now();
        let mut status_at = jittered(self.timing.status_every);
        let mut lease_at = jittered(self.timing.lease_every);
        loop {
            if !registered && Instant::now() >= retry_at {
                match self.register().await {
                    Ok(()) => {
                        registered = true;
                        failures = 0;
                        self.renew_lease().await;
                    }
                    Err(e) => {
                        failures += 1;
                        let delay = register_backoff(failures);
                        tracing::warn!(error = %e, retry_in = ?delay, "node registration failed");
                        retry_at = Instant::now() + delay;
                    }
                }
            }
            let wake = if registered { status_at.min(lease_at) } else { retry_at };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = events.recv() => match ev {
                    None => return,
                    Some(NodeEvent::Apply(node)) => self.observe(node),
                    Some(NodeEvent::Deleted(uid)) => {
                        if self.uid() == Some(uid.as_str()) {
                            tracing::info!("node was deleted; registering it again");
                            self.current = None;
                            registered = false;
                            retry_at = Instant::now();
                        }
                    }
                },
                _ = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if registered && now >= status_at {
                        status_at = now + self.timing.status_every;
                        match self.post_status().await {
                            Err(e) if e.api_code() == Some(404) => {
                                tracing::info!("node is gone; registering it again");
                                registered = false;
                                retry_at = now;
                            }
                            Err(e) => tracing::warn!(error = %e, "node status update failed"),
                            Ok(()) => {}
                        }
                    }
                    if registered && now >= lease_at {
                        lease_at = now + self.timing.lease_every;
                        self.renew_lease().await;
                    }
                }
            }
        }
    }

    /// Takes in the Node as the API has it: its podCIDR goes to the pod workers.
    fn observe(&mut self, node: Arc<Node>) {
        let cidr = object::pod_cidr(&node).or(self.cfg.pod_cidr);
        self.cidr.send_if_modified(|c| {
            if *c != cidr {
                if let Some(new) = cidr {
                    tracing::info!(pod_cidr = %new, "node podCIDR");
                }
                *c = cidr;
                true
            } else {
                false
            }
        });
        self.current = Some(node);
    }

    /// Creates the Node, or takes over an existing one (our labels, and our podCIDR if it has
    /// none), then posts the full status.
    async fn register(&mut self) -> Result<(), Error> {
        let api = self.api();
        let name = self.cfg.name.clone();
        let observed = self.measure().await;
        let node = {
            let _permit = self.gate.acquire().await;
            match api.create(&PostParams::default(), &object::node(&self.cfg, &observed, Timestamp::now())).await {
                Ok(n) => {
                    tracing::info!("node registered");
                    n
                }
                Err(e) if code(&e) == Some(409) => {
                    let existing = api.get(&name).await.map_err(|e| Error::api("get node", &name, e))?;
                    let mut patch = serde_json::json!({"metadata": {"labels": object::labels(&self.cfg)}});
                    if let (Some(c), None) = (self.cfg.pod_cidr, object::pod_cidr(&existing)) {
                        patch["spec"] = serde_json::json!({"podCIDR": c.to_string(), "podCIDRs": [c.to_string()]});
                    }
                    let n = api
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map_err(|e| Error::api("update node", &name, e))?;
                    tracing::info!("node already registered; taking it over");
                    n
                }
                Err(e) => return Err(Error::api("register node", &name, e)),
            }
        };
        self.observe(Arc::new(node));
        self.post_status().await
    }

    /// What the status reports beyond the config, measured now: a real node's pressure (file
    /// reads, off the async threads) and the runtime's images (None if it cannot list them).
    async fn measure(&mut self) -> Observed {
        let pressure = match self.cfg.pressure.clone() {
            None => Pressure::default(),
            Some(source) => tokio::task::spawn_blocking(move || source.sample()).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "measuring node pressure failed");
                self.pressure
            }),
        };
        if pressure != self.pressure {
            tracing::info!(memory = pressure.memory, disk = pressure.disk, pid = pressure.pid, "node pressure changed");
            self.pressure = pressure;
        }
        self.maybe_collect_images(pressure.disk);
        let images = match self.runtime.list_images().await {
            Ok(list) => Some(object::images(list)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list images for the node status");
                None
            }
        };
        Observed { pressure, images }
    }

    /// Starts an image GC pass every [`IMAGE_GC_PERIOD`], and at once under disk pressure (then
    /// reclaiming every unused image), one pass at a time, off the status path.
    fn maybe_collect_images(&mut self, disk_pressure: bool) {
        let Some(policy) = self.cfg.pressure.as_ref().and_then(|p| p.image_gc) else { return };
        if self.image_gc.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let now = Instant::now();
        if !disk_pressure && now < self.image_gc_at {
            return;
        }
        self.image_gc_at = now + IMAGE_GC_PERIOD;
        let runtime = Arc::clone(&self.runtime);
        self.image_gc = Some(tokio::spawn(async move {
            if let Err(e) = runtime.collect_images(policy, disk_pressure).await {
                tracing::warn!(error = %e, "image garbage collection failed");
            }
        }));
    }

    async fn post_status(&mut self) -> Result<(), Error> {
        let observed = self.measure().await;
        let status = object::status(&self.cfg, self.current.as_deref(), &observed, Timestamp::now());
        let patch = serde_json::json!({ "status": status });
        let node = self
            .api()
            .patch_status(&self.cfg.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::api("update status of node", &self.cfg.name, e))?;
        tracing::debug!("node status posted");
        self.observe(Arc::new(node));
        Ok(())
    }

    async fn renew_lease(&self) {
        let Some(uid) = self.uid() else { return };
        if let Err(e) = lease::renew(&self.client, &self.cfg.name, uid, self.timing.lease_seconds).await {
            tracing::warn!(error = %e, "lease renewal failed");
        } else {
            tracing::debug!("lease renewed");
        }
    }
}
