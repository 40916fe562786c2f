//! `kubectl apply` with the real kubectl: a multi-document file of every kind, a second apply
//! that the server must merge as a strategic merge patch, an unchanged apply, server-side apply,
//! `--dry-run=server`, and the example manifests in `manifests/`.

mod common;

use common::{b64, fixture, repo_root, Api, Server};
use serde_json::Value;

const NS: &str = "shop";

/// (kubectl's name for the object, API path) for every object in app-v1.yaml.
const OBJECTS: &[(&str, &str)] = &[
    ("namespace/shop", "/api/v1/namespaces/shop"),
    ("deployment.apps/web", "/apis/apps/v1/namespaces/shop/deployments/web"),
    ("service/web", "/api/v1/namespaces/shop/services/web"),
    ("secret/web-credentials", "/api/v1/namespaces/shop/secrets/web-credentials"),
    ("configmap/web-config", "/api/v1/namespaces/shop/configmaps/web-config"),
    ("job.batch/migrate", "/apis/batch/v1/namespaces/shop/jobs/migrate"),
    ("daemonset.apps/node-agent", "/apis/apps/v1/namespaces/shop/daemonsets/node-agent"),
    ("cronjob.batch/nightly", "/apis/batch/v1/namespaces/shop/cronjobs/nightly"),
];

fn path_str(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Assert kubectl printed `<name> <verb>` for every object.
#[track_caller]
fn assert_each_line(out: &str, verb: &str) {
    for (name, _) in OBJECTS {
        let want = format!("{name} {verb}");
        assert!(out.lines().any(|l| l.trim() == want), "expected a line {want:?} in kubectl output:\n{out}");
    }
}

/// Every object must carry the metadata the wire spec requires.
#[track_caller]
fn assert_server_metadata(obj: &Value, kind: &str, api_version: &str) {
    assert_eq!(obj["kind"], kind, "{obj}");
    assert_eq!(obj["apiVersion"], api_version, "{obj}");
    let md = &obj["metadata"];
    assert!(md["uid"].as_str().is_some_and(|u| u.len() >= 32), "uid: {md}");
    let rv = md["resourceVersion"].as_str().unwrap_or_else(|| panic!("resourceVersion must be a string: {md}"));
    assert!(rv.parse::<u64>().is_ok(), "resourceVersion must be an integer string: {rv}");
    let ts = md["creationTimestamp"].as_str().unwrap_or_default();
    assert!(
        ts.len() == 20 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
        "creationTimestamp must be RFC 3339 in UTC with whole seconds, got {ts:?}"
    );
    if kind != "Namespace" {
        assert_eq!(md["namespace"], NS, "{md}");
    }
}

/// Fail if any object key starts with `$` (patch directives must never be stored).
#[track_caller]
fn assert_no_directives(v: &Value, at: &str) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                assert!(!k.starts_with('$'), "patch directive {k:?} was stored at {at}: {v}");
                assert_no_directives(child, &format!("{at}.{k}"));
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                assert_no_directives(child, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

fn rv(obj: &Value) -> String {
    obj["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string()
}

fn last_applied(obj: &Value) -> Value {
    let s = obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap_or_else(|| panic!("no last-applied-configuration annotation: {obj}"));
    serde_json::from_str(s).expect("last-applied-configuration is JSON")
}

fn get(api: &Api, path: &str) -> Value {
    api.get_json(path)
}

#[test]
fn apply_multi_document_file_creates_every_kind() {
    let server = Server::start();
    let kubectl = server.kubectl();
    let api = server.api();
    let v1 = fixture("app-v1.yaml");

    let out = kubectl.ok(&["apply", "-f", path_str(&v1)]);
    assert_each_line(&out, "created");

    let ns = get(&api, "/api/v1/namespaces/shop");
    assert_server_metadata(&ns, "Namespace", "v1");
    assert_eq!(ns["metadata"]["labels"]["purpose"], "test", "{ns}");

    let deploy = get(&api, "/apis/apps/v1/namespaces/shop/deployments/web");
    assert_server_metadata(&deploy, "Deployment", "apps/v1");
    assert_eq!(deploy["metadata"]["generation"], 1, "{deploy}");
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(deploy["spec"]["selector"]["matchLabels"]["app"], "web");
    let c = &deploy["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["name"], "web");
    assert_eq!(c["image"], "busybox:1.36");
    assert_eq!(c["command"], serde_json::json!(["httpd", "-f", "-p", "8080"]));
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert_eq!(c["ports"][0]["name"], "http");
    assert_eq!(c["env"][0], serde_json::json!({"name": "MODE", "value": "production"}));
    // kubectl records what it applied, with the namespace it filled in.
    let la = last_applied(&deploy);
    assert_eq!(la["spec"]["replicas"], 2, "{la}");
    assert_eq!(la["metadata"]["namespace"], NS, "{la}");

    let svc = get(&api, "/api/v1/namespaces/shop/services/web");
    assert_server_metadata(&svc, "Service", "v1");
    assert_eq!(svc["spec"]["selector"]["app"], "web");
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);

    let secret = get(&api, "/api/v1/namespaces/shop/secrets/web-credentials");
    assert_server_metadata(&secret, "Secret", "v1");
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(b64(&secret["data"]["username"]), "admin", "{secret}");
    assert_eq!(b64(&secret["data"]["password"]), "s3cr3t: with colon", "{secret}");

    let cm = get(&api, "/api/v1/namespaces/shop/configmaps/web-config");
    assert_server_metadata(&cm, "ConfigMap", "v1");
    assert_eq!(cm["data"]["greeting"], "hello");
    // A quoted YAML "yes" is the string "yes", never a boolean.
    assert_eq!(cm["data"]["enabled"], "yes");
    assert_eq!(cm["data"]["config.ini"], "[server]\nport = 8080\n");

    let job = get(&api, "/apis/batch/v1/namespaces/shop/jobs/migrate");
    assert_server_metadata(&job, "Job", "batch/v1");
    assert_eq!(job["spec"]["backoffLimit"], 2);
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"],
        serde_json::json!(["sh", "-c", "echo migrated"])
    );

    let ds = get(&api, "/apis/apps/v1/namespaces/shop/daemonsets/node-agent");
    assert_server_metadata(&ds, "DaemonSet", "apps/v1");
    assert_eq!(ds["spec"]["selector"]["matchLabels"]["app"], "node-agent");
    assert_eq!(ds["spec"]["template"]["spec"]["containers"][0]["name"], "agent");

    let cj = get(&api, "/apis/batch/v1/namespaces/shop/cronjobs/nightly");
    assert_server_metadata(&cj, "CronJob", "batch/v1");
    assert_eq!(cj["spec"]["schedule"], "0 3 * * *");
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Forbid");
    assert_eq!(cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["name"], "report");

    // kubectl itself sees all of them.
    let names = kubectl.ok(&[
        "get",
        "deployments,services,secrets,configmaps,jobs,daemonsets,cronjobs",
        "-n",
        NS,
        "-o",
        "name",
    ]);
    for (name, _) in &OBJECTS[1..] {
        assert!(names.lines().any(|l| l.trim() == *name), "kubectl get -o name does not list {name}:\n{names}");
    }
}

#[test]
fn second_apply_is_a_strategic_merge_patch() {
    let server = Server::start();
    let kubectl = server.kubectl();
    let api = server.api();
    let path = "/apis/apps/v1/namespaces/shop/deployments/web";

    kubectl.ok(&["apply", "-f", path_str(&fixture("app-v1.yaml"))]);
    // A field that only lives on the server must survive the next apply.
    kubectl.ok(&["annotate", "deployment/web", "-n", NS, "team=blue"]);
    let before = get(&api, path);
    let gen_before = before["metadata"]["generation"].as_i64().expect("generation");

    let out = kubectl.ok(&["apply", "-f", path_str(&fixture("app-v2.yaml"))]);
    assert!(
        out.lines().any(|l| l.trim() == "deployment.apps/web configured"),
        "second apply must report the deployment as configured:\n{out}"
    );
    for (name, _) in OBJECTS.iter().filter(|(n, _)| *n != "deployment.apps/web") {
        let want = format!("{name} unchanged");
        assert!(out.lines().any(|l| l.trim() == want), "expected {want:?}:\n{out}");
    }

    let after = kubectl.json(&["get", "deployment", "web", "-n", NS]);
    assert_eq!(after["spec"]["replicas"], 3, "replicas: {after}");
    let containers = after["spec"]["template"]["spec"]["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "containers merged by name: {after}");
    let c = &containers[0];
    assert_eq!(c["name"], "web");
    assert_eq!(c["image"], "busybox:1.36", "image kept: {c}");
    assert_eq!(c["command"], serde_json::json!(["httpd", "-f", "-p", "8080"]), "command kept: {c}");
    assert_eq!(c["env"], serde_json::json!([{"name": "MODE", "value": "production"}]), "env kept: {c}");
    // Ports are merged by containerPort, in the order of the manifest ($setElementOrder).
    let ports: Vec<(i64, String)> = c["ports"]
        .as_array()
        .unwrap_or_else(|| panic!("ports missing: {c}"))
        .iter()
        .map(|p| (p["containerPort"].as_i64().unwrap_or_default(), p["name"].as_str().unwrap_or_default().to_string()))
        .collect();
    assert_eq!(
        ports,
        vec![(8080, "http".to_string()), (9090, "metrics".to_string())],
        "container ports after the strategic merge patch"
    );
    assert_eq!(
        after["metadata"]["annotations"]["team"], "blue",
        "a server-side annotation not in the manifest must survive apply: {after}"
    );
    assert_eq!(after["metadata"]["labels"]["app"], "web");
    assert_eq!(after["spec"]["selector"]["matchLabels"]["app"], "web");
    let la = last_applied(&after);
    assert_eq!(la["spec"]["replicas"], 3, "last-applied updated: {la}");
    assert_eq!(
        la["spec"]["template"]["spec"]["containers"][0]["ports"][1]["containerPort"], 9090,
        "last-applied updated: {la}"
    );
    assert!(
        after["metadata"]["generation"].as_i64().unwrap_or_default() > gen_before,
        "generation must bump on a spec change: before {gen_before}, after {after}"
    );
    assert_ne!(rv(&after), rv(&before), "resourceVersion must change");
    assert_no_directives(&after, "deployment");
    assert_no_directives(&get(&api, path), "deployment (API)");
}

#[test]
fn unchanged_apply_prints_unchanged_and_writes_nothing() {
    let server = Server::start();
    let kubectl = server.kubectl();
    let api = server.api();
    let v1 = fixture("app-v1.yaml");
    kubectl.ok(&["apply", "-f", path_str(&v1)]);
    let before: Vec<String> = OBJECTS.iter().map(|(_, p)| rv(&get(&api, p))).collect();

    let out = kubectl.ok(&["apply", "-f", path_str(&v1)]);
    assert_each_line(&out, "unchanged");

    let after: Vec<String> = OBJECTS.iter().map(|(_, p)| rv(&get(&api, p))).collect();
    assert_eq!(before, after, "an unchanged apply must not write any object");
}

#[test]
fn server_side_apply_creates_and_updates() {
    let server = Server::start();
    let kubectl = server.kubectl();
    let api = server.api();

    let out = kubectl.ok(&["apply", "--server-side", "-f", path_str(&fixture("app-v1.yaml"))]);
    assert_each_line(&out, "serverside-applied");
    for (_, p) in OBJECTS {
        get(&api, p);
    }
    let d = get(&api, "/apis/apps/v1/namespaces/shop/deployments/web");
    assert_eq!(d["spec"]["replicas"], 2);
    assert!(
        d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].is_null(),
        "server-side apply does not write the client-side annotation: {d}"
    );
    let secret = get(&api, "/api/v1/namespaces/shop/secrets/web-credentials");
    assert_eq!(b64(&secret["data"]["username"]), "admin", "{secret}");

    let out = kubectl.ok(&["apply", "--server-side", "-f", path_str(&fixture("app-v2.yaml"))]);
    assert!(out.lines().any(|l| l.trim() == "deployment.apps/web serverside-applied"), "{out}");
    let d2 = kubectl.json(&["get", "deployment", "web", "-n", NS]);
    assert_eq!(d2["spec"]["replicas"], 3, "{d2}");
    let ports = &d2["spec"]["template"]["spec"]["containers"][0]["ports"];
    assert_eq!(ports[0]["containerPort"], 8080, "{ports}");
    assert_eq!(ports[1]["containerPort"], 9090, "{ports}");
    assert_eq!(ports.as_array().map(Vec::len), Some(2), "{ports}");
    assert!(d2["metadata"]["generation"].as_i64() > d["metadata"]["generation"].as_i64(), "generation must bump: {d2}");
    assert_no_directives(&d2, "deployment");
}

#[test]
fn apply_dry_run_server_writes_nothing() {
    let server = Server::start();
    let kubectl = server.kubectl();
    let api = server.api();
    kubectl.ok(&["apply", "-f", path_str(&fixture("app-v1.yaml"))]);
    let deploy_path = "/apis/apps/v1/namespaces/shop/deployments/web";
    let before = get(&api, deploy_path);

    // A change to an existing object.
    let out = kubectl.ok(&["apply", "--dry-run=server", "-f", path_str(&fixture("app-v2.yaml"))]);
    assert!(out.lines().any(|l| l.trim() == "deployment.apps/web configured (server dry run)"), "{out}");
    let after = get(&api, deploy_path);
    assert_eq!(after["spec"]["replicas"], 2, "dry run must not change the object: {after}");
    assert_eq!(rv(&after), rv(&before), "dry run must not write");
    assert_eq!(after, before, "dry run must leave the stored object identical");

    // A new object.
    let file = server.dir().join("new-cm.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dry\n  namespace: shop\ndata:\n  k: v\n",
    )
    .unwrap();
    let out = kubectl.ok(&["apply", "--dry-run=server", "-f", path_str(&file)]);
    assert!(out.lines().any(|l| l.trim() == "configmap/dry created (server dry run)"), "{out}");
    api.get("/api/v1/namespaces/shop/configmaps/dry").expect_status(404, "NotFound");

    // The same request on the wire: dryRun=All answers with the object and stores nothing.
    let r = api
        .post_json(
            "/api/v1/namespaces/shop/configmaps?dryRun=All",
            &common::configmap("dry2", serde_json::json!({}), serde_json::json!({"k": "v"})),
        )
        .expect(201)
        .json();
    assert_eq!(r["metadata"]["name"], "dry2", "{r}");
    api.get("/api/v1/namespaces/shop/configmaps/dry2").expect_status(404, "NotFound");
}

#[test]
fn apply_secret_with_string_data() {
    let server = Server::start();
    let kubectl = server.kubectl();
    let api = server.api();
    let file = fixture("secret-stringdata.yaml");
    let path = "/api/v1/namespaces/default/secrets/plain";

    let out = kubectl.ok(&["apply", "-f", path_str(&file)]);
    assert_eq!(out.trim(), "secret/plain created");
    let s = get(&api, path);
    // stringData is write-only: merged into data (base64), never stored itself.
    assert_eq!(b64(&s["data"]["username"]), "admin", "{s}");
    assert_eq!(b64(&s["data"]["password"]), "s3cr3t: with colon", "{s}");
    assert_eq!(b64(&s["data"]["extra"]), "extra", "{s}");
    assert!(s.get("stringData").is_none(), "stringData must not be stored: {s}");

    // kubectl reports a re-applied stringData Secret as "configured" (it diffs stringData against
    // a live object that has none: kubernetes/kubernetes#87736), but the server sees an
    // identical result and must not write.
    let out = kubectl.ok(&["apply", "-f", path_str(&file)]);
    assert_eq!(out.trim(), "secret/plain configured");
    let again = get(&api, path);
    assert_eq!(rv(&again), rv(&s), "a no-op patch must not write: {again}");
    assert_eq!(again["data"], s["data"]);
    assert!(again.get("stringData").is_none(), "{again}");
}

#[test]
fn apply_rejects_a_misspelled_field() {
    let server = Server::start();
    let kubectl = server.kubectl();
    let api = server.api();
    let file = server.dir().join("typo.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\n  namespace: default\ndatta:\n  k: v\n",
    )
    .unwrap();
    // kubectl apply validates strictly (fieldValidation=Strict) by default.
    let out = kubectl.fails(&["apply", "-f", path_str(&file)]);
    assert!(out.stderr.contains("unknown field \"datta\""), "{}", out.stderr);
    api.get("/api/v1/namespaces/default/configmaps/typo").expect_status(404, "NotFound");
    // --validate=false sends fieldValidation=Ignore: created without the unknown field.
    let out = kubectl.ok(&["apply", "--validate=false", "-f", path_str(&file)]);
    assert_eq!(out.trim(), "configmap/typo created");
    let cm = get(&api, "/api/v1/namespaces/default/configmaps/typo");
    assert!(cm.get("datta").is_none() && cm.get("data").is_none(), "{cm}");
}

#[test]
fn example_manifests_apply_cleanly() {
    let server = Server::start();
    let kubectl = server.kubectl();
    let dir = repo_root().join("manifests");
    let out = kubectl.ok(&["apply", "-R", "-f", path_str(&dir)]);
    let created: Vec<&str> = out.lines().filter(|l| l.ends_with(" created")).collect();
    assert!(created.len() >= 13, "expected at least 13 example objects to be created, got {}:\n{out}", created.len());
    for kind in [
        "namespace/",
        "deployment.apps/",
        "service/",
        "secret/",
        "configmap/",
        "job.batch/",
        "daemonset.apps/",
        "cronjob.batch/",
        "replicaset.apps/",
        "pod/",
        "serviceaccount/",
        "lease.coordination.k8s.io/",
        "endpointslice.discovery.k8s.io/",
    ] {
        assert!(created.iter().any(|l| l.starts_with(kind)), "no {kind} object in manifests/ was created:\n{out}");
    }
    // Applying again changes nothing (kubectl always says "configured" for a Secret written
    // with stringData: kubernetes/kubernetes#87736).
    let again = kubectl.ok(&["apply", "-R", "-f", path_str(&dir)]);
    for line in again.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.ends_with(" unchanged") || line == "secret/web-credentials configured",
            "second apply of manifests/: {line:?}\n{again}"
        );
    }
}
