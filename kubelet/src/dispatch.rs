//! The process's shared watches: ONE pod watch (pods bound to a node) and ONE node watch,
//! however many hollow nodes run here, each event routed to the node it concerns. Watches resume
//! from their last resourceVersion and re-list on 410 (kube-runtime's watcher, jittered
//! backoff); after a re-list, objects that vanished meanwhile are reported gone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::watcher::Event;
use kube::runtime::WatchStreamExt;
use kube::runtime::{watcher, watcher::Config};
use kube::{Api, Client};
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

/// Per-kind bookkeeping: which objects each node was told about, to report the ones a re-list
/// no longer has.
struct Known {
    /// uid → node name.
    routed: HashMap<String, String>,
    relisted: HashSet<String>,
}

impl Known {
    fn new() -> Self {
        Known { routed: HashMap::new(), relisted: HashSet::new() }
    }

    /// uids (with their node) routed before but missing from the re-list that just finished.
    fn vanished(&mut self) -> Vec<(String, String)> {
        let gone: Vec<String> = self.routed.keys().filter(|u| !self.relisted.contains(*u)).cloned().collect();
        self.relisted = HashSet::new();
        gone.into_iter().filter_map(|u| self.routed.remove(&u).map(|n| (u, n))).collect()
    }
}

/// Watches pods matching `fields` (e.g. `spec.nodeName!=`) and routes them by `spec.nodeName`.
pub fn spawn_pod_watch(client: Client, routes: Routes, fields: String, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<Pod> = Api::all(client);
        let mut stream = watcher(api, Config::default().fields(&fields).any_semantic()).default_backoff().boxed();
        let mut known = Known::new();
        let gone = |known: &mut Known, uid: String| {
            if let Some(route) = known.routed.remove(&uid).and_then(|n| routes.get(&n)) {
                let _ = route.pods.send(PodEvent::Gone(uid));
            }
        };
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = stream.next() => ev,
            };
            match ev {
                None => return,
                Some(Err(e)) => tracing::warn!(error = %e, "pod watch failed; retrying"),
                Some(Ok(Event::Init)) => known.relisted.clear(),
                Some(Ok(Event::InitDone)) => {
                    for (uid, node) in known.vanished() {
                        if let Some(route) = routes.get(&node) {
                            let _ = route.pods.send(PodEvent::Gone(uid));
                        }
                    }
                }
                Some(Ok(ev @ (Event::InitApply(_) | Event::Apply(_)))) => {
                    let relist = matches!(ev, Event::InitApply(_));
                    let (Event::InitApply(pod) | Event::Apply(pod)) = ev else { continue };
                    let (Some(uid), Some(node)) =
                        (pod.metadata.uid.clone(), pod.spec.as_ref().and_then(|s| s.node_name.clone()))
                    else {
                        continue;
                    };
                    let Some(route) = routes.get(&node) else { continue };
                    if relist {
                        known.relisted.insert(uid.clone());
                    }
                    known.routed.insert(uid, node);
                    let _ = route.pods.send(PodEvent::Apply(Arc::new(pod)));
                }
                Some(Ok(Event::Delete(pod))) => {
                    if let Some(uid) = pod.metadata.uid {
                        gone(&mut known, uid);
                    }
                }
            }
        }
    })
}

/// Watches Nodes matching `fields` (empty for all) and routes them by name.
pub fn spawn_node_watch(client: Client, routes: Routes, fields: String, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<Node> = Api::all(client);
        let mut config = Config::default().any_semantic();
        if !fields.is_empty() {
            config = config.fields(&fields);
        }
        let mut stream = watcher(api, config).default_backoff().boxed();
        let mut known = Known::new();
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = stream.next() => ev,
            };
            match ev {
                None => return,
                Some(Err(e)) => tracing::warn!(error = %e, "node watch failed; retrying"),
                Some(Ok(Event::Init)) => known.relisted.clear(),
                Some(Ok(Event::InitDone)) => {
                    for (uid, name) in known.vanished() {
                        if let Some(route) = routes.get(&name) {
                            let _ = route.node.send(NodeEvent::Deleted(uid));
                        }
                    }
                }
                Some(Ok(ev @ (Event::InitApply(_) | Event::Apply(_)))) => {
                    let relist = matches!(ev, Event::InitApply(_));
                    let (Event::InitApply(node) | Event::Apply(node)) = ev else { continue };
                    let (Some(uid), Some(name)) = (node.metadata.uid.clone(), node.metadata.name.clone()) else {
                        continue;
                    };
                    let Some(route) = routes.get(&name) else { continue };
                    if relist {
                        known.relisted.insert(uid.clone());
                    }
                    if !known.routed.contains_key(&uid) {
                        // A re-registered node has a new uid: forget the old one.
                        known.routed.retain(|_, n| *n != name);
                        known.routed.insert(uid, name);
                    }
                    let _ = route.node.send(NodeEvent::Apply(Arc::new(node)));
                }
                Some(Ok(Event::Delete(node))) => {
                    let Some(uid) = node.metadata.uid else { continue };
                    if let Some(route) = known.routed.remove(&uid).and_then(|n| routes.get(&n)) {
                        let _ = route.node.send(NodeEvent::Deleted(uid));
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relist_reports_what_vanished_meanwhile() {
        let mut k = Known::new();
        for (uid, node) in [("a", "n0"), ("b", "n1"), ("c", "n1")] {
            k.routed.insert(uid.into(), node.into());
        }
        k.relisted.insert("b".into());
        let mut gone = k.vanished();
        gone.sort();
        assert_eq!(gone, vec![("a".to_string(), "n0".to_string()), ("c".to_string(), "n1".to_string())]);
        assert_eq!(k.routed.keys().collect::<Vec<_>>(), vec!["b"]);
        assert!(k.relisted.is_empty());
    }
}
