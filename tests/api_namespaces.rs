//! Namespaces: the bootstrap namespaces, Terminating on delete (refusing new objects), and
//! creating into a namespace that does not exist.

mod common;

use common::{configmap, namespace, Server};
use serde_json::json;

#[test]
fn bootstrap_namespaces_exist_from_the_first_start() {
    let server = Server::start();
    let api = server.api();
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let n = api.get_json(&format!("/api/v1/namespaces/{ns}"));
        assert_eq!(n["kind"], "Namespace", "{n}");
        assert_eq!(n["status"]["phase"], "Active", "{ns}: {n}");
        assert!(n["metadata"]["uid"].is_string(), "{n}");
        assert!(n["metadata"]["deletionTimestamp"].is_null(), "{n}");
        assert_eq!(
            n["metadata"]["labels"]["kubernetes.io/metadata.name"], ns,
            "upstream labels every namespace with its name: {n}"
        );
    }
}

#[test]
fn deleted_namespace_is_terminating_and_refuses_new_objects() {
    let server = Server::start();
    let api = server.api();
    api.create("/api/v1/namespaces", &namespace("doomed"));
    // An object with a finalizer keeps the namespace from finishing its deletion, whatever the
    // namespace controller does.
    let mut held = configmap("held", json!({}), json!({"k": "v"}));
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    api.create("/api/v1/namespaces/doomed/configmaps", &held);

    let resp = api.delete("/api/v1/namespaces/doomed");
    assert!(resp.status == 200 || resp.status == 202, "DELETE namespace: {} {}", resp.status, resp.text());

    let n = api.get_json("/api/v1/namespaces/doomed");
    assert_eq!(n["status"]["phase"], "Terminating", "{n}");
    assert!(n["metadata"]["deletionTimestamp"].is_string(), "{n}");

    let before = api.snapshot("/api/v1/namespaces/doomed/configmaps");
    let st = api
        .post_json("/api/v1/namespaces/doomed/configmaps", &configmap("late", json!({}), json!({})))
        .expect_status(403, "Forbidden");
    let msg = st["message"].as_str().unwrap();
    assert!(msg.contains("doomed") && msg.contains("terminat"), "message says why: {st}");
    assert_eq!(api.snapshot("/api/v1/namespaces/doomed/configmaps"), before, "nothing was created");

    // Updating what is already there is still allowed (only creation is refused).
    api.patch(
        "/api/v1/namespaces/doomed/configmaps/held",
        "application/merge-patch+json",
        &json!({"metadata": {"labels": {"x": "y"}}}),
    )
    .expect(200);
    // Re-creating the namespace while it terminates is a conflict.
    api.post_json("/api/v1/namespaces", &namespace("doomed")).expect_status(409, "AlreadyExists");
}

#[test]
fn creating_in_a_missing_namespace_is_not_found() {
    let server = Server::start();
    let api = server.api();
    let st = api
        .post_json("/api/v1/namespaces/nope/configmaps", &configmap("c", json!({}), json!({})))
        .expect_status(404, "NotFound");
    assert!(st["message"].as_str().unwrap().contains("nope"), "{st}");
    api.post_json("/apis/apps/v1/namespaces/nope/deployments", &common::deployment("d", 1))
        .expect_status(404, "NotFound");
    assert!(api.get("/api/v1/namespaces/nope").status == 404, "the namespace was not created implicitly");
}
