//! The process's shared informers (`client-runtime`): ONE pod informer (pods bound to a node)
//! and ONE node informer, however many hollow nodes run here, each change routed to the node it
//! concerns. Deletions — also of objects that vanished while a watch was down — arrive as such,
//! with the object's last state, so they are routed like any other change.

use std::collections::HashMap;
use std::sync::Arc;

use client_runtime::{Change, Informers, Selection};
use futures::stream::BoxStream;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::node::NodeEvent;
use crate::pods::PodEvent;

/// Where one node's events go.
pub struct Route {
    pub pods: mpsc::UnboundedSender<PodEvent>,
    pub node: mpsc::UnboundedSender<NodeEvent>,
}

/// Routes by node name; fixed for the life of the process.
pub type Routes = Arc<HashMap<String, Route>>;

/// The selection of a field selector (empty: every object).
fn selection(fields: &str) -> Selection {
    if fields.is_empty() {
        Selection::default()
    } else {
        Selection::fields(fields)
    }
}

/// Subscribes to the pods matching `pod_fields` (e.g. `spec.nodeName!=`, routed by
/// `spec.nodeName`) and the Nodes matching `node_fields` (routed by name) on `inf`; the caller
/// starts the informers. Returns the routing tasks, which end at `shutdown`.
pub fn subscribe(
    inf: &mut Informers,
    routes: Routes,
    pod_fields: &str,
    node_fields: &str,
    shutdown: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let pods = inf.subscribe_selected::<Pod>(&selection(pod_fields));
    let nodes = inf.subscribe_selected::<Node>(&selection(node_fields));
    vec![route(pods, routes.clone(), shutdown.clone(), route_pod), route(nodes, routes, shutdown.clone(), route_node)]
}

fn route<K: Send + Sync + 'static>(
    mut changes: BoxStream<'static, Change<K>>,
    routes: Routes,
    shutdown: CancellationToken,
    send: fn(&Routes, Change<K>),
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let change = tokio::select! {
                _ = shutdown.cancelled() => return,
                c = changes.next() => c,
            };
            match change {
                Some(c) => send(&routes, c),
                None => return,
            }
        }
    })
}

fn route_pod(routes: &Routes, change: Change<Pod>) {
    let pod = change.object();
    let (Some(uid), Some(node)) = (pod.metadata.uid.clone(), pod.spec.as_ref().and_then(|s| s.node_name.as_deref()))
    else {
        return;
    };
    let Some(route) = routes.get(node) else { return };
    // A closed channel means the node's worker stopped (shutdown).
    let _ = match change {
        Change::Applied { object, .. } => route.pods.send(PodEvent::Apply(object)),
        Change::Deleted(_) => route.pods.send(PodEvent::Gone(uid)),
    };
}

fn route_node(routes: &Routes, change: Change<Node>) {
    let node = change.object();
    let (Some(uid), Some(name)) = (node.metadata.uid.clone(), node.metadata.name.as_deref()) else { return };
    let Some(route) = routes.get(name) else { return };
    let _ = match change {
        Change::Applied { object, .. } => route.node.send(NodeEvent::Apply(object)),
        Change::Deleted(_) => route.node.send(NodeEvent::Deleted(uid)),
    };
}
