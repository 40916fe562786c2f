//! Node lifecycle against a real API server: the test plays the kubelet (Lease and status
//! heartbeats) and stops and resumes them.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use support::{obj, opts, start_with};
use testkit::eventually;

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn node_status(ready: &str) -> serde_json::Value {
    let t = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    serde_json::json!({"status": {"conditions": [
        {"type": "Ready", "status": ready, "reason": "KubeletReady", "lastHeartbeatTime": t, "lastTransitionTime": t},
    ]}})
}

/// A status write that is never a no-op (the API server does not bump the resourceVersion of a
/// write that changes nothing): the Ready condition's message counts.
fn heartbeat(ready: &str, n: u64) -> serde_json::Value {
    let mut status = node_status(ready);
    status["status"]["conditions"][0]["message"] = format!("heartbeat {n}").into();
    status
}

fn pod(name: &str, tolerations: serde_json::Value) -> Pod {
    obj(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"nodeName": "n1", "tolerations": tolerations,
                 "containers": [{"name": "c", "image": "busybox:1.36"}]},
    }))
}

fn ready_of(node: &Node) -> Option<(String, Option<String>)> {
    let c = node.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")?;
    Some((c.status.clone(), c.reason.clone()))
}

fn taint_keys(node: &Node) -> Vec<String> {
    let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let mut keys: Vec<_> = taints.iter().map(|t| format!("{}:{}", t.key, t.effect)).collect();
    keys.sort();
    keys
}

fn pod_ready(p: &Pod) -> Option<String> {
    let conds = p.status.as_ref()?.conditions.as_ref()?;
    conds.iter().find(|c| c.type_ == "Ready").map(|c| c.status.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_node_is_tainted_its_pods_evicted_and_healed() {
    let mut o = opts();
    o.node_monitor_grace_period = Duration::from_secs(4);
    o.node_monitor_period = Duration::from_secs(1);
    let server = start_with(o, &[controller_manager::node_lifecycle::controller]).await;
    let client = server.client.clone();
    let pp = PostParams::default();
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces.get_opt("kube-node-lease").await.expect("get namespace").is_none() {
        let ns = obj(serde_json::json!({"metadata": {"name": "kube-node-lease"}}));
        namespaces.create(&pp, &ns).await.expect("create namespace");
    }

    // The "kubelet": registers n1, posts Ready, and renews its Lease every 500 ms while `alive`.
    nodes.create(&pp, &obj(serde_json::json!({"metadata": {"name": "n1"}}))).await.expect("create node");
    let ps = PatchParams::default();
    nodes.patch_status("n1", &ps, &Patch::Merge(node_status("True"))).await.expect("node status");
    let lease = serde_json::json!({"metadata": {"name": "n1"},
        "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": now()}});
    leases.create(&pp, &obj(lease)).await.expect("create lease");
    let alive = Arc::new(AtomicBool::new(true));
    let renewer = {
        let (alive, leases) = (alive.clone(), leases.clone());
        tokio::spawn(async move {
            loop {
                if alive.load(Ordering::SeqCst) {
                    let renew = serde_json::json!({"spec": {"renewTime": now()}});
                    let _ = leases.patch("n1", &PatchParams::default(), &Patch::Merge(renew)).await;
                }
                tokio::time::sleep(Duration::from_millis(500)).await; // the renew period
            }
        })
    };

    let unreachable = "node.kubernetes.io/unreachable";
    let short =
        serde_json::json!([{"key": unreachable, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}]);
    let forever = serde_json::json!([{"key": unreachable, "operator": "Exists", "effect": "NoExecute"}]);
    for (name, tol) in [("short", short), ("forever", forever), ("defaults", serde_json::json!([]))] {
        pods.create(&pp, &pod(name, tol)).await.expect("create pod");
        let status = serde_json::json!({"status": {"phase": "Running", "podIP": "10.244.0.5",
            "conditions": [{"type": "Ready", "status": "True"}]}});
        pods.patch_status(name, &ps, &Patch::Merge(status)).await.expect("pod status");
    }
    // The API server gives pods without their own the 300 s default tolerations.
    let defaults = pods.get("defaults").await.expect("get pod");
    let tols = defaults.spec.and_then(|s| s.tolerations).unwrap_or_default();
    assert!(tols.iter().any(|t| t.key.as_deref() == Some(unreachable) && t.toleration_seconds == Some(300)));

    // Heartbeats flowing for longer than the grace period: nothing happens. (Waiting out the
    // 4 s grace period is the behaviour under test.)
    tokio::time::sleep(Duration::from_secs(6)).await;
    let n = nodes.get("n1").await.expect("get node");
    assert_eq!(ready_of(&n).map(|r| r.0).as_deref(), Some("True"));
    assert!(taint_keys(&n).is_empty(), "{:?}", taint_keys(&n));

    // Heartbeats stop: Unknown and tainted within grace + period (plus slack).
    alive.store(false, Ordering::SeqCst);
    let stopped = std::time::Instant::now();
    let n = eventually("node Unknown and tainted", Duration::from_secs(12), || async {
        let n = nodes.get("n1").await.ok()?;
        let tainted = taint_keys(&n) == [format!("{unreachable}:NoExecute"), format!("{unreachable}:NoSchedule")];
        (ready_of(&n) == Some(("Unknown".into(), Some("NodeStatusUnknown".into()))) && tainted).then_some(n)
    })
    .await;
    assert!(stopped.elapsed() >= Duration::from_secs(3), "tainted too early: {:?}", stopped.elapsed());
    let ready =
        n.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    assert_eq!(ready.and_then(|c| c.message.as_deref()), Some("Kubelet stopped posting node status."));
    let added = n
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .and_then(|t| t.iter().find(|t| t.effect == "NoExecute"))
        .and_then(|t| t.time_added.clone())
        .expect("NoExecute taint has timeAdded")
        .0;

    // tolerationSeconds 2: deleted about 2 s after the taint, not before.
    eventually("the short-toleration pod evicted", Duration::from_secs(10), || async {
        let p = pods.get_opt("short").await.ok()?;
        p.is_none_or(|p| p.metadata.deletion_timestamp.is_some()).then_some(())
    })
    .await;
    let evicted_after = jiff::Timestamp::now().duration_since(added);
    assert!(evicted_after >= jiff::SignedDuration::from_millis(1900), "evicted too early: {evicted_after:?}");
    // The others stay (unbounded toleration; the 300 s default) but are marked not Ready.
    for name in ["forever", "defaults"] {
        let p = eventually("pod marked not Ready", Duration::from_secs(5), || async {
            let p = pods.get(name).await.ok()?;
            (pod_ready(&p).as_deref() == Some("False")).then_some(p)
        })
        .await;
        assert!(p.metadata.deletion_timestamp.is_none(), "{name} was evicted");
    }
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    let list = events.list(&Default::default()).await.expect("list events");
    let reasons: Vec<_> = list.items.iter().filter_map(|e| e.reason.clone()).collect();
    for want in ["NodeNotReady", "TaintManagerEviction"] {
        assert!(reasons.iter().any(|r| r == want), "no {want} event in {reasons:?}");
    }

    // The kubelet comes back (Lease renewed, Ready posted): the taints go.
    alive.store(true, Ordering::SeqCst);
    nodes.patch_status("n1", &ps, &Patch::Merge(node_status("True"))).await.expect("node status");
    eventually("taints removed", Duration::from_secs(10), || async {
        let n = nodes.get("n1").await.ok()?;
        taint_keys(&n).is_empty().then_some(())
    })
    .await;
    // And they stay off while heartbeats flow (a negative check over more than the grace period).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let n = nodes.get("n1").await.expect("get node");
    assert!(taint_keys(&n).is_empty(), "{:?}", taint_keys(&n));
    assert_eq!(ready_of(&n).map(|r| r.0).as_deref(), Some("True"));
    renewer.abort();
}

/// Taint writes do not fight heartbeats: while a "kubelet" rewrites the Node's status as fast as
/// it can (every write bumps the resourceVersion, so a resourceVersion precondition taken before
/// any of them would be stale), the controller's taint writes still land, without conflicts,
/// and a foreign taint added concurrently is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taint_writes_succeed_while_status_heartbeats_flow() {
    let mut o = opts();
    o.node_monitor_period = Duration::from_millis(200);
    let server = start_with(o, &[controller_manager::node_lifecycle::controller]).await;
    let client = server.client.clone();
    let pp = PostParams::default();
    let ps = PatchParams::default();
    let nodes: Api<Node> = Api::all(client.clone());
    nodes.create(&pp, &obj(serde_json::json!({"metadata": {"name": "n1"}}))).await.expect("create node");
    nodes.patch_status("n1", &ps, &Patch::Merge(node_status("True"))).await.expect("node status");

    // A whole-object resourceVersion precondition is invalidated by a status write.
    let read = nodes.get("n1").await.expect("get node");
    nodes.patch_status("n1", &ps, &Patch::Merge(heartbeat("True", 0))).await.expect("node status");
    let stale = serde_json::json!({"metadata": {"resourceVersion": read.metadata.resource_version},
        "spec": {"taints": [{"key": "probe", "effect": "NoSchedule"}]}});
    match nodes.patch("n1", &ps, &Patch::Merge(stale)).await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 409, "{e:?}"),
        other => panic!("a stale resourceVersion precondition was accepted: {other:?}"),
    }

    // The "kubelet" posts status back to back; `ready` says which Ready status to post.
    let ready = Arc::new(std::sync::Mutex::new("True"));
    let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let heartbeats = {
        let (nodes, ready, writes) = (nodes.clone(), ready.clone(), writes.clone());
        tokio::spawn(async move {
            for n in 1.. {
                let status = heartbeat(*ready.lock().unwrap(), n);
                if nodes.patch_status("n1", &PatchParams::default(), &Patch::Merge(status)).await.is_ok() {
                    writes.fetch_add(1, Ordering::SeqCst);
                }
                tokio::task::yield_now().await;
            }
        })
    };

    let not_ready = ["node.kubernetes.io/not-ready:NoExecute", "node.kubernetes.io/not-ready:NoSchedule"];
    for round in 0..3 {
        // Ready=False: the controller adds its taints.
        *ready.lock().unwrap() = "False";
        eventually("not-ready taints added", Duration::from_secs(10), || async {
            let n = nodes.get("n1").await.ok()?;
            let keys = taint_keys(&n);
            not_ready.iter().all(|k| keys.iter().any(|have| have == k)).then_some(())
        })
        .await;
        if round == 1 {
            // A user taints the node meanwhile (with the same test-and-replace discipline).
            let n = nodes.get("n1").await.expect("get node");
            let taints = n.spec.and_then(|s| s.taints).unwrap_or_default();
            let mut with_user = serde_json::to_value(&taints).unwrap();
            with_user.as_array_mut().unwrap().push(serde_json::json!({"key": "dedicated", "effect": "NoSchedule"}));
            let ops = serde_json::json!([
                {"op": "test", "path": "/spec/taints", "value": taints},
                {"op": "replace", "path": "/spec/taints", "value": with_user},
            ]);
            nodes.patch("n1", &ps, &Patch::Json::<()>(serde_json::from_value(ops).unwrap())).await.expect("user taint");
        }
        // Ready again: they go.
        *ready.lock().unwrap() = "True";
        eventually("not-ready taints removed", Duration::from_secs(10), || async {
            let n = nodes.get("n1").await.ok()?;
            let keys = taint_keys(&n);
            (!keys.iter().any(|k| not_ready.contains(&k.as_str()))).then_some(keys)
        })
        .await;
    }
    heartbeats.abort();
    let n = nodes.get("n1").await.expect("get node");
    assert_eq!(taint_keys(&n), ["dedicated:NoSchedule"], "the user's taint was lost");
    assert!(writes.load(Ordering::SeqCst) > 20, "too few heartbeats: {}", writes.load(Ordering::SeqCst));
    // No taint write failed on a conflict (nextest runs each test in its own process).
    assert_eq!(controller_manager::node_lifecycle::taint_write_conflicts(), 0);
}
