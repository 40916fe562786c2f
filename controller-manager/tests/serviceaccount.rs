//! The `default` ServiceAccount appears in new namespaces and comes back when deleted.

mod support;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use support::{obj, secs, start};
use testkit::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_serviceaccount_in_every_namespace() {
    let server = start(&[controller_manager::serviceaccount::controller]).await;
    let c = server.client.clone();
    let namespaces: Api<Namespace> = Api::all(c.clone());
    namespaces.create(&PostParams::default(), &obj(json!({"metadata": {"name": "team-a"}}))).await.expect("ns");
    let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), "team-a");
    let started = std::time::Instant::now();
    eventually("default serviceaccount", secs(10), || async { sas.get_opt("default").await.ok().flatten() }).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());

    let uid = sas.get("default").await.expect("sa").metadata.uid;
    sas.delete("default", &DeleteParams::default()).await.expect("delete sa");
    eventually("default serviceaccount recreated", secs(10), || async {
        sas.get_opt("default").await.ok().flatten().filter(|sa| sa.metadata.uid != uid)
    })
    .await;
}
