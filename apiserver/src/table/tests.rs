//! Data-driven tests: columns per kind, a sample row per kind, pod status reasons, ages.

use super::age::{human_duration, parse_rfc3339};
use super::{column_definitions, row_cells};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 2024-01-10T00:00:00Z.
const NOW_SECS: u64 = 1_704_844_800;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

fn col_names(kind: &str, priority: i64) -> Vec<String> {
    column_definitions(kind)
        .iter()
        .filter(|c| c["priority"] == json!(priority))
        .map(|c| c["name"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn columns_per_kind() {
    let cases: &[(&str, &str, &str)] = &[
        ("Pod", "Name,Ready,Status,Restarts,Age", "IP,Node,Nominated Node,Readiness Gates"),
        ("Service", "Name,Type,Cluster-IP,External-IP,Port(s),Age", "Selector"),
        ("Endpoints", "Name,Endpoints,Age", ""),
        ("Secret", "Name,Type,Data,Age", ""),
        ("ConfigMap", "Name,Data,Age", ""),
        ("Namespace", "Name,Status,Age", ""),
        ("Node", "Name,Status,Roles,Age,Version", "Internal-IP,External-IP,OS-Image,Kernel-Version,Container-Runtime"),
        ("Event", "Last Seen,Type,Reason,Object,Message", "Subobject,Source,First Seen,Count,Name"),
        ("ServiceAccount", "Name,Secrets,Age", ""),
        ("Deployment", "Name,Ready,Up-to-date,Available,Age", "Containers,Images,Selector"),
        ("ReplicaSet", "Name,Desired,Current,Ready,Age", "Containers,Images,Selector"),
        (
            "DaemonSet",
            "Name,Desired,Current,Ready,Up-to-date,Available,Node Selector,Age",
            "Containers,Images,Selector",
        ),
        ("Job", "Name,Status,Completions,Duration,Age", "Containers,Images,Selector"),
        ("CronJob", "Name,Schedule,Timezone,Suspend,Active,Last Schedule,Age", "Containers,Images,Selector"),
        ("EndpointSlice", "Name,AddressType,Ports,Endpoints,Age", ""),
        ("Lease", "Name,Holder,Age", ""),
        ("Widget", "Name,Age", ""),
    ];
    for (kind, normal, wide) in cases {
        assert_eq!(col_names(kind, 0).join(","), *normal, "{kind}");
        assert_eq!(col_names(kind, 1).join(","), *wide, "{kind}");
        for c in column_definitions(kind) {
            for key in ["name", "type", "format", "description", "priority"] {
                assert!(c.get(key).is_some(), "{kind} {key}");
            }
        }
    }
    let pod = column_definitions("Pod");
    assert_eq!(pod[0]["format"], json!("name"));
    assert_eq!(pod[3]["type"], json!("string"));
}

#[test]
fn sample_rows() {
    let created = json!({"name": "x", "namespace": "default", "creationTimestamp": "2024-01-09T23:55:00Z"});
    let meta = |extra: Value| {
        let mut m = created.clone();
        if let (Some(m), Some(e)) = (m.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        m
    };
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "Pod",
            json!({"metadata": created, "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
                "status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "a", "ready": true, "restartCount": 3, "state": {"running": {}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-01-09T23:58:00Z"}}},
                    {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {}}}]}}),
            json!(["x", "2/2", "Running", "3 (2m ago)", "5m", "10.0.0.1", "n1", "<none>", "<none>"]),
        ),
        (
            "Service",
            json!({"metadata": created, "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "nodePort": 30443, "protocol": "TCP"}],
                "selector": {"tier": "web", "app": "x"}}}),
            json!(["x", "NodePort", "10.96.0.10", "<none>", "80/TCP,443:30443/TCP", "5m", "app=x,tier=web"]),
        ),
        (
            "Service",
            json!({"metadata": created, "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.11"],
                "ports": [{"port": 53, "protocol": "UDP"}]}, "status": {"loadBalancer": {}}}),
            json!(["x", "LoadBalancer", "10.96.0.11", "<pending>", "53/UDP", "5m", "<none>"]),
        ),
        (
            "Service",
            json!({"metadata": created, "spec": {"type": "ExternalName", "externalName": "example.com"}}),
            json!(["x", "ExternalName", "<none>", "example.com", "<none>", "5m", "<none>"]),
        ),
        (
            "Endpoints",
            json!({"metadata": created, "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}, {"ip": "10.0.0.4"}],
                "ports": [{"port": 8080}]}]}),
            json!(["x", "10.0.0.1:8080,10.0.0.2:8080,[fd00::3]:8080 + 1 more...", "5m"]),
        ),
        ("Endpoints", json!({"metadata": created}), json!(["x", "<none>", "5m"])),
        (
            "EndpointSlice",
            json!({"metadata": created, "addressType": "IPv4", "ports": [{"port": 80}, {"name": "http"}, {}],
                "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]}),
            json!(["x", "IPv4", "80,http,*", "10.0.0.1,10.0.0.2", "5m"]),
        ),
        (
            "EndpointSlice",
            json!({"metadata": created, "addressType": "IPv4"}),
            json!(["x", "IPv4", "<unset>", "<unset>", "5m"]),
        ),
        (
            "Secret",
            json!({"metadata": created, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}),
            json!(["x", "kubernetes.io/tls", 2, "5m"]),
        ),
        ("ConfigMap", json!({"metadata": created, "data": {"a": "1"}, "binaryData": {"b": ""}}), json!(["x", 2, "5m"])),
        (
            "Namespace",
            json!({"metadata": created, "status": {"phase": "Terminating"}}),
            json!(["x", "Terminating", "5m"]),
        ),
        ("Namespace", json!({"metadata": created}), json!(["x", "Active", "5m"])),
        (
            "Node",
            json!({"metadata": meta(json!({"labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"}})),
                "spec": {"unschedulable": true},
                "status": {"conditions": [{"type": "Ready", "status": "True"}],
                    "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}],
                    "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian", "kernelVersion": "6.1", "containerRuntimeVersion": ""}}}),
            json!([
                "x",
                "Ready,SchedulingDisabled",
                "control-plane,worker",
                "5m",
                "v1.33.0",
                "192.168.1.2",
                "<none>",
                "Debian",
                "6.1",
                "<unknown>"
            ]),
        ),
        (
            "Node",
            json!({"metadata": created}),
            json!(["x", "Unknown", "<none>", "5m", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"]),
        ),
        (
            "Event",
            json!({"metadata": created, "type": "Normal", "reason": "Pulled", "message": " pulled \n",
                "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{web}"},
                "source": {"component": "kubelet", "host": "n1"},
                "firstTimestamp": "2024-01-09T23:00:00Z", "lastTimestamp": "2024-01-09T23:59:30Z", "count": 4}),
            json!([
                "30s",
                "Normal",
                "Pulled",
                "pod/web",
                "spec.containers{web}",
                "kubelet, n1",
                "pulled",
                "60m",
                4,
                "x"
            ]),
        ),
        (
            "Event",
            json!({"metadata": created, "type": "Warning", "reason": "X", "eventTime": "2024-01-09T23:59:50.123456Z",
                "reportingComponent": "scheduler", "involvedObject": {"kind": "Node"}}),
            json!(["9s", "Warning", "X", "node", "", "scheduler", "", "9s", 1, "x"]),
        ),
        ("ServiceAccount", json!({"metadata": created, "secrets": [{"name": "t"}]}), json!(["x", 1, "5m"])),
        (
            "Deployment",
            json!({"metadata": created, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}, {"name": "side", "image": "busybox"}]}}},
                "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}),
            json!(["x", "2/3", 3, 2, "5m", "web,side", "nginx:1.28,busybox", "app=web"]),
        ),
        ("Deployment", json!({"metadata": created}), json!(["x", "0/1", 0, 0, "5m", "", "", ""])),
        (
            "ReplicaSet",
            json!({"metadata": created, "spec": {"replicas": 2, "selector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]},
                "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}, "status": {"replicas": 2, "readyReplicas": 1}}),
            json!(["x", 2, 2, 1, "5m", "web", "nginx", "tier in (a,b)"]),
        ),
        (
            "DaemonSet",
            json!({"metadata": created, "spec": {"selector": {}, "template": {"spec": {"nodeSelector": {"os": "linux"}, "containers": [{"name": "agent", "image": "a:1"}]}}},
                "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2}}),
            json!(["x", 3, 3, 2, 3, 2, "os=linux", "5m", "agent", "a:1", "<none>"]),
        ),
        (
            "Job",
            json!({"metadata": created, "spec": {"completions": 3, "parallelism": 1, "selector": {"matchLabels": {"job": "x"}},
                "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
                "status": {"succeeded": 1, "startTime": "2024-01-09T23:56:00Z"}}),
            json!(["x", "Running", "1/3", "4m", "5m", "c", "busybox", "job=x"]),
        ),
        (
            "Job",
            json!({"metadata": created, "spec": {"parallelism": 3},
                "status": {"succeeded": 1, "startTime": "2024-01-09T23:56:00Z", "completionTime": "2024-01-09T23:56:42Z",
                "conditions": [{"type": "Complete", "status": "True"}]}}),
            json!(["x", "Complete", "1/1 of 3", "42s", "5m", "", "", "<none>"]),
        ),
        (
            "CronJob",
            json!({"metadata": created, "spec": {"schedule": "*/5 * * * *", "timeZone": "Etc/UTC", "suspend": false,
                "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}},
                "status": {"active": [{"name": "j"}], "lastScheduleTime": "2024-01-09T23:59:00Z"}}),
            json!(["x", "*/5 * * * *", "Etc/UTC", "False", 1, "60s", "5m", "c", "busybox", "<none>"]),
        ),
        (
            "CronJob",
            json!({"metadata": created, "spec": {"schedule": "@daily", "suspend": true}}),
            json!(["x", "@daily", "<none>", "True", 0, "<none>", "5m", "", "", "<none>"]),
        ),
        ("Lease", json!({"metadata": created, "spec": {"holderIdentity": "node-1"}}), json!(["x", "node-1", "5m"])),
        ("Lease", json!({"metadata": created, "spec": {"holderIdentity": null}}), json!(["x", "", "5m"])),
        ("Widget", json!({"metadata": created}), json!(["x", "5m"])),
    ];
    for (kind, obj, want) in cases {
        let cells = row_cells(kind, &obj, now());
        assert_eq!(Value::Array(cells.clone()), want, "{kind}: {obj}");
        assert_eq!(cells.len(), column_definitions(kind).len(), "{kind}");
    }
}

fn pod_status(pod: Value) -> (String, String, String) {
    let cells = row_cells("Pod", &pod, now());
    let cell = |i: usize| cells.get(i).and_then(Value::as_str).unwrap_or("?").to_string();
    (cell(1), cell(2), cell(3))
}

#[test]
fn pod_status_reasons() {
    let two = json!([{"name": "a"}, {"name": "b"}]);
    let cases: Vec<(&str, Value, (&str, &str, &str))> = vec![
        ("pending", json!({"spec": {"containers": two}, "status": {"phase": "Pending"}}), ("0/2", "Pending", "0")),
        (
            "gated",
            json!({"spec": {"containers": two}, "status": {"phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}}),
            ("0/2", "SchedulingGated", "0"),
        ),
        (
            "image pull",
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Pending",
                "containerStatuses": [{"name": "a", "state": {"waiting": {"reason": "ErrImagePull"}}}]}}),
            ("0/1", "ErrImagePull", "0"),
        ),
        (
            "crashloop",
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Running",
                "containerStatuses": [{"name": "a", "restartCount": 5, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-01-09T23:57:00Z"}}}]}}),
            ("0/1", "CrashLoopBackOff", "5 (3m ago)"),
        ),
        (
            "completed",
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Succeeded",
                "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}}),
            ("0/1", "Completed", "0"),
        ),
        (
            "completed but one running and ready",
            json!({"spec": {"containers": two}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                    {"name": "b", "ready": true, "state": {"running": {}}}]}}),
            ("1/2", "Running", "0"),
        ),
        (
            "completed but one running, pod not ready",
            json!({"spec": {"containers": two}, "status": {"phase": "Running",
                "containerStatuses": [
                    {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                    {"name": "b", "ready": true, "state": {"running": {}}}]}}),
            ("1/2", "NotReady", "0"),
        ),
        (
            "exit code",
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Failed",
                "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 2}}}]}}),
            ("0/1", "ExitCode:2", "0"),
        ),
        (
            "signal",
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Failed",
                "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}}),
            ("0/1", "Signal:9", "0"),
        ),
        (
            "init running",
            json!({"spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]},
                "status": {"phase": "Pending", "initContainerStatuses": [
                    {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
                    {"name": "i2", "state": {"running": {}}}],
                "containerStatuses": [{"name": "a", "state": {"waiting": {"reason": "PodInitializing"}}}]}}),
            ("0/1", "Init:1/2", "0"),
        ),
        (
            "init crashloop",
            json!({"spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "a"}]},
                "status": {"phase": "Pending", "initContainerStatuses": [
                    {"name": "i1", "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-01-09T23:59:00Z"}}}]}}),
            ("0/1", "Init:CrashLoopBackOff", "2 (60s ago)"),
        ),
        (
            "init failed",
            json!({"spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "a"}]},
                "status": {"phase": "Pending", "initContainerStatuses": [
                    {"name": "i1", "state": {"terminated": {"exitCode": 3}}}]}}),
            ("0/1", "Init:ExitCode:3", "0"),
        ),
        (
            "sidecar started",
            json!({"spec": {"initContainers": [{"name": "s", "restartPolicy": "Always"}], "containers": [{"name": "a"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
                    "initContainerStatuses": [{"name": "s", "started": true, "ready": true, "restartCount": 1, "state": {"running": {}}}],
                    "containerStatuses": [{"name": "a", "ready": true, "state": {"running": {}}}]}}),
            ("2/2", "Running", "1"),
        ),
        (
            "terminating",
            json!({"metadata": {"deletionTimestamp": "2024-01-09T23:59:59Z"}, "spec": {"containers": [{"name": "a"}]},
                "status": {"phase": "Running", "containerStatuses": [{"name": "a", "ready": true, "state": {"running": {}}}]}}),
            ("1/1", "Terminating", "0"),
        ),
        (
            "terminating but succeeded",
            json!({"metadata": {"deletionTimestamp": "2024-01-09T23:59:59Z"}, "spec": {"containers": [{"name": "a"}]},
                "status": {"phase": "Succeeded"}}),
            ("0/1", "Succeeded", "0"),
        ),
        (
            "node lost",
            json!({"metadata": {"deletionTimestamp": "2024-01-09T23:59:59Z"}, "spec": {"containers": [{"name": "a"}]},
                "status": {"phase": "Running", "reason": "NodeLost"}}),
            ("0/1", "Unknown", "0"),
        ),
        (
            "evicted",
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Failed", "reason": "Evicted"}}),
            ("0/1", "Evicted", "0"),
        ),
        ("empty object", json!({}), ("0/0", "", "0")),
        ("not an object", json!("pod"), ("0/0", "", "0")),
        (
            "wrong shapes",
            json!({"spec": {"containers": 5}, "status": {"containerStatuses": [1, null, {"state": null}]}}),
            ("0/0", "", "0"),
        ),
    ];
    for (name, pod, (ready, status, restarts)) in cases {
        let got = pod_status(pod);
        assert_eq!((got.0.as_str(), got.1.as_str(), got.2.as_str()), (ready, status, restarts), "{name}");
    }
}

#[test]
fn pod_wide_cells() {
    let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [], "readinessGates": [{"conditionType": "x/ok"}, {"conditionType": "x/other"}]},
        "status": {"podIPs": [{"ip": "fd00::1"}], "nominatedNodeName": "n2", "conditions": [{"type": "x/ok", "status": "True"}]}});
    let cells = row_cells("Pod", &pod, now());
    assert_eq!(Value::Array(cells), json!(["p", "0/0", "", "0", "<unknown>", "fd00::1", "<none>", "n2", "1/2"]));
}

#[test]
fn human_durations() {
    let cases: &[(i64, &str)] = &[
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (182, "3m2s"),
        (599, "9m59s"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 25 * 60, "3h25m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (51 * 3600, "2d3h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (800 * 86400, "2y70d"),
        (8 * 365 * 86400, "8y"),
        (20 * 365 * 86400, "20y"),
    ];
    for (secs, want) in cases {
        assert_eq!(human_duration(i128::from(*secs) * 1_000_000_000), *want, "{secs}");
    }
    assert_eq!(human_duration(1_500_000_000), "1s");
}

#[test]
fn timestamps() {
    let cases: &[(&str, Option<i128>)] = &[
        ("1970-01-01T00:00:00Z", Some(0)),
        ("2024-01-10T00:00:00Z", Some(i128::from(NOW_SECS) * 1_000_000_000)),
        ("2024-01-10T01:00:00+01:00", Some(i128::from(NOW_SECS) * 1_000_000_000)),
        ("2024-01-09T23:59:59.5Z", Some(i128::from(NOW_SECS) * 1_000_000_000 - 500_000_000)),
        ("2000-02-29T12:00:00Z", Some(951_825_600 * 1_000_000_000)),
        ("", None),
        ("2024-01-10", None),
        ("2024-13-10T00:00:00Z", None),
        ("2024-01-10T00:00:00", None),
        ("2024-01-10T00:00:00.Z", None),
        ("2024-01-10T00:00:00+0100", None),
        ("２024-01-10T00:00:00Z", None),
    ];
    for (input, want) in cases {
        assert_eq!(parse_rfc3339(input), *want, "{input}");
    }
    let pod = json!({"metadata": {"name": "p", "creationTimestamp": "2024-01-10T00:00:01.5Z"}});
    assert_eq!(row_cells("ConfigMap", &pod, now()), vec![json!("p"), json!(0), json!("0s")]);
    let pod = json!({"metadata": {"name": "p", "creationTimestamp": "2024-01-10T00:01:00Z"}});
    assert_eq!(row_cells("ConfigMap", &pod, now()), vec![json!("p"), json!(0), json!("<invalid>")]);
}

#[test]
fn never_panics_on_odd_shapes() {
    let shapes = [
        json!(null),
        json!(1),
        json!([]),
        json!({"metadata": 1, "spec": [], "status": "x"}),
        json!({"metadata": {"name": 5, "creationTimestamp": 7}, "spec": {"replicas": "3", "selector": 1, "ports": [1, {"port": "x"}]},
            "status": {"conditions": [1, {"type": 2}], "addresses": "a"}, "subsets": [{"addresses": 1, "ports": [{}]}],
            "series": {"count": "x"}, "involvedObject": 3, "data": [], "spec.jobTemplate": 1}),
    ];
    let kinds = [
        "Pod",
        "Service",
        "Endpoints",
        "Secret",
        "ConfigMap",
        "Namespace",
        "Node",
        "Event",
        "ServiceAccount",
        "Deployment",
        "ReplicaSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "EndpointSlice",
        "Lease",
        "Other",
    ];
    for kind in kinds {
        for obj in &shapes {
            assert_eq!(row_cells(kind, obj, now()).len(), column_definitions(kind).len(), "{kind} {obj}");
        }
    }
    assert_eq!(row_cells("Pod", &json!({}), UNIX_EPOCH - Duration::from_secs(10)).len(), 9);
}
