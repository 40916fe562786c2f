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

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::events::{reference, EventType, Recorder};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt};
use tracing::Instrument;

use health::HealthMap;

use crate::runtime::Informers;
use crate::Context;

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
    Controller::for_shared_stream(inf.subscribe::<Node>(), nodes)
        .watches_shared_stream(inf.subscribe::<Lease>(), |lease| {
            (lease.namespace().as_deref() == Some(LEASE_NAMESPACE)).then(|| ObjectRef::new(&lease.name_any()))
        })
        .watches_shared_stream(inf.subscribe::<Pod>(), |pod| {
            pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).map(ObjectRef::new)
        })
        .run(reconcile, error_policy, lc)
        .for_each(|_| async {})
        .boxed()
}

async fn reconcile(node: Arc<Node>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let name = node.name_any();
    let span = tracing::info_span!("reconcile", controller = "nodelifecycle", object.ref = %name);
    async move {
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
    .instrument(span)
    .await
}

/// Brings the managed taints in line with the node's conditions; returns the node as written.
async fn update_taints(ctx: &Ctx, node: Node) -> Result<Node, Error> {
    let name = node.name_any();
    let current = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let wanted = taints::wanted(&node);
    let Some(new) = taints::reconcile_taints(&current, &wanted, jiff::Timestamp::now()) else { return Ok(node) };
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": node.metadata.resource_version},
        "spec": {"taints": new},
    });
    let api: Api<Node> = Api::all(ctx.client.clone());
    let node = api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| Error::Taints { node: name.clone(), source })?;
    let keys: Vec<String> = new.iter().map(|t| format!("{}:{}", t.key, t.effect)).collect();
    tracing::info!(taints = ?keys, "updated node taints");
    Ok(node)
}

fn error_policy(node: Arc<Node>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(node = %node.name_any(), error = %err, "node lifecycle check failed; retrying");
    let conflict = matches!(err, Error::Status { source: kube::Error::Api(e), .. } | Error::Taints { source: kube::Error::Api(e), .. } if e.code == 409);
    Action::requeue(if conflict { Duration::from_millis(200) } else { Duration::from_secs(2) })
}
