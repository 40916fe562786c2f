//! The ReplicaSet controller (upstream `pkg/controller/replicaset`): keeps `spec.replicas` active
//! pods for each ReplicaSet. It owns pods through controller ownerReferences (adopting matching
//! orphans, releasing pods that stopped matching), creates pods from the template (named
//! `<rs>-<random>` by the server) and deletes the least valuable ones first, and reports
//! replicas / fullyLabeledReplicas / readyReplicas / availableReplicas / observedGeneration and
//! the ReplicaFailure condition. Terminating and finished pods do not count.

pub(crate) mod claim;
mod manage;
mod overlay;
pub(crate) mod pods;
mod rank;
mod status;

pub(crate) use manage::{message as error_message, namespace_terminating};

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt};
use tracing::Instrument;

use api::events::Recorder;
use api::selector::LabelSelector;

use crate::runtime::Informers;
use crate::Context;
use claim::Owner;
use overlay::Overlay;

/// Added to a requeue for availability, so that the pod is available when we look.
const REQUEUE_SLACK: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("claim pods of replicaset {rs}: {source}")]
    Claim { rs: String, source: kube::Error },
    #[error("manage pods of replicaset {rs}: {source}")]
    Manage { rs: String, source: kube::Error },
    #[error("update status of replicaset {rs}: {source}")]
    Status { rs: String, source: kube::Error },
}

impl Error {
    fn is_conflict(&self) -> bool {
        let (Error::Claim { source, .. } | Error::Manage { source, .. } | Error::Status { source, .. }) = self;
        matches!(source, kube::Error::Api(s) if s.is_conflict())
    }
}

struct State {
    ctx: Arc<Context>,
    replicasets: Store<ReplicaSet>,
    pods: Store<Pod>,
    recorder: Recorder,
    overlay: Overlay,
}

/// The `replicaset` controller.
pub fn controller(inf: &mut Informers, ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    let replicasets = inf.store::<ReplicaSet>();
    let pods = inf.store::<Pod>();
    let state = Arc::new(State {
        recorder: ctx.recorder("replicaset-controller"),
        ctx,
        replicasets: replicasets.clone(),
        pods,
        overlay: Overlay::default(),
    });
    let rs_for_pods = replicasets.clone();
    Controller::for_shared_stream(inf.subscribe::<ReplicaSet>(), replicasets)
        .watches_shared_stream(inf.subscribe::<Pod>(), move |pod: Arc<Pod>| replicasets_of_pod(&rs_for_pods, &pod))
        .run(reconcile, error_policy, state)
        .for_each(|_| async {})
        .boxed()
}

/// The ReplicaSets a pod event concerns: its controller, or for an orphan every ReplicaSet of
/// its namespace that selects it (one of them may adopt it).
fn replicasets_of_pod(store: &Store<ReplicaSet>, pod: &Pod) -> Vec<ObjectRef<ReplicaSet>> {
    let ns = pod.namespace().unwrap_or_default();
    match claim::controller_of(pod) {
        Some(r) if r.kind == "ReplicaSet" => vec![ObjectRef::new(&r.name).within(&ns)],
        Some(_) => vec![],
        None if pod.metadata.deletion_timestamp.is_some() => vec![],
        None => store
            .state()
            .iter()
            .filter(|rs| rs.namespace().as_deref() == Some(ns.as_str()))
            .filter(|rs| selector(rs).is_some_and(|s| !s.is_empty() && claim::selects(&s, pod)))
            .map(|rs| ObjectRef::from_obj(rs.as_ref()))
            .collect(),
    }
}

fn selector(rs: &ReplicaSet) -> Option<LabelSelector> {
    let sel = serde_json::to_value(&rs.spec.as_ref()?.selector).ok()?;
    LabelSelector::from_json(&sel).ok()
}

fn error_policy(rs: Arc<ReplicaSet>, err: &Error, _: Arc<State>) -> Action {
    if err.is_conflict() {
        // Optimistic concurrency: the cache was behind a write; the next sync sees it.
        tracing::debug!(replicaset = %rs.name_any(), error = %err, "conflict; retrying");
        return Action::requeue(Duration::from_millis(200));
    }
    tracing::warn!(replicaset = %rs.name_any(), error = %err, "sync failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile(rs: Arc<ReplicaSet>, st: Arc<State>) -> Result<Action, Error> {
    let key = format!("{}/{}", rs.namespace().unwrap_or_default(), rs.name_any());
    let span = tracing::info_span!("replicaset", object.ref = %key);
    sync(rs, &st, key).instrument(span).await
}

async fn sync(rs: Arc<ReplicaSet>, st: &State, key: String) -> Result<Action, Error> {
    let ns = rs.namespace().unwrap_or_default();
    let Some(sel) = selector(&rs) else {
        tracing::warn!("invalid selector; ignoring");
        return Ok(Action::await_change());
    };
    let pod_api: Api<Pod> = Api::namespaced(st.ctx.client.clone(), &ns);
    let rs_api: Api<ReplicaSet> = Api::namespaced(st.ctx.client.clone(), &ns);
    let uid = rs.uid().unwrap_or_default();
    // Candidates: this namespace's pods that it controls or that are orphans.
    let candidates: Vec<Arc<Pod>> = st
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
        .filter(|p| claim::controller_of(p.as_ref()).is_none_or(|r| r.uid == uid))
        .filter(|p| pods::is_active(p))
        .collect();
    let (owned, claim_err) = claim::claim(&pod_api, &rs_api, &Owner::of(rs.as_ref()), &sel, candidates).await;
    if let Some(source) = claim_err {
        return Err(Error::Claim { rs: key, source });
    }
    let mut active = st.overlay.apply(&uid, &ns, &st.pods, owned);

    let mut manage_err = None;
    if rs.metadata.deletion_timestamp.is_none() {
        let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0) as usize;
        let related = if active.len() > desired { related_pods(st, &rs, &ns) } else { Vec::new() };
        let manager = manage::Manager { api: &pod_api, recorder: &st.recorder, overlay: &st.overlay };
        manage_err = manager.manage(&rs, &active, &related).await.error;
        active = st.overlay.apply(&uid, &ns, &st.pods, active);
    }

    let now = Timestamp::now();
    let mut new_status = status::calculate(&rs, &active, manage_err.as_ref().map(manage::message), now);
    new_status.observed_generation = rs.metadata.generation;
    let current = rs.status.clone().unwrap_or_default();
    if !status::same(&current, &new_status) {
        let mut updated = (*rs).clone();
        updated.status = Some(new_status);
        rs_api
            .replace_status(&rs.name_any(), &PostParams::default(), &updated)
            .await
            .map_err(|source| Error::Status { rs: key.clone(), source })?;
        tracing::debug!(replicas = active.len(), "status updated");
    }
    if let Some(source) = manage_err {
        return Err(Error::Manage { rs: key, source });
    }
    Ok(match status::next_availability(&rs, &active, now) {
        Some(at) => Action::requeue(Duration::try_from(at.duration_since(now)).unwrap_or_default() + REQUEUE_SLACK),
        None => Action::await_change(),
    })
}

/// The active pods of every ReplicaSet that shares this one's controller (the Deployment's other
/// revisions), or this ReplicaSet's own pods when it has no controller: they decide which nodes
/// are crowded when choosing pods to delete.
fn related_pods(st: &State, rs: &ReplicaSet, ns: &str) -> Vec<Arc<Pod>> {
    let siblings: Vec<String> = match claim::controller_of(rs) {
        Some(owner) => st
            .replicasets
            .state()
            .iter()
            .filter(|o| o.namespace().as_deref() == Some(ns))
            .filter(|o| claim::controller_of(o.as_ref()).is_some_and(|r| r.uid == owner.uid))
            .filter_map(|o| o.uid())
            .collect(),
        None => rs.uid().into_iter().collect(),
    };
    st.pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns) && pods::is_active(p))
        .filter(|p| claim::controller_of(p.as_ref()).is_some_and(|r| siblings.contains(&r.uid)))
        .collect()
}
