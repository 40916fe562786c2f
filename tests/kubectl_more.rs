//! More of the real kubectl: imperative `create deployment` / `create job` (protobuf bodies),
//! `explain` (OpenAPI v3 schemas), `get --field-selector`, and server-side apply conflicts
//! between field managers.

mod common;

use common::{Kubectl, Server};
use serde_json::json;

/// The bundled 1.33 kubectl is the one the dispatcher runs against skiff.
fn assert_kubectl_1_33(kubectl: &Kubectl) {
    let v = kubectl.json(&["version"]);
    assert_eq!(v["clientVersion"]["minor"], "33", "kubectl 1.33 must run: {v}");
}

#[test]
fn create_deployment_and_job() {
    let server = Server::start();
    let api = server.api();
    let kubectl = server.kubectl();
    assert_kubectl_1_33(&kubectl);

    let out = kubectl.ok(&["create", "deployment", "web", "--image=busybox:1.36", "--replicas=2", "--port=8080"]);
    assert_eq!(out.trim(), "deployment.apps/web created");
    let d = api.get_json("/apis/apps/v1/namespaces/default/deployments/web");
    assert_eq!(d["spec"]["replicas"], 2, "{d}");
    assert_eq!(d["metadata"]["labels"], json!({"app": "web"}), "{d}");
    assert_eq!(d["spec"]["selector"], json!({"matchLabels": {"app": "web"}}), "{d}");
    assert_eq!(d["spec"]["template"]["metadata"]["labels"], json!({"app": "web"}), "{d}");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["name"], "busybox", "{d}");
    assert_eq!(c["image"], "busybox:1.36", "{d}");
    assert_eq!(c["ports"][0]["containerPort"], 8080, "{d}");
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate", "defaults applied to protobuf bodies too: {d}");
    assert_eq!(d["metadata"]["generation"], 1);

    let out = kubectl.ok(&["create", "job", "once", "--image=busybox:1.36", "--", "echo", "hi there"]);
    assert_eq!(out.trim(), "job.batch/once created");
    let j = api.get_json("/apis/batch/v1/namespaces/default/jobs/once");
    let t = &j["spec"]["template"]["spec"];
    assert_eq!(t["restartPolicy"], "Never", "{j}");
    assert_eq!(t["containers"][0]["name"], "once", "{j}");
    assert_eq!(t["containers"][0]["image"], "busybox:1.36", "{j}");
    assert_eq!(t["containers"][0]["command"], json!(["echo", "hi there"]), "{j}");
    let uid = j["metadata"]["uid"].as_str().unwrap();
    assert_eq!(j["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"], uid, "{j}");

    // Listed by kubectl as well.
    let names = kubectl.ok(&["get", "deployments,jobs", "-o", "name"]);
    assert!(names.lines().any(|l| l == "deployment.apps/web"), "{names}");
    assert!(names.lines().any(|l| l == "job.batch/once"), "{names}");
}

#[test]
fn explain_prints_field_documentation() {
    let server = Server::start();
    let kubectl = server.kubectl();
    let out = kubectl.ok(&["explain", "deployment.spec.strategy"]);
    assert!(out.contains("KIND:") && out.contains("Deployment"), "{out}");
    assert!(out.contains("FIELD:") && out.contains("strategy"), "{out}");
    assert!(out.contains("DeploymentStrategy"), "the field's type: {out}");
    assert!(out.contains("RollingUpdate"), "the description mentions RollingUpdate: {out}");
    assert!(out.contains("rollingUpdate"), "the nested fields are listed: {out}");

    let out = kubectl.ok(&["explain", "pods.spec.containers.imagePullPolicy"]);
    assert!(out.contains("IfNotPresent"), "{out}");
}

#[test]
fn get_pods_with_field_selector() {
    let server = Server::start();
    let api = server.api();
    let kubectl = server.kubectl();
    for (n, node) in [("x", Some("node-a")), ("y", None), ("z", Some("node-b"))] {
        let mut p = common::pod(n, json!({"app": "fs"}));
        if let Some(node) = node {
            p["spec"]["nodeName"] = json!(node);
        }
        api.create("/api/v1/namespaces/default/pods", &p);
    }
    let out = kubectl.ok(&["get", "pods", "--field-selector", "metadata.name=x", "-o", "name"]);
    assert_eq!(out.trim(), "pod/x");
    let out = kubectl.ok(&["get", "pods", "--field-selector", "metadata.name!=x", "-o", "name"]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["pod/y", "pod/z"]);
    let out = kubectl.ok(&["get", "pods", "--field-selector", "spec.nodeName=node-b", "-o", "name"]);
    assert_eq!(out.trim(), "pod/z");
    let out = kubectl.ok(&["get", "pods", "-A", "--field-selector", "metadata.namespace=default,metadata.name=y"]);
    let rows = common::table_rows(&out);
    assert_eq!(rows.len(), 2, "header and one row: {out}");
    assert_eq!(rows[1][0], "default");
    assert_eq!(rows[1][1], "y");
    let bad = kubectl.fails(&["get", "pods", "--field-selector", "spec.bogus=1"]);
    assert!(bad.stderr.contains("spec.bogus"), "{}", bad.stderr);
}

#[test]
fn server_side_apply_conflict_between_managers() {
    let server = Server::start();
    let api = server.api();
    let kubectl = server.kubectl();
    let manifest = |v: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n  namespace: default\ndata:\n  k: {v}\n")
    };
    let out = kubectl
        .run_with_stdin(&["apply", "--server-side", "--field-manager=alice", "-f", "-"], Some(&manifest("from-alice")));
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("configmap/shared serverside-applied"), "{}", out.stdout);

    // Same value from another manager: shared ownership, no conflict.
    let out = kubectl
        .run_with_stdin(&["apply", "--server-side", "--field-manager=carol", "-f", "-"], Some(&manifest("from-alice")));
    assert!(out.success(), "applying the same value is not a conflict: {out:?}");

    let out = kubectl
        .run_with_stdin(&["apply", "--server-side", "--field-manager=bob", "-f", "-"], Some(&manifest("from-bob")));
    assert!(!out.success(), "a conflicting apply must fail: {out:?}");
    assert!(out.stderr.contains("conflict"), "{}", out.stderr);
    assert!(
        out.stderr.contains("alice") && out.stderr.contains(".data.k"),
        "names the manager and field: {}",
        out.stderr
    );
    assert_eq!(api.get_json("/api/v1/namespaces/default/configmaps/shared")["data"]["k"], "from-alice");

    let out = kubectl.run_with_stdin(
        &["apply", "--server-side", "--field-manager=bob", "--force-conflicts", "-f", "-"],
        Some(&manifest("from-bob")),
    );
    assert!(out.success(), "--force-conflicts takes the field: {out:?}");
    let c = api.get_json("/api/v1/namespaces/default/configmaps/shared");
    assert_eq!(c["data"]["k"], "from-bob");
    let managers: Vec<&str> =
        c["metadata"]["managedFields"].as_array().unwrap().iter().filter_map(|m| m["manager"].as_str()).collect();
    assert!(managers.contains(&"bob"), "{managers:?}");
    let owns_k = |m: &str| {
        c["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["manager"] == m && e["fieldsV1"]["f:data"].get("f:k").is_some())
    };
    assert!(owns_k("bob"), "bob owns .data.k: {c}");
    assert!(!owns_k("alice") && !owns_k("carol"), "the forced apply took .data.k from alice and carol: {c}");
}
