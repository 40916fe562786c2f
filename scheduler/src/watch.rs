//! The scheduler's two watches (Pods and Nodes, one each per process), each on its own task so
//! decoding runs beside the scheduling loop. Objects are reduced to what the scheduler keeps
//! ([`Classified`], [`NodeProps`]) before they reach the loop; re-lists report the full set so
//! the loop can drop what vanished while the watch was down.

use std::collections::HashSet;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::node_info::NodeProps;
use crate::pod_info::{classify, pod_uid, Classified};

/// What the watches tell the scheduling loop.
#[derive(Debug)]
pub enum ClusterEvent {
    Pod(Classified),
    PodDeleted {
        uid: String,
    },
    /// A (re-)list of pods finished; these UIDs exist.
    PodsListed(HashSet<String>),
    Node(NodeProps),
    NodeDeleted {
        name: String,
    },
    /// A (re-)list of nodes finished; these names exist.
    NodesListed(HashSet<String>),
}

/// Starts the pod and node watches, feeding `tx` until `shutdown`.
pub fn start(client: &Client, scheduler_name: &str, tx: mpsc::Sender<ClusterEvent>, shutdown: &CancellationToken) {
    let pods: Api<Pod> = Api::all(client.clone());
    let name = scheduler_name.to_string();
    spawn_watch(
        pods,
        tx.clone(),
        shutdown.clone(),
        move |ev, listing| match ev {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                if let Some(seen) = listing {
                    seen.insert(pod_uid(&p));
                }
                Some(ClusterEvent::Pod(classify(&p, &name)))
            }
            watcher::Event::Delete(p) => Some(ClusterEvent::PodDeleted { uid: pod_uid(&p) }),
            watcher::Event::Init | watcher::Event::InitDone => None,
        },
        ClusterEvent::PodsListed,
    );
    let nodes: Api<Node> = Api::all(client.clone());
    spawn_watch(
        nodes,
        tx,
        shutdown.clone(),
        |ev, listing| match ev {
            watcher::Event::Apply(n) | watcher::Event::InitApply(n) => {
                let props = NodeProps::from_node(&n);
                if let Some(seen) = listing {
                    seen.insert(props.name.clone());
                }
                Some(ClusterEvent::Node(props))
            }
            watcher::Event::Delete(n) => Some(ClusterEvent::NodeDeleted { name: n.metadata.name.unwrap_or_default() }),
            watcher::Event::Init | watcher::Event::InitDone => None,
        },
        ClusterEvent::NodesListed,
    );
}

/// Runs one watch: `convert` maps each event (noting listed keys while a list is in progress),
/// `listed` wraps the key set when a list completes.
fn spawn_watch<K>(
    api: Api<K>,
    tx: mpsc::Sender<ClusterEvent>,
    shutdown: CancellationToken,
    convert: impl Fn(watcher::Event<K>, Option<&mut HashSet<String>>) -> Option<ClusterEvent> + Send + 'static,
    listed: fn(HashSet<String>) -> ClusterEvent,
) where
    K: kube::Resource + Clone + std::fmt::Debug + k8s_openapi::serde::de::DeserializeOwned + Send + 'static,
{
    let kind = std::any::type_name::<K>();
    tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default().any_semantic()).default_backoff().boxed();
        let mut listing: Option<HashSet<String>> = None;
        loop {
            let next = tokio::select! {
                n = stream.next() => n,
                _ = shutdown.cancelled() => return,
            };
            let event = match next {
                None => return,
                Some(Err(e)) => {
                    tracing::warn!(kind, error = %e, "watch error; retrying");
                    continue;
                }
                Some(Ok(ev)) => ev,
            };
            let out = match event {
                watcher::Event::Init => {
                    listing = Some(HashSet::new());
                    None
                }
                watcher::Event::InitDone => listing.take().map(listed),
                ev => convert(ev, listing.as_mut()),
            };
            if let Some(out) = out {
                if tx.send(out).await.is_err() {
                    return;
                }
            }
        }
    });
}
