//! One sync of one DaemonSet (upstream `syncDaemonSet`): manage pods per node, then advance a
//! rolling update, then write the status.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::events::{reference, EventType};
use client_runtime::Action;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};

use super::manage::{self, NodeFit};
use super::placement::node_should_run;
use super::pods::{daemon_spec, is_updated, new_pod, target_node, template_hash};
use super::{rollout, status, DsCtx, Error};
use api::owner::is_controlled_by as controlled_by;
use client_runtime::expectations::child_key;

const FAILED_BACKOFF_START: Duration = Duration::from_secs(1);
const FAILED_BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

pub async fn sync(ds: Arc<DaemonSet>, c: Arc<DsCtx>) -> Result<Action, Error> {
    let (Some(ns), Some(uid)) = (ds.namespace(), ds.uid()) else { return Ok(Action::await_change()) };
    if ds.metadata.deletion_timestamp.is_some() {
        c.writes.forget(&uid);
        return Ok(Action::await_change());
    }
    let pod_api: Api<Pod> = Api::namespaced(c.ctx.client.clone(), &ns);
    let hash = template_hash(&ds);
    let spec = daemon_spec(&ds);
    let min_ready = ds.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let now = Timestamp::now();

    let owned: Vec<Arc<Pod>> =
        c.pods.state_filter(|p| p.metadata.namespace.as_deref() == Some(&ns) && controlled_by(&p.metadata, &uid));
    let mut by_node: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
    for p in &owned {
        if let Some(n) = target_node(p) {
            by_node.entry(n).or_default().push(p.clone());
        }
    }
    let mut nodes: Vec<NodeFit> = c
        .nodes
        .state()
        .iter()
        .map(|n| {
            let (should_run, should_continue) = node_should_run(&spec, n);
            NodeFit { name: n.name_any(), should_run, should_continue }
        })
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let updated = |p: &Pod| is_updated(p, &ds, &hash);
    let mut requeue: Option<Duration> = None;

    let seen = c.writes.satisfied(&uid);
    if seen {
        let surge = rollout_limits(&ds, &nodes).0 > 0;
        let plan = manage::plan(&manage::Inputs {
            nodes: &nodes,
            by_node: &by_node,
            hash: &hash,
            surge,
            min_ready_seconds: min_ready,
            now,
        });
        let mut delete = plan.delete;
        for (node, pod) in plan.finished {
            match failed_backoff(&c, &uid, &node) {
                Some(wait) => requeue = Some(requeue.map_or(wait, |r: Duration| r.min(wait))),
                None => {
                    let msg = format!("Found failed daemon pod {ns}/{pod} on node {node}, will try to kill it");
                    c.recorder.record(&reference(&*ds), EventType::Warning, "FailedDaemonPod", &msg).await;
                    delete.push(pod);
                }
            }
        }
        let wrote = apply(&c, &ds, &pod_api, &uid, &owned, &delete, &plan.create_on, &hash).await?;
        let rolling = ds.spec.as_ref().and_then(|s| s.update_strategy.as_ref()).and_then(|u| u.type_.as_deref())
            != Some("OnDelete");
        if rolling && !wrote {
            let (max_surge, max_unavailable) = rollout_limits(&ds, &nodes);
            let (old, create_on) = rollout::step(&rollout::Inputs {
                nodes: &nodes,
                by_node: &by_node,
                updated: &updated,
                max_surge,
                max_unavailable,
                desired: nodes.iter().filter(|n| n.should_run).count() as i32,
                min_ready_seconds: min_ready,
                now,
            });
            apply(&c, &ds, &pod_api, &uid, &owned, &old, &create_on, &hash).await?;
        }
    }

    let mut st = status::compute(&nodes, &by_node, &updated, min_ready, now);
    let old = ds.status.clone().unwrap_or_default();
    st.observed_generation = ds.metadata.generation;
    st.collision_count = old.collision_count;
    st.conditions = old.conditions.clone();
    if ds.status.as_ref() != Some(&st) {
        let mut next = (*ds).clone();
        next.status = Some(st.clone());
        let api: Api<DaemonSet> = Api::namespaced(c.ctx.client.clone(), &ns);
        api.replace_status(&ds.name_any(), &PostParams::default(), &next)
            .await
            .map_err(|source| Error::UpdateStatus { ds: ds.name_any(), source })?;
    }
    if min_ready > 0 && st.number_ready != st.number_available.unwrap_or(0) {
        let wait = Duration::from_secs(min_ready as u64);
        requeue = Some(requeue.map_or(wait, |r| r.min(wait)));
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

fn rollout_limits(ds: &DaemonSet, nodes: &[NodeFit]) -> (i32, i32) {
    let ru = ds.spec.as_ref().and_then(|s| s.update_strategy.as_ref()).and_then(|u| u.rolling_update.as_ref());
    let desired = nodes.iter().filter(|n| n.should_run).count() as i32;
    rollout::limits(ru.and_then(|r| r.max_surge.as_ref()), ru.and_then(|r| r.max_unavailable.as_ref()), desired)
}

/// `Some(wait)` while replacing a failed pod on `node` is backing off; otherwise starts the
/// next backoff period.
fn failed_backoff(c: &DsCtx, uid: &str, node: &str) -> Option<Duration> {
    let mut map = c.failed_backoff.lock().unwrap_or_else(|p| p.into_inner());
    let key = (uid.to_string(), node.to_string());
    let now = Instant::now();
    match map.get(&key).copied() {
        Some((until, _)) if until > now => Some(until - now),
        Some((_, delay)) => {
            let next = (delay * 2).min(FAILED_BACKOFF_MAX);
            map.insert(key, (now + next, next));
            None
        }
        None => {
            map.insert(key, (now + FAILED_BACKOFF_START, FAILED_BACKOFF_START));
            None
        }
    }
}

/// Deletes the named pods and creates one on each node; returns whether anything was written.
#[allow(clippy::too_many_arguments)]
async fn apply(
    c: &DsCtx,
    ds: &DaemonSet,
    api: &Api<Pod>,
    uid: &str,
    owned: &[Arc<Pod>],
    delete: &[String],
    create_on: &[String],
    hash: &str,
) -> Result<bool, Error> {
    for name in delete {
        let key = owned
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
            .map(|p| child_key(p.as_ref()))
            .unwrap_or_else(|| format!("{}/{name}", ds.namespace().unwrap_or_default()));
        c.writes.raise_deletions(uid, [key.clone()]);
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(e) => {
                // Gone already, or not deleted: no deletion will be observed for this request.
                c.writes.deletion_observed(uid, &key);
                if !matches!(&e, kube::Error::Api(s) if s.code == 404) {
                    return Err(Error::DeletePod { ds: ds.name_any(), pod: name.clone(), source: e });
                }
            }
        }
        tracing::info!(pod = %name, "deleted pod");
        c.recorder.record(&reference(ds), EventType::Normal, "SuccessfulDelete", &format!("Deleted pod: {name}")).await;
    }
    c.writes.raise_creations(uid, create_on.len());
    for (i, node) in create_on.iter().enumerate() {
        match api.create(&PostParams::default(), &new_pod(ds, node, hash)).await {
            Ok(p) => {
                let pname = p.name_any();
                tracing::info!(pod = %pname, node = %node, "created pod");
                c.recorder
                    .record(&reference(ds), EventType::Normal, "SuccessfulCreate", &format!("Created pod: {pname}"))
                    .await;
            }
            Err(source) => {
                let msg = format!("Error creating: {source}");
                // Neither this pod nor the ones not tried will appear.
                (i..create_on.len()).for_each(|_| c.writes.creation_observed(uid));
                c.recorder.record(&reference(ds), EventType::Warning, "FailedCreate", &msg).await;
                return Err(Error::CreatePod { ds: ds.name_any(), node: node.clone(), source });
            }
        }
    }
    Ok(!delete.is_empty() || !create_on.is_empty())
}
