//! Writes under attack (issue 6, items 1, 3, 5 and 6): amplifying patches, preconditions that
//! every patch type honours, the namespaces the server needs, and wrongly-typed or wrong-kind
//! bodies of every subresource. Each test reproduces the attack, asserts the Status, and that
//! nothing changed.

mod common;

use common::{configmap, deployment, pod, Api, Server};
use serde_json::{json, Value};

const CMS: &str = "/api/v1/namespaces/default/configmaps";
const PODS: &str = "/api/v1/namespaces/default/pods";
const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";
const JSON_PATCH: &str = "application/json-patch+json";
const MERGE: &str = "application/merge-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const APPLY: &str = "application/apply-patch+yaml";

fn rv(v: &Value) -> String {
    v["metadata"]["resourceVersion"].as_str().expect("resourceVersion").to_string()
}

/// The stored object must be exactly `before`.
#[track_caller]
fn assert_unchanged(api: &Api, path: &str, before: &Value) {
    let now = api.get_json(path);
    assert_eq!(&now, before, "{path} changed");
}

/// Item 1 (CVE-2019-1002100): 24 self-appending copies would need gigabytes; the server answers
/// 422 at once and stays up. Every patch type and apply is bounded by the object size too.
#[test]
fn amplifying_patches_are_refused_and_the_server_stays_up() {
    let server = Server::start();
    let api = server.api();
    let cm = api.create(CMS, &json!({"metadata": {"name": "amp"}, "data": {"a": "x"}}));
    let path = format!("{CMS}/amp");
    // The fuzzing campaign's patch: an array appended to itself 24 times.
    let mut list = vec![
        json!({"op": "add", "path": "/spec", "value": {"l": ["0123456789abcdef0123456789abcdef0123456789abcdef"]}}),
    ];
    for _ in 0..24 {
        list.push(json!({"op": "copy", "from": "/spec/l", "path": "/spec/l/-"}));
    }
    let t0 = std::time::Instant::now();
    let s = api.patch(&path, JSON_PATCH, &Value::Array(list)).expect_status(422, "Invalid");
    assert!(s["message"].as_str().unwrap_or("").contains("copy"), "{s}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(5), "took {:?}", t0.elapsed());
    assert_unchanged(&api, &path, &cm);

    // More than 10,000 operations: 413.
    let many: Vec<Value> = (0..10_001).map(|_| json!({"op": "test", "path": "/data/a", "value": "x"})).collect();
    api.patch(&path, JSON_PATCH, &Value::Array(many)).expect_status(413, "RequestEntityTooLarge");

    // Every other patch type and apply: a result over 3 MiB is 413, though each body is not.
    let big = "y".repeat(2 * 1024 * 1024);
    let mut d = deployment("amp", 1);
    d["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"name": "BIG", "value": big}]);
    api.create(DEPLOYS, &d);
    let path = format!("{DEPLOYS}/amp");
    let cm = api.get_json(&path);
    let more = json!({"spec": {"template": {"metadata": {"annotations": {"c": big}}}}});
    api.patch(&path, MERGE, &more).expect_status(413, "RequestEntityTooLarge");
    api.patch(&path, STRATEGIC, &more).expect_status(413, "RequestEntityTooLarge");
    api.patch(&path, JSON_PATCH, &json!([{"op": "copy", "from": "/spec/template/spec/containers/0/env/0/value", "path": "/metadata/annotations"}]))
        .expect_status(413, "RequestEntityTooLarge");
    let applied =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "amp", "annotations": {"d": big}}});
    api.send(
        "PATCH",
        &format!("{path}?fieldManager=amp&force=true"),
        Some(APPLY),
        Some(serde_json::to_vec(&applied).expect("json")),
    )
    .expect_status(413, "RequestEntityTooLarge");
    assert_unchanged(&api, &path, &cm);
    api.get("/readyz").expect(200);
    assert!(!server.log_tail(200).contains("panicked"));
}

/// Item 3: a stale resourceVersion or a different uid carried by any patch type is a 409 and
/// changes nothing.
#[test]
fn every_patch_type_honours_resource_version_and_uid_preconditions() {
    let server = Server::start();
    let api = server.api();
    let cm = api.create(CMS, &configmap("pre", json!({}), json!({"k": "v"})));
    let path = format!("{CMS}/pre");
    let stale = rv(&cm);
    let cm = api.patch(&path, MERGE, &json!({"data": {"k": "v2"}})).expect(200).json();
    let uid = cm["metadata"]["uid"].as_str().expect("uid").to_string();
    let other_uid = "00000000-0000-0000-0000-000000000000";

    let cases: Vec<(&str, Value)> = vec![
        (
            JSON_PATCH,
            json!([{"op": "replace", "path": "/metadata/resourceVersion", "value": stale}, {"op": "replace", "path": "/data/k", "value": "lost"}]),
        ),
        (
            JSON_PATCH,
            json!([{"op": "replace", "path": "/metadata/uid", "value": other_uid}, {"op": "replace", "path": "/data/k", "value": "lost"}]),
        ),
        (MERGE, json!({"metadata": {"resourceVersion": stale}, "data": {"k": "lost"}})),
        (MERGE, json!({"metadata": {"uid": other_uid}, "data": {"k": "lost"}})),
        (STRATEGIC, json!({"metadata": {"resourceVersion": stale}, "data": {"k": "lost"}})),
        (STRATEGIC, json!({"metadata": {"uid": other_uid}, "data": {"k": "lost"}})),
    ];
    for (ct, p) in cases {
        let s = api.patch(&path, ct, &p).expect_status(409, "Conflict");
        assert!(s["message"].as_str().is_some_and(|m| m.contains("pre")), "{ct} {p}: {s}");
        assert_unchanged(&api, &path, &cm);
    }
    // PUT with a foreign uid, and apply with a stale resourceVersion.
    let mut put = cm.clone();
    put["metadata"]["uid"] = json!(other_uid);
    put["data"]["k"] = json!("lost");
    let s = api.put_json(&path, &put).expect_status(409, "Conflict");
    assert!(s["message"].as_str().is_some_and(|m| m.contains("Precondition failed")), "{s}");
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pre", "resourceVersion": stale}, "data": {"k": "lost"}});
    api.send(
        "PATCH",
        &format!("{path}?fieldManager=t"),
        Some(APPLY),
        Some(serde_json::to_vec(&applied).expect("json")),
    )
    .expect_status(409, "Conflict");
    assert_unchanged(&api, &path, &cm);

    // The current resourceVersion and the right uid pass.
    let ok = json!([{"op": "test", "path": "/metadata/uid", "value": uid}, {"op": "replace", "path": "/metadata/resourceVersion", "value": rv(&cm)}, {"op": "replace", "path": "/data/k", "value": "v3"}]);
    let after = api.patch(&path, JSON_PATCH, &ok).expect(200).json();
    assert_eq!(after["data"]["k"], "v3");
}

/// Item 5: the namespaces the server needs cannot be deleted (403), one by one or as a
/// collection, and everything in them stays.
#[test]
fn system_namespaces_may_not_be_deleted() {
    let server = Server::start();
    let api = server.api();
    api.create("/api/v1/namespaces", &common::namespace("scratch"));
    let svc_before = api.get_json("/api/v1/namespaces/default/services/kubernetes");
    for ns in ["default", "kube-system", "kube-public"] {
        let s = api.delete(&format!("/api/v1/namespaces/{ns}")).expect_status(403, "Forbidden");
        assert_eq!(s["message"], format!("namespaces \"{ns}\" is forbidden: this namespace may not be deleted"));
        let n = api.get_json(&format!("/api/v1/namespaces/{ns}"));
        assert!(n["metadata"]["deletionTimestamp"].is_null(), "{n}");
    }
    // Namespaces have no delete-collection at all (upstream: 405).
    api.delete("/api/v1/namespaces").expect_status(405, "MethodNotAllowed");
    for ns in ["default", "kube-system", "kube-public", "scratch"] {
        let n = api.get_json(&format!("/api/v1/namespaces/{ns}"));
        assert!(n["metadata"]["deletionTimestamp"].is_null(), "{ns} was marked for deletion: {n}");
    }
    assert_unchanged(&api, "/api/v1/namespaces/default/services/kubernetes", &svc_before);
    // kubectl says the same.
    let out = server.kubectl().fails(&["delete", "namespace", "kube-system"]);
    assert!(out.stderr.contains("this namespace may not be deleted"), "{}", out.stderr);
}

/// Item 6: DeleteOptions with wrong types or another kind, on delete and delete-collection.
#[test]
fn malformed_delete_options_delete_nothing() {
    let server = Server::start();
    let api = server.api();
    let cm = api.create(CMS, &configmap("keep", json!({"a": "b"}), json!({})));
    let bodies = [
        json!({"preconditions": {"uid": 123}}),
        json!({"kind": "ConfigMap", "apiVersion": "v1"}),
        json!({"propagationPolicy": 5}),
        json!({"gracePeriodSeconds": "soon"}),
        json!({"dryRun": "All"}),
    ];
    for b in &bodies {
        let s = api
            .send(
                "DELETE",
                &format!("{CMS}/keep"),
                Some("application/json"),
                Some(serde_json::to_vec(b).expect("json")),
            )
            .expect_status(400, "BadRequest");
        assert!(s["message"].as_str().is_some_and(|m| m.contains("DeleteOptions")), "{b}: {s}");
        api.send("DELETE", CMS, Some("application/json"), Some(serde_json::to_vec(b).expect("json")))
            .expect_status(400, "BadRequest");
        assert_unchanged(&api, &format!("{CMS}/keep"), &cm);
    }
    api.send("DELETE", CMS, Some("application/json"), Some(b"{\"propagationPolicy\":".to_vec()))
        .expect_status(400, "BadRequest");
    assert_unchanged(&api, &format!("{CMS}/keep"), &cm);
    // A well-formed one still works.
    api.send(
        "DELETE",
        &format!("{CMS}/keep"),
        Some("application/json"),
        Some(br#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}"#.to_vec()),
    )
    .expect(200);
}

/// Item 6: scale, binding and patch options that must be refused, with nothing written.
#[test]
fn subresource_bodies_of_the_wrong_shape_change_nothing() {
    let server = Server::start();
    let api = server.api();
    let d = api.create(DEPLOYS, &deployment("web", 2));
    let dpath = format!("{DEPLOYS}/web");
    // Scale whose name differs from the URL's.
    let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "other", "namespace": "default"}, "spec": {"replicas": 7}});
    api.put_json(&format!("{dpath}/scale"), &scale).expect_status(400, "BadRequest");
    let wrong_kind =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}, "spec": {"replicas": 7}});
    api.put_json(&format!("{dpath}/scale"), &wrong_kind).expect_status(400, "BadRequest");
    api.patch(&format!("{dpath}/scale"), JSON_PATCH, &json!([{"op": "replace", "path": "/metadata/name", "value": "x"}, {"op": "replace", "path": "/spec/replicas", "value": 7}]))
        .expect_status(400, "BadRequest");
    api.patch(&format!("{dpath}/scale"), JSON_PATCH, &json!([{"op": "replace", "path": "/metadata/resourceVersion", "value": "1"}, {"op": "replace", "path": "/spec/replicas", "value": 7}]))
        .expect_status(409, "Conflict");
    // force is for apply only (even force=false), on the main resource and on scale.
    for q in ["force=true", "force=false"] {
        let s =
            api.patch(&format!("{dpath}?{q}"), MERGE, &json!({"spec": {"replicas": 7}})).expect_status(422, "Invalid");
        assert!(s["message"].as_str().is_some_and(|m| m.contains("force")), "{s}");
        api.patch(&format!("{dpath}/scale?{q}"), MERGE, &json!({"spec": {"replicas": 7}}))
            .expect_status(422, "Invalid");
    }
    // A strategic-merge directive of the wrong type is an error, not ignored.
    api.patch(&dpath, STRATEGIC, &json!({"spec": {"template": {"spec": {"$setElementOrder/tolerations": 5, "containers": [{"name": "app", "image": "changed"}]}}}}))
        .expect_status(422, "Invalid");
    assert_unchanged(&api, &dpath, &d);

    // Bindings: non-string annotations, another target kind, an invalid node name.
    let p = api.create(PODS, &pod("p", json!({})));
    let ppath = format!("{PODS}/p");
    let bind = |b: Value| api.post_json(&format!("{ppath}/binding"), &b);
    bind(json!({"metadata": {"name": "p", "annotations": {"a": 5}}, "target": {"name": "node-a"}}))
        .expect_status(400, "BadRequest");
    bind(json!({"metadata": {"name": "p"}, "target": {"kind": "Pod", "name": "node-a"}})).expect_status(422, "Invalid");
    bind(json!({"metadata": {"name": "p"}, "target": {"name": "Not_A_Node!"}})).expect_status(422, "Invalid");
    bind(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p"}, "target": {"name": "node-a"}}))
        .expect_status(400, "BadRequest");
    assert_unchanged(&api, &ppath, &p);
    // A good binding goes through the pod pipeline: stored once, annotations kept as strings.
    bind(json!({"metadata": {"name": "p", "annotations": {"sched": "yes"}}, "target": {"kind": "Node", "name": "node-a"}})).expect(201);
    let bound = api.get_json(&ppath);
    assert_eq!(bound["spec"]["nodeName"], "node-a");
    assert_eq!(bound["metadata"]["annotations"]["sched"], "yes");
    assert!(
        bound["status"]["conditions"].as_array().is_some_and(|c| c.iter().any(|c| c["type"] == "PodScheduled")),
        "{bound}"
    );
    bind(json!({"metadata": {"name": "p"}, "target": {"name": "node-b"}})).expect_status(409, "Conflict");
}

/// Item 6: headers that cannot be served: Content-Type with invalid bytes (415) and an Accept
/// the API cannot answer (406); neither writes.
#[test]
fn unusable_content_type_and_accept_headers_are_refused() {
    let server = Server::start();
    let api = server.api();
    let body = serde_json::to_vec(&configmap("hdr", json!({}), json!({}))).expect("json");
    let ct = reqwest::header::HeaderValue::from_bytes(b"application/json\xff").expect("opaque header value");
    let r = api.request("POST", CMS).header("content-type", ct).body(body.clone()).send().expect("send");
    assert_eq!(r.status().as_u16(), 415);
    let s: Value = r.json().expect("Status");
    assert_eq!(s["reason"], "UnsupportedMediaType");
    let r = api
        .request("POST", CMS)
        .header("content-type", "application/json")
        .header("accept", "text/html")
        .body(body)
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 406);
    let s: Value = r.json().expect("Status");
    assert_eq!(s["reason"], "NotAcceptable");
    let r = api.request("GET", CMS).header("accept", "text/html").send().expect("send");
    assert_eq!(r.status().as_u16(), 406);
    let list = api.get_json(CMS);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");
    // What kubectl and the client libraries send is served.
    for accept in [
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
        "application/vnd.kubernetes.protobuf, */*",
        "application/json, */*",
        "*/*",
    ] {
        let r = api.request("GET", CMS).header("accept", accept).send().expect("send");
        assert_eq!(r.status().as_u16(), 200, "Accept: {accept}");
    }
}
