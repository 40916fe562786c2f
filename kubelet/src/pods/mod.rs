//! Pod workers of one node: one task per pod bound to it, fed by the process's shared pod watch
//! and woken by the runtime's container events.

pub mod ip_pool;
pub mod restart;
pub mod status;
mod worker;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::runtime::Runtime;
use api::cidr::Cidr;
use ip_pool::IpPool;

/// What the shared pod watch tells a node.
#[derive(Debug)]
pub enum PodEvent {
    /// The pod as it is now.
    Apply(Arc<Pod>),
    /// The pod (by uid) left the API.
    Gone(String),
}

/// What the pod workers of one node share.
pub struct NodeCtx {
    pub node_name: String,
    pub client: kube::Client,
    pub runtime: Arc<dyn Runtime>,
    /// Container ID scheme (`skiff-fake`).
    pub scheme: String,
    pub host_ip: IpAddr,
    pub ips: Mutex<IpPool>,
    /// The node's podCIDR once known (set by the node task).
    pub cidr: watch::Receiver<Option<Cidr>>,
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
                            workers.insert(uid, worker::spawn(ctx.clone(), pod, shutdown.clone()));
                        }
                    }
                }
                Some(PodEvent::Gone(uid)) => {
                    if let Some(h) = workers.remove(&uid) {
                        h.gone.cancel();
                    }
                }
            },
            Some(e) = events.next() => {
                if let Some(h) = workers.get(&e.pod_uid) {
                    h.wake.notify_one();
                }
            }
        }
    }
}
