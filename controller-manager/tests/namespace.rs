//! Deleting a namespace removes everything in it, then the Namespace itself.

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use support::{obj, secs, start};
use testkit::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_empties_it_then_removes_it() {
    let server =
        start(&[controller_manager::namespace::controller, controller_manager::serviceaccount::controller]).await;
    let c = server.client.clone();
    let ns = "doomed";
    let namespaces: Api<Namespace> = Api::all(c.clone());
    namespaces.create(&PostParams::default(), &obj(json!({"metadata": {"name": ns}}))).await.expect("ns");
    let pp = PostParams::default();
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), ns);
    cms.create(&pp, &obj(json!({"metadata": {"name": "cfg"}, "data": {"a": "b"}}))).await.expect("configmap");
    let secrets: Api<Secret> = Api::namespaced(c.clone(), ns);
    secrets.create(&pp, &obj(json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}))).await.expect("secret");
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), ns);
    let deploy = json!({"metadata": {"name": "d"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}}});
    deploys.create(&pp, &obj(deploy)).await.expect("deployment");
    let pods: Api<Pod> = Api::namespaced(c.clone(), ns);
    let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}});
    eventually("pod created", secs(10), || async { pods.create(&pp, &obj(pod.clone())).await.ok() }).await;

    // A pod on a node: deleting it only marks it terminating until its kubelet (the test) says so.
    let bound = json!({"metadata": {"name": "bound"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox:1.36"}]}});
    pods.create(&pp, &obj(bound)).await.expect("bound pod");

    namespaces.delete(ns, &DeleteParams::default()).await.expect("delete namespace");
    // Everything else goes; the namespace waits for the pod and says so.
    eventually("content deleted but for the terminating pod", secs(20), || async {
        let n = namespaces.get_opt(ns).await.ok()??;
        let conds = n.status?.conditions?;
        let remaining = conds.iter().find(|c| c.type_ == "NamespaceContentRemaining")?;
        (remaining.status == "True" && remaining.message.as_deref()?.contains("pods has 1")).then_some(())
    })
    .await;
    assert!(cms.get_opt("cfg").await.expect("get").is_none());
    assert!(deploys.get_opt("d").await.expect("get").is_none());
    assert!(pods.get_opt("p").await.expect("get").is_none());
    let terminating = pods.get("bound").await.expect("bound pod lingers");
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert!(namespaces.get_opt(ns).await.expect("get").is_some());

    // The kubelet finishes the pod: the namespace goes promptly.
    pods.delete("bound", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await.expect("force");
    eventually("namespace gone", secs(10), || async { matches!(namespaces.get_opt(ns).await, Ok(None)).then_some(()) })
        .await;
    assert!(cms.get_opt("cfg").await.expect("get").is_none());
    assert!(secrets.get_opt("s").await.expect("get").is_none());
    assert!(deploys.get_opt("d").await.expect("get").is_none());
    assert!(pods.get_opt("p").await.expect("get").is_none());
}
