//! `kubectl delete -f FILE` and `kubectl delete -l SELECTOR`.

mod common;

use common::{configmap, fixture, Server};
use serde_json::json;

const BUNDLE: &[&str] = &[
    "/api/v1/namespaces/default/configmaps/bundle-config",
    "/api/v1/namespaces/default/secrets/bundle-secret",
    "/api/v1/namespaces/default/services/bundle",
    "/apis/apps/v1/namespaces/default/deployments/bundle",
];

#[test]
fn delete_f_removes_every_object_in_the_file() {
    let server = Server::start();
    let api = server.api();
    let kubectl = server.kubectl();
    let file = fixture("bundle.yaml");
    let file = file.to_str().unwrap();

    kubectl.ok(&["apply", "-f", file]);
    for p in BUNDLE {
        api.get(p).expect(200);
    }
    // Something that is not in the file must stay.
    api.create("/api/v1/namespaces/default/configmaps", &configmap("bystander", json!({}), json!({})));

    let out = kubectl.ok(&["delete", "-f", file]);
    for line in [
        "configmap \"bundle-config\" deleted",
        "secret \"bundle-secret\" deleted",
        "service \"bundle\" deleted",
        "deployment.apps \"bundle\" deleted",
    ] {
        // kubectl 1.33 prints `kind "name" deleted`; later versions append the namespace.
        assert!(out.lines().any(|l| l.trim().starts_with(line)), "expected {line:?}:\n{out}");
    }
    for p in BUNDLE {
        api.get(p).expect_status(404, "NotFound");
    }
    api.get("/api/v1/namespaces/default/configmaps/bystander").expect(200);

    // Deleting again: NotFound errors, non-zero exit.
    let again = kubectl.fails(&["delete", "-f", file]);
    assert!(again.stderr.contains("NotFound") || again.stderr.contains("not found"), "{}", again.stderr);
    let ok = kubectl.ok(&["delete", "-f", file, "--ignore-not-found"]);
    assert!(ok.trim().is_empty(), "{ok}");
}

#[test]
fn delete_by_label_selector() {
    let server = Server::start();
    let api = server.api();
    let kubectl = server.kubectl();
    for (name, labels) in [
        ("old-1", json!({"batch": "old"})),
        ("old-2", json!({"batch": "old", "extra": "x"})),
        ("new-1", json!({"batch": "new"})),
        ("plain", json!({})),
    ] {
        api.create("/api/v1/namespaces/default/configmaps", &configmap(name, labels, json!({"k": "v"})));
    }

    let out = kubectl.ok(&["delete", "configmaps", "-l", "batch=old"]);
    let mut lines: Vec<&str> =
        out.lines().map(|l| l.trim().trim_end_matches(" from default namespace")).filter(|l| !l.is_empty()).collect();
    lines.sort();
    assert_eq!(lines, ["configmap \"old-1\" deleted", "configmap \"old-2\" deleted"], "{out}");
    for gone in ["old-1", "old-2"] {
        api.get(&format!("/api/v1/namespaces/default/configmaps/{gone}")).expect_status(404, "NotFound");
    }
    for kept in ["new-1", "plain"] {
        api.get(&format!("/api/v1/namespaces/default/configmaps/{kept}")).expect(200);
    }

    // A selector matching nothing deletes nothing.
    let out = kubectl.run(&["delete", "configmaps", "-l", "batch=none"]);
    assert!(out.success(), "{out:?}");
    assert_eq!(format!("{}{}", out.stdout, out.stderr).trim(), "No resources found", "{out:?}");

    api.get("/api/v1/namespaces/default/configmaps/new-1").expect(200);
}
