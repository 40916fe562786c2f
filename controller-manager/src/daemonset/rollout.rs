//! Rolling update of daemon pods (upstream `daemon/update.go` `rollingUpdate`). Without surge,
//! old pods are deleted while at most `maxUnavailable` nodes lack an available current pod (the
//! manage step then creates the replacements); with surge, a current pod is started beside an
//! old one on up to `maxSurge` nodes, and the old pod goes once the new one is available.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::manage::NodeFit;
use super::pods::is_available;

/// `maxSurge`/`maxUnavailable` against `desired` nodes, percentages rounded up; at least one
/// pod may be unavailable when neither allows anything (upstream `updatedDesiredNodeCounts`).
pub fn limits(max_surge: Option<&IntOrString>, max_unavailable: Option<&IntOrString>, desired: i32) -> (i32, i32) {
    let scaled = |v: Option<&IntOrString>, default: i32| match v {
        None => default,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            ((pct * i64::from(desired) + 99) / 100) as i32
        }
    };
    let surge = scaled(max_surge, 0).max(0);
    let mut unavailable = scaled(max_unavailable, 1).max(0);
    if desired > 0 && surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

/// The pods on one node split into the current one and the old one; `None` when there is
/// more than one of either (the manage step sorts that out first).
fn split<'a>(pods: &'a [Arc<Pod>], updated: &dyn Fn(&Pod) -> bool) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let (mut new, mut old) = (None, None);
    for p in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        let slot = if updated(p) { &mut new } else { &mut old };
        if slot.is_some() {
            return None;
        }
        *slot = Some(p.as_ref());
    }
    Some((new, old))
}

pub struct Inputs<'a> {
    pub nodes: &'a [NodeFit],
    pub by_node: &'a HashMap<String, Vec<Arc<Pod>>>,
    pub updated: &'a dyn Fn(&Pod) -> bool,
    pub max_surge: i32,
    pub max_unavailable: i32,
    pub desired: i32,
    pub min_ready_seconds: i32,
    pub now: Timestamp,
}

/// `(old pods to delete, nodes to create a current pod on)`.
pub fn step(i: &Inputs) -> (Vec<String>, Vec<String>) {
    let avail = |p: &Pod| is_available(p, i.min_ready_seconds, i.now);
    let name = |p: &Pod| p.metadata.name.clone().unwrap_or_default();
    let should_run = |n: &str| i.nodes.iter().any(|x| x.name == n && x.should_run);
    let mut nodes: Vec<&String> = i.by_node.keys().collect();
    nodes.sort();
    if i.max_surge == 0 {
        let mut unavailable = 0;
        let mut replace = Vec::new();
        let mut candidates = Vec::new();
        for node in nodes {
            match split(&i.by_node[node], i.updated) {
                None | Some((None, None)) | Some((Some(_), Some(_))) => unavailable += 1,
                Some((Some(new), None)) => unavailable += i32::from(!avail(new)),
                Some((None, Some(old))) if !avail(old) => replace.push(name(old)),
                Some((None, Some(old))) if unavailable < i.max_unavailable => candidates.push(name(old)),
                Some((None, Some(_))) => {}
            }
        }
        let room = (i.max_unavailable - unavailable).clamp(0, candidates.len() as i32) as usize;
        replace.extend(candidates.into_iter().take(room));
        return (replace, Vec::new());
    }
    let (mut delete, mut must_not_run, mut allowed, mut candidates) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut surging, mut available) = (0, 0);
    for node in nodes {
        let Some((new, old)) = split(&i.by_node[node], i.updated) else {
            surging += 1;
            continue;
        };
        if let Some(p) = old.or(new) {
            available += i32::from(avail(p));
        }
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) if !avail(old) => {
                if should_run(node) {
                    allowed.push(node.clone());
                } else {
                    delete.push(name(old));
                }
            }
            (None, Some(old)) => {
                if !should_run(node) {
                    must_not_run.push(name(old));
                } else if surging < i.max_surge {
                    candidates.push(node.clone());
                }
            }
            (Some(new), Some(old)) => {
                if avail(new) {
                    delete.push(name(old));
                } else {
                    surging += 1;
                }
            }
        }
    }
    // Pods on nodes that no longer fit go only once enough others are available.
    let deletable = (available - i.desired).clamp(0, must_not_run.len() as i32) as usize;
    delete.extend(must_not_run.into_iter().take(deletable));
    let room = (i.max_surge - surging).clamp(0, candidates.len() as i32) as usize;
    allowed.extend(candidates.into_iter().take(room));
    (delete, allowed)
}

#[cfg(test)]
#[path = "rollout_tests.rs"]
mod tests;
