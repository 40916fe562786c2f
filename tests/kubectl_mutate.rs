//! `kubectl describe`, `scale`, `label` and `annotate` against skiff, each checked against the
//! stored object.

mod common;

use common::{configmap, deployment, namespace, Api, Server};
use serde_json::{json, Value};

const DEPLOY: &str = "/apis/apps/v1/namespaces/shop/deployments/web";
const CM: &str = "/api/v1/namespaces/shop/configmaps/settings";

fn seed(api: &Api) {
    api.create("/api/v1/namespaces", &namespace("shop"));
    api.create("/apis/apps/v1/namespaces/shop/deployments", &deployment("web", 2));
    api.create(
        "/api/v1/namespaces/shop/configmaps",
        &configmap("settings", json!({"app": "web"}), json!({"greeting": "hello", "mode": "fast"})),
    );
}

/// The value after `Key:` on a describe line, trimmed.
fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines().find_map(|l| l.strip_prefix(&format!("{key}:")).map(str::trim))
}

fn generation(v: &Value) -> i64 {
    v["metadata"]["generation"].as_i64().unwrap_or_else(|| panic!("no generation: {v}"))
}

#[test]
fn describe_deployment_and_configmap() {
    let server = Server::start();
    seed(&server.api());
    let kubectl = server.kubectl();

    let out = kubectl.ok(&["describe", "deployment", "web", "-n", "shop"]);
    assert_eq!(field(&out, "Name"), Some("web"), "{out}");
    assert_eq!(field(&out, "Namespace"), Some("shop"), "{out}");
    assert_eq!(field(&out, "Selector"), Some("app=web"), "{out}");
    let replicas = field(&out, "Replicas").unwrap_or_else(|| panic!("no Replicas line:\n{out}"));
    assert!(replicas.starts_with("2 desired"), "Replicas: {replicas}\n{out}");
    assert!(
        out.lines().any(|l| l.trim().strip_prefix("Image:").map(str::trim) == Some("busybox:1.36")),
        "no Image line:\n{out}"
    );
    assert!(field(&out, "CreationTimestamp").is_some(), "{out}");

    let out = kubectl.ok(&["describe", "configmap", "settings", "-n", "shop"]);
    assert_eq!(field(&out, "Name"), Some("settings"), "{out}");
    assert_eq!(field(&out, "Labels"), Some("app=web"), "{out}");
    // Data section: "greeting:\n----\nhello"
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let at = lines.iter().position(|l| *l == "greeting:").unwrap_or_else(|| panic!("no greeting key:\n{out}"));
    assert_eq!(lines.get(at + 1), Some(&"----"), "{out}");
    assert_eq!(lines.get(at + 2), Some(&"hello"), "{out}");

    let api = server.api();
    api.create("/api/v1/namespaces/shop/pods", &common::pod("p1", json!({"app": "p"})));
    let out = kubectl.ok(&["describe", "pod", "p1", "-n", "shop"]);
    assert_eq!(field(&out, "Name"), Some("p1"), "{out}");
    assert_eq!(field(&out, "Status"), Some("Pending"), "{out}");
    assert_eq!(field(&out, "Labels"), Some("app=p"), "{out}");

    // describe of a missing object fails with NotFound.
    let miss = kubectl.fails(&["describe", "configmap", "nope", "-n", "shop"]);
    assert!(miss.stderr.contains("not found"), "{}", miss.stderr);
}

#[test]
fn scale_deployment() {
    let server = Server::start();
    let api = server.api();
    seed(&api);
    let kubectl = server.kubectl();
    let gen0 = generation(&api.get_json(DEPLOY));

    let out = kubectl.ok(&["scale", "deployment", "web", "-n", "shop", "--replicas=5"]);
    assert_eq!(out.trim(), "deployment.apps/web scaled");
    let d = api.get_json(DEPLOY);
    assert_eq!(d["spec"]["replicas"], 5, "{d}");
    assert!(generation(&d) > gen0, "scaling changes spec, so generation bumps: {d}");

    // The scale subresource agrees.
    let s = api.get_json(&format!("{DEPLOY}/scale"));
    assert_eq!(s["kind"], "Scale", "{s}");
    assert_eq!(s["apiVersion"], "autoscaling/v1", "{s}");
    assert_eq!(s["spec"]["replicas"], 5, "{s}");
    assert_eq!(s["status"]["selector"], "app=web", "{s}");

    // --current-replicas goes through GET/PUT of the scale subresource.
    let out = kubectl.ok(&["scale", "deployment/web", "-n", "shop", "--current-replicas=5", "--replicas=1"]);
    assert_eq!(out.trim(), "deployment.apps/web scaled");
    assert_eq!(api.get_json(DEPLOY)["spec"]["replicas"], 1);

    // A failed precondition changes nothing.
    let rv_before = api.get_json(DEPLOY)["metadata"]["resourceVersion"].clone();
    kubectl.fails(&["scale", "deployment/web", "-n", "shop", "--current-replicas=7", "--replicas=3"]);
    let d = api.get_json(DEPLOY);
    assert_eq!(d["spec"]["replicas"], 1, "{d}");
    assert_eq!(d["metadata"]["resourceVersion"], rv_before);
}

#[test]
fn label_add_overwrite_remove() {
    let server = Server::start();
    let api = server.api();
    seed(&api);
    let kubectl = server.kubectl();

    let out = kubectl.ok(&["label", "configmap", "settings", "-n", "shop", "color=red"]);
    assert_eq!(out.trim(), "configmap/settings labeled");
    let cm = api.get_json(CM);
    assert_eq!(cm["metadata"]["labels"], json!({"app": "web", "color": "red"}), "{cm}");
    assert_eq!(cm["data"]["greeting"], "hello", "data untouched: {cm}");

    // Without --overwrite an existing label is refused and nothing changes.
    let rv = cm["metadata"]["resourceVersion"].clone();
    let fail = kubectl.fails(&["label", "configmap", "settings", "-n", "shop", "color=blue"]);
    assert!(fail.stderr.contains("already has a value"), "{}", fail.stderr);
    assert_eq!(api.get_json(CM)["metadata"]["resourceVersion"], rv);

    kubectl.ok(&["label", "configmap", "settings", "-n", "shop", "--overwrite", "color=blue"]);
    assert_eq!(api.get_json(CM)["metadata"]["labels"]["color"], "blue");

    let out = kubectl.ok(&["label", "configmap", "settings", "-n", "shop", "color-"]);
    assert_eq!(out.trim(), "configmap/settings unlabeled");
    let cm = api.get_json(CM);
    assert_eq!(cm["metadata"]["labels"], json!({"app": "web"}), "{cm}");

    // Labels on a deployment, then used by a selector.
    kubectl.ok(&["label", "deployment", "web", "-n", "shop", "tier=frontend"]);
    let out = kubectl.ok(&["get", "deployments", "-n", "shop", "-l", "tier=frontend", "-o", "name"]);
    assert_eq!(out.trim(), "deployment.apps/web");
    // Label changes are metadata only: generation does not move.
    assert_eq!(generation(&api.get_json(DEPLOY)), 1);
}

#[test]
fn annotate_add_overwrite_remove() {
    let server = Server::start();
    let api = server.api();
    seed(&api);
    let kubectl = server.kubectl();

    let out = kubectl.ok(&["annotate", "configmap", "settings", "-n", "shop", "owner=team-a", "note=multi word value"]);
    assert_eq!(out.trim(), "configmap/settings annotated");
    let cm = api.get_json(CM);
    assert_eq!(cm["metadata"]["annotations"]["owner"], "team-a", "{cm}");
    assert_eq!(cm["metadata"]["annotations"]["note"], "multi word value", "{cm}");

    let fail = kubectl.fails(&["annotate", "configmap", "settings", "-n", "shop", "owner=team-b"]);
    assert!(fail.stderr.contains("already has a value"), "{}", fail.stderr);
    assert_eq!(api.get_json(CM)["metadata"]["annotations"]["owner"], "team-a");

    kubectl.ok(&["annotate", "configmap", "settings", "-n", "shop", "--overwrite", "owner=team-b"]);
    assert_eq!(api.get_json(CM)["metadata"]["annotations"]["owner"], "team-b");

    kubectl.ok(&["annotate", "configmap", "settings", "-n", "shop", "owner-"]);
    let cm = api.get_json(CM);
    assert!(cm["metadata"]["annotations"]["owner"].is_null(), "{cm}");
    assert_eq!(cm["metadata"]["annotations"]["note"], "multi word value", "{cm}");

    kubectl.ok(&["annotate", "deployment", "web", "-n", "shop", "kubernetes.io/change-cause=test"]);
    let d = api.get_json(DEPLOY);
    assert_eq!(d["metadata"]["annotations"]["kubernetes.io/change-cause"], "test", "{d}");
}
