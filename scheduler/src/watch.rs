//! The scheduler's view of Pods and Nodes, from the process's shared informers
//! (`client-runtime`): each change is reduced to what the scheduler keeps ([`Classified`],
//! [`NodeProps`]) on its own task, so decoding and classification run beside the scheduling
//! loop. Deletions — also of objects that vanished while a watch was down — arrive as such, and
//! each kind reports once that its first list has been delivered.

use client_runtime::{Change, Event, Informers};
use futures::stream::BoxStream;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
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
    /// Every pod of the first list has been delivered.
    PodsSynced,
    Node(NodeProps),
    NodeDeleted {
        name: String,
    },
    /// Every node of the first list has been delivered.
    NodesSynced,
}

/// Subscribes to Pods and Nodes on `inf` and feeds `tx` until `shutdown`.
pub fn subscribe(
    inf: &mut Informers,
    scheduler_name: &str,
    tx: mpsc::Sender<ClusterEvent>,
    shutdown: &CancellationToken,
) {
    let name = scheduler_name.to_string();
    forward(inf.subscribe_events::<Pod>(), tx.clone(), shutdown.clone(), move |ev| match ev {
        Event::Change(Change::Applied { object, .. }) => ClusterEvent::Pod(classify(&object, &name)),
        Event::Change(Change::Deleted(pod)) => ClusterEvent::PodDeleted { uid: pod_uid(&pod) },
        Event::Synced => ClusterEvent::PodsSynced,
    });
    forward(inf.subscribe_events::<Node>(), tx, shutdown.clone(), |ev| match ev {
        Event::Change(Change::Applied { object, .. }) => ClusterEvent::Node(NodeProps::from_node(&object)),
        Event::Change(Change::Deleted(node)) => {
            ClusterEvent::NodeDeleted { name: node.metadata.name.clone().unwrap_or_default() }
        }
        Event::Synced => ClusterEvent::NodesSynced,
    });
}

/// One task per kind: converts each event and sends it to the loop, in order.
fn forward<K: Send + Sync + 'static>(
    mut events: BoxStream<'static, Event<K>>,
    tx: mpsc::Sender<ClusterEvent>,
    shutdown: CancellationToken,
    convert: impl Fn(Event<K>) -> ClusterEvent + Send + 'static,
) {
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                ev = events.next() => ev,
                _ = shutdown.cancelled() => return,
            };
            let Some(ev) = ev else { return };
            if tx.send(convert(ev)).await.is_err() {
                return;
            }
        }
    });
}
