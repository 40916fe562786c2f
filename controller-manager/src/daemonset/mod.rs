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

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;
use tracing::Instrument;

use crate::job::expectations::Expectations;
use crate::runtime::Informers;
use crate::Context;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("creating a pod of daemonset {ds} on node {node}: {source}")]
    CreatePod { ds: String, node: String, source: kube::Error },
    #[error("deleting pod {pod} of daemonset {ds}: {source}")]
    DeletePod { ds: String, pod: String, source: kube::Error },
    #[error("updating the status of daemonset {ds}: {source}")]
    UpdateStatus { ds: String, source: kube::Error },
}

impl Error {
    fn is_conflict(&self) -> bool {
        let (Error::CreatePod { source, .. } | Error::DeletePod { source, .. } | Error::UpdateStatus { source, .. }) =
            self;
        matches!(source, kube::Error::Api(s) if s.code == 409)
    }
}

pub struct DsCtx {
    ctx: Arc<Context>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    recorder: api::events::Recorder,
    writes: Expectations,
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
        writes: Expectations::default(),
        failed_backoff: Mutex::new(HashMap::new()),
    });
    // Every DaemonSet looks at a node that is new or changed in a way placement cares about;
    // status heartbeats are ignored (upstream `shouldIgnoreNodeUpdate`).
    let seen: Mutex<HashMap<String, String>> = Mutex::new(HashMap::new());
    let all = daemonsets.clone();
    let node_trigger = move |node: Arc<Node>| {
        let fp = node_fingerprint(&node);
        let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        let changed = seen.insert(node.name_any(), fp.clone()).as_ref() != Some(&fp);
        if !changed {
            return Vec::new();
        }
        all.state().iter().map(|ds| ObjectRef::from_obj(ds.as_ref())).collect::<Vec<_>>()
    };
    Controller::for_shared_stream(inf.subscribe::<DaemonSet>(), daemonsets)
        .owns_shared_stream(inf.subscribe::<Pod>())
        .watches_shared_stream(inf.subscribe::<Node>(), node_trigger)
        .run(reconcile, error_policy, dctx)
        .for_each(|_| async {})
        .boxed()
}

async fn reconcile(ds: Arc<DaemonSet>, c: Arc<DsCtx>) -> Result<Action, Error> {
    let span = tracing::info_span!("reconcile", object.ref = %format!("daemonset/{}/{}", ds.namespace().unwrap_or_default(), ds.name_any()));
    sync::sync(ds, c).instrument(span).await
}

fn error_policy(ds: Arc<DaemonSet>, err: &Error, _c: Arc<DsCtx>) -> Action {
    tracing::warn!(daemonset = %ds.name_any(), error = %err, "daemonset sync failed");
    if err.is_conflict() {
        Action::requeue(Duration::from_millis(500))
    } else {
        Action::requeue(Duration::from_secs(5))
    }
}
