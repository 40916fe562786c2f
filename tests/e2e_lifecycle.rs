//! The lifecycle of real pods beyond start and stop: probes (startup, readiness, liveness, with
//! exec, httpGet and tcpSocket checks), sidecars, lifecycle hooks and the termination order,
//! Service environment variables, and the Events the kubelet records. One lab node, real
//! kubectl; the order of what containers did is read from a hostPath file on the host.

mod common;

use std::fs;
use std::time::Duration;

use common::lab::{Lab, BUSYBOX};
use serde_json::Value;
use testkit::eventually_blocking;

fn status_of<'a>(pod: &'a Value, list: &str, name: &str) -> &'a Value {
    pod.pointer(&format!("/status/{list}"))
        .and_then(Value::as_array)
        .and_then(|l| l.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

fn condition(pod: &Value, ty: &str) -> String {
    let conds = pod.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    conds.iter().find(|c| c["type"] == ty).and_then(|c| c["status"].as_str()).unwrap_or("").to_string()
}

#[test]
fn probes_hooks_sidecars_service_variables_and_events() {
    let lab = Lab::start_with_node(&[]);
    lab.apply("apiVersion: v1\nkind: Service\nmetadata: {name: web-svc}\nspec: {ports: [{name: http, port: 8080}]}\n");
    let svc_ip = lab.k(&["get", "service", "web-svc", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(svc_ip.starts_with("10.96."), "cluster IP {svc_ip}");

    // Started once port 80 accepts (tcpSocket); ready only once /ready exists (httpGet); alive
    // while /tmp/alive exists (exec).
    lab.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: probed}}\nspec:\n  terminationGracePeriodSeconds: 1\n  \
         containers:\n  - name: web\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n    \
         command: [sh, -c, \"mkdir -p /www && touch /tmp/alive && exec httpd -f -p 80 -h /www\"]\n    \
         ports: [{{name: http, containerPort: 80}}]\n    \
         startupProbe: {{tcpSocket: {{port: http}}, periodSeconds: 1}}\n    \
         readinessProbe: {{httpGet: {{path: /ready, port: 80}}, periodSeconds: 1}}\n    \
         livenessProbe: {{exec: {{command: [test, -f, /tmp/alive]}}, periodSeconds: 1, failureThreshold: 2}}\n"
    ));
    let p = eventually_blocking("probed started but not ready", Duration::from_secs(60), || {
        let p = lab.json(&["get", "pod", "probed"]);
        let c = status_of(&p, "containerStatuses", "web");
        (c["started"] == true).then_some(p)
    });
    let web = status_of(&p, "containerStatuses", "web");
    assert_eq!(web["ready"], false, "the readiness probe (404) keeps it unready: {web}");
    assert_eq!(condition(&p, "Ready"), "False");
    assert_eq!(p.pointer("/status/phase").and_then(Value::as_str), Some("Running"));

    // The Service variables are in its environment (the `kubernetes` Service's too).
    let env = lab.k(&["exec", "probed", "--", "env"]);
    for want in [
        format!("WEB_SVC_SERVICE_HOST={svc_ip}"),
        "WEB_SVC_SERVICE_PORT=8080".to_string(),
        "WEB_SVC_SERVICE_PORT_HTTP=8080".to_string(),
        format!("WEB_SVC_PORT=tcp://{svc_ip}:8080"),
        "KUBERNETES_SERVICE_PORT=443".to_string(),
    ] {
        assert!(env.lines().any(|l| l == want), "{want} missing from the environment:\n{env}");
    }

    lab.k(&["exec", "probed", "--", "touch", "/www/ready"]);
    eventually_blocking("probed Ready", Duration::from_secs(30), || {
        let p = lab.json(&["get", "pod", "probed"]);
        (condition(&p, "Ready") == "True" && status_of(&p, "containerStatuses", "web")["ready"] == true).then_some(())
    });

    // A failing liveness probe restarts the container (the new one is alive again).
    lab.k(&["exec", "probed", "--", "rm", "/tmp/alive"]);
    let p = eventually_blocking("probed restarted by its liveness probe", Duration::from_secs(40), || {
        let p = lab.json(&["get", "pod", "probed"]);
        let c = status_of(&p, "containerStatuses", "web");
        (c["restartCount"].as_i64().unwrap_or(0) >= 1 && c["state"]["running"].is_object()).then_some(p)
    });
    let last = &status_of(&p, "containerStatuses", "web")["lastState"]["terminated"];
    assert!(last["exitCode"].as_i64().is_some_and(|c| c != 0), "killed, not exited 0: {last}");

    // The Events the kubelet recorded about it, as upstream words them.
    let events = eventually_blocking("the kubelet's events", Duration::from_secs(20), || {
        let list = lab.json(&["get", "events", "--field-selector", "involvedObject.name=probed"]);
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let reasons: Vec<String> = items.iter().filter_map(|e| e["reason"].as_str().map(str::to_string)).collect();
        ["Pulled", "Created", "Started", "Unhealthy", "Killing"]
            .iter()
            .all(|r| reasons.iter().any(|x| x == r))
            .then_some(items)
    });
    let unhealthy: Vec<&Value> = events.iter().filter(|e| e["reason"] == "Unhealthy").collect();
    assert!(
        unhealthy.iter().any(|e| e["message"].as_str().is_some_and(|m| m.starts_with("Liveness probe failed"))),
        "{unhealthy:?}"
    );
    let killing = events.iter().find(|e| e["reason"] == "Killing").expect("Killing");
    assert_eq!(killing["message"], "Container web failed liveness probe, will be restarted");
    assert_eq!(killing["involvedObject"]["fieldPath"], "spec.containers{web}");
    assert_eq!(killing["source"]["component"], "kubelet");
    assert_eq!(killing["source"]["host"], lab.node().name.as_str());

    // Init container, then the sidecar (started once its startup probe passes), then the app
    // container; on deletion the app container's preStop hook and SIGTERM, then the sidecar's.
    let log_dir = lab.dir().join("order");
    fs::create_dir_all(&log_dir).expect("log dir");
    let looping = |name: &str| {
        format!("trap 'echo {name}-stop >> /log/events; exit 0' TERM; while true; do sleep 1 & wait $!; done")
    };
    lab.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: ordered}}\nspec:\n  terminationGracePeriodSeconds: 10\n  \
         volumes: [{{name: log, hostPath: {{path: {dir}, type: Directory}}}}]\n  initContainers:\n  \
         - name: init\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n    \
         command: [sh, -c, \"echo init >> /log/events\"]\n    volumeMounts: [{{name: log, mountPath: /log}}]\n  \
         - name: side\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n    restartPolicy: Always\n    \
         command: [sh, -c, \"echo side-start >> /log/events; touch /tmp/up; {side}\"]\n    \
         startupProbe: {{exec: {{command: [test, -f, /tmp/up]}}, periodSeconds: 1}}\n    \
         volumeMounts: [{{name: log, mountPath: /log}}]\n  containers:\n  \
         - name: main\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n    \
         command: [sh, -c, \"echo main-start >> /log/events; {main}\"]\n    \
         lifecycle: {{preStop: {{exec: {{command: [sh, -c, \"echo main-prestop >> /log/events\"]}}}}}}\n    \
         volumeMounts: [{{name: log, mountPath: /log}}]\n",
        dir = log_dir.display(),
        side = looping("side"),
        main = looping("main"),
    ));
    let p = eventually_blocking("ordered running", Duration::from_secs(60), || {
        let p = lab.json(&["get", "pod", "ordered"]);
        (status_of(&p, "containerStatuses", "main")["state"]["running"].is_object()).then_some(p)
    });
    assert_eq!(condition(&p, "Initialized"), "True");
    let side = status_of(&p, "initContainerStatuses", "side");
    assert!(side["state"]["running"].is_object() && side["started"] == true, "sidecar: {side}");
    assert_eq!(p.pointer("/status/phase").and_then(Value::as_str), Some("Running"));
    lab.k(&["delete", "pod", "ordered", "--wait=true", "--timeout=60s"]);
    let order = fs::read_to_string(log_dir.join("events")).expect("events file");
    assert_eq!(
        order.lines().collect::<Vec<_>>(),
        ["init", "side-start", "main-start", "main-prestop", "main-stop", "side-stop"],
        "what the containers did, in order"
    );
}
