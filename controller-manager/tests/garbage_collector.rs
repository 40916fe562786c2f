//! Garbage collector against a real API server: background, foreground and orphan deletion.

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use support::{obj, start};
use testkit::eventually;

const WAIT: Duration = Duration::from_secs(20);

fn replica_set(name: &str) -> ReplicaSet {
    obj(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}},
        },
    }))
}

fn pod(name: &str, owners: &[&ReplicaSet], finalizers: &[&str]) -> Pod {
    let refs: Vec<_> = owners
        .iter()
        .map(|rs| {
            serde_json::json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs.name_any(),
                               "uid": rs.uid(), "controller": false, "blockOwnerDeletion": true})
        })
        .collect();
    obj(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "ownerReferences": refs, "finalizers": finalizers},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
    }))
}

async fn gone<K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug>(
    api: &Api<K>,
    name: &str,
) -> Option<()> {
    match api.get_opt(name).await {
        Ok(None) => Some(()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_foreground_and_orphan_deletion() {
    let server = start(&[controller_manager::garbage_collector::controller]).await;
    let client = server.client.clone();
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();

    // Background: deleting the owner removes its pods; a pod with a second, living owner stays and
    // loses the dangling reference.
    let bg = rss.create(&pp, &replica_set("bg")).await.expect("create rs");
    let keep = rss.create(&pp, &replica_set("keep")).await.expect("create rs");
    for name in ["bg-1", "bg-2"] {
        pods.create(&pp, &pod(name, &[&bg], &[])).await.expect("create pod");
    }
    pods.create(&pp, &pod("shared", &[&bg, &keep], &[])).await.expect("create pod");
    rss.delete("bg", &DeleteParams::background()).await.expect("delete rs");
    for name in ["bg-1", "bg-2"] {
        eventually("background deletion of a dependent", WAIT, || gone(&pods, name)).await;
    }
    eventually("the dangling reference removed", WAIT, || async {
        let p = pods.get("shared").await.ok()?;
        let uids: Vec<_> = p.owner_references().iter().map(|r| r.uid.clone()).collect();
        (uids == vec![keep.uid().unwrap_or_default()]).then_some(())
    })
    .await;

    // Foreground: the owner stays (with the foregroundDeletion finalizer) until its blocking
    // dependents are gone. A finalizer on one pod holds that pod, and so the owner.
    let fg = rss.create(&pp, &replica_set("fg")).await.expect("create rs");
    pods.create(&pp, &pod("fg-1", &[&fg], &[])).await.expect("create pod");
    pods.create(&pp, &pod("fg-held", &[&fg], &["example.com/hold"])).await.expect("create pod");
    rss.delete("fg", &DeleteParams::foreground()).await.expect("delete rs");
    eventually("fg-1 deleted", WAIT, || gone(&pods, "fg-1")).await;
    eventually("fg-held terminating", WAIT, || async {
        pods.get("fg-held").await.ok()?.metadata.deletion_timestamp.map(|_| ())
    })
    .await;
    // A negative check over time (the owner stays): give a wrong collector time to drop it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let owner = rss.get("fg").await.expect("the owner waits for its blocking dependent");
    assert!(owner.finalizers().iter().any(|f| f == "foregroundDeletion"));
    let release = serde_json::json!({"metadata": {"finalizers": null}});
    pods.patch("fg-held", &PatchParams::default(), &Patch::Merge(&release)).await.expect("release pod");
    eventually("fg-held deleted", WAIT, || gone(&pods, "fg-held")).await;
    eventually("the owner deleted after its dependents", WAIT, || gone(&rss, "fg")).await;

    // Orphan: the owner goes, its pods stay without the reference.
    let or = rss.create(&pp, &replica_set("or")).await.expect("create rs");
    for name in ["or-1", "or-2"] {
        pods.create(&pp, &pod(name, &[&or], &[])).await.expect("create pod");
    }
    rss.delete("or", &DeleteParams::orphan()).await.expect("delete rs");
    eventually("the orphaning owner deleted", WAIT, || gone(&rss, "or")).await;
    for name in ["or-1", "or-2"] {
        let p = pods.get(name).await.expect("orphaned pod stays");
        assert!(p.owner_references().is_empty(), "{name} still has {:?}", p.owner_references());
        assert!(p.metadata.deletion_timestamp.is_none());
    }
    // The survivors of the background case are untouched.
    assert!(pods.get("shared").await.is_ok());
    assert!(rss.get("keep").await.is_ok());
}
