//! Node IPAM against a real API server.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{DeleteParams, PostParams};
use kube::Api;
use support::{obj, opts, start, start_with};
use testkit::eventually;

fn node(name: &str) -> Node {
    obj(serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}))
}

async fn cidr_of(api: &Api<Node>, name: &str) -> Option<String> {
    let n = api.get(name).await.ok()?;
    let spec = n.spec?;
    let cidr = spec.pod_cidr?;
    assert_eq!(spec.pod_cidrs, Some(vec![cidr.clone()]), "podCIDRs must match podCIDR");
    Some(cidr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_get_distinct_cidrs_and_the_range_runs_out() {
    let mut o = opts();
    // Four /26s: enough to see distinct subnets, the range running out, and a release.
    o.cluster_cidr = "10.244.0.0/24".into();
    o.node_cidr_mask_size = 26;
    let server = start_with(o, &[controller_manager::node_ipam::controller]).await;
    let client = server.client.clone();
    let nodes: Api<Node> = Api::all(client.clone());
    // One node already has a subnet (e.g. `skiff agent --pod-cidr`): it must not be handed out.
    let mut pre = node("pre");
    pre.spec = Some(k8s_openapi::api::core::v1::NodeSpec {
        pod_cidr: Some("10.244.0.0/26".into()),
        pod_cidrs: Some(vec!["10.244.0.0/26".into()]),
        ..Default::default()
    });
    nodes.create(&PostParams::default(), &pre).await.expect("create node");
    for name in ["a", "b", "c"] {
        nodes.create(&PostParams::default(), &node(name)).await.expect("create node");
    }
    let mut seen = HashSet::new();
    for name in ["a", "b", "c"] {
        let cidr = eventually("a podCIDR", Duration::from_secs(10), || cidr_of(&nodes, name)).await;
        assert!(cidr.starts_with("10.244.0.") && cidr.ends_with("/26"), "{cidr}");
        assert_ne!(cidr, "10.244.0.0/26", "the pre-assigned subnet was handed out again");
        seen.insert(cidr);
    }
    assert_eq!(seen.len(), 3, "duplicate CIDRs: {seen:?}");

    // The range is full: the fifth node gets none and a CIDRNotAvailable event.
    nodes.create(&PostParams::default(), &node("d")).await.expect("create node");
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    eventually("CIDRNotAvailable event", Duration::from_secs(10), || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| e.reason.as_deref() == Some("CIDRNotAvailable") && e.involved_object.name.as_deref() == Some("d"))
            .then_some(())
    })
    .await;
    assert_eq!(cidr_of(&nodes, "d").await, None);

    // Deleting a node releases its subnet; the waiting node gets exactly that one.
    let freed = cidr_of(&nodes, "b").await.expect("b has a CIDR");
    nodes.delete("b", &DeleteParams::default()).await.expect("delete node");
    let got = eventually("d's podCIDR after a release", Duration::from_secs(30), || cidr_of(&nodes, "d")).await;
    assert_eq!(got, freed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_get_three_slash_24s_from_the_default_range() {
    let server = start(&[controller_manager::node_ipam::controller]).await;
    let client = server.client.clone();
    let nodes: Api<Node> = Api::all(client.clone());
    for name in ["n1", "n2", "n3"] {
        nodes.create(&PostParams::default(), &node(name)).await.expect("create node");
    }
    let mut seen = HashSet::new();
    for name in ["n1", "n2", "n3"] {
        let cidr = eventually("a podCIDR", Duration::from_secs(10), || cidr_of(&nodes, name)).await;
        assert!(cidr.starts_with("10.244.") && cidr.ends_with(".0/24"), "{cidr}");
        seen.insert(cidr);
    }
    assert_eq!(seen.len(), 3);
}
