//! For the Deployment and ReplicaSet tests: the two controllers on a server, a stand-in kubelet
//! that marks pods Running and Ready, and rollout checks.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use controller_manager::{deployment, replicaset};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use tokio_util::sync::CancellationToken;

use super::{start, Server};
use testkit::eventually;

/// A server with the ReplicaSet and Deployment controllers.
pub async fn start_deploy() -> Server {
    start(&[replicaset::controller, deployment::controller]).await
}

/// Stand-in kubelet for one namespace: every pod that is not Ready (and not being deleted)
/// becomes Running and Ready, while `ready` is on.
pub struct Kubelet {
    pub ready: Arc<AtomicBool>,
    stop: CancellationToken,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub fn kubelet(client: &Client, ns: &str) -> Kubelet {
    let ready = Arc::new(AtomicBool::new(true));
    let stop = CancellationToken::new();
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let (r, s) = (ready.clone(), stop.clone());
    let ip = Arc::new(AtomicU32::new(2));
    tokio::spawn(async move {
        let mut pending: Vec<String> = Vec::new();
        let mut events = watcher(api.clone(), watcher::Config::default()).applied_objects().boxed();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = s.cancelled() => return,
                ev = events.next() => match ev {
                    Some(Ok(pod)) => {
                        if pod.metadata.deletion_timestamp.is_none() && !is_ready(&pod) {
                            pending.push(pod.name_any());
                        }
                    }
                    Some(Err(_)) => {}
                    None => return,
                },
                _ = tick.tick() => {}
            }
            if !r.load(Ordering::SeqCst) {
                continue;
            }
            for name in std::mem::take(&mut pending) {
                let n = ip.fetch_add(1, Ordering::SeqCst);
                let now = jiff::Timestamp::now().to_string();
                let patch = serde_json::json!({"status": {
                    "phase": "Running",
                    "podIP": format!("10.244.{}.{}", n / 250, n % 250 + 2),
                    "conditions": [
                        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                        {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                        {"type": "Ready", "status": "True", "lastTransitionTime": now},
                        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                    ],
                }});
                let _ = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await;
            }
        }
    });
    Kubelet { ready, stop }
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn is_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && !matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// A Deployment of `replicas` pods running `image`, labelled app=`name`.
pub fn deployment(name: &str, replicas: i32, image: &str, extra_spec: serde_json::Value) -> Deployment {
    let mut v = serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
        },
    });
    if let (Some(spec), Some(extra)) = (v["spec"].as_object_mut(), extra_spec.as_object()) {
        for (k, val) in extra {
            spec.insert(k.clone(), val.clone());
        }
    }
    serde_json::from_value(v).expect("deployment")
}

pub async fn pods(client: &Client, ns: &str, selector: &str) -> Vec<Pod> {
    super::pods_with(&Api::namespaced(client.clone(), ns), selector).await
}

pub async fn replicasets(client: &Client, ns: &str) -> Vec<ReplicaSet> {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default()
}

/// Waits until the Deployment's rollout is complete the way `kubectl rollout status` decides.
pub async fn rollout_complete(client: &Client, ns: &str, name: &str, limit: Duration) -> Deployment {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    eventually(&format!("rollout of {name}"), limit, || async {
        let d = api.get(name).await.ok()?;
        let s = d.status.as_ref()?;
        let want = d.spec.as_ref()?.replicas.unwrap_or(1);
        let done = s.observed_generation >= d.metadata.generation
            && s.updated_replicas.unwrap_or(0) == want
            && s.replicas.unwrap_or(0) == want
            && s.available_replicas.unwrap_or(0) == want;
        done.then_some(d)
    })
    .await
}

pub fn condition<'a>(d: &'a Deployment, type_: &str) -> Option<(&'a str, &'a str)> {
    let c = d.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == type_)?;
    Some((c.status.as_str(), c.reason.as_deref().unwrap_or("")))
}
