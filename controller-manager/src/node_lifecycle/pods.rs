//! What the node lifecycle controller does to the pods of an unhealthy node: mark them not
//! Ready (upstream `MarkPodsNotReady`) and evict those whose NoExecute tolerations ran out.

use std::time::Duration;

use api::events::{reference, EventType};
use k8s_openapi::api::core::v1::{Pod, Taint};
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, ResourceExt};

use super::eviction::{eviction_time, Eviction};
use super::{Ctx, Error};

fn is_ready_false(pod: &Pod) -> bool {
    let conds = pod.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    conds.iter().find(|c| c.type_ == "Ready").is_none_or(|c| c.status == "False")
}

/// The live (not terminating) pods bound to `node`, from the cache.
pub fn pods_on(ctx: &Ctx, node: &str) -> Vec<std::sync::Arc<Pod>> {
    ctx.pods.state_filter(|p| {
        p.metadata.deletion_timestamp.is_none() && p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
    })
}

/// Sets Ready=False on every pod of the node that has a Ready condition that is not False yet.
pub async fn mark_not_ready(ctx: &Ctx, pods: &[std::sync::Arc<Pod>]) -> Result<(), Error> {
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now());
    for pod in pods.iter().filter(|p| !is_ready_false(p)) {
        let ns = pod.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = serde_json::json!({
            "metadata": {"uid": pod.metadata.uid},
            "status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}]},
        });
        match api.patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Strategic(&patch)).await {
            Ok(_) => {
                tracing::info!(pod = %format!("{ns}/{}", pod.name_any()), "marked pod not ready");
                ctx.node_recorder
                    .record(&reference(pod.as_ref()), EventType::Warning, "NodeNotReady", "Node is not ready")
                    .await;
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(source) => return Err(Error::Pod { pod: format!("{ns}/{}", pod.name_any()), source }),
        }
    }
    Ok(())
}

/// Deletes the pods that must go now; returns how long until the next one must.
pub async fn evict(ctx: &Ctx, taints: &[Taint], pods: &[std::sync::Arc<Pod>]) -> Result<Option<Duration>, Error> {
    let now = jiff::Timestamp::now();
    let mut next: Option<Duration> = None;
    for pod in pods {
        let due = match eviction_time(taints, pod) {
            Eviction::Never => continue,
            Eviction::Now => true,
            Eviction::At(at) if at <= now => true,
            Eviction::At(at) => {
                let wait = Duration::try_from(at.duration_since(now)).unwrap_or_default();
                next = Some(next.map_or(wait, |n| n.min(wait)));
                false
            }
        };
        if !due {
            continue;
        }
        let ns = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        ctx.eviction_recorder
            .record(
                &reference(pod.as_ref()),
                EventType::Normal,
                "TaintManagerEviction",
                &format!("Marking for deletion Pod {ns}/{name}"),
            )
            .await;
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        let dp = DeleteParams {
            preconditions: Some(Preconditions { uid: pod.metadata.uid.clone(), resource_version: None }),
            ..Default::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => tracing::info!(pod = %format!("{ns}/{name}"), "evicted pod from tainted node"),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(source) => return Err(Error::Pod { pod: format!("{ns}/{name}"), source }),
        }
    }
    Ok(next)
}
