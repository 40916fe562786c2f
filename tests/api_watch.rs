//! Watch semantics: bookmarks only on request, `timeoutSeconds` and the server-side watch
//! timeout, label-selector transitions, exactly-once ordered delivery under concurrent writers,
//! 410 beyond the history window, and list-then-watch without duplicates.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{configmap, rv_of, summarize_events, Server};
use serde_json::{json, Value};

const CMS: &str = "/api/v1/namespaces/default/configmaps";

fn name_of(e: &Value) -> &str {
    e["object"]["metadata"]["name"].as_str().unwrap_or("")
}

#[test]
fn no_bookmarks_unless_asked() {
    let server = Server::start();
    let api = server.api();
    let rv = rv_of(&api.get_json(CMS));

    // Without the parameter, and with allowWatchBookmarks=false spelled out.
    let base = format!("{CMS}?watch=true&labelSelector=t&resourceVersion={rv}&timeoutSeconds=3");
    let mut plain = api.watch(&base, Duration::from_secs(30));
    let mut off = api.watch(&format!("{base}&allowWatchBookmarks=false"), Duration::from_secs(30));
    for i in 0..3 {
        api.create(CMS, &configmap(&format!("c{i}"), json!({"t": "w"}), json!({})));
    }
    for w in [&mut plain, &mut off] {
        w.wait_end(Duration::from_secs(10));
        let types: Vec<&str> = w.events.iter().map(|e| e["type"].as_str().unwrap_or("?")).collect();
        assert_eq!(types, vec!["ADDED"; 3], "{}: events:\n{}", w.path, summarize_events(&w.events));
    }
}

/// Upstream's cacher sends a bookmark to a watcher that asked for them 2 s before its timeout
/// (cache_watcher.go nextBookmarkTime), so a client resuming after the timeout has a fresh RV.
#[test]
fn bookmark_before_the_watch_timeout_when_asked() {
    let server = Server::start();
    let api = server.api();
    let c = api.create(CMS, &configmap("c", json!({}), json!({})));
    let rv = rv_of(&c);

    let mut w = api.watch(
        &format!("{CMS}?watch=true&resourceVersion={rv}&timeoutSeconds=4&allowWatchBookmarks=true"),
        Duration::from_secs(30),
    );
    w.wait_end(Duration::from_secs(10));
    let b = w.events.iter().find(|e| e["type"] == "BOOKMARK").unwrap_or_else(|| {
        panic!(
            "no BOOKMARK before the 4 s timeout with allowWatchBookmarks=true; events:\n{}",
            summarize_events(&w.events)
        )
    });
    assert_eq!(b["object"]["kind"], "ConfigMap", "a bookmark carries an object of the watched kind: {b}");
    assert!(rv_of(&b["object"]) >= rv, "{b}");
}

#[test]
fn timeout_seconds_ends_the_stream() {
    let server = Server::start();
    let api = server.api();
    let mut w = api.watch(&format!("{CMS}?watch=true&timeoutSeconds=1"), Duration::from_secs(30));
    let took = w.wait_end(Duration::from_secs(10));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(3000),
        "timeoutSeconds=1 ended the stream after {took:?}"
    );
    assert!(w.ended.as_ref().unwrap().1.is_none(), "ended cleanly: {:?}", w.ended);
}

#[test]
fn server_ends_watches_after_min_request_timeout() {
    let server = Server::start_with(&["--min-request-timeout", "2"]);
    let api = server.api();
    let mut w = api.watch(&format!("{CMS}?watch=true"), Duration::from_secs(60));
    let took = w.wait_end(Duration::from_secs(20));
    // Upstream picks a random duration in [N, 2N).
    assert!(
        took >= Duration::from_millis(1900) && took <= Duration::from_millis(4500),
        "--min-request-timeout 2 ended the watch after {took:?}, expected within 2-4 s"
    );
    assert!(w.ended.as_ref().unwrap().1.is_none(), "ended cleanly: {:?}", w.ended);
}

#[test]
fn label_selector_sees_objects_enter_and_leave() {
    let server = Server::start();
    let api = server.api();
    let c = api.create(CMS, &configmap("moving", json!({"tier": "back"}), json!({})));
    api.create(CMS, &configmap("other", json!({"tier": "back"}), json!({})));

    let mut w = api.watch(
        &format!("{CMS}?watch=true&labelSelector=tier%3Dfront&resourceVersion={}", rv_of(&c)),
        Duration::from_secs(60),
    );
    let path = format!("{CMS}/moving");
    let mp = "application/merge-patch+json";
    let p1 = api.patch(&path, mp, &json!({"metadata": {"labels": {"tier": "front"}}})).expect(200).json();
    let e = w.wait_for("ADDED moving", Duration::from_secs(10), |e| name_of(e) == "moving");
    assert_eq!(e["type"], "ADDED", "starting to match is ADDED: {e}");
    assert_eq!(e["object"]["metadata"]["resourceVersion"], p1["metadata"]["resourceVersion"]);

    let p2 = api.patch(&path, mp, &json!({"data": {"k": "v"}})).expect(200).json();
    let e = w.wait_for("MODIFIED moving", Duration::from_secs(10), |e| name_of(e) == "moving");
    assert_eq!(e["type"], "MODIFIED", "{e}");
    assert_eq!(e["object"]["metadata"]["resourceVersion"], p2["metadata"]["resourceVersion"]);

    let p3 = api.patch(&path, mp, &json!({"metadata": {"labels": {"tier": "back"}}})).expect(200).json();
    let e = w.wait_for("DELETED moving", Duration::from_secs(10), |e| name_of(e) == "moving");
    assert_eq!(e["type"], "DELETED", "no longer matching is DELETED: {e}");
    assert_eq!(
        e["object"]["metadata"]["resourceVersion"], p3["metadata"]["resourceVersion"],
        "the DELETED event carries the RV of the change: {e}"
    );

    // Changes to objects that never match are not seen; a marker that matches is.
    api.patch(&format!("{CMS}/other"), mp, &json!({"data": {"x": "1"}})).expect(200);
    api.create(CMS, &configmap("marker", json!({"tier": "front"}), json!({})));
    w.wait_for("ADDED marker", Duration::from_secs(10), |e| name_of(e) == "marker");
    let names: Vec<&str> = w.events.iter().map(name_of).collect();
    assert_eq!(names, ["moving", "moving", "moving", "marker"], "events:\n{}", summarize_events(&w.events));
}

#[test]
fn every_event_once_and_in_order_under_concurrent_writers() {
    const WRITERS: usize = 4;
    const UPDATES: usize = 50;
    let server = Server::start();
    let api = server.api();
    let mut start_rv = 0;
    for wtr in 0..WRITERS {
        let c = api.create(CMS, &configmap(&format!("w{wtr}"), json!({"conc": "yes"}), json!({"n": "0"})));
        start_rv = start_rv.max(rv_of(&c));
    }
    let mut w =
        api.watch(&format!("{CMS}?watch=true&labelSelector=conc&resourceVersion={start_rv}"), Duration::from_secs(120));

    let handles: Vec<_> = (0..WRITERS)
        .map(|wtr| {
            let api = api.clone();
            std::thread::spawn(move || {
                let mut rvs = Vec::new();
                for n in 1..=UPDATES {
                    let r = api
                        .patch(
                            &format!("{CMS}/w{wtr}"),
                            "application/merge-patch+json",
                            &json!({"data": {"n": n.to_string()}}),
                        )
                        .expect(200)
                        .json();
                    rvs.push(rv_of(&r));
                }
                rvs
            })
        })
        .collect();
    let mut acked: Vec<u64> = handles.into_iter().flat_map(|h| h.join().expect("writer thread")).collect();
    acked.sort_unstable();

    let total = WRITERS * UPDATES;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while w.events.len() < total && std::time::Instant::now() < deadline {
        if w.next_event(Duration::from_secs(5)).is_none() && w.ended.is_some() {
            break;
        }
    }
    // Anything extra (a duplicate) would arrive right behind.
    w.drain_for(Duration::from_millis(300));
    let got: Vec<u64> = w.events.iter().map(|e| rv_of(&e["object"])).collect();
    assert_eq!(
        w.events.len(),
        total,
        "expected {total} MODIFIED events, got {} (ended: {:?})\n{}",
        w.events.len(),
        w.ended,
        summarize_events(&w.events)
    );
    assert!(w.events.iter().all(|e| e["type"] == "MODIFIED"), "{}", summarize_events(&w.events));
    assert!(got.windows(2).all(|p| p[0] < p[1]), "events not in strictly increasing RV order: {got:?}");
    assert_eq!(got, acked, "the watch delivers exactly the acknowledged writes");
    // Per object, the values arrive in the order they were written.
    let mut per: HashMap<String, Vec<u64>> = HashMap::new();
    for e in &w.events {
        per.entry(name_of(e).to_string())
            .or_default()
            .push(e["object"]["data"]["n"].as_str().unwrap().parse().unwrap());
    }
    for (name, ns) in per {
        assert_eq!(ns, (1..=UPDATES as u64).collect::<Vec<_>>(), "{name}");
    }
}

#[test]
fn watch_from_expired_resource_version_is_410() {
    let server = Server::start_with(&["--watch-history-seconds", "1"]);
    let api = server.api();
    let old = rv_of(&api.get_json(CMS));
    for i in 0..5 {
        api.create(CMS, &configmap(&format!("c{i}"), json!({"t": "w"}), json!({})));
    }
    // Let the events age beyond the 1 s history window.
    std::thread::sleep(Duration::from_secs(2));

    let mut w = api.watch(&format!("{CMS}?watch=true&resourceVersion={old}"), Duration::from_secs(30));
    let took = w.wait_end(Duration::from_secs(10));
    assert!(took < Duration::from_secs(5), "the stream ends after the error ({took:?})");
    assert_eq!(w.events.len(), 1, "exactly one event:\n{}", summarize_events(&w.events));
    let e = &w.events[0];
    assert_eq!(e["type"], "ERROR", "{e}");
    assert_eq!(e["object"]["kind"], "Status", "{e}");
    assert_eq!(e["object"]["code"], 410, "{e}");
    let reason = e["object"]["reason"].as_str().unwrap_or_default();
    assert!(reason == "Expired" || reason == "Gone", "reason: {e}");

    // A fresh list RV can be watched.
    let rv = rv_of(&api.get_json(CMS));
    let mut w = api.watch(&format!("{CMS}?watch=true&resourceVersion={rv}"), Duration::from_secs(30));
    api.create(CMS, &configmap("fresh", json!({}), json!({})));
    let e = w.wait_for("ADDED fresh", Duration::from_secs(10), |e| name_of(e) == "fresh");
    assert_eq!(e["type"], "ADDED");
}

#[test]
fn watch_from_list_rv_has_no_duplicates() {
    let server = Server::start();
    let api = server.api();
    for i in 0..5 {
        api.create(CMS, &configmap(&format!("pre{i}"), json!({"t": "w"}), json!({})));
    }
    let list = api.get_json(&format!("{CMS}?labelSelector=t"));
    let rv = rv_of(&list);
    assert_eq!(list["items"].as_array().unwrap().len(), 5);
    assert!(list["items"].as_array().unwrap().iter().all(|i| rv_of(i) <= rv), "list RV covers its items");

    let mut w = api.watch(&format!("{CMS}?watch=true&resourceVersion={rv}"), Duration::from_secs(60));
    api.patch(&format!("{CMS}/pre0"), "application/merge-patch+json", &json!({"data": {"a": "b"}})).expect(200);
    api.create(CMS, &configmap("post", json!({"t": "w"}), json!({})));
    w.wait_for("ADDED post", Duration::from_secs(10), |e| name_of(e) == "post");
    w.drain_for(Duration::from_millis(300));
    let seen: Vec<(String, String)> =
        w.events.iter().map(|e| (e["type"].as_str().unwrap().to_string(), name_of(e).to_string())).collect();
    assert_eq!(
        seen,
        [("MODIFIED".to_string(), "pre0".to_string()), ("ADDED".to_string(), "post".to_string())],
        "only changes after the list's RV:\n{}",
        summarize_events(&w.events)
    );

    // resourceVersion=0 (or none) starts with the current state as ADDED events.
    let mut w0 = api.watch(&format!("{CMS}?watch=true&labelSelector=t&timeoutSeconds=1"), Duration::from_secs(30));
    w0.wait_end(Duration::from_secs(10));
    let mut names: Vec<&str> = w0.events.iter().map(name_of).collect();
    names.sort_unstable();
    assert_eq!(names, ["post", "pre0", "pre1", "pre2", "pre3", "pre4"], "{}", summarize_events(&w0.events));
    assert!(w0.events.iter().all(|e| e["type"] == "ADDED"));
}
