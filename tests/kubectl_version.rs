//! The `kubectl` on the PATH is a dispatcher that runs the bundled kubectl whose minor version
//! matches the server's `/version`. skiff serves the 1.33 API, so kubectl 1.33 must be the one
//! that runs (an unknown or failing `/version` would silently give 1.32).

mod common;

use common::Server;

#[test]
fn dispatcher_runs_kubectl_1_33_against_skiff() {
    let server = Server::start();
    let kubectl = server.kubectl();
    let v = kubectl.json(&["version"]);
    assert_eq!(v["serverVersion"]["major"], "1", "serverVersion: {v}");
    assert_eq!(v["serverVersion"]["minor"], "33", "serverVersion: {v}");
    assert_eq!(v["clientVersion"]["major"], "1", "clientVersion (which kubectl ran): {v}");
    assert_eq!(v["clientVersion"]["minor"], "33", "the dispatcher must have run the bundled kubectl 1.33: {v}");
    let git = v["clientVersion"]["gitVersion"].as_str().unwrap_or_default();
    assert!(git.starts_with("v1.33."), "client gitVersion {git}");
}

#[test]
fn version_endpoint_reports_1_33() {
    let server = Server::start();
    let r = server.anonymous_api().get("/version").expect(200);
    assert!(r.content_type.starts_with("application/json"), "Content-Type {}", r.content_type);
    let v = r.json();
    assert_eq!(v["major"], "1", "{v}");
    assert_eq!(v["minor"], "33", "{v}");
    assert!(v["gitVersion"].as_str().is_some_and(|g| g.starts_with("v1.33")), "{v}");
    assert!(v["platform"].as_str().is_some_and(|p| p.contains('/')), "{v}");
}
