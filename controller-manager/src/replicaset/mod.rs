//! The ReplicaSet controller (upstream `pkg/controller/replicaset`): keeps `spec.replicas` active
//! pods for each ReplicaSet. It owns pods through controller ownerReferences (adopting matching
//! orphans, releasing pods that stopped matching), creates pods from the template (named
//! `<rs>-<random>` by the server) and deletes the least valuable ones first, and reports
//! replicas / fullyLabeledReplicas / readyReplicas / availableReplicas / observedGeneration and
//! the ReplicaFailure condition. Terminating and finished pods do not count.
//!
//! It never creates or deletes for a ReplicaSet whose expectations are unsatisfied (upstream
//! `ControllerExpectations`, raised in [`manage`] and lowered by [`pod_changed`]), so a cache that
//! lags its own writes cannot make it create or delete twice.

mod manage;
mod rank;
mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use kube::{Api, ResourceExt};

use api::events::Recorder;
use api::selector::LabelSelector;
use client_runtime::claim::{self, Owner};
use client_runtime::{pods, Action, Change, Controller, Expectations, Informers, ObjectRef, Store};

use crate::Context;

/// Added to a requeue for availability, so that the pod is available when we look.
const REQUEUE_SLACK: Duration = Duration::from_millis(100);
/// Upstream's `--concurrent-replicaset-syncs`.
const WORKERS: u16 = 5;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("claim pods of replicaset {rs}: {source}")]
    Claim { rs: String, source: kube::Error },
    #[error("manage pods of replicaset {rs}: {source}")]
    Manage { rs: String, source: kube::Error },
    #[error("update status of replicaset {rs}: {source}")]
    Status { rs: String, source: kube::Error },
}

struct State {
    ctx: Arc<Context>,
    replicasets: Store<ReplicaSet>,
    pods: Store<Pod>,
    recorder: Recorder,
    expectations: Arc<Expectations>,
}

/// The `replicaset` controller.
pub fn controller(inf: &mut Informers, ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    let replicasets = inf.store::<ReplicaSet>();
    let expectations = Arc::new(Expectations::default());
    let state = Arc::new(State {
        recorder: ctx.recorder("replicaset-controller"),
        ctx,
        replicasets: replicasets.clone(),
        pods: inf.store::<Pod>(),
        expectations: expectations.clone(),
    });
    let forget = expectations.clone();
    Controller::new("replicaset", inf)
        .watches(inf, move |c: &Change<ReplicaSet>| {
            if let Change::Deleted(rs) = c {
                forget.forget(&key_of(rs.as_ref()));
            }
            None
        })
        .watches(inf, move |c: &Change<Pod>| pod_changed(&replicasets, &expectations, c))
        .workers(WORKERS)
        .run(inf, reconcile, state)
}

/// `namespace/name`: the key of expectations and of the work queue.
fn key_of<K: kube::Resource>(obj: &K) -> String {
    format!(
        "{}/{}",
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default()
    )
}

fn rs_ref(ns: &str, name: &str) -> ObjectRef<ReplicaSet> {
    ObjectRef::new(name).within(ns)
}

/// The ReplicaSet controlling a pod, if any.
fn controlling_rs(pod: &Pod) -> Option<&str> {
    claim::controller_of(pod).filter(|r| r.kind == "ReplicaSet" && r.api_version == "apps/v1").map(|r| r.name.as_str())
}

/// A pod change (upstream `addPod`/`updatePod`/`deletePod`): lowers its controller's
/// expectations and names the ReplicaSets to sync — its controller (old and new, when that
/// changed), or for an orphan every ReplicaSet of its namespace that selects it.
fn pod_changed(store: &Store<ReplicaSet>, exp: &Expectations, change: &Change<Pod>) -> Vec<ObjectRef<ReplicaSet>> {
    let pod = change.object();
    let ns = pod.namespace().unwrap_or_default();
    let mut out = Vec::new();
    let previous = match change {
        Change::Applied { previous, .. } => previous.as_deref(),
        Change::Deleted(_) => None,
    };
    if let Some(old) = previous.and_then(controlling_rs) {
        if Some(old) != controlling_rs(pod) {
            out.push(rs_ref(&ns, old));
        }
    }
    match controlling_rs(pod) {
        Some(rs) => {
            exp.observe(&format!("{ns}/{rs}"), change);
            out.push(rs_ref(&ns, rs));
        }
        None if change.is_deleted() || pod.metadata.deletion_timestamp.is_some() => {}
        None if claim::controller_of(pod.as_ref()).is_some() => {}
        None => out.extend(
            store
                .state()
                .iter()
                .filter(|rs| rs.namespace().as_deref() == Some(ns.as_str()))
                .filter(|rs| selector(rs).is_some_and(|s| !s.is_empty() && claim::selects(&s, pod.as_ref())))
                .map(|rs| ObjectRef::from_obj(rs.as_ref())),
        ),
    }
    out
}

fn selector(rs: &ReplicaSet) -> Option<LabelSelector> {
    let sel = serde_json::to_value(&rs.spec.as_ref()?.selector).ok()?;
    LabelSelector::from_json(&sel).ok()
}

async fn reconcile(rs: Arc<ReplicaSet>, st: Arc<State>) -> Result<Action, Error> {
    let key = key_of(rs.as_ref());
    sync(rs, &st, key).await
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
    // Checked before the cache is read (upstream): expectations satisfied now mean the cache
    // read below shows every write this controller made.
    let needs_sync = st.expectations.satisfied(&key);
    let (active, claim_err) = claim::claim(&pod_api, &rs_api, &Owner::of(rs.as_ref()), &sel, candidates).await;
    if let Some(source) = claim_err {
        return Err(Error::Claim { rs: key, source });
    }

    let mut manage_err = None;
    if needs_sync && rs.metadata.deletion_timestamp.is_none() {
        let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0) as usize;
        let related = if active.len() > desired { related_pods(st, &rs, &ns) } else { Vec::new() };
        let manager =
            manage::Manager { api: &pod_api, recorder: &st.recorder, expectations: &st.expectations, key: &key };
        manage_err = manager.manage(&rs, &active, &related).await.error;
    }

    let now = Timestamp::now();
    let mut new_status =
        status::calculate(&rs, &active, manage_err.as_ref().map(client_runtime::policy::status_message), now);
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
