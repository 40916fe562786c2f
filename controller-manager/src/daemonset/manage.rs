//! Which daemon pods to create and delete so each eligible node runs exactly one (upstream
//! `manage` / `podsShouldBeOnNode`): nodes that should run a pod and have none get one, pods on
//! nodes that must not keep them go, finished pods are replaced, and duplicates beyond the
//! oldest (or, with surge, beyond one old and one new pod) are removed.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use super::pods::{is_available, is_ready, phase, HASH_LABEL};

/// One node as the plan sees it.
pub struct NodeFit {
    pub name: String,
    pub should_run: bool,
    pub should_continue: bool,
}

/// What to change.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub create_on: Vec<String>,
    pub delete: Vec<String>,
    /// Finished pods to replace (deleted unless their node is in backoff).
    pub finished: Vec<(String, String)>,
}

/// Scheduled first, then oldest, then by name (upstream `podByCreationTimestampAndPhase`).
pub fn oldest_first(a: &Arc<Pod>, b: &Arc<Pod>) -> Ordering {
    let scheduled = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some_and(|n| !n.is_empty());
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    scheduled(b)
        .cmp(&scheduled(a))
        .then_with(|| created(a).cmp(&created(b)))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

fn name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

pub struct Inputs<'a> {
    pub nodes: &'a [NodeFit],
    pub by_node: &'a HashMap<String, Vec<Arc<Pod>>>,
    pub hash: &'a str,
    pub surge: bool,
    pub min_ready_seconds: i32,
    pub now: Timestamp,
}

pub fn plan(i: &Inputs) -> Plan {
    let mut out = Plan::default();
    for node in i.nodes {
        let pods = i.by_node.get(&node.name).map(Vec::as_slice).unwrap_or_default();
        if node.should_run && pods.is_empty() {
            out.create_on.push(node.name.clone());
        } else if node.should_continue {
            let mut running: Vec<Arc<Pod>> = Vec::new();
            for p in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
                if matches!(phase(p), "Failed" | "Succeeded") {
                    out.finished.push((node.name.clone(), name(p)));
                } else {
                    running.push(p.clone());
                }
            }
            if running.len() <= 1 {
                continue;
            }
            running.sort_by(oldest_first);
            if !i.surge {
                out.delete.extend(running[1..].iter().map(|p| name(p)));
                continue;
            }
            // Surge: keep the oldest current pod and the oldest old one, until the current one
            // is available (or the old one is not ready).
            let (mut newest, mut oldest) = (None, None);
            for p in running {
                let current = p.metadata.labels.as_ref().and_then(|l| l.get(HASH_LABEL)).is_some_and(|h| h == i.hash);
                let slot = if current { &mut newest } else { &mut oldest };
                if slot.is_none() {
                    *slot = Some(p);
                } else {
                    out.delete.push(name(&p));
                }
            }
            if let (Some(new), Some(old)) = (newest, oldest) {
                if !is_ready(&old) || is_available(&new, i.min_ready_seconds, i.now) {
                    out.delete.push(name(&old));
                }
            }
        } else {
            out.delete.extend(pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).map(|p| name(p)));
        }
    }
    // Unscheduled pods for nodes that no longer exist.
    for (node, pods) in i.by_node {
        if i.nodes.iter().any(|n| &n.name == node) {
            continue;
        }
        let unscheduled =
            pods.iter().filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none_or(|n| n.is_empty()));
        out.delete.extend(unscheduled.filter(|p| p.metadata.deletion_timestamp.is_none()).map(|p| name(p)));
    }
    out
}
