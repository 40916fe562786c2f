//! Hardening of the read paths (GET, LIST, WATCH) against hostile or mistaken parameters:
//! a resourceVersion the server has not reached (wait up to 3 s, then upstream's 504
//! "Too large resource version"), forged `continue` tokens, upstream's ListOptions validation,
//! and client numbers that used to overflow (timeoutSeconds near 2^64). Every test checks the
//! status code and the Status body, and that the server still serves a normal client after.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{configmap, rv_of, summarize_events, Api, Server};
use serde_json::{json, Value};

const CMS: &str = "/api/v1/namespaces/default/configmaps";

fn name_of(e: &Value) -> &str {
    e["object"]["metadata"]["name"].as_str().unwrap_or("")
}

/// The cluster's current resourceVersion (a LIST's).
fn current_rv(api: &Api) -> u64 {
    rv_of(&api.get_json(CMS))
}

/// The server still answers a plain client: a create, a GET of it and a LIST that contains it.
#[track_caller]
fn still_serves(server: &Server, name: &str) {
    let api = server.api();
    let created = api.create(CMS, &configmap(name, json!({}), json!({"k": "v"})));
    let got = api.get_json(&format!("{CMS}/{name}"));
    assert_eq!(got["metadata"]["uid"], created["metadata"]["uid"]);
    let list = api.get_json(CMS);
    assert!(list["items"].as_array().unwrap().iter().any(|i| i["metadata"]["name"] == name), "{list}");
    let log = std::fs::read_to_string(server.log()).unwrap_or_default();
    assert!(!log.contains("panicked"), "the server log shows a panic:\n{}", server.log_tail(40));
}

/// Upstream's NewTooLargeResourceVersionError (storage/errors.go) as a Status.
#[track_caller]
fn assert_too_large(status: &Value, requested: u64) {
    assert_eq!(status["kind"], "Status", "{status}");
    assert_eq!(status["status"], "Failure", "{status}");
    assert_eq!(status["code"], 504, "{status}");
    assert_eq!(status["reason"], "Timeout", "{status}");
    let msg = status["message"].as_str().unwrap_or_default();
    let prefix = format!("Timeout: Too large resource version: {requested}, current: ");
    assert!(msg.starts_with(&prefix), "message {msg:?} does not start with {prefix:?}");
    let current: u64 = msg[prefix.len()..].parse().unwrap_or_else(|_| panic!("current revision in {msg:?}"));
    assert!(current < requested, "{status}");
    assert_eq!(
        status["details"]["causes"],
        json!([{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]),
        "{status}"
    );
    assert_eq!(status["details"]["retryAfterSeconds"], 1, "{status}");
}

/// A GET with the raw response, for headers.
fn raw_get(api: &Api, path: &str) -> (u16, Option<String>, Value, Duration) {
    let t0 = Instant::now();
    let resp = api.request("GET", path).send().unwrap_or_else(|e| panic!("GET {path}: {e:?}"));
    let took = t0.elapsed();
    let code = resp.status().as_u16();
    let retry = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(ct.starts_with("application/json"), "GET {path}: content type {ct:?}");
    let body: Value = resp.json().unwrap_or_else(|e| panic!("GET {path}: body is not JSON: {e}"));
    (code, retry, body, took)
}

#[test]
fn watch_from_a_future_resource_version_ends_with_a_too_large_error() {
    let server = Server::start();
    let api = server.api();
    let future = current_rv(&api) + 1000;

    let mut w =
        api.watch(&format!("{CMS}?watch=true&resourceVersion={future}&timeoutSeconds=60"), Duration::from_secs(30));
    assert_eq!(w.status, 200, "a watch keeps HTTP 200 and reports the error as an event");
    let took = w.wait_end(Duration::from_secs(15));
    assert!(
        took >= Duration::from_millis(2800) && took < Duration::from_secs(10),
        "the server waits about 3 s for the cache before giving up; the stream ended after {took:?}"
    );
    assert_eq!(w.events.len(), 1, "exactly one ERROR event:\n{}", summarize_events(&w.events));
    assert_eq!(w.events[0]["type"], "ERROR", "{}", w.events[0]);
    assert_too_large(&w.events[0]["object"], future);
    assert!(w.ended.as_ref().unwrap().1.is_none(), "ended cleanly: {:?}", w.ended);

    // The same with sendInitialEvents (upstream's waitUntilFreshAndBlock path).
    let mut w = api.watch(
        &format!(
            "{CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion={future}&timeoutSeconds=60"
        ),
        Duration::from_secs(30),
    );
    w.wait_end(Duration::from_secs(15));
    assert_eq!(w.events.len(), 1, "{}", summarize_events(&w.events));
    assert_eq!(w.events[0]["type"], "ERROR");
    assert_too_large(&w.events[0]["object"], future);
    still_serves(&server, "after");
}

#[test]
fn watch_from_the_next_resource_version_waits_for_it() {
    let server = Server::start();
    let api = server.api();
    let next = current_rv(&api) + 1;

    // `watch` returns once the response headers arrived: the server has taken the watch and is
    // waiting for revision `next` (the handler answers 200 at once and waits inside the stream).
    let mut w =
        api.watch(&format!("{CMS}?watch=true&resourceVersion={next}&timeoutSeconds=30"), Duration::from_secs(60));
    // Within the 3 s window: the first write reaches the requested revision (and, being at it
    // rather than after it, is not part of the watch), the second comes after it.
    let a = api.create(CMS, &configmap("at-rv", json!({}), json!({})));
    assert_eq!(rv_of(&a), next, "nothing else writes on this server");
    let b = api.create(CMS, &configmap("after-rv", json!({}), json!({})));
    let e = w.wait_for("ADDED after-rv", Duration::from_secs(10), |e| name_of(e) == "after-rv");
    assert_eq!(e["type"], "ADDED", "{e}");
    assert_eq!(e["object"]["metadata"]["resourceVersion"], b["metadata"]["resourceVersion"]);
    // Past the 3 s window the watch is still open and delivering (waiting the window out is the
    // behaviour under test).
    std::thread::sleep(Duration::from_secs(3));
    api.create(CMS, &configmap("later", json!({}), json!({})));
    w.wait_for("ADDED later", Duration::from_secs(10), |e| name_of(e) == "later");
    let names: Vec<&str> = w.events.iter().map(name_of).collect();
    assert_eq!(names, ["after-rv", "later"], "events:\n{}", summarize_events(&w.events));
    assert!(w.events.iter().all(|e| e["type"] != "ERROR"));
    still_serves(&server, "after");
}

#[test]
fn get_and_list_at_a_future_resource_version_are_504() {
    let server = Server::start();
    let api = server.api();
    api.create(CMS, &configmap("x", json!({}), json!({})));
    let future = current_rv(&api) + 1000;

    for path in [
        format!("{CMS}/x?resourceVersion={future}"),
        format!("{CMS}?resourceVersion={future}"),
        format!("{CMS}?resourceVersion={future}&resourceVersionMatch=NotOlderThan"),
        format!("{CMS}?resourceVersion={future}&resourceVersionMatch=Exact"),
        format!("{CMS}?resourceVersion={future}&limit=1"),
    ] {
        let (code, retry, status, took) = raw_get(&api, &path);
        assert_eq!(code, 504, "{path}: {status}");
        assert_too_large(&status, future);
        assert_eq!(retry.as_deref(), Some("1"), "{path}: Retry-After");
        assert!(took >= Duration::from_millis(2800), "{path}: answered after {took:?}, without waiting");
    }
    still_serves(&server, "after");
}

#[test]
fn list_at_the_next_resource_version_waits_for_a_write() {
    let server = Server::start();
    let api = server.api();
    let next = current_rv(&api) + 1;
    let writer = {
        let api = api.clone();
        std::thread::spawn(move || {
            // Late on purpose: the LISTs below must wait for this write (within their 3 s).
            std::thread::sleep(Duration::from_millis(700));
            api.create(CMS, &configmap("late", json!({}), json!({})))
        })
    };
    for path in [format!("{CMS}?resourceVersion={next}"), format!("{CMS}/late?resourceVersion={next}")] {
        let (code, _, body, _) = raw_get(&api, &path);
        assert_eq!(code, 200, "{path}: {body}");
        assert!(rv_of(&body) >= next, "{path}: {body}");
    }
    let created = writer.join().expect("writer");
    let list = api.get_json(&format!("{CMS}?resourceVersion={}&resourceVersionMatch=Exact", rv_of(&created)));
    assert_eq!(rv_of(&list), rv_of(&created));
    assert_eq!(list["items"][0]["metadata"]["name"], "late");
    still_serves(&server, "after");
}

#[test]
fn exact_list_reads_the_snapshot_and_expires_with_history() {
    let server = Server::start_with(&["--watch-history-seconds", "2"]);
    let api = server.api();
    let a = api.create(CMS, &configmap("a", json!({}), json!({})));
    api.create(CMS, &configmap("b", json!({}), json!({})));
    for path in [
        format!("{CMS}?resourceVersion={}&resourceVersionMatch=Exact", rv_of(&a)),
        // A paged LIST with a resourceVersion and no match is an exact read upstream (legacy).
        format!("{CMS}?resourceVersion={}&limit=10", rv_of(&a)),
    ] {
        let list = api.get_json(&path);
        assert_eq!(rv_of(&list), rv_of(&a), "{path}: {list}");
        let names: Vec<&str> =
            list["items"].as_array().unwrap().iter().filter_map(|i| i["metadata"]["name"].as_str()).collect();
        assert_eq!(names, ["a"], "{path}: the list as it was at {}", rv_of(&a));
    }
    // NotOlderThan serves the current state.
    let list = api.get_json(&format!("{CMS}?resourceVersion={}&resourceVersionMatch=NotOlderThan", rv_of(&a)));
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");

    // Let `a` age out of the 2 s history (the expiry is the behaviour under test).
    std::thread::sleep(Duration::from_secs(3));
    api.create(CMS, &configmap("c", json!({}), json!({})));
    let st = api
        .get(&format!("{CMS}?resourceVersion={}&resourceVersionMatch=Exact", rv_of(&a)))
        .expect_status(410, "Expired");
    assert_eq!(st["message"], "The resourceVersion for the provided list is too old.");
    still_serves(&server, "after");
}

fn encode_token(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[test]
fn forged_continue_tokens_are_rejected() {
    let server = Server::start();
    let api = server.api();
    for i in 0..3 {
        api.create(CMS, &configmap(&format!("p{i}"), json!({}), json!({})));
    }
    let page = api.get_json(&format!("{CMS}?limit=1"));
    let token = page["metadata"]["continue"].as_str().expect("a continue token").to_string();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&token).expect("the token is base64url");
    let decoded: Value = serde_json::from_slice(&raw).expect("the token is JSON");
    let current = current_rv(&api);

    let mut forged = decoded.clone();
    forged["rv"] = json!(current + 1_000_000);
    let st = api.get(&format!("{CMS}?limit=1&continue={}", encode_token(&forged))).expect_status(400, "BadRequest");
    let msg = st["message"].as_str().unwrap();
    assert!(msg.starts_with("continue key is not valid"), "{st}");
    assert!(msg.contains(&(current + 1_000_000).to_string()), "{st}");

    for rv in [json!(0), json!(-1), json!(u64::MAX), json!(1e300), json!("5")] {
        let mut forged = decoded.clone();
        forged["rv"] = rv.clone();
        let st = api.get(&format!("{CMS}?limit=1&continue={}", encode_token(&forged))).expect_status(400, "BadRequest");
        assert!(st["message"].as_str().unwrap().starts_with("continue key is not valid"), "rv {rv}: {st}");
    }
    // Upstream: a continue token with a resourceVersion other than "0" is a 400.
    let st =
        api.get(&format!("{CMS}?limit=1&continue={token}&resourceVersion={current}")).expect_status(400, "BadRequest");
    assert_eq!(st["message"], "specifying resource version is not allowed when using continue");

    // The genuine token still works, at the first page's revision.
    let next = api.get_json(&format!("{CMS}?limit=1&continue={token}"));
    assert_eq!(next["metadata"]["resourceVersion"], page["metadata"]["resourceVersion"]);
    assert_eq!(next["items"].as_array().unwrap().len(), 1);
    still_serves(&server, "after");
}

#[test]
fn bad_resource_versions_are_400() {
    let server = Server::start();
    let api = server.api();
    api.create(CMS, &configmap("x", json!({}), json!({})));
    let cases = [
        ("abc", "invalid syntax"),
        ("-1", "invalid syntax"),
        ("+5", "invalid syntax"),
        ("1e3", "invalid syntax"),
        ("99999999999999999999", "value out of range"),
    ];
    for (rv, why) in cases {
        let q = rv.replace('+', "%2B");
        let expect = format!(
            "invalid resource version: resourceVersion: Invalid value: {rv:?}: strconv.ParseUint: parsing {rv:?}: {why}"
        );
        for path in [
            format!("{CMS}?resourceVersion={q}"),
            format!("{CMS}/x?resourceVersion={q}"),
            format!("{CMS}?resourceVersion={q}&resourceVersionMatch=NotOlderThan"),
            format!("{CMS}?watch=true&resourceVersion={q}"),
        ] {
            let st = api.get(&path).expect_status(400, "BadRequest");
            assert_eq!(st["message"], expect.as_str(), "{path}");
        }
    }
    still_serves(&server, "after");
}

/// Upstream's ValidateListOptions: 422 on `ListOptions.meta.k8s.io`.
#[test]
fn list_options_are_validated_as_upstream() {
    let server = Server::start();
    let api = server.api();
    let rv = current_rv(&api);
    let not_supported =
        r#"resourceVersionMatch: Unsupported value: "Garbage": supported values: "Exact", "NotOlderThan", """#;
    // (path, the causes as (reason, field), the message)
    type Case = (String, Vec<(&'static str, &'static str)>, String);
    let cases: Vec<Case> = vec![
        (
            format!("{CMS}?resourceVersion={rv}&resourceVersionMatch=Garbage"),
            vec![("FieldValueNotSupported", "resourceVersionMatch")],
            format!("ListOptions.meta.k8s.io \"\" is invalid: {not_supported}"),
        ),
        (
            format!("{CMS}?resourceVersionMatch=NotOlderThan"),
            vec![("FieldValueForbidden", "resourceVersionMatch")],
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided".into(),
        ),
        (
            format!("{CMS}?resourceVersion=0&resourceVersionMatch=Exact"),
            vec![("FieldValueForbidden", "resourceVersionMatch")],
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"".into(),
        ),
        (
            format!("{CMS}?resourceVersionMatch=Garbage"),
            vec![("FieldValueForbidden", "resourceVersionMatch"), ("FieldValueNotSupported", "resourceVersionMatch")],
            format!("ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided, {not_supported}]"),
        ),
        (
            format!("{CMS}?resourceVersion={rv}&resourceVersionMatch=Exact&continue=abc"),
            vec![("FieldValueForbidden", "resourceVersionMatch")],
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided".into(),
        ),
        (
            format!("{CMS}?sendInitialEvents=true"),
            vec![("FieldValueForbidden", "sendInitialEvents")],
            "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list".into(),
        ),
        (
            format!("{CMS}?watch=true&resourceVersion={rv}&resourceVersionMatch=NotOlderThan"),
            vec![("FieldValueForbidden", "resourceVersionMatch")],
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided".into(),
        ),
        (
            format!("{CMS}?watch=true&sendInitialEvents=true"),
            vec![("FieldValueForbidden", "resourceVersionMatch")],
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
        ),
        (
            format!("{CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=Exact"),
            vec![("FieldValueForbidden", "resourceVersionMatch"), ("FieldValueNotSupported", "resourceVersionMatch")],
            "ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan, resourceVersionMatch: Unsupported value: \"Exact\": supported values: \"NotOlderThan\"]".into(),
        ),
    ];
    for (path, causes, message) in cases {
        let st = api.get(&path).expect_status(422, "Invalid");
        assert_eq!(st["message"], message.as_str(), "{path}");
        assert_eq!(st["details"]["group"], "meta.k8s.io", "{path}: {st}");
        assert_eq!(st["details"]["kind"], "ListOptions", "{path}: {st}");
        let got: Vec<(String, String)> = st["details"]["causes"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: no causes: {st}"))
            .iter()
            .map(|c| (c["reason"].as_str().unwrap_or("").to_string(), c["field"].as_str().unwrap_or("").to_string()))
            .collect();
        let want: Vec<(String, String)> = causes.iter().map(|(r, f)| (r.to_string(), f.to_string())).collect();
        assert_eq!(got, want, "{path}: {st}");
    }

    // Bad values of typed parameters are 400s; GET has no resourceVersionMatch (ignored).
    for path in [
        format!("{CMS}?limit=abc"),
        format!("{CMS}?watch=true&timeoutSeconds=-1"),
        format!("{CMS}?watch=true&timeoutSeconds=18446744073709551616"),
        format!("{CMS}?watch=true&sendInitialEvents=maybe&resourceVersionMatch=NotOlderThan"),
        format!("{CMS}?watch=true&allowWatchBookmarks=yes"),
    ] {
        api.get(&path).expect_status(400, "BadRequest");
    }
    api.create(CMS, &configmap("x", json!({}), json!({})));
    api.get(&format!("{CMS}/x?resourceVersionMatch=Garbage")).expect(200);
    // Valid combinations, and a negative limit is no limit (upstream).
    for path in [
        format!("{CMS}?resourceVersion=0&resourceVersionMatch=NotOlderThan"),
        format!("{CMS}?resourceVersion={rv}&resourceVersionMatch=NotOlderThan"),
        format!("{CMS}?resourceVersion={rv}&resourceVersionMatch=Exact"),
        format!("{CMS}?limit=-5"),
    ] {
        let list = api.get(&path).expect(200).json();
        assert_eq!(list["kind"], "ConfigMapList", "{path}: {list}");
    }
    still_serves(&server, "after");
}

#[test]
fn huge_timeout_seconds_give_a_working_watch() {
    let server = Server::start();
    let api = server.api();
    // 2^64-1, 2^63-1, and 0 (the server's default applies, as upstream).
    for (i, t) in ["18446744073709551615", "9223372036854775807", "0"].into_iter().enumerate() {
        let rv = current_rv(&api);
        let mut w = api.watch(
            &format!("{CMS}?watch=true&resourceVersion={rv}&timeoutSeconds={t}&allowWatchBookmarks=true"),
            Duration::from_secs(60),
        );
        let name = format!("t{i}");
        api.create(CMS, &configmap(&name, json!({}), json!({})));
        let e = w.wait_for(&format!("ADDED {name}"), Duration::from_secs(10), |e| name_of(e) == name);
        assert_eq!(e["type"], "ADDED", "timeoutSeconds={t}: {e}");
        // Still open: the stream did not end (or die) right after the event.
        w.drain_for(Duration::from_millis(500));
        assert!(w.ended.is_none(), "timeoutSeconds={t}: the stream ended: {:?}", w.ended);
    }
    still_serves(&server, "after");
}

#[test]
fn send_initial_events_streams_the_state_then_a_bookmark() {
    let server = Server::start();
    let api = server.api();
    api.create(CMS, &configmap("one", json!({}), json!({})));
    let two = api.create(CMS, &configmap("two", json!({}), json!({})));
    let mut w = api.watch(
        &format!(
            "{CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=30"
        ),
        Duration::from_secs(60),
    );
    let b = w.wait_for("the initial-events-end bookmark", Duration::from_secs(10), |e| e["type"] == "BOOKMARK");
    assert_eq!(b["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true", "{b}");
    assert!(rv_of(&b["object"]) >= rv_of(&two), "{b}");
    let names: Vec<&str> = w.events.iter().filter(|e| e["type"] == "ADDED").map(name_of).collect();
    assert_eq!(names, ["one", "two"], "{}", summarize_events(&w.events));
    api.create(CMS, &configmap("three", json!({}), json!({})));
    w.wait_for("ADDED three", Duration::from_secs(10), |e| name_of(e) == "three");

    // sendInitialEvents=false without a resourceVersion: changes from now on only.
    let mut w = api.watch(
        &format!("{CMS}?watch=true&sendInitialEvents=false&resourceVersionMatch=NotOlderThan&timeoutSeconds=30"),
        Duration::from_secs(60),
    );
    api.create(CMS, &configmap("four", json!({}), json!({})));
    w.wait_for("ADDED four", Duration::from_secs(10), |e| name_of(e) == "four");
    let names: Vec<&str> = w.events.iter().map(name_of).collect();
    assert_eq!(names, ["four"], "{}", summarize_events(&w.events));
    still_serves(&server, "after");
}
