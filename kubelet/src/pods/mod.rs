//! Pod workers of one node: one task per pod bound to it, fed by the process's shared pod watch
//! and woken by the runtime's container events. At start the node takes over the sandboxes a
//! previous kubelet left in the runtime ([`adopt`]).

pub mod adopt;
pub mod config;
pub mod events;
pub mod ip_pool;
pub mod probe;
pub mod pull_secrets;
pub mod restart;
pub mod status;
pub mod volumes;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::runtime::Runtime;
use api::cidr::Cidr;
use config::NodeFacts;
use ip_pool::IpPool;

/// What the shared pod watch tells a node.
#[derive(Debug)]
pub enum PodEvent {
    /// The pod as it is now.
    Apply(Arc<Pod>),
    /// The pod (by uid) left the API.
    Gone(String),
    /// The eviction manager evicts the pod (by uid): its worker kills it and fails it.
    Evict { uid: String, eviction: crate::eviction::Eviction },
}

/// What the pod workers of one node share.
pub struct NodeCtx {
    /// The node's name, IP, allocatable, DNS, cgroup root: what pod configs are made from.
    pub facts: NodeFacts,
    pub client: kube::Client,
    pub runtime: Arc<dyn Runtime>,
    /// Container ID scheme (`skiff-fake`).
    pub scheme: String,
    pub ips: Mutex<IpPool>,
    /// The node's podCIDR once known (set by the node task).
    pub cidr: watch::Receiver<Option<Cidr>>,
    /// Every Service (the shared informer's cache), for containers' Service variables.
    pub services: client_runtime::Store<k8s_openapi::api::core::v1::Service>,
    /// How often volumes projected from objects are refreshed.
    pub sync_frequency: std::time::Duration,
    /// Writes the pods' Events; None: no Events.
    pub recorder: Option<api::events::Recorder>,
}

impl NodeCtx {
    pub fn ips(&self) -> MutexGuard<'_, IpPool> {
        self.ips.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs the pod workers of one node until `shutdown`. Containers keep running at shutdown (as
/// upstream's kubelet leaves them); a pod that leaves the API is torn down.
pub async fn run_manager(ctx: Arc<NodeCtx>, mut rx: mpsc::UnboundedReceiver<PodEvent>, shutdown: CancellationToken) {
    let mut workers: HashMap<String, worker::Handle> = HashMap::new();
    let mut events = ctx.runtime.events();
    // Pod events wait in the channel meanwhile: no worker starts before adoption is decided.
    let mut unclaimed = tokio::select! {
        _ = shutdown.cancelled() => return,
        found = adopt::at_start(&ctx) => found,
    };
    let mut recheck_at = Instant::now() + adopt::RECHECK_EVERY;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            ev = rx.recv() => match ev {
                None => return,
                Some(PodEvent::Apply(pod)) => {
                    let Some(uid) = pod.metadata.uid.clone() else { continue };
                    match workers.get(&uid) {
                        Some(h) => {
                            h.pod.send_replace(pod);
                        }
                        None => {
                            let adopted = unclaimed.remove(&uid);
                            workers.insert(uid, worker::spawn(ctx.clone(), pod, adopted, shutdown.clone()));
                        }
                    }
                }
                Some(PodEvent::Gone(uid)) => {
                    if let Some(h) = workers.remove(&uid) {
                        h.gone.cancel();
                    }
                }
                Some(PodEvent::Evict { uid, eviction }) => {
                    if let Some(h) = workers.get(&uid) {
                        *h.evict.lock().unwrap_or_else(|e| e.into_inner()) = Some(eviction);
                        h.wake.notify_one();
                    }
                }
            },
            Some(e) = events.next() => {
                if let Some(h) = workers.get(&e.pod_uid) {
                    h.wake.notify_one();
                }
            }
            _ = tokio::time::sleep_until(recheck_at), if !unclaimed.is_empty() => {
                adopt::recheck(&ctx, &mut unclaimed).await;
                recheck_at = Instant::now() + adopt::RECHECK_EVERY;
            }
        }
    }
}
