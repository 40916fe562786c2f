//! The Deployment controller (upstream `pkg/controller/deployment`). A Deployment owns
//! ReplicaSets named `<deployment>-<pod-template-hash>`, one per pod template it has had; the one
//! whose template equals the Deployment's is the new ReplicaSet, the others are old. Each sync
//! (upstream `syncDeployment`) claims the ReplicaSets, then either only scales them (paused, or
//! `spec.replicas` changed: [`sync`]), or rolls out ([`rolling`] within maxSurge/maxUnavailable,
//! or [`recreate`]), prunes old ReplicaSets beyond `revisionHistoryLimit`, and writes the status
//! and the Available/Progressing conditions ([`progress`]) that `kubectl rollout status` reads.
//! A rollback (`kubectl rollout undo` patches the template back to an old ReplicaSet's) reuses
//! that ReplicaSet and raises its revision ([`annotations`]).

mod annotations;
mod fenceposts;
mod hash;
mod progress;
mod proportional;
mod recreate;
mod rolling;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

use api::events::{reference, EventType, Recorder};
use api::selector::LabelSelector;
use client_runtime::claim::{self, Owner};
use client_runtime::{Action, Change, Controller, Informers, ObjectRef, Store};

use crate::Context;

/// Upstream's `--concurrent-deployment-syncs`.
const WORKERS: u16 = 5;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("claim replicasets of deployment {key}: {source}")]
    Claim { key: String, source: kube::Error },
    #[error("create replicaset {name} of deployment {key}: {source}")]
    CreateReplicaSet { key: String, name: String, source: kube::Error },
    #[error("replicaset {name} exists with another template; raised collisionCount of deployment {key}")]
    HashCollision { key: String, name: String },
    #[error("update replicaset {name} of deployment {key}: {source}")]
    UpdateReplicaSet { key: String, name: String, source: kube::Error },
    #[error("delete replicaset {name} of deployment {key}: {source}")]
    DeleteReplicaSet { key: String, name: String, source: kube::Error },
    #[error("update deployment {key}: {source}")]
    UpdateDeployment { key: String, source: kube::Error },
}

pub(crate) struct State {
    ctx: Arc<Context>,
    replicasets: Store<ReplicaSet>,
    pods: Store<Pod>,
    recorder: Recorder,
}

/// The `deployment` controller.
pub fn controller(inf: &mut Informers, ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    let deployments = inf.store::<Deployment>();
    let replicasets = inf.store::<ReplicaSet>();
    let state = Arc::new(State {
        recorder: ctx.recorder("deployment-controller"),
        ctx,
        replicasets: replicasets.clone(),
        pods: inf.store::<Pod>(),
    });
    let (d_for_rs, d_for_pods, rs_for_pods) = (deployments.clone(), deployments.clone(), replicasets);
    Controller::new("deployment", inf)
        .watches(inf, move |c: &Change<ReplicaSet>| deployments_of_replicaset(&d_for_rs, c.object()))
        .watches(inf, move |c: &Change<Pod>| match c {
            // A Recreate rollout waits for the old pods to be gone (upstream `deletePod`).
            Change::Deleted(pod) => recreate_deployment_of_pod(&d_for_pods, &rs_for_pods, pod),
            Change::Applied { .. } => None,
        })
        .workers(WORKERS)
        .run(inf, reconcile, state)
}

/// A ReplicaSet event concerns its controller, or for an orphan every Deployment of its
/// namespace that selects it.
fn deployments_of_replicaset(store: &Store<Deployment>, rs: &ReplicaSet) -> Vec<ObjectRef<Deployment>> {
    let ns = rs.namespace().unwrap_or_default();
    match claim::controller_of(rs) {
        Some(r) if r.kind == "Deployment" => vec![ObjectRef::new(&r.name).within(&ns)],
        Some(_) => vec![],
        None if rs.metadata.deletion_timestamp.is_some() => vec![],
        None => store
            .state()
            .iter()
            .filter(|d| d.namespace().as_deref() == Some(ns.as_str()))
            .filter(|d| selector(d).is_some_and(|s| !s.is_empty() && claim::selects(&s, rs)))
            .map(|d| ObjectRef::from_obj(d.as_ref()))
            .collect(),
    }
}

/// Pod deletions matter only to Recreate deployments, which wait for old pods to be gone.
fn recreate_deployment_of_pod(
    deployments: &Store<Deployment>,
    replicasets: &Store<ReplicaSet>,
    pod: &Pod,
) -> Option<ObjectRef<Deployment>> {
    let ns = pod.namespace()?;
    let rs_ref = claim::controller_of(pod).filter(|r| r.kind == "ReplicaSet")?;
    let rs = replicasets.get(&ObjectRef::new(&rs_ref.name).within(&ns))?;
    let d_ref = claim::controller_of(rs.as_ref()).filter(|r| r.kind == "Deployment")?;
    let key = ObjectRef::new(&d_ref.name).within(&ns);
    let d = deployments.get(&key)?;
    (fenceposts::strategy_type(&d) == "Recreate").then_some(key)
}

fn selector(d: &Deployment) -> Option<LabelSelector> {
    let sel = serde_json::to_value(&d.spec.as_ref()?.selector).ok()?;
    LabelSelector::from_json(&sel).ok()
}

async fn reconcile(d: Arc<Deployment>, st: Arc<State>) -> Result<Action, Error> {
    let key = format!("{}/{}", d.namespace().unwrap_or_default(), d.name_any());
    let ns = d.namespace().unwrap_or_default();
    let mut r = Rollout {
        d_api: Api::namespaced(st.ctx.client.clone(), &ns),
        rs_api: Api::namespaced(st.ctx.client.clone(), &ns),
        d: (*d).clone(),
        st: &st,
        key,
        requeue: None,
    };
    r.sync_deployment().await?;
    Ok(r.requeue.map_or_else(Action::await_change, Action::requeue))
}

/// One sync of one Deployment: the working copy and where to write.
pub(crate) struct Rollout<'a> {
    st: &'a State,
    /// The Deployment as this sync has written it so far.
    d: Deployment,
    d_api: Api<Deployment>,
    rs_api: Api<ReplicaSet>,
    key: String,
    /// When to look again even without an event (the progress deadline).
    requeue: Option<Duration>,
}

impl Rollout<'_> {
    async fn sync_deployment(&mut self) -> Result<(), Error> {
        let Some(sel) = selector(&self.d) else {
            tracing::warn!("invalid selector; ignoring");
            return Ok(());
        };
        if sel.is_empty() {
            let msg = "This deployment is selecting all pods. A non-empty selector is required.";
            self.event(EventType::Warning, "SelectingAll", msg).await;
            if self.d.status.as_ref().and_then(|s| s.observed_generation) < self.d.metadata.generation {
                self.d.status.get_or_insert_with(Default::default).observed_generation = self.d.metadata.generation;
                self.update_status().await?;
            }
            return Ok(());
        }
        let rs_list = self.claim_replicasets(&sel).await?;
        if self.d.metadata.deletion_timestamp.is_some() {
            return self.sync_status_only(&rs_list).await;
        }
        self.check_paused_conditions().await?;
        if self.paused() {
            return self.sync(&rs_list).await;
        }
        if self.is_scaling_event(&rs_list).await? {
            return self.sync(&rs_list).await;
        }
        if fenceposts::strategy_type(&self.d) == "Recreate" {
            self.rollout_recreate(&rs_list).await
        } else {
            self.rollout_rolling(&rs_list).await
        }
    }

    fn paused(&self) -> bool {
        self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
    }

    /// The ReplicaSets this Deployment controls, after adopting matching orphans and releasing
    /// those that no longer match.
    async fn claim_replicasets(&self, sel: &LabelSelector) -> Result<Vec<ReplicaSet>, Error> {
        let ns = self.d.namespace().unwrap_or_default();
        let uid = self.d.uid().unwrap_or_default();
        let candidates: Vec<Arc<ReplicaSet>> = self
            .st
            .replicasets
            .state()
            .into_iter()
            .filter(|rs| rs.namespace().as_deref() == Some(ns.as_str()))
            .filter(|rs| claim::controller_of(rs.as_ref()).is_none_or(|r| r.uid == uid))
            .collect();
        let (owned, err) = claim::claim(&self.rs_api, &self.d_api, &Owner::of(&self.d), sel, candidates).await;
        if let Some(source) = err {
            return Err(Error::Claim { key: self.key.clone(), source });
        }
        Ok(owned.iter().map(|rs| (**rs).clone()).collect())
    }

    async fn event(&self, kind: EventType, reason: &str, message: &str) {
        self.st.recorder.record(&reference(&self.d), kind, reason, message).await;
    }

    /// Writes the working copy's status (PUT with its resourceVersion).
    async fn update_status(&mut self) -> Result<(), Error> {
        let name = self.d.name_any();
        let updated = self
            .d_api
            .replace_status(&name, &PostParams::default(), &self.d)
            .await
            .map_err(|source| Error::UpdateDeployment { key: self.key.clone(), source })?;
        self.d = updated;
        Ok(())
    }

    /// Sets the Deployment's revision annotation to its new ReplicaSet's. Upstream writes it with
    /// the status; the status subresource here keeps metadata, so it is a patch of its own.
    async fn set_revision(&mut self, revision: &str) -> Result<(), Error> {
        if self.d.annotations().get(annotations::REVISION).map(String::as_str) == Some(revision) {
            return Ok(());
        }
        let patch = serde_json::json!({"metadata": {"annotations": {annotations::REVISION: revision}}});
        let patched = self
            .d_api
            .patch(&self.d.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| Error::UpdateDeployment { key: self.key.clone(), source })?;
        // Keep working on the spec this sync read; take the new resourceVersion only if the
        // spec did not change meanwhile (otherwise the next write conflicts and we start over).
        if patched.metadata.generation == self.d.metadata.generation {
            self.d.metadata.resource_version = patched.metadata.resource_version;
        }
        self.d.annotations_mut().insert(annotations::REVISION.to_string(), revision.to_string());
        Ok(())
    }
}

/// Every ReplicaSet with at least one replica wanted (`FilterActiveReplicaSets`).
fn active<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> Vec<&'a ReplicaSet> {
    rss.into_iter().filter(|rs| rs_replicas(rs) > 0).collect()
}

/// `spec.replicas` of a ReplicaSet (default 1).
fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn rs_status(rs: &ReplicaSet) -> (i32, i32, i32) {
    let s = rs.status.as_ref();
    (
        s.map_or(0, |s| s.replicas),
        s.and_then(|s| s.ready_replicas).unwrap_or(0),
        s.and_then(|s| s.available_replicas).unwrap_or(0),
    )
}
