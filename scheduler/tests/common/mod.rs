//! Test harness: `testkit`'s real `skiff server` (API only), an in-process scheduler, and helpers
//! that create Nodes and Pods the way a kubelet and a controller would.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use testkit::eventually;
use tokio_util::sync::CancellationToken;

/// A running API server (scheduler and controller-manager off), killed on drop.
pub struct Server(testkit::ApiServer);

impl std::ops::Deref for Server {
    type Target = testkit::ApiServer;
    fn deref(&self) -> &testkit::ApiServer {
        &self.0
    }
}

impl Server {
    pub async fn start() -> Server {
        testkit::init_tracing("warn");
        Server(testkit::ApiServer::start().await)
    }

    /// Starts the scheduler in-process; it stops when the returned token is cancelled or dropped.
    pub fn start_scheduler(&self, opts: scheduler::Opts) -> SchedulerGuard {
        let token = CancellationToken::new();
        tokio::spawn(scheduler::run_with_client(opts, self.client.clone(), token.clone()));
        SchedulerGuard(token)
    }
}

impl Server {
    /// CPU seconds (user + system) the server process has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&format!("/proc/{}/stat", self.pid().expect("the server is running")))
    }
}

/// CPU seconds (user + system) of the process whose `/proc/.../stat` is at `path` (0 if unreadable).
pub fn cpu_seconds(path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else { return 0.0 };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12].iter().filter_map(|i| f.get(*i)?.parse::<f64>().ok()).sum();
    ticks / 100.0
}

pub struct SchedulerGuard(pub CancellationToken);

impl Drop for SchedulerGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A node as a kubelet registers it.
pub struct NodeSpec<'a> {
    pub name: &'a str,
    pub cpu: &'a str,
    pub memory: &'a str,
    pub pods: u32,
    pub labels: &'a [(&'a str, &'a str)],
    pub taints: Value,
    pub ready: bool,
    pub unschedulable: bool,
}

impl<'a> NodeSpec<'a> {
    pub fn new(name: &'a str, cpu: &'a str) -> Self {
        NodeSpec {
            name,
            cpu,
            memory: "8Gi",
            pods: 110,
            labels: &[],
            taints: json!([]),
            ready: true,
            unschedulable: false,
        }
    }
}

/// Creates a Node (POST nodes), then gives it allocatable resources and a Ready condition
/// (nodes/status), as a kubelet would.
pub async fn create_node(client: &Client, n: NodeSpec<'_>) {
    let api: Api<Node> = Api::all(client.clone());
    let labels: BTreeMap<&str, &str> = n.labels.iter().copied().collect();
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": n.name, "labels": labels},
        "spec": {"taints": n.taints, "unschedulable": n.unschedulable},
    }))
    .expect("node json");
    api.create(&PostParams::default(), &node).await.expect("create node");
    let resources = json!({"cpu": n.cpu, "memory": n.memory, "pods": n.pods.to_string()});
    let status = json!({"status": {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [{"type": "Ready", "status": if n.ready { "True" } else { "False" },
                        "reason": "KubeletReady", "lastHeartbeatTime": "2025-01-01T00:00:00Z",
                        "lastTransitionTime": "2025-01-01T00:00:00Z"}],
    }});
    api.patch_status(n.name, &PatchParams::default(), &Patch::Merge(&status)).await.expect("node status");
}

/// A pod with one container requesting `cpu`, changed by `extra` (merged into the pod JSON).
pub fn pod_json(name: &str, cpu: &str, extra: Value) -> Pod {
    let mut v = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}]},
    });
    merge(&mut v, extra);
    serde_json::from_value(v).expect("pod json")
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

pub async fn create_pod(client: &Client, ns: &str, pod: Pod) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &pod).await.expect("create pod");
}

/// The node a pod is bound to, if any.
pub async fn node_of(client: &Client, ns: &str, name: &str) -> Option<String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.get(name).await.ok()?.spec?.node_name.filter(|n| !n.is_empty())
}

/// Waits until the pod is bound and returns its node.
pub async fn bound_node(client: &Client, ns: &str, name: &str) -> String {
    eventually(&format!("{name} to be bound"), Duration::from_secs(20), || node_of(client, ns, name)).await
}

/// Waits for a FailedScheduling event about the pod and returns its message.
pub async fn failed_scheduling(client: &Client, ns: &str, pod: &str) -> String {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    eventually(&format!("a FailedScheduling event for {pod}"), Duration::from_secs(20), || {
        let api = api.clone();
        async move {
            let events = api.list(&ListParams::default()).await.ok()?;
            events
                .items
                .into_iter()
                .find(|e| {
                    e.involved_object.name.as_deref() == Some(pod) && e.reason.as_deref() == Some("FailedScheduling")
                })
                .and_then(|e| e.message)
        }
    })
    .await
}

/// The pod's PodScheduled condition as (status, reason, message).
pub async fn scheduled_condition(client: &Client, ns: &str, name: &str) -> Option<(String, String, String)> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod = api.get(name).await.ok()?;
    let c = pod.status?.conditions?.into_iter().find(|c| c.type_ == "PodScheduled")?;
    Some((c.status, c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
}
