//! Node lifecycle ("nodelifecycle"; upstream `pkg/controller/nodelifecycle` and the taint
//! eviction controller). Every `--node-monitor-period` each Node is checked: when neither its
//! Lease in `kube-node-lease` nor its Ready heartbeat changed for `--node-monitor-grace-period`,
//! its kubelet conditions become Unknown. The `not-ready`/`unreachable` taints (NoExecute and
//! NoSchedule) and the condition-driven NoSchedule taints follow the conditions; pods on an
//! unhealthy node are marked not Ready, and pods on a NoExecute-tainted node are deleted when
//! they do not tolerate a taint or their `tolerationSeconds` run out.

mod eviction;
mod health;
mod pods;
mod taints;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::events::{reference, EventType, Recorder};
use client_runtime::policy::Conflict;
use client_runtime::{Action, Change, Controller, Informers, ObjectRef, Store};
use futures::future::BoxFuture;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

use health::HealthMap;

use crate::Context;

/// Nodes checked at once.
const WORKERS: u16 = 5;

const LEASE_NAMESPACE: &str = "kube-node-lease";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("update status of node {node}: {source}")]
    Status {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("update taints of node {node}: {source}")]
    Taints {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("update taints of node {node}: {source}")]
    TaintsChanged {
        node: String,
        #[source]
        source: Conflict,
    },
    #[error("update pod {pod}: {source}")]
    Pod {
        pod: String,
        #[source]
        source: kube::Error,
    },
}

pub(crate) struct Ctx {
    client: kube::Client,
    grace: Duration,
    period: Duration,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    health: Mutex<HealthMap>,
    node_recorder: Recorder,
    eviction_recorder: Recorder,
}

/// The node lifecycle controller: triggered by Nodes, their Leases and the pods bound to them,
/// and every node monitor period.
pub fn controller(inf: &mut Informers, ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    let nodes = inf.store::<Node>();
    let lc = Arc::new(Ctx {
        client: ctx.client.clone(),
        grace: ctx.opts.node_monitor_grace_period,
        period: ctx.opts.node_monitor_period,
        nodes: nodes.clone(),
        leases: inf.store::<Lease>(),
        pods: inf.store::<Pod>(),
        health: Mutex::new(HealthMap::default()),
        node_recorder: ctx.recorder("node-controller"),
        eviction_recorder: ctx.recorder("taint-eviction-controller"),
    });
    let _ = nodes;
    Controller::new("nodelifecycle", inf)
        .watches(inf, |c: &Change<Lease>| {
            let lease = c.object();
            (lease.namespace().as_deref() == Some(LEASE_NAMESPACE)).then(|| ObjectRef::new(&lease.name_any()))
        })
        .watches(inf, |c: &Change<Pod>| {
            c.object().spec.as_ref().and_then(|s| s.node_name.as_deref()).map(ObjectRef::new)
        })
        .workers(WORKERS)
        .run(inf, reconcile, lc)
}

async fn reconcile(node: Arc<Node>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let name = node.name_any();
    {
        let lease = ctx.leases.get(&ObjectRef::new(&name).within(LEASE_NAMESPACE));
        let observed = {
            let mut health = ctx.health.lock().unwrap_or_else(|p| p.into_inner());
            health.retain(ctx.nodes.len(), |n| ctx.nodes.get(&ObjectRef::new(n)).is_some());
            health.observe(&node, lease.as_deref(), Instant::now())
        };
        let mut node = (*node).clone();
        if observed.silent_for > ctx.grace && health::mark_unknown(&mut node, jiff::Timestamp::now()) {
            let api: Api<Node> = Api::all(ctx.client.clone());
            node = api
                .replace_status(&name, &PostParams::default(), &node)
                .await
                .map_err(|source| Error::Status { node: name.clone(), source })?;
            tracing::info!(silent_for = ?observed.silent_for, "node stopped posting status; conditions now Unknown");
        }
        let ready = health::ready_condition(&node).map(|c| c.status.clone());
        let went_down = {
            let mut health = ctx.health.lock().unwrap_or_else(|p| p.into_inner());
            health.ready_transition(&name, ready.as_deref())
        };
        if went_down {
            tracing::info!(ready = ?ready, "node is not ready");
            let msg = format!("Node {name} status is now: NodeNotReady");
            ctx.node_recorder.record(&reference(&node), EventType::Normal, "NodeNotReady", &msg).await;
        }
        let node = update_taints(&ctx, node).await?;
        let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        let no_execute = taints.iter().any(|t| t.effect == taints::NO_EXECUTE);
        let mut next = ctx.period;
        if ready.as_deref().is_some_and(|r| r != "True") || no_execute {
            let on_node = pods::pods_on(&ctx, &name);
            if ready.as_deref().is_some_and(|r| r != "True") {
                pods::mark_not_ready(&ctx, &on_node).await?;
            }
            if no_execute {
                if let Some(wait) = pods::evict(&ctx, &taints, &on_node).await? {
                    next = next.min(wait + Duration::from_millis(50));
                }
            }
        }
        Ok(Action::requeue(next))
    }
}

/// Taint writes of this process that failed their reconcile on a precondition (the taints kept
/// changing through every retry): the conflicts the controller logs. A write that lost to a
/// stale cache and succeeded on a fresh read is not counted.
static TAINT_CONFLICTS: AtomicU64 = AtomicU64::new(0);

/// How many reconciles of this process failed because the node's taints changed under them.
pub fn taint_write_conflicts() -> u64 {
    TAINT_CONFLICTS.load(Ordering::Relaxed)
}

/// How often a taint write whose precondition failed is tried in all (upstream
/// `UpdateTaintBackoff`: 5 steps of 100 ms with full jitter). The first retry is at once (the
/// usual cause is a cache that had not seen our own last write yet); later ones back off.
const TAINT_ATTEMPTS: u32 = 5;

/// Brings the managed taints in line with the node's conditions; returns the node as written.
/// The first attempt starts from the cached node; when the taints changed under it (the patch's
/// `test` failed), the node is read again and the taints recomputed, as upstream's
/// `AddOrUpdateTaintOnNode` / `RemoveTaintOffNode` do. Status writes (heartbeats) never fail it.
async fn update_taints(ctx: &Ctx, mut node: Node) -> Result<Node, Error> {
    let name = node.name_any();
    let api: Api<Node> = Api::all(ctx.client.clone());
    let mut attempt = 1;
    let mut spec_ensured = false;
    loop {
        let current = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        let wanted = taints::wanted(&node);
        let Some(new) = taints::reconcile_taints(&current, &wanted, jiff::Timestamp::now()) else { return Ok(node) };
        if node.spec.is_none() && !spec_ensured {
            // A Node stored without a spec has no field a `test` could pin but its
            // resourceVersion, which every heartbeat moves. Give it an empty spec first (a merge
            // patch that changes nothing where a spec exists), then test that.
            spec_ensured = true;
            let empty = serde_json::json!({"spec": {}});
            node = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&empty))
                .await
                .map_err(|source| Error::Taints { node: name.clone(), source })?;
            continue;
        }
        let ops = taints::taints_patch(&node, &new);
        let patch = Patch::Json::<()>(serde_json::from_value(ops).expect("a well-formed JSON patch"));
        match api.patch(&name, &PatchParams::default(), &patch).await {
            Ok(written) => {
                let keys: Vec<String> = new.iter().map(|t| format!("{}:{}", t.key, t.effect)).collect();
                tracing::info!(taints = ?keys, "updated node taints");
                return Ok(written);
            }
            Err(kube::Error::Api(e)) if taints_changed(&e) && attempt < TAINT_ATTEMPTS => {
                tracing::debug!(attempt, error = %e.message, "node taints changed since read; retrying");
                if attempt > 1 {
                    tokio::time::sleep(Duration::from_millis(100 + rand::random_range(0..100))).await;
                }
                attempt += 1;
                node = api.get(&name).await.map_err(|source| Error::Taints { node: name.clone(), source })?;
            }
            Err(source) => {
                if let kube::Error::Api(e) = &source {
                    if taints_changed(e) {
                        TAINT_CONFLICTS.fetch_add(1, Ordering::Relaxed);
                        return Err(Error::TaintsChanged { node: name, source: Conflict(e.message.clone()) });
                    }
                }
                return Err(Error::Taints { node: name, source });
            }
        }
    }
}

/// Whether a taint patch failed on its precondition: the `test` op (422, as upstream answers a
/// failed JSON patch test) or a conflict.
fn taints_changed(e: &kube::core::Status) -> bool {
    e.code == 409 || (e.code == 422 && e.message.contains("test"))
}
