//! Authentication: everything but the public health and version endpoints needs a bearer
//! token (401 otherwise, also for a wrong token), and a rejected request changes nothing.

mod common;

use common::{configmap, Server};
use serde_json::json;

#[test]
fn no_credential_is_401() {
    let server = Server::start();
    let anon = server.anonymous_api();
    for path in [
        "/api",
        "/apis",
        "/api/v1/namespaces",
        "/api/v1/namespaces/default/configmaps",
        "/apis/apps/v1/deployments",
        "/openapi/v3",
    ] {
        let r = anon.get(path);
        assert_eq!(r.status, 401, "GET {path} without a credential: {}", r.text());
        r.expect_status(401, "Unauthorized");
    }
    let cm = configmap("sneaky", json!({}), json!({"k": "v"}));
    anon.post_json("/api/v1/namespaces/default/configmaps", &cm).expect_status(401, "Unauthorized");
    anon.delete("/api/v1/namespaces/default").expect_status(401, "Unauthorized");

    let api = server.api();
    api.get("/api/v1/namespaces/default/configmaps/sneaky").expect_status(404, "NotFound");
    api.get("/api/v1/namespaces/default").expect(200);
}

#[test]
fn wrong_token_is_401() {
    let server = Server::start();
    let real = server.creds().token.clone();
    let mut altered = real.clone();
    let last = altered.pop().unwrap_or('x');
    altered.push(if last == 'a' { 'b' } else { 'a' });
    for token in ["wrong", altered.as_str(), &format!("{real}x")] {
        let api = server.api_with_token(token);
        let r = api.get("/api/v1/namespaces");
        assert_eq!(r.status, 401, "token {token:?}: {}", r.text());
        r.expect_status(401, "Unauthorized");
        let cm = configmap("sneaky", json!({}), json!({}));
        api.post_json("/api/v1/namespaces/default/configmaps", &cm).expect_status(401, "Unauthorized");
    }
    // Basic auth is not a credential skiff accepts either.
    let r = server
        .anonymous_api()
        .request("GET", "/api/v1/namespaces")
        .basic_auth("admin", Some(&real))
        .send()
        .expect("send");
    assert_eq!(r.status().as_u16(), 401);

    server.api().get("/api/v1/namespaces/default/configmaps/sneaky").expect_status(404, "NotFound");
}

#[test]
fn the_kubeconfig_token_works() {
    let server = Server::start();
    let api = server.api();
    let l = api.get_json("/api/v1/namespaces");
    assert_eq!(l["kind"], "NamespaceList", "{l}");
    let names: Vec<&str> = l["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap_or_default())
        .collect();
    assert!(names.contains(&"default"), "{names:?}");
    // The kubeconfig is private to its owner.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(server.kubeconfig()).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "kubeconfig.yaml must be mode 0600, is {:o}", mode & 0o777);
    assert!(server.url().starts_with("https://"));
}

#[test]
fn health_and_version_need_no_credential() {
    let server = Server::start();
    let anon = server.anonymous_api();
    for path in ["/livez", "/readyz", "/healthz"] {
        let r = anon.get(path).expect(200);
        assert_eq!(r.text().trim(), "ok", "{path}");
    }
    let v = anon.get("/version").expect(200).json();
    assert_eq!(v["major"], "1", "{v}");
    assert_eq!(v["minor"], "33", "{v}");
}
