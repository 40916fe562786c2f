//! Issue 3 end to end: Deployments on hollow nodes, driven by the real kubectl, in a lab
//! network namespace (server, agents and kubectl all inside it).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::lab::Lab;
use serde_json::Value;
use testkit::eventually_blocking;

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 6
  selector: {matchLabels: {app: web}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 1}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: busybox:1.36
        command: ["sleep", "3600"]
        resources: {requests: {cpu: 100m, memory: 16Mi}}
"#;

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// The pods of `selector` that are not being deleted.
fn live_pods(lab: &Lab, selector: &str) -> Vec<Value> {
    let pods = lab.json(&["get", "pods", "-l", selector]);
    pods["items"]
        .as_array()
        .map(|a| a.iter().filter(|p| p.pointer("/metadata/deletionTimestamp").is_none()).cloned().collect())
        .unwrap_or_default()
}

/// Follows `kubectl get pods -w` and checks the rolling-update bounds at every event.
struct RolloutWatch {
    stream: common::LineStream,
}

#[test]
fn deployment_spreads_rolls_out_rolls_back_scales_and_is_deleted() {
    let mut lab = Lab::start(&[]);
    lab.start_agents("node", 3, &[]);
    lab.wait_ready_nodes(3);

    lab.apply(WEB);
    lab.k(&["rollout", "status", "deploy/web", "--timeout=120s"]);
    let pods = live_pods(&lab, "app=web");
    assert_eq!(pods.len(), 6, "six pods after the rollout");
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for p in &pods {
        assert!(is_ready(p), "pod {} is not Ready", p["metadata"]["name"]);
        assert_eq!(p["status"]["phase"], "Running");
        let node = p["spec"]["nodeName"].as_str().unwrap_or("").to_string();
        *per_node.entry(node).or_default() += 1;
    }
    assert_eq!(per_node.len(), 3, "pods spread over all three nodes: {per_node:?}");
    assert!(per_node.values().all(|&n| n == 2), "two pods per node: {per_node:?}");

    // Image change: watch the pods while it rolls out and check the bounds at every step.
    let mut watch = RolloutWatch {
        stream: lab.kubectl_handle().spawn_lines(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-w",
            "-o",
            "json",
            "--output-watch-events",
        ]),
    };
    lab.k(&["set", "image", "deploy/web", "web=busybox:1.37"]);
    lab.k(&["rollout", "status", "deploy/web", "--timeout=120s"]);
    let steps = watch.check_bounds(6, 1, 1);
    assert!(steps > 6, "the watch saw the rollout ({steps} events)");
    let images: BTreeSet<String> = live_pods(&lab, "app=web")
        .iter()
        .map(|p| p["spec"]["containers"][0]["image"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(images, BTreeSet::from(["busybox:1.37".to_string()]));
    let rs = lab.json(&["get", "rs", "-l", "app=web"]);
    assert_eq!(rs["items"].as_array().map(Vec::len), Some(2), "old and new ReplicaSet kept as history");

    // Undo goes back to the first template.
    lab.k(&["rollout", "undo", "deploy/web"]);
    lab.k(&["rollout", "status", "deploy/web", "--timeout=120s"]);
    let deploy = lab.json(&["get", "deploy", "web"]);
    assert_eq!(deploy["spec"]["template"]["spec"]["containers"][0]["image"], "busybox:1.36");
    eventually_blocking("only 1.36 pods", Duration::from_secs(60), || {
        let pods = live_pods(&lab, "app=web");
        (pods.len() == 6 && pods.iter().all(|p| p["spec"]["containers"][0]["image"] == "busybox:1.36")).then_some(())
    });

    // Scale up and down.
    lab.k(&["scale", "deploy/web", "--replicas=9"]);
    lab.k(&["rollout", "status", "deploy/web", "--timeout=120s"]);
    assert_eq!(live_pods(&lab, "app=web").iter().filter(|p| is_ready(p)).count(), 9);
    lab.k(&["scale", "deploy/web", "--replicas=2"]);
    eventually_blocking("two pods after scaling down", Duration::from_secs(60), || {
        (live_pods(&lab, "app=web").len() == 2).then_some(())
    });

    // Deleting the Deployment removes its ReplicaSets and pods.
    lab.k(&["delete", "deploy/web"]);
    eventually_blocking("ReplicaSets and pods gone", Duration::from_secs(60), || {
        let rs = lab.json(&["get", "rs", "-l", "app=web"]);
        let pods = lab.json(&["get", "pods", "-l", "app=web"]);
        (rs["items"].as_array().is_some_and(Vec::is_empty) && pods["items"].as_array().is_some_and(Vec::is_empty))
            .then_some(())
    });
    lab.kill_agent(0);
}

impl RolloutWatch {
    /// Reads the events seen so far and checks, after each, that at most `replicas + surge`
    /// pods exist and at least `replicas - unavailable` are ready. Returns the number of events.
    fn check_bounds(&mut self, replicas: usize, surge: usize, unavailable: usize) -> usize {
        let mut pods: BTreeMap<String, (bool, bool)> = BTreeMap::new();
        let mut seen = 0;
        let text = self.stream.drain(Duration::from_secs(3));
        for event in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
            let Ok(event) = event else { break };
            seen += 1;
            let obj = &event["object"];
            let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
            let deleting = obj.pointer("/metadata/deletionTimestamp").is_some();
            if event["type"] == "DELETED" || deleting {
                pods.remove(&name);
            } else {
                pods.insert(name, (true, is_ready(obj)));
            }
            // The initial listing arrives first; check once the whole set is known.
            if seen > replicas {
                let total = pods.len();
                let ready = pods.values().filter(|(_, r)| *r).count();
                assert!(total <= replicas + surge, "{total} pods exist, more than {replicas} + maxSurge {surge}");
                assert!(
                    ready >= replicas - unavailable,
                    "only {ready} pods ready, fewer than {replicas} - maxUnavailable {unavailable}"
                );
            }
        }
        seen
    }
}
