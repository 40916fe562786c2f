//! The Pod row: READY, the STATUS reason logic, RESTARTS with the last restart's age, and the
//! wide columns, as upstream's `printPod`.

use super::age::{since, time_of, Instant};
use super::json::{bool_at, int_at, list_at, present, s, str_at};
use serde_json::Value;

/// Upstream `node.NodeUnreachablePodReason`.
const NODE_UNREACHABLE_REASON: &str = "NodeLost";

fn is_restartable_init(container: Option<&Value>) -> bool {
    container.is_some_and(|c| str_at(c, &["restartPolicy"]) == "Always")
}

fn condition_status<'a>(pod: &'a Value, kind: &str) -> Option<&'a str> {
    list_at(pod, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == kind)
        .map(|c| str_at(c, &["status"]))
}

fn has_ready_condition(pod: &Value) -> bool {
    list_at(pod, &["status", "conditions"])
        .iter()
        .any(|c| str_at(c, &["type"]) == "Ready" && str_at(c, &["status"]) == "True")
}

/// The finish time of a container's last termination (None = Go's zero time).
fn last_termination(status: &Value) -> Option<Instant> {
    time_of(present(status, &["lastState", "terminated", "finishedAt"]))
}

fn terminated_reason(terminated: &Value, prefix: &str) -> String {
    let reason = str_at(terminated, &["reason"]);
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    let signal = int_at(terminated, &["signal"]);
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!("{prefix}ExitCode:{}", int_at(terminated, &["exitCode"]))
    }
}

/// The cells of a Pod row (always the wide set, as kube-apiserver prints tables).
pub fn row(pod: &Value, now: Instant) -> Vec<Value> {
    let init_specs = list_at(pod, &["spec", "initContainers"]);
    let init_spec = |name: &str| init_specs.iter().find(|c| str_at(c, &["name"]) == name);
    let restartable_inits = init_specs.iter().filter(|c| is_restartable_init(Some(c))).count();
    let total = list_at(pod, &["spec", "containers"]).len() + restartable_inits;

    let phase = str_at(pod, &["status", "phase"]);
    let status_reason = str_at(pod, &["status", "reason"]);
    let mut reason = if status_reason.is_empty() { phase } else { status_reason }.to_string();
    let gated = list_at(pod, &["status", "conditions"])
        .iter()
        .any(|c| str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated");
    if gated {
        reason = "SchedulingGated".to_string();
    }

    let mut restarts: i64 = 0;
    let mut restartable_restarts: i64 = 0;
    let mut ready: usize = 0;
    let mut last_restart: Option<Instant> = None;
    let mut last_restartable_restart: Option<Instant> = None;

    let init_statuses = list_at(pod, &["status", "initContainerStatuses"]);
    let mut initializing = false;
    for (i, status) in init_statuses.iter().enumerate() {
        let count = int_at(status, &["restartCount"]);
        restarts += count;
        let finished = last_termination(status);
        if present(status, &["lastState", "terminated"]).is_some() {
            last_restart = last_restart.max(finished);
        }
        let restartable = is_restartable_init(init_spec(str_at(status, &["name"])));
        if restartable {
            restartable_restarts += count;
            if present(status, &["lastState", "terminated"]).is_some() {
                last_restartable_restart = last_restartable_restart.max(finished);
            }
        }
        let terminated = present(status, &["state", "terminated"]);
        let waiting_reason = str_at(status, &["state", "waiting", "reason"]);
        let waiting = present(status, &["state", "waiting"]).is_some();
        if terminated.is_some_and(|t| int_at(t, &["exitCode"]) == 0) {
            continue;
        } else if restartable && bool_at(status, &["started"]) {
            if bool_at(status, &["ready"]) {
                ready += 1;
            }
            continue;
        } else if let Some(t) = terminated {
            reason = terminated_reason(t, "Init:");
        } else if waiting && !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_status(pod, "Initialized") == Some("True") {
        restarts = restartable_restarts;
        last_restart = last_restartable_restart;
        let mut has_running = false;
        for status in list_at(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int_at(status, &["restartCount"]);
            if present(status, &["lastState", "terminated"]).is_some() {
                last_restart = last_restart.max(last_termination(status));
            }
            let waiting_reason = str_at(status, &["state", "waiting", "reason"]);
            let terminated = present(status, &["state", "terminated"]);
            let running = present(status, &["state", "running"]).is_some();
            if present(status, &["state", "waiting"]).is_some() && !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = terminated_reason(t, "");
            } else if bool_at(status, &["ready"]) && running {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if has_ready_condition(pod) { "Running" } else { "NotReady" }.to_string();
        }
    }

    let deleting = present(pod, &["metadata", "deletionTimestamp"]).is_some();
    if deleting && status_reason == NODE_UNREACHABLE_REASON {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".to_string();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    vec![
        s(str_at(pod, &["metadata", "name"])),
        s(format!("{ready}/{total}")),
        s(reason),
        s(restarts_cell),
        s(since(time_of(pod.pointer("/metadata/creationTimestamp")), now)),
        s(or_none(pod_ip(pod))),
        s(or_none(str_at(pod, &["spec", "nodeName"]))),
        s(or_none(str_at(pod, &["status", "nominatedNodeName"]))),
        s(readiness_gates(pod)),
    ]
}

/// The first pod IP (v1 `podIP` wins over `podIPs[0]`, as the conversion to internal does).
fn pod_ip(pod: &Value) -> &str {
    let ip = str_at(pod, &["status", "podIP"]);
    if ip.is_empty() {
        pod.pointer("/status/podIPs/0/ip").and_then(Value::as_str).unwrap_or("")
    } else {
        ip
    }
}

fn or_none(v: &str) -> &str {
    if v.is_empty() {
        "<none>"
    } else {
        v
    }
}

fn readiness_gates(pod: &Value) -> String {
    let gates = list_at(pod, &["spec", "readinessGates"]);
    if gates.is_empty() {
        return "<none>".to_string();
    }
    let true_count =
        gates.iter().filter(|g| condition_status(pod, str_at(g, &["conditionType"])) == Some("True")).count();
    format!("{true_count}/{}", gates.len())
}
