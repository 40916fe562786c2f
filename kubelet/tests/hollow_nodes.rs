//! Hollow nodes against a real API server: registration, heartbeats, re-registration, and pods
//! through their whole life (Running/Ready with an IP from the podCIDR, Succeeded, Failed,
//! restarts, init containers, deletion, waiting for a podCIDR).

mod support;

use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use support::*;
use testkit::eventually;

const WAIT: Duration = Duration::from_secs(30);

fn renew_time(l: &Lease) -> Option<jiff::Timestamp> {
    l.spec.as_ref()?.renew_time.as_ref().map(|t| t.0)
}

fn in_cidr(ip: &str, net: [u8; 3]) -> bool {
    ip.parse::<Ipv4Addr>().is_ok_and(|a| a.octets()[..3] == net)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_register_heartbeat_and_come_back_after_deletion() {
    let (server, client) = start_server().await;
    let (stop, task) = start_kubelet(hollow(3, Some("10.100.0.0/16")), &server);
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");

    for i in 0..3 {
        let name = format!("hollow-{i}");
        let node = eventually(&format!("{name} Ready"), WAIT, || async {
            nodes.get_opt(&name).await.ok().flatten().filter(node_ready)
        })
        .await;
        let labels = node.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get("kubernetes.io/hostname"), Some(&name));
        assert_eq!(labels.get("kubernetes.io/os").map(String::as_str), Some("linux"));
        let status = node.status.clone().unwrap_or_default();
        let cap = status.capacity.unwrap_or_default();
        assert_eq!(cap.get("cpu").map(|q| q.0.as_str()), Some("4"));
        assert_eq!(cap.get("memory").map(|q| q.0.as_str()), Some("16Gi"));
        assert_eq!(cap.get("pods").map(|q| q.0.as_str()), Some("110"));
        let info = status.node_info.unwrap_or_default();
        assert_eq!(info.kubelet_version, "v1.33.0-skiff");
        assert_eq!(info.container_runtime_version, "skiff-fake://0.1");
        let addrs = status.addresses.unwrap_or_default();
        assert!(addrs.iter().any(|a| a.type_ == "InternalIP" && a.address == format!("10.0.0.{}", i + 1)));
        assert_eq!(node.spec.and_then(|s| s.pod_cidr), Some(format!("10.100.{i}.0/24")));
        for ty in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            let c = status.conditions.iter().flatten().find(|c| c.type_ == ty).map(|c| c.status.clone());
            assert_eq!(c.as_deref(), Some("False"), "{name} {ty}");
        }
    }

    // Leases are held by their node and renewed (every second with a 4 s lease here).
    let first =
        eventually("lease of hollow-2", WAIT, || async { leases.get_opt("hollow-2").await.ok().flatten() }).await;
    let spec = first.spec.clone().unwrap_or_default();
    assert_eq!(spec.holder_identity.as_deref(), Some("hollow-2"));
    assert_eq!(spec.lease_duration_seconds, Some(4));
    let owner = first.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owner.first().map(|o| (o.kind.as_str(), o.name.as_str())), Some(("Node", "hollow-2")));
    let t0 = renew_time(&first);
    eventually("the lease to be renewed", WAIT, || async {
        leases.get_opt("hollow-2").await.ok().flatten().filter(|l| renew_time(l) > t0)
    })
    .await;

    // NodeStatus heartbeats move lastHeartbeatTime (whole seconds, so wait past one).
    let heartbeat = |n: &Node| {
        n.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")?.last_heartbeat_time.clone()
    };
    let h0 = heartbeat(&nodes.get("hollow-0").await.expect("get node"));
    eventually("a newer NodeStatus heartbeat", WAIT, || async {
        nodes.get("hollow-0").await.ok().filter(|n| heartbeat(n) > h0)
    })
    .await;

    // A deleted Node comes back as a new object.
    let old_uid = nodes.get("hollow-1").await.expect("get node").metadata.uid;
    nodes.delete("hollow-1", &DeleteParams::default()).await.expect("delete node");
    let back = eventually("hollow-1 re-registered and Ready", WAIT, || async {
        nodes.get_opt("hollow-1").await.ok().flatten().filter(|n| n.metadata.uid != old_uid && node_ready(n))
    })
    .await;
    assert_eq!(back.spec.and_then(|s| s.pod_cidr).as_deref(), Some("10.100.1.0/24"));

    stop.cancel();
    task.await.expect("kubelet task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_run_finish_fail_restart_and_go() {
    let (server, client) = start_server().await;
    let (stop, task) = start_kubelet(hollow(3, Some("10.100.0.0/16")), &server);
    let nodes: Api<Node> = Api::all(client.clone());
    eventually("hollow-1 Ready", WAIT, || async { nodes.get_opt("hollow-1").await.ok().flatten().filter(node_ready) })
        .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    // A long-running pod: Running and Ready with an IP from hollow-1's podCIDR.
    create_bound_pod(&client, pod_json("web", "Always", json!({})), "hollow-1").await;
    // A batch pod, a failing one, a crash-looping one, and one with an init container.
    create_bound_pod(&client, pod_json("batch", "Never", json!({})), "hollow-1").await;
    create_bound_pod(&client, pod_json("broken", "Never", json!({"skiff.io/fake-exit-code": "3"})), "hollow-2").await;
    create_bound_pod(&client, pod_json("crashy", "Always", json!({"skiff.io/fake-exit-code": "1"})), "hollow-0").await;
    let mut init = pod_json("with-init", "Always", json!({}));
    init["spec"]["initContainers"] = json!([{"name": "setup", "image": "busybox:1.36"}]);
    create_bound_pod(&client, init, "hollow-0").await;

    let web = eventually("web Running and Ready", WAIT, || async {
        get_pod(&client, "web").await.filter(|p| phase(p) == "Running" && condition(p, "Ready") == Some("True"))
    })
    .await;
    let st = web.status.clone().unwrap_or_default();
    let ip = st.pod_ip.clone().unwrap_or_default();
    assert!(in_cidr(&ip, [10, 100, 1]), "pod IP {ip} outside 10.100.1.0/24");
    assert_ne!(ip, "10.100.1.1", "the gateway is never a pod IP");
    assert_eq!(st.pod_ips.as_ref().map(|v| v[0].ip.clone()), Some(ip.clone()));
    assert_eq!(st.host_ip.as_deref(), Some("10.0.0.2"));
    assert!(st.start_time.is_some());
    for ty in ["PodReadyToStartContainers", "Initialized", "ContainersReady", "PodScheduled"] {
        assert_eq!(condition(&web, ty), Some("True"), "{ty}");
    }
    let cs = &st.container_statuses.unwrap_or_default()[0];
    assert_eq!((cs.name.as_str(), cs.ready, cs.started, cs.restart_count), ("main", true, Some(true), 0));
    assert!(cs.image_id.starts_with("docker.io/library/busybox@sha256:"), "{}", cs.image_id);
    assert!(cs.container_id.as_deref().unwrap_or_default().starts_with("skiff-fake://"));
    assert!(cs.state.as_ref().and_then(|s| s.running.as_ref()).is_some_and(|r| r.started_at.is_some()));

    let batch = eventually("batch Succeeded", WAIT, || async {
        get_pod(&client, "batch").await.filter(|p| phase(p) == "Succeeded")
    })
    .await;
    let term =
        batch.status.and_then(|s| s.container_statuses).and_then(|c| c[0].state.clone()).and_then(|s| s.terminated);
    assert_eq!(term.map(|t| (t.exit_code, t.reason)), Some((0, Some("Completed".into()))));

    let broken = eventually("broken Failed", WAIT, || async {
        get_pod(&client, "broken").await.filter(|p| phase(p) == "Failed")
    })
    .await;
    assert_eq!(condition(&broken, "Ready"), Some("False"));
    let term =
        broken.status.and_then(|s| s.container_statuses).and_then(|c| c[0].state.clone()).and_then(|s| s.terminated);
    assert_eq!(term.map(|t| (t.exit_code, t.reason)), Some((3, Some("Error".into()))));

    // restartPolicy Always restarts a container that exits (the first restart is immediate).
    let crashy = eventually("crashy restarted", WAIT, || async {
        get_pod(&client, "crashy").await.filter(|p| {
            p.status.as_ref().and_then(|s| s.container_statuses.as_ref()).is_some_and(|c| c[0].restart_count >= 1)
        })
    })
    .await;
    assert_eq!(phase(&crashy), "Running");

    let with_init = eventually("with-init Running", WAIT, || async {
        get_pod(&client, "with-init").await.filter(|p| phase(p) == "Running")
    })
    .await;
    let init_status = with_init.status.and_then(|s| s.init_container_statuses).unwrap_or_default();
    let term = init_status.first().and_then(|c| c.state.clone()).and_then(|s| s.terminated);
    assert_eq!(term.map(|t| (t.exit_code, t.reason)), Some((0, Some("Completed".into()))));

    // Deleting a running pod: the kubelet stops it and removes it from the API.
    pods.delete("web", &DeleteParams::default()).await.expect("delete pod");
    eventually("web gone from the API", WAIT, || async {
        match pods.get_opt("web").await {
            Ok(None) => Some(()),
            _ => None,
        }
    })
    .await;

    // Its IP is free again but not handed out right away; a new pod gets a fresh one.
    create_bound_pod(&client, pod_json("web2", "Always", json!({})), "hollow-1").await;
    let web2 =
        eventually("web2 Running", WAIT, || async { get_pod(&client, "web2").await.filter(|p| phase(p) == "Running") })
            .await;
    let ip2 = web2.status.and_then(|s| s.pod_ip).unwrap_or_default();
    assert!(in_cidr(&ip2, [10, 100, 1]) && ip2 != ip, "{ip2} vs {ip}");

    stop.cancel();
    task.await.expect("kubelet task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_wait_for_the_node_pod_cidr() {
    let (server, client) = start_server().await;
    // No --pod-cidr and no IPAM controller: the pod must wait until we assign one.
    let (stop, task) = start_kubelet(hollow(1, None), &server);
    let nodes: Api<Node> = Api::all(client.clone());
    eventually("hollow Ready", WAIT, || async { nodes.get_opt("hollow-0").await.ok().flatten().filter(node_ready) })
        .await;
    create_bound_pod(&client, pod_json("waiter", "Always", json!({})), "hollow-0").await;
    // A negative check over time (the pod waits): a kubelet without a podCIDR writes nothing to
    // wait for, so give a wrong one time to start the pod.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let p = get_pod(&client, "waiter").await.expect("pod");
    assert_eq!(phase(&p), "Pending");
    assert_eq!(p.status.and_then(|s| s.pod_ip), None);

    let patch = json!({"spec": {"podCIDR": "10.244.9.0/24", "podCIDRs": ["10.244.9.0/24"]}});
    nodes.patch("hollow-0", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("assign podCIDR");
    let p = eventually("waiter Running", WAIT, || async {
        get_pod(&client, "waiter").await.filter(|p| phase(p) == "Running")
    })
    .await;
    let ip = p.status.and_then(|s| s.pod_ip).unwrap_or_default();
    assert!(in_cidr(&ip, [10, 244, 9]), "{ip}");

    stop.cancel();
    task.await.expect("kubelet task");
}
