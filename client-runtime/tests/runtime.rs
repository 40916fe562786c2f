//! The shared runtime against a real API server: typed changes (adds, updates with the previous
//! state, deletions), field-selected informers, the one cache-sync signal, and leader election.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use client_runtime::leader::{Config, Elector};
use client_runtime::{Change, Informers, Selection};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use tokio_util::sync::CancellationToken;

fn obj<K: serde::de::DeserializeOwned>(v: serde_json::Value) -> K {
    serde_json::from_value(v).expect("test object")
}

async fn next<K: Clone>(s: &mut (impl Stream<Item = Change<K>> + Unpin)) -> Change<K> {
    tokio::time::timeout(Duration::from_secs(10), s.next()).await.expect("a change within 10 s").expect("stream open")
}

fn name<K: kube::Resource>(c: &Change<K>) -> String {
    c.object().meta().name.clone().unwrap_or_default()
}

#[tokio::test]
async fn subscribers_see_adds_updates_with_previous_state_and_deletions() {
    testkit::init_tracing("warn");
    let server = testkit::ApiServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
    cms.create(&PostParams::default(), &obj(serde_json::json!({"metadata": {"name": "before"}, "data": {"v": "0"}})))
        .await
        .expect("create");

    let stop = CancellationToken::new();
    let mut inf = Informers::new();
    let mut first = inf.subscribe::<ConfigMap>();
    let mut second = inf.subscribe::<ConfigMap>();
    let store = inf.store::<ConfigMap>();
    let synced = inf.synced();
    assert!(!synced.is_synced());
    inf.start(&server.client, &stop);
    tokio::time::timeout(Duration::from_secs(10), synced.clone().wait()).await.expect("synced");
    assert!(synced.is_synced());

    // The first list arrives as adds, once it is complete (the cache already holds it).
    for s in [&mut first, &mut second] {
        let c = next(s).await;
        assert!(c.is_added() && name(&c) == "before", "{c:?}");
    }
    assert!(store.state().iter().any(|c| c.metadata.name.as_deref() == Some("before")));

    cms.create(&PostParams::default(), &obj(serde_json::json!({"metadata": {"name": "new"}, "data": {"v": "1"}})))
        .await
        .expect("create");
    let mut cm = cms.get("new").await.expect("get");
    cm.data = Some([("v".to_string(), "2".to_string())].into());
    cms.replace("new", &PostParams::default(), &cm).await.expect("update");
    cms.delete("new", &DeleteParams::default()).await.expect("delete");

    for s in [&mut first, &mut second] {
        let added = next(s).await;
        assert!(added.is_added() && name(&added) == "new", "{added:?}");
        match next(s).await {
            Change::Applied { object, previous: Some(previous) } => {
                assert_eq!(object.data.as_ref().and_then(|d| d.get("v")).map(String::as_str), Some("2"));
                assert_eq!(previous.data.as_ref().and_then(|d| d.get("v")).map(String::as_str), Some("1"));
            }
            other => panic!("expected an update with the previous state, got {other:?}"),
        }
        let deleted = next(s).await;
        assert!(deleted.is_deleted() && name(&deleted) == "new", "{deleted:?}");
    }
    assert!(store.state().iter().all(|c| c.metadata.name.as_deref() != Some("new")));
    stop.cancel();
}

#[tokio::test]
async fn field_selected_informers_see_only_their_objects_and_transitions_as_deletions() {
    testkit::init_tracing("warn");
    let server = testkit::ApiServer::start().await;
    let pods: Api<Pod> = Api::namespaced(server.client.clone(), "default");
    let pod = |name: &str, node: &str| -> Pod {
        obj(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
        }))
    };
    let stop = CancellationToken::new();
    let mut inf = Informers::new();
    let mut mine = inf.subscribe_selected::<Pod>(&Selection::fields("spec.nodeName=node-a"));
    let store = inf.store_selected::<Pod>(&Selection::fields("spec.nodeName=node-a"));
    inf.start(&server.client, &stop);
    inf.synced().wait().await;

    pods.create(&PostParams::default(), &pod("elsewhere", "node-b")).await.expect("create");
    pods.create(&PostParams::default(), &pod("here", "node-a")).await.expect("create");
    let c = next(&mut mine).await;
    assert!(c.is_added() && name(&c) == "here", "only node-a's pod is delivered: {c:?}");
    pods.delete("here", &DeleteParams::default().grace_period(0)).await.expect("delete");
    let c = next(&mut mine).await;
    assert!(c.is_deleted() && name(&c) == "here", "{c:?}");
    assert!(store.state().is_empty(), "node-b's pod is never cached here");
    stop.cancel();
}

fn quick(identity: &str) -> Config {
    Config {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1500),
        retry_period: Duration::from_millis(200),
        ..Config::new("default", "skiff-test", identity)
    }
}

#[tokio::test]
async fn exactly_one_candidate_leads_and_another_takes_over_when_it_stops() {
    testkit::init_tracing("warn");
    let server = testkit::ApiServer::start().await;
    let leading = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut stops = Vec::new();
    let mut runs = Vec::new();
    for id in ["a", "b"] {
        let stop = CancellationToken::new();
        stops.push(stop.clone());
        let elector = Elector::new(server.client.clone(), quick(id));
        let (leading, max_seen, tx) = (leading.clone(), max_seen.clone(), tx.clone());
        runs.push(tokio::spawn(elector.run(stop, move |token| async move {
            let now = leading.fetch_add(1, Ordering::SeqCst) + 1;
            max_seen.fetch_max(now, Ordering::SeqCst);
            let _ = tx.send(id.to_string());
            token.cancelled().await;
            leading.fetch_sub(1, Ordering::SeqCst);
        })));
    }
    let first = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("a leader").expect("open");
    // The other candidate keeps waiting while the leader renews.
    assert!(tokio::time::timeout(Duration::from_secs(4), rx.recv()).await.is_err(), "a second leader appeared");
    let idx = if first == "a" { 0 } else { 1 };
    stops[idx].cancel();
    let second = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("a successor").expect("open");
    assert_ne!(first, second);
    assert_eq!(max_seen.load(Ordering::SeqCst), 1, "two candidates led at once");
    for s in stops {
        s.cancel();
    }
    for r in runs {
        let _ = r.await;
    }
}
