//! The DaemonSet controller against a real API server, with Node objects the test creates and
//! the test playing scheduler and kubelet where a step needs it.

mod support;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use support::{obj, secs, set_phase, start};
use testkit::eventually;

async fn add_node(nodes: &Api<Node>, name: &str, role: &str) {
    let node: Node =
        obj(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"role": role}}}));
    nodes.create(&PostParams::default(), &node).await.expect("create node");
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}});
    nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.expect("node status");
}

fn daemonset(image: &str) -> DaemonSet {
    obj(json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"}, "spec": {
        "selector": {"matchLabels": {"app": "agent"}},
        "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {
            "nodeSelector": {"role": "worker"},
            "containers": [{"name": "c", "image": image}]}}}}))
}

/// Live (not terminating) daemon pods by the node they are pinned to.
async fn pods_by_node(pods: &Api<Pod>) -> BTreeMap<String, Vec<Pod>> {
    let mut out: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
    let list = pods.list(&ListParams::default().labels("app=agent")).await.map(|l| l.items).unwrap_or_default();
    for p in list.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        let terms = p
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| n.required_during_scheduling_ignored_during_execution.as_ref())
            .map(|r| r.node_selector_terms.clone())
            .unwrap_or_default();
        let node = terms
            .iter()
            .flat_map(|t| t.match_fields.iter().flatten())
            .find(|r| r.key == "metadata.name")
            .and_then(|r| r.values.clone())
            .and_then(|v| v.first().cloned());
        out.entry(node.unwrap_or_default()).or_default().push(p);
    }
    out
}

fn one_each(by_node: &BTreeMap<String, Vec<Pod>>, nodes: &[&str]) -> bool {
    by_node.len() == nodes.len() && nodes.iter().all(|n| by_node.get(*n).is_some_and(|p| p.len() == 1))
}

/// Plays the scheduler: binds a pod to its node.
async fn bind(client: &kube::Client, pod: &str, node: &str) {
    let req = http::Request::post(format!("/api/v1/namespaces/default/pods/{pod}/binding"))
        .header("content-type", "application/json")
        .body(
            serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}))
            .expect("json"),
        )
        .expect("request");
    client.request_text(req).await.expect("bind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pod_per_eligible_node() {
    let s = start(&[controller_manager::daemonset::controller]).await;
    let nodes: Api<Node> = Api::all(s.client.clone());
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let dss: Api<DaemonSet> = Api::namespaced(s.client.clone(), "default");
    for (n, role) in [("n1", "worker"), ("n2", "worker"), ("n3", "worker"), ("gpu", "other")] {
        add_node(&nodes, n, role).await;
    }
    dss.create(&PostParams::default(), &daemonset("agent:1")).await.expect("create ds");
    let by_node = eventually("one pod on each of n1..n3", secs(20), || async {
        let b = pods_by_node(&pods).await;
        one_each(&b, &["n1", "n2", "n3"]).then_some(b)
    })
    .await;
    for p in by_node.values().flatten() {
        let tolerations = p.spec.as_ref().and_then(|s| s.tolerations.clone()).unwrap_or_default();
        for key in
            ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable", "node.kubernetes.io/unschedulable"]
        {
            assert!(tolerations.iter().any(|t| t.key.as_deref() == Some(key)), "{key} toleration on {}", p.name_any());
        }
        assert!(p.labels().contains_key("controller-revision-hash"));
    }

    // A node that joins later gets its pod; the excluded one still none.
    add_node(&nodes, "n4", "worker").await;
    eventually("a pod on n4", secs(20), || async {
        one_each(&pods_by_node(&pods).await, &["n1", "n2", "n3", "n4"]).then_some(())
    })
    .await;
    let st = eventually("status counts four nodes", secs(20), || async {
        let st = dss.get("agent").await.ok()?.status?;
        (st.desired_number_scheduled == 4 && st.current_number_scheduled == 4).then_some(st)
    })
    .await;
    assert_eq!(st.number_misscheduled, 0);
    assert_eq!(st.updated_number_scheduled, Some(4));
    assert!(st.observed_generation.is_some());

    // Readiness is reported once pods run.
    for p in pods_by_node(&pods).await.values().flatten() {
        set_phase(&pods, &p.name_any(), "Running").await.expect("pod status");
    }
    eventually("four ready and available", secs(20), || async {
        let st = dss.get("agent").await.ok()?.status?;
        (st.number_ready == 4 && st.number_available == Some(4) && st.number_unavailable == Some(0)).then_some(())
    })
    .await;

    // A deleted pod comes back (bound, so deletion is graceful; the test then finishes it as the kubelet).
    let victim = pods_by_node(&pods).await.get("n2").and_then(|v| v.first().cloned()).expect("pod on n2");
    bind(&s.client, &victim.name_any(), "n2").await;
    pods.delete(&victim.name_any(), &DeleteParams::default()).await.expect("delete");
    pods.delete(&victim.name_any(), &DeleteParams::default().grace_period(0)).await.ok();
    eventually("a new pod on n2", secs(20), || async {
        let b = pods_by_node(&pods).await;
        let p = b.get("n2")?.first()?;
        (p.name_any() != victim.name_any()).then_some(())
    })
    .await;

    // A node that stops matching loses its pod.
    nodes
        .patch("n1", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"role": "other"}}})))
        .await
        .expect("relabel");
    eventually("n1 emptied", secs(20), || async {
        one_each(&pods_by_node(&pods).await, &["n2", "n3", "n4"]).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_replaces_every_pod() {
    let s = start(&[controller_manager::daemonset::controller]).await;
    let nodes: Api<Node> = Api::all(s.client.clone());
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let dss: Api<DaemonSet> = Api::namespaced(s.client.clone(), "default");
    for n in ["a", "b", "c"] {
        add_node(&nodes, n, "worker").await;
    }
    dss.create(&PostParams::default(), &daemonset("agent:1")).await.expect("create ds");
    eventually("three pods", secs(20), || async {
        one_each(&pods_by_node(&pods).await, &["a", "b", "c"]).then_some(())
    })
    .await;
    for p in pods_by_node(&pods).await.values().flatten() {
        set_phase(&pods, &p.name_any(), "Running").await.expect("pod status");
    }
    eventually("three available", secs(20), || async {
        (dss.get("agent").await.ok()?.status?.number_available == Some(3)).then_some(())
    })
    .await;
    let image_patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "agent:2"}]}}}});
    dss.patch("agent", &PatchParams::default(), &Patch::Merge(&image_patch)).await.expect("update");
    // Play the kubelet: every pod runs and is ready. maxUnavailable 1: at most one node at a
    // time may lack an available pod.
    let worst = std::cell::Cell::new(0);
    eventually("the rollout to finish", secs(60), || async {
        let b = pods_by_node(&pods).await;
        let mut available = 0;
        for p in b.values().flatten() {
            let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            if !running {
                set_phase(&pods, &p.name_any(), "Running").await.ok();
            } else {
                available += 1;
            }
        }
        worst.set(worst.get().max(3 - available.min(3)));
        let images: Vec<String> = b
            .values()
            .flatten()
            .filter_map(|p| p.spec.as_ref().map(|s| s.containers[0].image.clone().unwrap_or_default()))
            .collect();
        (images.len() == 3 && images.iter().all(|i| i == "agent:2") && available == 3).then_some(())
    })
    .await;
    let worst = worst.get();
    assert!(worst <= 1, "at most one node without an available pod, saw {worst}");
    eventually("status reports the update", secs(20), || async {
        let st = dss.get("agent").await.ok()?.status?;
        (st.updated_number_scheduled == Some(3) && st.number_available == Some(3)).then_some(())
    })
    .await;
}
