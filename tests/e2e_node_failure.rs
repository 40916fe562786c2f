//! Issue 3 end to end: a node whose heartbeats stop turns NotReady (Unknown), gets the
//! unreachable taint, and its Deployment pods are recreated on other nodes. Grace periods are set
//! short by flags. Runs in a lab network namespace.

mod common;

use std::time::Duration;

use common::lab::Lab;
use serde_json::Value;
use testkit::eventually_blocking;

#[test]
fn pods_of_a_silent_node_are_recreated_elsewhere() {
    let mut lab = Lab::start(&[
        "--node-monitor-grace-period",
        "6s",
        "--node-monitor-period",
        "1s",
        "--default-not-ready-toleration-seconds",
        "2",
        "--default-unreachable-toleration-seconds",
        "2",
    ]);
    lab.start_agents("stay", 2, &["--node-status-update-frequency", "2s"]);
    let doomed = lab.start_agents("gone", 1, &["--node-status-update-frequency", "2s"]);
    lab.wait_ready_nodes(3);
    lab.apply(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: "busybox:1.36", command: ["sleep", "3600"]}]
"#,
    );
    lab.k(&["rollout", "status", "deploy/web", "--timeout=120s"]);
    let on_gone = |lab: &Lab| -> usize {
        lab.json(&["get", "pods", "-l", "app=web"])["items"]
            .as_array()
            .map(|a| a.iter().filter(|p| p["spec"]["nodeName"] == "gone-0").count())
            .unwrap_or(0)
    };
    assert!(on_gone(&lab) >= 1, "the spreading scheduler put a pod on gone-0");

    lab.kill_agent(doomed);
    let node = eventually_blocking("gone-0 NotReady with the unreachable taint", Duration::from_secs(60), || {
        let n = lab.json(&["get", "node", "gone-0"]);
        let unknown = n
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] != "True"));
        let tainted = n.pointer("/spec/taints").and_then(Value::as_array).is_some_and(|ts| {
            ts.iter().any(|t| t["key"] == "node.kubernetes.io/unreachable" && t["effect"] == "NoExecute")
        });
        (unknown && tainted).then_some(n)
    });
    let nodes_out = lab.k(&["get", "nodes"]);
    assert!(nodes_out.lines().any(|l| l.starts_with("gone-0") && l.contains("NotReady")), "{nodes_out}\n{node}");

    eventually_blocking("pods recreated on the other nodes", Duration::from_secs(90), || {
        let pods = lab.json(&["get", "pods", "-l", "app=web"]);
        let live: Vec<&Value> = pods["items"]
            .as_array()
            .map(|a| a.iter().filter(|p| p.pointer("/metadata/deletionTimestamp").is_none()).collect())
            .unwrap_or_default();
        let elsewhere_running =
            live.iter().filter(|p| p["spec"]["nodeName"] != "gone-0" && p["status"]["phase"] == "Running").count();
        (elsewhere_running == 3).then_some(())
    });
}
