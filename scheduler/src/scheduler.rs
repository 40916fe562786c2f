//! The scheduling loop. One task owns the cache and the queue: it applies watch events, takes
//! the next pod, decides synchronously on the cache (so consecutive decisions see each other),
//! assumes the pod on its node and hands the binding to a bounded set of concurrent writers,
//! whose outcomes come back to the loop.

use std::sync::Arc;
use std::time::Instant;

use client_runtime::Informers;
use futures::future::BoxFuture;
use futures::FutureExt;
use kube::Client;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::sleep_until;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use api::events::Recorder;

use crate::bind::{bind, report_unschedulable, BindOutcome};
use crate::cache::{Cache, NodeChange};
use crate::placement::{place, Scratch};
use crate::pod_info::{Classified, PendingPod};
use crate::queue::Queue;
use crate::watch::{self, ClusterEvent};
use crate::Opts;

/// Watch events buffered between the watch tasks and the loop.
const EVENT_BUFFER: usize = 4096;

/// A binding's result, reported back to the loop.
struct BindResult {
    pod: Arc<PendingPod>,
    outcome: BindOutcome,
}

struct Scheduler {
    client: Client,
    recorder: Recorder,
    cache: Cache,
    queue: Queue,
    scratch: Scratch,
    rng: SmallRng,
    writers: Arc<Semaphore>,
    results: mpsc::UnboundedSender<BindResult>,
    pods_synced: bool,
    nodes_synced: bool,
}

/// Runs the scheduler until `shutdown`, on informers of its own.
pub async fn run(opts: Opts, client: Client, shutdown: CancellationToken) {
    let mut inf = Informers::new();
    let scheduling = start(opts, client.clone(), &mut inf, shutdown.clone());
    inf.start(&client, &shutdown);
    scheduling.await
}

/// Subscribes the scheduler to `inf` (the caller starts it) and returns its loop, which runs
/// until `shutdown`.
pub fn start(opts: Opts, client: Client, inf: &mut Informers, shutdown: CancellationToken) -> BoxFuture<'static, ()> {
    let (events_tx, events) = mpsc::channel(EVENT_BUFFER);
    let stop_watches = shutdown.child_token();
    watch::subscribe(inf, &opts.scheduler_name, events_tx, &stop_watches);
    run_loop(opts, client, events, stop_watches, shutdown).boxed()
}

async fn run_loop(
    opts: Opts,
    client: Client,
    mut events: mpsc::Receiver<ClusterEvent>,
    stop_watches: CancellationToken,
    shutdown: CancellationToken,
) {
    let (results_tx, mut results) = mpsc::unbounded_channel();
    let mut s = Scheduler {
        recorder: Recorder::new(client.clone(), opts.scheduler_name.clone()),
        client,
        cache: Cache::default(),
        queue: Queue::new(opts.unschedulable_timeout),
        scratch: Scratch::default(),
        rng: SmallRng::from_os_rng(),
        writers: Arc::new(Semaphore::new(opts.bind_concurrency.max(1))),
        results: results_tx,
        pods_synced: false,
        nodes_synced: false,
    };
    tracing::info!(scheduler = %opts.scheduler_name, "scheduler started");
    loop {
        let now = Instant::now();
        let wakeup = s.queue.next_wakeup(now);
        let ready = s.pods_synced && s.nodes_synced && s.queue.has_active();
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(ev) = events.recv() => s.apply(ev),
            Some(r) = results.recv() => s.bound(r),
            _ = sleep_until(wakeup.into()) => s.queue.flush(Instant::now()),
            permit = s.writers.clone().acquire_owned(), if ready => {
                if let Ok(permit) = permit {
                    s.schedule_one(permit);
                }
            }
        }
    }
    stop_watches.cancel();
    tracing::info!("scheduler stopped");
}

impl Scheduler {
    /// Applies one watch event to the cache and the queue.
    fn apply(&mut self, ev: ClusterEvent) {
        let now = Instant::now();
        match ev {
            ClusterEvent::Pod(Classified::Pending(pod)) => {
                // An assumed pod's own (stale) pending events must not queue it again.
                if !self.cache.is_assumed(&pod.uid) {
                    self.queue.add_or_update(Arc::from(pod), now);
                }
            }
            ClusterEvent::Pod(Classified::Bound { uid, node, usage }) => {
                self.queue.remove(&uid);
                self.cache.add_bound(&uid, &node, usage);
            }
            ClusterEvent::Pod(Classified::Ignored { uid }) | ClusterEvent::PodDeleted { uid } => {
                self.queue.remove(&uid);
                if self.cache.remove_pod(&uid) {
                    self.cluster_changed("pod left its node", now);
                }
            }
            ClusterEvent::PodsSynced => {
                tracing::info!(pods = self.cache.pod_count(), pending = self.queue.len(), "pods listed");
                self.pods_synced = true;
            }
            ClusterEvent::Node(props) => {
                let name = props.name.clone();
                match self.cache.apply_node(props) {
                    NodeChange::Unchanged => {}
                    NodeChange::Added => {
                        tracing::debug!(node = %name, "node added");
                        self.cluster_changed("node added", now);
                    }
                    NodeChange::Changed => self.cluster_changed("node changed", now),
                }
            }
            ClusterEvent::NodeDeleted { name } => self.cache.delete_node(&name),
            ClusterEvent::NodesSynced => {
                tracing::info!(nodes = self.cache.node_count(), "nodes listed");
                self.nodes_synced = true;
                self.cluster_changed("nodes listed", now);
            }
        }
    }

    fn cluster_changed(&mut self, why: &str, now: Instant) {
        let moved = self.queue.move_all_unschedulable(now);
        if moved > 0 {
            tracing::debug!(moved, why, "retrying unschedulable pods");
        }
    }

    /// Places the next pod, holding one writer permit for its binding or report.
    fn schedule_one(&mut self, permit: tokio::sync::OwnedSemaphorePermit) {
        let now = Instant::now();
        let Some(pod) = self.queue.pop(now) else { return };
        let span = tracing::info_span!("schedule", pod = %pod.key());
        let _enter = span.enter();
        match place(&self.cache, &pod.needs, &mut self.scratch, &mut self.rng) {
            Ok(slot) => {
                let Some(node) = self.cache.node(slot).map(|n| n.name.clone()) else {
                    self.queue.backoff(&pod.uid, now);
                    return;
                };
                self.cache.assume(&pod.uid, slot, pod.needs.usage.clone());
                let client = self.client.clone();
                let results = self.results.clone();
                tokio::spawn(
                    async move {
                        let outcome = bind(&client, &pod, &node).await;
                        drop(permit);
                        if let BindOutcome::Bound = outcome {
                            tracing::debug!(node = %node, "bound");
                        }
                        let _ = results.send(BindResult { pod, outcome });
                    }
                    .instrument(span.clone()),
                );
            }
            Err(fit) => {
                let message = fit.to_string();
                tracing::info!(%message, "unschedulable");
                self.queue.unschedulable(&pod.uid, now);
                let client = self.client.clone();
                let recorder = self.recorder.clone();
                tokio::spawn(
                    async move {
                        report_unschedulable(&client, &recorder, &pod, &message).await;
                        drop(permit);
                    }
                    .instrument(span.clone()),
                );
            }
        }
    }

    /// Applies a binding's outcome.
    fn bound(&mut self, r: BindResult) {
        let uid = &r.pod.uid;
        match r.outcome {
            BindOutcome::Bound => {
                self.cache.bind_done(uid);
                self.queue.remove(uid);
            }
            BindOutcome::Moot(e) => {
                tracing::info!(pod = %r.pod.key(), error = %e, "binding refused; dropping the pod");
                self.cache.forget(uid);
                self.queue.remove(uid);
            }
            BindOutcome::Failed(e) => {
                tracing::warn!(pod = %r.pod.key(), error = %e, "binding failed; retrying after backoff");
                self.cache.forget(uid);
                if self.queue.contains(uid) {
                    self.queue.backoff(uid, Instant::now());
                }
            }
        }
    }
}
