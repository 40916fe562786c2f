//! Endpoints and EndpointSlices against a real API server: acting as the kubelet (PATCH
//! pods/status), the test checks that both list exactly the ready pods and follow changes.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use support::{obj, secs, start};
use testkit::eventually;

const NS: &str = "default";

/// (ready IPs, not-ready IPs, ports) of an Endpoints object, sorted.
type EpView = (Vec<String>, Vec<String>, Vec<i32>);

async fn endpoints_view(api: &Api<Endpoints>, name: &str) -> Option<EpView> {
    let ep = api.get_opt(name).await.ok()??;
    let (mut ready, mut not_ready, mut ports) = (Vec::new(), Vec::new(), Vec::new());
    for s in ep.subsets.iter().flatten() {
        ready.extend(s.addresses.iter().flatten().map(|a| a.ip.clone()));
        not_ready.extend(s.not_ready_addresses.iter().flatten().map(|a| a.ip.clone()));
        ports.extend(s.ports.iter().flatten().map(|p| p.port));
    }
    ready.sort();
    not_ready.sort();
    ports.sort();
    ports.dedup();
    Some((ready, not_ready, ports))
}

/// IP → ready of every endpoint in the Service's slices, and their ports.
async fn slices_view(api: &Api<EndpointSlice>, svc: &str) -> (BTreeMap<String, bool>, Vec<i32>) {
    let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={svc}"));
    let mut eps = BTreeMap::new();
    let mut ports = Vec::new();
    for s in api.list(&lp).await.map(|l| l.items).unwrap_or_default() {
        for e in &s.endpoints {
            let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false);
            eps.insert(e.addresses[0].clone(), ready);
        }
        if !s.endpoints.is_empty() {
            ports.extend(s.ports.iter().flatten().filter_map(|p| p.port));
        }
    }
    ports.sort();
    ports.dedup();
    (eps, ports)
}

async fn make_pod(pods: &Api<Pod>, name: &str, app: &str, ip: &str, ready: bool) {
    let pod: Pod = obj(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox:1.36",
            "ports": [{"name": "http", "containerPort": 8080}]}]}
    }));
    pods.create(&PostParams::default(), &pod).await.expect("create pod");
    set_status(pods, name, ip, ready).await;
}

/// What a kubelet would report: Running, the IP, and the Ready condition.
async fn set_status(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
            "lastTransitionTime": jiff::Timestamp::now().to_string()}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(status)).await.expect("patch pod status");
}

/// Waits until the Endpoints and the slices of `web` list exactly these pods.
async fn expect(eps: &Api<Endpoints>, slices: &Api<EndpointSlice>, ready: &[&str], not_ready: &[&str]) {
    let want = (strs(ready), strs(not_ready), vec![8080]);
    let what = format!("endpoints ready={ready:?} not_ready={not_ready:?}");
    eventually(&what, secs(20), || async { endpoints_view(eps, "web").await.filter(|v| *v == want) }).await;
    let mut want_slices: BTreeMap<String, bool> = ready.iter().map(|ip| (ip.to_string(), true)).collect();
    want_slices.extend(not_ready.iter().map(|ip| (ip.to_string(), false)));
    let what = format!("slices ready={ready:?} not_ready={not_ready:?}");
    eventually(&what, secs(20), || async {
        let v = slices_view(slices, "web").await;
        (v == (want_slices.clone(), vec![8080])).then_some(())
    })
    .await;
}

/// Counts MODIFIED events of the matching objects from now on.
async fn count_modifications<K>(api: &Api<K>, fields: &str, labels: Option<&str>) -> Arc<AtomicUsize>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let rv = api.list(&ListParams::default()).await.expect("list").metadata.resource_version.unwrap_or_default();
    let mut wp = WatchParams::default().fields(fields);
    if let Some(l) = labels {
        wp = wp.labels(l);
    }
    let stream = api.watch(&wp, &rv).await.expect("watch");
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(Ok(ev)) = stream.next().await {
            if matches!(ev, WatchEvent::Modified(_)) {
                c.fetch_add(1, SeqCst);
            }
        }
    });
    count
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_and_slices_follow_ready_pods() {
    let server =
        start(&[controller_manager::endpoints::controller, controller_manager::endpointslice::controller]).await;
    let c = server.client.clone();
    let nodes: Api<Node> = Api::all(c.clone());
    nodes.create(&PostParams::default(), &obj(json!({"metadata": {"name": "n1"}}))).await.expect("node");
    let pods: Api<Pod> = Api::namespaced(c.clone(), NS);
    let svcs: Api<Service> = Api::namespaced(c.clone(), NS);
    let eps: Api<Endpoints> = Api::namespaced(c.clone(), NS);
    let slices: Api<EndpointSlice> = Api::namespaced(c.clone(), NS);

    // Named targetPort: resolved to the pods' "http" container port.
    let svc: Service = obj(json!({"metadata": {"name": "web", "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}));
    svcs.create(&PostParams::default(), &svc).await.expect("create service");
    make_pod(&pods, "p1", "web", "10.244.0.11", true).await;
    make_pod(&pods, "p2", "web", "10.244.0.12", true).await;
    make_pod(&pods, "p3", "web", "10.244.0.13", false).await;
    make_pod(&pods, "other", "db", "10.244.0.99", true).await;

    expect(&eps, &slices, &["10.244.0.11", "10.244.0.12"], &["10.244.0.13"]).await;

    // The objects' shape.
    let ep = eps.get("web").await.expect("endpoints");
    let labels = ep.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("tier").map(String::as_str), Some("front"));
    assert_eq!(labels.get("endpoints.kubernetes.io/managed-by").map(String::as_str), Some("endpoint-controller"));
    assert!(ep
        .metadata
        .annotations
        .unwrap_or_default()
        .contains_key("endpoints.kubernetes.io/last-change-trigger-time"));
    let addr = &ep.subsets.as_ref().expect("subsets")[0].addresses.as_ref().expect("addresses")[0];
    assert_eq!(addr.node_name.as_deref(), Some("n1"));
    assert_eq!(addr.target_ref.as_ref().and_then(|r| r.name.as_deref()), Some("p1"));
    let all = slices.list(&ListParams::default().labels("kubernetes.io/service-name=web")).await.expect("slices");
    assert_eq!(all.items.len(), 1, "one slice for three pods");
    let s = &all.items[0];
    assert!(s.metadata.name.as_deref().unwrap_or("").starts_with("web-"));
    assert_eq!(s.address_type, "IPv4");
    let slice_labels = s.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        slice_labels.get("endpointslice.kubernetes.io/managed-by").map(String::as_str),
        Some("endpointslice-controller.k8s.io")
    );
    let owner = &s.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str(), owner.controller), ("Service", "web", Some(true)));
    let slice_name = s.metadata.name.clone();

    // An update that changes nothing the Service shows causes no write: watch both objects, make
    // an irrelevant change, then a relevant one, and count the writes.
    let ep_writes = count_modifications(&eps, "metadata.name=web", None).await;
    let slice_writes = count_modifications(&slices, "", Some("kubernetes.io/service-name=web")).await;
    let annotate = json!({"metadata": {"annotations": {"touched": "yes"}}});
    pods.patch("p1", &PatchParams::default(), &Patch::Merge(annotate)).await.expect("annotate");
    set_status(&pods, "p3", "10.244.0.13", true).await;
    expect(&eps, &slices, &["10.244.0.11", "10.244.0.12", "10.244.0.13"], &[]).await;
    eventually("watch saw the write", secs(10), || async {
        (ep_writes.load(SeqCst) >= 1 && slice_writes.load(SeqCst) >= 1).then_some(())
    })
    .await;
    assert_eq!((ep_writes.load(SeqCst), slice_writes.load(SeqCst)), (1, 1), "one write each");

    // p2 turns not ready.
    set_status(&pods, "p2", "10.244.0.12", false).await;
    expect(&eps, &slices, &["10.244.0.11", "10.244.0.13"], &["10.244.0.12"]).await;

    // p1 is relabelled out of the Service.
    let relabel = json!({"metadata": {"labels": {"app": "elsewhere"}}});
    pods.patch("p1", &PatchParams::default(), &Patch::Merge(relabel)).await.expect("relabel");
    expect(&eps, &slices, &["10.244.0.13"], &["10.244.0.12"]).await;

    // p3 is deleted outright.
    pods.delete("p3", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await.expect("delete p3");
    expect(&eps, &slices, &[], &["10.244.0.12"]).await;

    // A new ready pod joins.
    make_pod(&pods, "p4", "web", "10.244.0.14", true).await;
    expect(&eps, &slices, &["10.244.0.14"], &["10.244.0.12"]).await;

    // p4 starts terminating (graceful delete; no kubelet finishes it): out of the Endpoints,
    // in the slice as terminating, still serving, not ready.
    pods.delete("p4", &DeleteParams::default()).await.expect("delete p4");
    let want = (Vec::new(), strs(&["10.244.0.12"]), vec![8080]);
    eventually("p4 terminating", secs(20), || async { endpoints_view(&eps, "web").await.filter(|v| *v == want) }).await;
    eventually("p4 terminating in slices", secs(20), || async {
        let lp = ListParams::default().labels("kubernetes.io/service-name=web");
        let list = slices.list(&lp).await.ok()?;
        let ep = list.items.iter().flat_map(|s| s.endpoints.iter()).find(|e| e.addresses[0] == "10.244.0.14")?;
        let c = ep.conditions.clone()?;
        (c.terminating == Some(true) && c.serving == Some(true) && c.ready == Some(false)).then_some(())
    })
    .await;

    // Updated in place all along, never replaced.
    let all = slices.list(&ListParams::default().labels("kubernetes.io/service-name=web")).await.expect("slices");
    assert_eq!(all.items.iter().map(|s| s.metadata.name.clone()).collect::<Vec<_>>(), vec![slice_name]);

    // The Service goes: so do its Endpoints.
    svcs.delete("web", &DeleteParams::default()).await.expect("delete service");
    eventually("endpoints deleted with the service", secs(20), || async {
        matches!(eps.get_opt("web").await, Ok(None)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectorless_service_endpoints_are_left_alone() {
    let server = start(&[controller_manager::endpoints::controller]).await;
    let c = server.client.clone();
    let svcs: Api<Service> = Api::namespaced(c.clone(), NS);
    let eps: Api<Endpoints> = Api::namespaced(c.clone(), NS);
    let svc: Service = obj(json!({"metadata": {"name": "ext"}, "spec": {"ports": [{"port": 80}]}}));
    svcs.create(&PostParams::default(), &svc).await.expect("create service");
    let ep: Endpoints = obj(json!({"metadata": {"name": "ext"},
        "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}]}));
    eps.create(&PostParams::default(), &ep).await.expect("create endpoints");
    // A Service with a selector, to know the controller has run past the selectorless one.
    let marker: Service =
        obj(json!({"metadata": {"name": "marker"}, "spec": {"selector": {"app": "m"}, "ports": [{"port": 80}]}}));
    svcs.create(&PostParams::default(), &marker).await.expect("create marker");
    eventually("marker endpoints", secs(20), || async { eps.get_opt("marker").await.ok().flatten() }).await;
    assert_eq!(endpoints_view(&eps, "ext").await, Some((strs(&["192.0.2.1"]), Vec::new(), vec![80])));
    // The API server's own Service is not touched either.
    let kubernetes = eps.get_opt("kubernetes").await.expect("get");
    let managed =
        |e: Endpoints| e.metadata.labels.unwrap_or_default().contains_key("endpoints.kubernetes.io/managed-by");
    assert!(!kubernetes.is_some_and(managed));
}
