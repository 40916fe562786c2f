//! The DaemonSet controller (upstream `pkg/controller/daemon`): one pod per eligible node,
//! pinned to it by required node affinity (the scheduler binds it), following nodes as they
//! come, change and go; rolling updates (maxUnavailable / maxSurge) or OnDelete; the status
//! counters and observedGeneration.
//!
//! Deviations: no ControllerRevisions (the `controller-revision-hash` label is a hash of the
//! template, see [`pods`]); pods are owned through controller references only (no adoption of
//! orphans by selector).

mod manage;
mod placement;
mod pods;
mod rollout;
mod status;
mod sync;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client_runtime::{Change, Controller, Expectations, Informers, ObjectRef, Store};
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};

use crate::Context;

/// Upstream's `--concurrent-daemonset-syncs`.
const WORKERS: u16 = 2;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("creating a pod of daemonset {ds} on node {node}: {source}")]
    CreatePod { ds: String, node: String, source: kube::Error },
    #[error("deleting pod {pod} of daemonset {ds}: {source}")]
    DeletePod { ds: String, pod: String, source: kube::Error },
    #[error("updating the status of daemonset {ds}: {source}")]
    UpdateStatus { ds: String, source: kube::Error },
}

pub struct DsCtx {
    ctx: Arc<Context>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    recorder: api::events::Recorder,
    /// Pods created or deleted, by DaemonSet UID (upstream `expectations`).
    writes: Arc<Expectations>,
    /// Backoff for replacing failed pods, by (DaemonSet UID, node): when it ends and the next delay.
    failed_backoff: Mutex<HashMap<(String, String), (Instant, Duration)>>,
}

/// What about a node matters to placement: labels, taints, unschedulable, name.
fn node_fingerprint(node: &Node) -> String {
    let spec = node.spec.as_ref();
    serde_json::to_string(&(
        &node.metadata.labels,
        spec.and_then(|s| s.taints.as_ref()),
        spec.and_then(|s| s.unschedulable),
    ))
    .unwrap_or_default()
}

/// The DaemonSet controller (`--controllers` name `daemonset`).
pub fn controller(inf: &mut Informers, ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    let daemonsets = inf.store::<DaemonSet>();
    let dctx = Arc::new(DsCtx {
        recorder: ctx.recorder("daemonset-controller"),
        ctx,
        pods: inf.store::<Pod>(),
        nodes: inf.store::<Node>(),
        writes: Arc::default(),
        failed_backoff: Mutex::new(HashMap::new()),
    });
    // Every DaemonSet looks at a node that is new or changed in a way placement cares about;
    // status heartbeats are ignored (upstream `shouldIgnoreNodeUpdate`).
    let all = daemonsets.clone();
    let node_trigger = move |c: &Change<Node>| {
        let relevant = match c {
            Change::Applied { object, previous: Some(old) } => node_fingerprint(object) != node_fingerprint(old),
            Change::Applied { previous: None, .. } | Change::Deleted(_) => true,
        };
        if !relevant {
            return Vec::new();
        }
        all.state().iter().map(|ds| ObjectRef::from_obj(ds.as_ref())).collect::<Vec<_>>()
    };
    let writes = dctx.writes.clone();
    Controller::new("daemonset", inf)
        .watches(inf, move |c: &Change<Pod>| pod_changed(&writes, c))
        .watches(inf, node_trigger)
        .workers(WORKERS)
        .run(inf, sync::sync, dctx)
}

/// The DaemonSet controlling a pod: its UID (the expectations key) and its reference.
fn daemonset_of(pod: &Pod) -> Option<(String, ObjectRef<DaemonSet>)> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    api::owner::controller_of(&pod.metadata)
        .filter(|r| r.kind == "DaemonSet" && r.api_version == "apps/v1")
        .map(|r| (r.uid.clone(), ObjectRef::new(&r.name).within(ns)))
}

/// A pod change (upstream `addPod`/`updatePod`/`deletePod`): lowers its DaemonSet's expectations
/// and names the DaemonSets to sync (old and new controller when that changed).
fn pod_changed(writes: &Expectations, change: &Change<Pod>) -> Vec<ObjectRef<DaemonSet>> {
    let pod = change.object();
    let mut out = Vec::new();
    if let Change::Applied { previous: Some(old), .. } = change {
        let now = daemonset_of(pod).map(|(uid, _)| uid);
        out.extend(daemonset_of(old).filter(|(uid, _)| now.as_ref() != Some(uid)).map(|(_, r)| r));
    }
    if let Some((uid, r)) = daemonset_of(pod) {
        writes.observe(&uid, change);
        out.push(r);
    }
    out
}
