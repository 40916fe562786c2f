//! `kubectl get` in every output form the issue names: server-side tables (default and
//! `-o wide`), `-o yaml`, `-o json`, `-o name`, label selectors, `-A`, and `-w`.

mod common;

use std::time::Duration;

use common::{configmap, deployment, find_row, namespace, table_rows, Api, Server};
use serde_json::{json, Value};

/// Two namespaces with a Deployment, a Service and labelled ConfigMaps:
/// shop/a {app=web, tier=front}, shop/b {app=db}, other/c {app=web}.
fn seed(api: &Api) {
    api.create("/api/v1/namespaces", &namespace("shop"));
    api.create("/api/v1/namespaces", &namespace("other"));
    api.create("/apis/apps/v1/namespaces/shop/deployments", &deployment("web", 2));
    api.create(
        "/api/v1/namespaces/shop/services",
        &json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}
        }),
    );
    api.create(
        "/api/v1/namespaces/shop/configmaps",
        &configmap("a", json!({"app": "web", "tier": "front"}), json!({"k": "1"})),
    );
    api.create("/api/v1/namespaces/shop/configmaps", &configmap("b", json!({"app": "db"}), json!({"k": "1"})));
    api.create("/api/v1/namespaces/other/configmaps", &configmap("c", json!({"app": "web"}), json!({"k": "1"})));
}

fn sorted_lines(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn get_table_uses_server_side_columns() {
    let server = Server::start();
    seed(&server.api());
    let kubectl = server.kubectl();

    let out = kubectl.ok(&["get", "deployments", "-n", "shop"]);
    let rows = table_rows(&out);
    assert_eq!(
        rows[0],
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "Deployment table header (a plain NAME/AGE means the server ignored as=Table):\n{out}"
    );
    let web = find_row(&rows, 0, "web").unwrap_or_else(|| panic!("no row for web:\n{out}"));
    assert_eq!(web[1], "0/2", "READY is ready/desired replicas:\n{out}");
    assert_eq!(rows.len(), 2, "exactly one deployment:\n{out}");

    let out = kubectl.ok(&["get", "configmaps", "-n", "shop", "-l", "app"]);
    let rows = table_rows(&out);
    assert_eq!(rows[0], ["NAME", "DATA", "AGE"], "ConfigMap table:\n{out}");
    assert_eq!(find_row(&rows, 0, "a").map(|r| r[1].as_str()), Some("1"), "{out}");

    // A single object is a one-row table.
    let out = kubectl.ok(&["get", "service", "web", "-n", "shop"]);
    let rows = table_rows(&out);
    assert_eq!(
        rows[0],
        ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
        "Service table header:\n{out}"
    );
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[1][0], "web");
    assert_eq!(rows[1][1], "ClusterIP", "type defaults to ClusterIP:\n{out}");
    assert_eq!(rows[1][4], "80/TCP", "{out}");
}

#[test]
fn get_wide_adds_priority_columns() {
    let server = Server::start();
    seed(&server.api());
    let kubectl = server.kubectl();

    let out = kubectl.ok(&["get", "deployments", "-n", "shop", "-o", "wide"]);
    let rows = table_rows(&out);
    assert_eq!(
        rows[0],
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"],
        "wide Deployment header:\n{out}"
    );
    let web = find_row(&rows, 0, "web").unwrap_or_else(|| panic!("no row for web:\n{out}"));
    assert_eq!(web[5], "web", "CONTAINERS:\n{out}");
    assert_eq!(web[6], "busybox:1.36", "IMAGES:\n{out}");
    assert_eq!(web[7], "app=web", "SELECTOR:\n{out}");

    // Pods (no node agent runs, so they stay Pending).
    server.api().create("/api/v1/namespaces/shop/pods", &common::pod("p1", json!({"app": "p"})));
    let out = kubectl.ok(&["get", "pods", "-n", "shop", "-o", "wide"]);
    let header = out.lines().next().unwrap_or_default();
    let cols: Vec<&str> = header.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(
        cols,
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
        "wide Pod header:\n{out}"
    );
    let rows = table_rows(&out);
    let p1 = find_row(&rows, 0, "p1").unwrap_or_else(|| panic!("no row for p1:\n{out}"));
    assert_eq!(p1[1], "0/1", "{out}");
    assert_eq!(p1[2], "Pending", "{out}");
    assert_eq!(p1[3], "0", "{out}");

    let out = kubectl.ok(&["get", "services", "-n", "shop", "-o", "wide"]);
    let rows = table_rows(&out);
    assert_eq!(
        rows[0],
        ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"],
        "wide Service header:\n{out}"
    );
    let web = find_row(&rows, 0, "web").unwrap_or_else(|| panic!("no row for web:\n{out}"));
    assert_eq!(web.last().map(String::as_str), Some("app=web"), "{out}");
}

#[test]
fn get_yaml_and_json() {
    let server = Server::start();
    seed(&server.api());
    let kubectl = server.kubectl();

    // A single object.
    let yaml = kubectl.ok(&["get", "deployment", "web", "-n", "shop", "-o", "yaml"]);
    let d: Value =
        serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("kubectl -o yaml printed invalid YAML: {e}\n{yaml}"));
    assert_eq!(d["kind"], "Deployment", "{yaml}");
    assert_eq!(d["apiVersion"], "apps/v1", "{yaml}");
    assert_eq!(d["metadata"]["name"], "web");
    assert_eq!(d["metadata"]["namespace"], "shop");
    assert_eq!(d["spec"]["replicas"], 2);

    let j = kubectl.json(&["get", "deployment", "web", "-n", "shop"]);
    assert_eq!(j["kind"], "Deployment");
    assert_eq!(j["spec"]["template"]["spec"]["containers"][0]["image"], "busybox:1.36");
    assert_eq!(j["metadata"]["uid"], d["metadata"]["uid"]);

    // A list: kubectl prints kind List with full items.
    let yaml = kubectl.ok(&["get", "configmaps", "-n", "shop", "-l", "app", "-o", "yaml"]);
    let l: Value =
        serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("kubectl -o yaml printed invalid YAML: {e}\n{yaml}"));
    assert_eq!(l["kind"], "List", "{yaml}");
    let mut names: Vec<&str> = l["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items: {yaml}"))
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap_or_default())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b"], "{yaml}");
    for item in l["items"].as_array().unwrap() {
        assert_eq!(item["data"]["k"], "1", "items carry the whole object: {item:?}");
    }

    let l = kubectl.json(&["get", "configmaps", "-n", "shop", "-l", "app"]);
    assert_eq!(l["kind"], "List", "{l}");
    assert_eq!(l["items"].as_array().map(Vec::len), Some(2), "{l}");
}

#[test]
fn get_name_and_label_selectors() {
    let server = Server::start();
    seed(&server.api());
    let kubectl = server.kubectl();
    let names = |sel: &str| sorted_lines(&kubectl.ok(&["get", "configmaps", "-n", "shop", "-l", sel, "-o", "name"]));

    assert_eq!(names("app"), ["configmap/a", "configmap/b"]);
    assert_eq!(names("app=web"), ["configmap/a"]);
    assert_eq!(names("app==db"), ["configmap/b"]);
    assert_eq!(names("app,app!=web"), ["configmap/b"]);
    assert_eq!(names("app in (web,db)"), ["configmap/a", "configmap/b"]);
    assert_eq!(names("app,app notin (web)"), ["configmap/b"]);
    assert_eq!(names("tier"), ["configmap/a"]);
    assert_eq!(names("app,!tier"), ["configmap/b"]);
    assert_eq!(names("app=web,tier=front"), ["configmap/a"]);
    assert!(names("app=nothing").is_empty());

    // Paging: limit=1 and following metadata.continue must still list everything.
    let out = kubectl.ok(&["get", "configmaps", "-n", "shop", "-l", "app", "--chunk-size=1", "-o", "name"]);
    assert_eq!(sorted_lines(&out), ["configmap/a", "configmap/b"], "--chunk-size=1");

    let out = kubectl.ok(&["get", "deployment", "-n", "shop", "-o", "name"]);
    assert_eq!(sorted_lines(&out), ["deployment.apps/web"]);
    // The "all" category from discovery.
    let out = kubectl.ok(&["get", "all", "-n", "shop", "-o", "name"]);
    let all = sorted_lines(&out);
    for want in ["deployment.apps/web", "service/web"] {
        assert!(all.iter().any(|l| l == want), "get all lacks {want}: {all:?}");
    }
    assert!(!all.iter().any(|l| l.starts_with("configmap/")), "configmaps are not in 'all': {all:?}");
    // Short names come from discovery.
    let out = kubectl.ok(&["get", "deploy,svc,cm", "-n", "shop", "-l", "app=web", "-o", "name"]);
    assert_eq!(
        sorted_lines(&out),
        ["configmap/a", "deployment.apps/web"],
        "deploy,svc,cm with -l app=web (the service has no labels)"
    );
}

#[test]
fn get_all_namespaces() {
    let server = Server::start();
    seed(&server.api());
    let kubectl = server.kubectl();

    let out = kubectl.ok(&["get", "configmaps", "-A", "-l", "app=web"]);
    let rows = table_rows(&out);
    assert_eq!(rows[0], ["NAMESPACE", "NAME", "DATA", "AGE"], "{out}");
    let mut found: Vec<(String, String)> = rows[1..].iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    found.sort();
    assert_eq!(found, [("other".to_string(), "c".to_string()), ("shop".to_string(), "a".to_string())], "{out}");

    let out = kubectl.ok(&["get", "namespaces", "-o", "name"]);
    for ns in ["namespace/default", "namespace/shop", "namespace/other", "namespace/kube-system"] {
        assert!(out.lines().any(|l| l.trim() == ns), "no {ns}:\n{out}");
    }
    let l = kubectl.json(&["get", "deployments", "-A"]);
    let items = l["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{l}");
    assert_eq!(items[0]["metadata"]["namespace"], "shop");
}

#[test]
fn get_watch_sees_later_changes() {
    let server = Server::start();
    let api = server.api();
    seed(&api);
    let kubectl = server.kubectl();

    let mut watch = kubectl.spawn_lines(&["get", "configmaps", "-n", "shop", "-l", "app", "-w"]);
    watch.wait_for("with the header", Duration::from_secs(60), |l| {
        l.split_whitespace().collect::<Vec<_>>() == ["NAME", "DATA", "AGE"]
    });
    watch.wait_for("for the existing configmap a", Duration::from_secs(30), |l| {
        l.split_whitespace().next() == Some("a")
    });

    // A new object appears.
    api.create("/api/v1/namespaces/shop/configmaps", &configmap("late", json!({"app": "late"}), json!({"x": "1"})));
    watch.wait_for("for the new configmap late", Duration::from_secs(30), |l| {
        l.split_whitespace().next() == Some("late")
    });

    // A modification shows the new DATA count.
    let mut a = api.get_json("/api/v1/namespaces/shop/configmaps/a");
    a["data"]["k2"] = json!("2");
    a["data"]["k3"] = json!("3");
    api.put_json("/api/v1/namespaces/shop/configmaps/a", &a).expect(200);
    watch.wait_for("for a with DATA 3", Duration::from_secs(30), |l| {
        let cells: Vec<&str> = l.split_whitespace().collect();
        cells.first() == Some(&"a") && cells.get(1) == Some(&"3")
    });

    // An object outside the selector is not shown.
    api.create("/api/v1/namespaces/shop/configmaps", &configmap("unlabelled", json!({}), json!({})));
    api.create("/api/v1/namespaces/shop/configmaps", &configmap("marker", json!({"app": "m"}), json!({})));
    watch.wait_for("for marker", Duration::from_secs(30), |l| l.split_whitespace().next() == Some("marker"));
    let headers = watch.seen.iter().filter(|l| l.split_whitespace().next() == Some("NAME")).count();
    assert_eq!(headers, 1, "the header is printed once:\n{}", watch.seen.join("\n"));
    assert!(
        !watch.seen.iter().any(|l| l.starts_with("unlabelled")),
        "watch with -l app showed an unlabelled object:\n{}",
        watch.seen.join("\n")
    );
}
