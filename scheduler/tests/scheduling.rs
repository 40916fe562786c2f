//! The scheduler against a real API server: spreading, unschedulable pods and their events,
//! retries when the cluster changes, nodeSelector/affinity, taints, cordoned and NotReady
//! nodes, and host ports.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::Api;
use serde_json::json;
use testkit::eventually;

const NS: &str = "default";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spreads_an_owners_pods_over_nodes() {
    let server = Server::start().await;
    let c = &server.client;
    for n in ["n1", "n2", "n3"] {
        create_node(c, NodeSpec::new(n, "4")).await;
    }
    let _s = server.start_scheduler(scheduler::Opts::default());
    let owner = json!({"metadata": {"ownerReferences": [{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs-web-uid", "controller": true,
    }]}});
    for i in 0..6 {
        create_pod(c, NS, pod_json(&format!("web-{i}"), "100m", owner.clone())).await;
    }
    let mut per_node = BTreeMap::new();
    for i in 0..6 {
        *per_node.entry(bound_node(c, NS, &format!("web-{i}")).await).or_insert(0) += 1;
    }
    assert_eq!(per_node.len(), 3, "{per_node:?}");
    assert!(per_node.values().all(|n| *n == 2), "{per_node:?}");
    let (status, _, _) = scheduled_condition(c, NS, "web-0").await.expect("condition");
    assert_eq!(status, "True");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_big_pod_waits_for_a_big_enough_node() {
    let server = Server::start().await;
    let c = &server.client;
    for n in ["n1", "n2", "n3"] {
        create_node(c, NodeSpec::new(n, "4")).await;
    }
    let _s = server.start_scheduler(scheduler::Opts::default());
    create_pod(c, NS, pod_json("big", "16", json!({}))).await;
    let want = "0/3 nodes are available: 3 Insufficient cpu.";
    assert_eq!(failed_scheduling(c, NS, "big").await, want);
    let cond = eventually("PodScheduled=False", Duration::from_secs(10), || scheduled_condition(c, NS, "big")).await;
    assert_eq!(cond, ("False".to_string(), "Unschedulable".to_string(), want.to_string()));
    assert_eq!(node_of(c, NS, "big").await, None);
    // A small pod created meanwhile is not held up.
    create_pod(c, NS, pod_json("small", "1", json!({}))).await;
    bound_node(c, NS, "small").await;
    // A node big enough joins: the pod is retried on that change, well before the periodic flush.
    create_node(c, NodeSpec::new("huge", "32")).await;
    assert_eq!(bound_node(c, NS, "big").await, "huge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_selector_and_affinity() {
    let server = Server::start().await;
    let c = &server.client;
    create_node(c, NodeSpec { labels: &[("disk", "ssd")], ..NodeSpec::new("a", "4") }).await;
    create_node(c, NodeSpec { labels: &[("disk", "hdd"), ("cores", "16")], ..NodeSpec::new("b", "4") }).await;
    create_node(c, NodeSpec::new("c", "4")).await;
    let _s = server.start_scheduler(scheduler::Opts::default());
    create_pod(c, NS, pod_json("ssd", "100m", json!({"spec": {"nodeSelector": {"disk": "ssd"}}}))).await;
    let expr = |key: &str, op: &str, values: serde_json::Value| {
        json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": key, "operator": op, "values": values}]}]}}}}})
    };
    create_pod(c, NS, pod_json("many-cores", "100m", expr("cores", "Gt", json!(["8"])))).await;
    create_pod(c, NS, pod_json("no-disk", "100m", expr("disk", "DoesNotExist", json!([])))).await;
    // DaemonSet pods pin their node by field.
    let by_name = json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]}]}}}}});
    create_pod(c, NS, pod_json("pinned", "100m", by_name)).await;
    create_pod(c, NS, pod_json("nowhere", "100m", json!({"spec": {"nodeSelector": {"disk": "nvme"}}}))).await;
    assert_eq!(bound_node(c, NS, "ssd").await, "a");
    assert_eq!(bound_node(c, NS, "many-cores").await, "b");
    assert_eq!(bound_node(c, NS, "no-disk").await, "c");
    assert_eq!(bound_node(c, NS, "pinned").await, "c");
    assert_eq!(
        failed_scheduling(c, NS, "nowhere").await,
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
    );
    // Labelling a node is a change that lets the waiting pod in.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(c.clone());
    let patch = json!({"metadata": {"labels": {"disk": "nvme"}}});
    nodes.patch("c", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("label node");
    assert_eq!(bound_node(c, NS, "nowhere").await, "c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taints_cordons_and_not_ready_nodes() {
    let server = Server::start().await;
    let c = &server.client;
    let taint = json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]);
    create_node(c, NodeSpec { taints: taint.clone(), ..NodeSpec::new("db1", "4") }).await;
    create_node(c, NodeSpec { taints: taint, ..NodeSpec::new("db2", "4") }).await;
    create_node(c, NodeSpec { unschedulable: true, ..NodeSpec::new("cordoned", "4") }).await;
    create_node(c, NodeSpec { ready: false, ..NodeSpec::new("down", "4") }).await;
    let _s = server.start_scheduler(scheduler::Opts::default());
    create_pod(c, NS, pod_json("plain", "100m", json!({}))).await;
    assert_eq!(
        failed_scheduling(c, NS, "plain").await,
        "0/4 nodes are available: 1 node(s) were not ready, 1 node(s) were unschedulable, \
         2 node(s) had untolerated taint {dedicated: db}."
    );
    let tolerating = json!({"spec": {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]}});
    create_pod(c, NS, pod_json("db", "100m", tolerating)).await;
    let node = bound_node(c, NS, "db").await;
    assert!(node == "db1" || node == "db2", "{node}");
    // DaemonSet-style toleration of the cordon.
    let cordon_ok = json!({"spec": {
        "tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["cordoned"]}]}]}}}}});
    create_pod(c, NS, pod_json("ds", "100m", cordon_ok)).await;
    assert_eq!(bound_node(c, NS, "ds").await, "cordoned");
    // The NotReady node turns Ready: the plain pod goes there.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(c.clone());
    let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
        "lastHeartbeatTime": "2025-01-01T00:00:01Z", "lastTransitionTime": "2025-01-01T00:00:01Z"}]}});
    nodes.patch_status("down", &PatchParams::default(), &Patch::Merge(&ready)).await.expect("node ready");
    assert_eq!(bound_node(c, NS, "plain").await, "down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_ports_conflict_until_a_pod_leaves() {
    let server = Server::start().await;
    let c = &server.client;
    create_node(c, NodeSpec::new("n1", "4")).await;
    create_node(c, NodeSpec::new("n2", "4")).await;
    let _s = server.start_scheduler(scheduler::Opts::default());
    let port = json!({"spec": {"containers": [{"name": "c", "image": "busybox",
        "ports": [{"containerPort": 80, "hostPort": 8080}]}]}});
    for name in ["p1", "p2"] {
        create_pod(c, NS, pod_json(name, "0", port.clone())).await;
    }
    let (n1, n2) = (bound_node(c, NS, "p1").await, bound_node(c, NS, "p2").await);
    assert_ne!(n1, n2, "two pods with the same host port share a node");
    create_pod(c, NS, pod_json("p3", "0", port.clone())).await;
    assert_eq!(
        failed_scheduling(c, NS, "p3").await,
        "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports."
    );
    // p1 completes (as its kubelet reports): its port is free again and p3 takes it.
    let pods: Api<Pod> = Api::namespaced(c.clone(), NS);
    let done = json!({"status": {"phase": "Succeeded"}});
    pods.patch_status("p1", &PatchParams::default(), &Patch::Merge(&done)).await.expect("complete p1");
    assert_eq!(bound_node(c, NS, "p3").await, n1);
    // p2 is deleted: a fourth pod takes its place.
    create_pod(c, NS, pod_json("p4", "0", port)).await;
    failed_scheduling(c, NS, "p4").await;
    pods.delete("p2", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await.expect("delete p2");
    assert_eq!(bound_node(c, NS, "p4").await, n2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_schedulers_pods_are_left_alone() {
    let server = Server::start().await;
    let c = &server.client;
    create_node(c, NodeSpec::new("n1", "4")).await;
    let _s = server.start_scheduler(scheduler::Opts::default());
    create_pod(c, NS, pod_json("theirs", "100m", json!({"spec": {"schedulerName": "other"}}))).await;
    create_pod(c, NS, pod_json("ours", "100m", json!({}))).await;
    bound_node(c, NS, "ours").await;
    assert_eq!(node_of(c, NS, "theirs").await, None);
    // A second scheduler, connecting through the kubeconfig, takes the pods named for it.
    let stop = tokio_util::sync::CancellationToken::new();
    let opts = scheduler::Opts { scheduler_name: "other".into(), ..Default::default() };
    let other = tokio::spawn({
        let (kubeconfig, stop) = (server.kubeconfig().to_path_buf(), stop.clone());
        async move { scheduler::run(opts, &kubeconfig, stop).await }
    });
    assert_eq!(bound_node(c, NS, "theirs").await, "n1");
    stop.cancel();
    other.await.expect("join").expect("the second scheduler ran");
    let missing = scheduler::run(scheduler::Opts::default(), std::path::Path::new("/nonexistent"), stop).await;
    assert!(matches!(missing, Err(scheduler::Error::Client(_))), "{missing:?}");
}
