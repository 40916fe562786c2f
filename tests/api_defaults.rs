//! Defaulting as upstream does it: Pod (incl. DefaultTolerationSeconds and its flags),
//! Deployment, Secret stringData, Job selector generation, Service.

mod common;

use common::{b64, deployment, service, Server};
use serde_json::{json, Value};

const PODS: &str = "/api/v1/namespaces/default/pods";

fn container<'a>(obj: &'a Value, name: &str) -> &'a Value {
    obj["spec"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no container {name}: {obj}"))
}

fn toleration(key: &str, secs: i64) -> Value {
    json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": secs})
}

fn pod_with_images() -> Value {
    let images = [
        ("untagged", "nginx"),
        ("latest", "nginx:latest"),
        ("pinned", "busybox:1.36"),
        ("digest", "busybox@sha256:7b3ccabffc97de872a30dfd234fd972a66d247c8cfc69b0550f276481852627c"),
        ("registry-port", "localhost:5000/app"),
        ("registry-port-tag", "localhost:5000/app:v2"),
        ("explicit", "nginx:latest"),
    ];
    let containers: Vec<Value> = images
        .iter()
        .map(|(n, i)| {
            let mut c = json!({"name": n, "image": i});
            if *n == "explicit" {
                c["imagePullPolicy"] = json!("Never");
            }
            c
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "defaults"},
        "spec": {"containers": containers}
    })
}

#[test]
fn pod_defaults_match_upstream() {
    let server = Server::start();
    let api = server.api();
    let p = api.create(PODS, &pod_with_images());
    let spec = &p["spec"];
    assert_eq!(spec["restartPolicy"], "Always", "{p}");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst", "{p}");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30, "{p}");
    assert_eq!(spec["serviceAccountName"], "default", "{p}");
    assert_eq!(spec["schedulerName"], "default-scheduler", "{p}");
    assert_eq!(spec["enableServiceLinks"], true, "{p}");
    assert_eq!(spec["securityContext"], json!({}), "{p}");

    for (name, policy) in [
        ("untagged", "Always"),
        ("latest", "Always"),
        ("pinned", "IfNotPresent"),
        ("digest", "IfNotPresent"),
        ("registry-port", "Always"),
        ("registry-port-tag", "IfNotPresent"),
        ("explicit", "Never"),
    ] {
        let c = container(&p, name);
        assert_eq!(c["imagePullPolicy"], policy, "container {name} ({}): {c}", c["image"]);
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log", "{c}");
        assert_eq!(c["terminationMessagePolicy"], "File", "{c}");
    }

    let tols = spec["tolerations"].as_array().unwrap_or_else(|| panic!("no tolerations: {p}"));
    for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
        assert!(tols.contains(&toleration(key, 300)), "missing default toleration {key}: {tols:?}");
    }
    assert_eq!(tols.len(), 2, "{tols:?}");
    assert_eq!(p["status"]["phase"], "Pending", "{p}");
    assert_eq!(p["status"]["qosClass"], "BestEffort", "{p}");

    // The stored object is the defaulted one.
    let g = api.get_json(&format!("{PODS}/defaults"));
    assert_eq!(g["spec"], p["spec"]);

    // A pod that tolerates not-ready itself keeps its own toleration; only unreachable is added.
    let mut own = common::pod("own", json!({}));
    own["spec"]["tolerations"] = json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]);
    own["spec"]["restartPolicy"] = json!("Never");
    own["spec"]["serviceAccountName"] = json!("builder");
    let o = api.create(PODS, &own);
    let tols = o["spec"]["tolerations"].as_array().unwrap();
    assert_eq!(tols.len(), 2, "{tols:?}");
    assert!(tols.contains(&toleration("node.kubernetes.io/not-ready", 5)), "{tols:?}");
    assert!(tols.contains(&toleration("node.kubernetes.io/unreachable", 300)), "{tols:?}");
    assert_eq!(o["spec"]["restartPolicy"], "Never", "an explicit value is kept");
    assert_eq!(o["spec"]["serviceAccountName"], "builder", "an explicit value is kept");
}

#[test]
fn toleration_seconds_follow_the_flags() {
    let server = Server::start_with(&[
        "--default-not-ready-toleration-seconds",
        "17",
        "--default-unreachable-toleration-seconds",
        "19",
    ]);
    let api = server.api();
    let p = api.create(PODS, &common::pod("p", json!({})));
    let tols = p["spec"]["tolerations"].as_array().unwrap_or_else(|| panic!("no tolerations: {p}"));
    assert!(tols.contains(&toleration("node.kubernetes.io/not-ready", 17)), "{tols:?}");
    assert!(tols.contains(&toleration("node.kubernetes.io/unreachable", 19)), "{tols:?}");
    assert_eq!(tols.len(), 2, "{tols:?}");
}

#[test]
fn deployment_defaults_match_upstream() {
    let server = Server::start();
    let api = server.api();
    let mut d = deployment("web", 1);
    d["spec"].as_object_mut().unwrap().remove("replicas");
    let d = api.create("/apis/apps/v1/namespaces/default/deployments", &d);
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 1, "{d}");
    assert_eq!(spec["strategy"]["type"], "RollingUpdate", "{d}");
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], "25%", "{d}");
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxSurge"], "25%", "{d}");
    assert_eq!(spec["revisionHistoryLimit"], 10, "{d}");
    assert_eq!(spec["progressDeadlineSeconds"], 600, "{d}");
    // The pod template is defaulted like a pod.
    let t = &spec["template"]["spec"];
    assert_eq!(t["restartPolicy"], "Always", "{d}");
    assert_eq!(t["dnsPolicy"], "ClusterFirst", "{d}");
    assert_eq!(t["terminationGracePeriodSeconds"], 30, "{d}");
    assert_eq!(t["containers"][0]["imagePullPolicy"], "IfNotPresent", "{d}");
    assert_eq!(d["metadata"]["generation"], 1);

    // Recreate strategy gets no rollingUpdate.
    let mut r = deployment("re", 2);
    r["spec"]["strategy"] = json!({"type": "Recreate"});
    let r = api.create("/apis/apps/v1/namespaces/default/deployments", &r);
    assert_eq!(r["spec"]["strategy"], json!({"type": "Recreate"}), "{r}");
}

#[test]
fn secret_string_data_is_folded_into_data() {
    let server = Server::start();
    let api = server.api();
    use base64::Engine as _;
    let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let body = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"a": enc("from-data"), "both": enc("data-loses")},
        "stringData": {"b": "from stringData", "both": "stringData wins"}
    });
    let s = api.create("/api/v1/namespaces/default/secrets", &body);
    assert!(s.get("stringData").is_none(), "stringData is not stored: {s}");
    assert_eq!(s["type"], "Opaque", "{s}");
    assert_eq!(b64(&s["data"]["a"]), "from-data");
    assert_eq!(b64(&s["data"]["b"]), "from stringData");
    assert_eq!(b64(&s["data"]["both"]), "stringData wins");
    let g = api.get_json("/api/v1/namespaces/default/secrets/s");
    assert!(g.get("stringData").is_none(), "{g}");
    assert_eq!(g["data"], s["data"]);

    // On update too.
    let mut u = g.clone();
    u["stringData"] = json!({"c": "added"});
    let u = api.put_json("/api/v1/namespaces/default/secrets/s", &u).expect(200).json();
    assert!(u.get("stringData").is_none(), "{u}");
    assert_eq!(b64(&u["data"]["c"]), "added");
    assert_eq!(b64(&u["data"]["a"]), "from-data");
}

#[test]
fn job_gets_a_generated_selector_and_defaults() {
    let server = Server::start();
    let api = server.api();
    let body = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once"},
        "spec": {"template": {
            "metadata": {"labels": {"mine": "yes"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1.36", "command": ["true"]}]}
        }}
    });
    let j = api.create("/apis/batch/v1/namespaces/default/jobs", &body);
    let uid = j["metadata"]["uid"].as_str().expect("uid");
    assert_eq!(
        j["spec"]["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        "generated selector: {j}"
    );
    let labels = &j["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["batch.kubernetes.io/controller-uid"], uid, "{j}");
    assert_eq!(labels["controller-uid"], uid, "{j}");
    assert_eq!(labels["batch.kubernetes.io/job-name"], "once", "{j}");
    assert_eq!(labels["job-name"], "once", "{j}");
    assert_eq!(labels["mine"], "yes", "{j}");
    assert_eq!(j["spec"]["completions"], 1, "{j}");
    assert_eq!(j["spec"]["parallelism"], 1, "{j}");
    assert_eq!(j["spec"]["backoffLimit"], 6, "{j}");
    assert_eq!(j["spec"]["completionMode"], "NonIndexed", "{j}");
    assert_eq!(j["spec"]["suspend"], false, "{j}");
    // Job labels default to the template's (user) labels.
    assert_eq!(j["metadata"]["labels"]["mine"], "yes", "{j}");
}

#[test]
fn service_defaults_match_upstream() {
    let server = Server::start();
    let api = server.api();
    let s = api.create(
        "/api/v1/namespaces/default/services",
        &service(
            "web",
            json!({"ports": [{"name": "http", "port": 8080}, {"name": "named", "port": 81, "targetPort": "web"}]}),
        ),
    );
    let spec = &s["spec"];
    assert_eq!(spec["type"], "ClusterIP", "{s}");
    assert_eq!(spec["sessionAffinity"], "None", "{s}");
    assert_eq!(spec["ports"][0]["protocol"], "TCP", "{s}");
    assert_eq!(spec["ports"][0]["targetPort"], 8080, "targetPort defaults to port: {s}");
    assert_eq!(spec["ports"][1]["targetPort"], "web", "a named targetPort is kept: {s}");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster", "{s}");
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]), "{s}");
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack", "{s}");
    assert!(spec["ports"][0].get("nodePort").is_none(), "no nodePort on a ClusterIP Service: {s}");
}
