//! Issue 3 end to end: Services' endpoints, Jobs, DaemonSets, CronJobs, scheduling failures and
//! namespace deletion on hollow nodes, with the real kubectl, inside a lab network namespace.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::lab::Lab;
use serde_json::Value;
use testkit::eventually_blocking;

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn pod_ips(lab: &Lab, selector: &str) -> BTreeSet<String> {
    items(&lab.json(&["get", "pods", "-l", selector]))
        .iter()
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
        .filter(|p| {
            p.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
        })
        .filter_map(|p| p.pointer("/status/podIP").and_then(Value::as_str).map(str::to_string))
        .collect()
}

fn endpoint_ips(lab: &Lab, svc: &str) -> BTreeSet<String> {
    let ep = lab.json(&["get", "endpoints", svc]);
    ep["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["ip"].as_str().map(str::to_string))
        .collect()
}

fn slice_ips(lab: &Lab, svc: &str) -> BTreeSet<String> {
    let label = format!("kubernetes.io/service-name={svc}");
    items(&lab.json(&["get", "endpointslices", "-l", &label]))
        .iter()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .filter(|e| e.pointer("/conditions/ready").and_then(Value::as_bool).unwrap_or(false))
        .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

#[test]
fn endpoints_and_slices_list_exactly_the_ready_pods() {
    let mut lab = Lab::start(&[]);
    lab.start_agents("node", 2, &[]);
    lab.wait_ready_nodes(2);
    lab.apply(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 3
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: "busybox:1.36", command: ["sleep", "3600"], ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: api}
  ports: [{port: 80, targetPort: http}]
"#,
    );
    lab.k(&["rollout", "status", "deploy/api", "--timeout=120s"]);
    let want = eventually_blocking("three ready pod IPs", Duration::from_secs(30), || {
        let ips = pod_ips(&lab, "app=api");
        (ips.len() == 3).then_some(ips)
    });
    eventually_blocking("Endpoints = ready pods", Duration::from_secs(30), || {
        (endpoint_ips(&lab, "api") == want).then_some(())
    });
    eventually_blocking("EndpointSlices = ready pods", Duration::from_secs(30), || {
        (slice_ips(&lab, "api") == want).then_some(())
    });
    let ep = lab.json(&["get", "endpoints", "api"]);
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], 8080, "named targetPort resolved to the container port");

    // Scale down: the endpoints follow.
    lab.k(&["scale", "deploy/api", "--replicas=1"]);
    let want = eventually_blocking("one ready pod", Duration::from_secs(60), || {
        let ips = pod_ips(&lab, "app=api");
        (ips.len() == 1 && items(&lab.json(&["get", "pods", "-l", "app=api"])).len() == 1).then_some(ips)
    });
    eventually_blocking("Endpoints follow the scale-down", Duration::from_secs(30), || {
        (endpoint_ips(&lab, "api") == want).then_some(())
    });
    eventually_blocking("slices follow the scale-down", Duration::from_secs(30), || {
        (slice_ips(&lab, "api") == want).then_some(())
    });
}

#[test]
fn jobs_complete_or_fail_at_the_backoff_limit() {
    let mut lab = Lab::start(&[]);
    lab.start_agents("node", 2, &["--fake-pod-run-seconds", "1"]);
    lab.wait_ready_nodes(2);
    lab.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: three}
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: "busybox:1.36", command: ["true"]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: broken}
spec:
  backoffLimit: 2
  template:
    metadata:
      annotations: {skiff.io/fake-exit-code: "3"}
    spec:
      restartPolicy: Never
      containers: [{name: c, image: "busybox:1.36", command: ["false"]}]
"#,
    );
    let mut max_active = 0;
    let job = eventually_blocking("job three Complete", Duration::from_secs(90), || {
        let j = lab.json(&["get", "job", "three"]);
        max_active = max_active.max(j.pointer("/status/active").and_then(Value::as_i64).unwrap_or(0));
        let complete = j
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Complete" && c["status"] == "True"));
        complete.then_some(j)
    });
    assert_eq!(job["status"]["succeeded"], 3);
    assert!(max_active <= 2, "never more than parallelism=2 active, saw {max_active}");
    let succeeded = items(&lab.json(&["get", "pods", "-l", "job-name=three"]))
        .iter()
        .filter(|p| p["status"]["phase"] == "Succeeded")
        .count();
    assert_eq!(succeeded, 3, "three pods ran to completion");

    let broken = eventually_blocking("job broken Failed", Duration::from_secs(120), || {
        let j = lab.json(&["get", "job", "broken"]);
        let failed = j
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Failed" && c["status"] == "True").cloned());
        failed.map(|c| (j, c))
    });
    assert_eq!(broken.1["reason"], "BackoffLimitExceeded");
    assert_eq!(broken.0["status"]["failed"], 3, "backoffLimit 2 allows three attempts");
}

#[test]
fn daemonset_runs_one_pod_per_eligible_node_and_follows_new_nodes() {
    let mut lab = Lab::start(&[]);
    lab.start_agents("worker", 2, &["--node-labels", "role=worker"]);
    lab.start_agents("infra", 1, &["--node-labels", "role=infra"]);
    lab.wait_ready_nodes(3);
    lab.apply(
        r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      nodeSelector: {role: worker}
      containers: [{name: a, image: "busybox:1.36", command: ["sleep", "3600"]}]
"#,
    );
    let nodes_with_pods = |lab: &Lab| -> BTreeSet<String> {
        items(&lab.json(&["get", "pods", "-l", "app=agent"]))
            .iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_string))
            .collect()
    };
    let want: BTreeSet<String> = ["worker-0", "worker-1"].iter().map(|s| s.to_string()).collect();
    eventually_blocking("a pod on each worker, none on infra", Duration::from_secs(60), || {
        (nodes_with_pods(&lab) == want && items(&lab.json(&["get", "pods", "-l", "app=agent"])).len() == 2)
            .then_some(())
    });

    lab.start_agents("late", 1, &["--node-labels", "role=worker"]);
    lab.wait_ready_nodes(4);
    let want: BTreeSet<String> = ["worker-0", "worker-1", "late-0"].iter().map(|s| s.to_string()).collect();
    eventually_blocking("the new node gets a pod", Duration::from_secs(60), || {
        (nodes_with_pods(&lab) == want).then_some(())
    });
    let ds = lab.json(&["get", "ds", "agent"]);
    assert_eq!(ds["status"]["desiredNumberScheduled"], 3);
}

#[test]
fn cronjob_creates_a_job_within_70s_and_keeps_its_history_limits() {
    let mut lab = Lab::start(&[]);
    lab.start_agents("node", 1, &["--fake-pod-run-seconds", "1"]);
    lab.wait_ready_nodes(1);
    lab.apply(
        r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "*/1 * * * *"
  successfulJobsHistoryLimit: 0
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: "busybox:1.36", command: ["date"]}]
"#,
    );
    let job = eventually_blocking("a Job from the CronJob", Duration::from_secs(75), || {
        items(&lab.json(&["get", "jobs"]))
            .into_iter()
            .find(|j| j.pointer("/metadata/ownerReferences/0/name").and_then(Value::as_str) == Some("tick"))
    });
    let name = job["metadata"]["name"].as_str().unwrap_or("").to_string();
    assert!(name.starts_with("tick-"), "job name {name}");
    // successfulJobsHistoryLimit 0: once it succeeds the CronJob removes it.
    eventually_blocking("the finished Job removed by the history limit", Duration::from_secs(60), || {
        let cj = lab.json(&["get", "cronjob", "tick"]);
        let gone = !lab.kubectl(&["get", "job", &name]).success();
        (gone && cj.pointer("/status/lastSuccessfulTime").is_some()).then_some(())
    });
}

#[test]
fn unschedulable_pod_waits_with_an_event_until_a_big_enough_node_joins() {
    let mut lab = Lab::start(&[]);
    lab.start_agents("small", 2, &["--fake-cpu", "2"]);
    lab.wait_ready_nodes(2);
    lab.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: big}
spec:
  containers: [{name: c, image: "busybox:1.36", command: ["sleep", "3600"], resources: {requests: {cpu: "8"}}}]
"#,
    );
    let event = eventually_blocking("a FailedScheduling event", Duration::from_secs(30), || {
        items(&lab.json(&["get", "events", "--field-selector", "involvedObject.name=big"]))
            .into_iter()
            .find(|e| e["reason"] == "FailedScheduling")
    });
    let msg = event["message"].as_str().unwrap_or("");
    assert!(msg.contains("Insufficient cpu"), "event says why: {msg}");
    assert_eq!(lab.json(&["get", "pod", "big"])["status"]["phase"], "Pending");
    let described = lab.k(&["describe", "pod", "big"]);
    assert!(described.contains("FailedScheduling"), "describe shows the event:\n{described}");

    lab.start_agents("large", 1, &["--fake-cpu", "16"]);
    let pod = eventually_blocking("the pod scheduled onto the big node", Duration::from_secs(60), || {
        let p = lab.json(&["get", "pod", "big"]);
        (p["status"]["phase"] == "Running").then_some(p)
    });
    assert_eq!(pod["spec"]["nodeName"], "large-0");
}

#[test]
fn deleting_a_namespace_removes_everything_in_it_then_the_namespace() {
    let mut lab = Lab::start(&[]);
    lab.start_agents("node", 1, &[]);
    lab.wait_ready_nodes(1);
    lab.apply(
        r#"
apiVersion: v1
kind: Namespace
metadata: {name: doomed}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: doomed}
spec:
  replicas: 2
  selector: {matchLabels: {app: d}}
  template:
    metadata: {labels: {app: d}}
    spec:
      containers: [{name: c, image: "busybox:1.36", command: ["sleep", "3600"]}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm, namespace: doomed}
data: {a: b}
---
apiVersion: v1
kind: Secret
metadata: {name: s, namespace: doomed}
data: {a: Yg==}
"#,
    );
    lab.k(&["-n", "doomed", "rollout", "status", "deploy/d", "--timeout=120s"]);
    lab.k(&["delete", "namespace", "doomed", "--wait=false"]);
    eventually_blocking("the namespace gone", Duration::from_secs(90), || {
        (!lab.kubectl(&["get", "namespace", "doomed"]).success()).then_some(())
    });
    for kind in ["pods", "deployments", "replicasets", "configmaps", "secrets"] {
        let left = items(&lab.json(&["get", kind, "-n", "doomed"]));
        assert!(left.is_empty(), "{kind} left in the deleted namespace: {left:?}");
    }
}
