//! A restarted kubelet and the sandboxes its predecessor left in the runtime (containers outlive
//! the kubelet): those of pods that still exist are taken over with their containers and IPs,
//! not duplicated; those of pods that are gone are removed.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams};
use serde_json::json;

use kubelet::runtime::{ContainerFilter, PodSandboxConfig, SandboxMetadata};
use support::*;
use testkit::eventually;

const WAIT: Duration = Duration::from_secs(30);

fn pod_ip(p: &Pod) -> String {
    p.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default()
}

fn restarts(p: &Pod) -> i32 {
    p.status.as_ref().and_then(|s| s.container_statuses.as_ref()).map(|c| c[0].restart_count).unwrap_or(-1)
}

async fn sandbox_ids(rt: &FakeRuntime) -> BTreeSet<String> {
    rt.list_pod_sandboxes().await.expect("list sandboxes").into_iter().map(|s| s.id).collect()
}

async fn running(client: &kube::Client, name: &str) -> Pod {
    eventually(&format!("{name} Running"), WAIT, || async {
        get_pod(client, name).await.filter(|p| phase(p) == "Running" && container_id(p, "main").is_some())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_kubelet_adopts_sandboxes_instead_of_duplicating_them() {
    let (server, client) = start_server().await;
    let rt = FakeRuntime::new(Duration::from_secs(1));
    let runtimes = HashMap::from([("hollow-0".to_string(), rt.clone())]);
    let opts = hollow(1, Some("10.100.0.0/24"));
    let (stop, task) = start_kubelet_with(opts.clone(), &server, runtimes.clone());
    let nodes: Api<Node> = Api::all(client.clone());
    eventually("hollow-0 Ready", WAIT, || async { nodes.get_opt("hollow-0").await.ok().flatten().filter(node_ready) })
        .await;

    create_bound_pod(&client, pod_json("keep", "Always", json!({})), "hollow-0").await;
    create_bound_pod(&client, pod_json("doomed", "Always", json!({})), "hollow-0").await;
    let mut host = pod_json("host", "Always", json!({}));
    host["spec"]["hostNetwork"] = json!(true);
    create_bound_pod(&client, host, "hollow-0").await;
    let keep = running(&client, "keep").await;
    let doomed = running(&client, "doomed").await;
    let host = running(&client, "host").await;
    assert_eq!(pod_ip(&host), "10.0.0.1", "a hostNetwork pod has the node's IP");
    let before = sandbox_ids(&rt).await;
    assert_eq!(before.len(), 3);

    // The kubelet goes away; its containers keep running.
    stop.cancel();
    task.await.expect("kubelet task");
    let keep_container = container_id(&keep, "main").expect("container id");
    assert_eq!(
        rt.container_status(&keep_container).await.expect("status").state,
        kubelet::runtime::ContainerState::Running
    );

    // Meanwhile `doomed` leaves the API, and the runtime holds a sandbox of a pod that never was.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.delete("doomed", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() })
        .await
        .expect("delete doomed");
    let ghost = PodSandboxConfig {
        metadata: Some(SandboxMetadata {
            name: "ghost".into(),
            namespace: "default".into(),
            uid: "ghost-uid".into(),
            attempt: 0,
        }),
        ..Default::default()
    };
    let ghost_id = rt.run_pod_sandbox(&ghost).await.expect("ghost sandbox");
    let doomed_sandbox = rt
        .list_pod_sandboxes()
        .await
        .expect("list")
        .into_iter()
        .find(|s| Some(&s.metadata.uid) == doomed.metadata.uid.as_ref())
        .map(|s| s.id)
        .expect("doomed's sandbox");

    // A new kubelet with the same runtime.
    let (stop, task) = start_kubelet_with(opts, &server, runtimes);
    let kept: BTreeSet<String> = before.iter().filter(|id| **id != doomed_sandbox).cloned().collect();
    eventually("the sandboxes of gone pods removed", WAIT, || async {
        let now = sandbox_ids(&rt).await;
        (now == kept).then_some(())
    })
    .await;
    assert!(!sandbox_ids(&rt).await.contains(&ghost_id));

    // The pods that stayed keep their sandbox, container, IP and restart count; a new pod gets
    // another IP than the adopted one.
    create_bound_pod(&client, pod_json("fresh", "Always", json!({})), "hollow-0").await;
    let fresh = running(&client, "fresh").await;
    assert_ne!(pod_ip(&fresh), pod_ip(&keep), "the adopted pod's IP stays reserved");
    // A negative check over time (nothing restarts the adopted pods): there is no event to wait
    // for, so give a wrong kubelet time to do it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (before, name) in [(&keep, "keep"), (&host, "host")] {
        let now = running(&client, name).await;
        assert_eq!(container_id(&now, "main"), container_id(before, "main"), "{name}: same container");
        assert_eq!(pod_ip(&now), pod_ip(before), "{name}: same IP");
        assert_eq!(restarts(&now), 0, "{name}: not restarted");
    }
    let all = sandbox_ids(&rt).await;
    assert_eq!(all.len(), 3, "keep, host and fresh: no duplicates ({all:?})");
    assert!(kept.is_subset(&all));
    let containers = rt.list_containers(&ContainerFilter::default()).await.expect("containers");
    assert_eq!(containers.len(), 3, "one container per pod: {containers:?}");

    stop.cancel();
    task.await.expect("kubelet task");
}
