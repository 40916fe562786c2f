//! Rows of the workload kinds: Deployment, ReplicaSet, DaemonSet, Job and CronJob
//! (upstream `printDeployment`, `printReplicaSet`, `printDaemonSet`, `printJob`, `printCronJob`).

use super::age::{human_duration, since, time_of, Instant};
use super::json::{
    at, container_cells, format_label_selector, format_labels, i, int_at, list_at, map_at, n, opt_int_at, present, s,
    selector_string, str_at,
};
use serde_json::Value;

fn name(obj: &Value) -> Value {
    s(str_at(obj, &["metadata", "name"]))
}

fn age(obj: &Value, now: Instant) -> Value {
    s(since(time_of(at(obj, &["metadata", "creationTimestamp"])), now))
}

/// `spec.replicas`, defaulted to 1 as the apps/v1 defaulting does.
fn desired_replicas(obj: &Value) -> i64 {
    opt_int_at(obj, &["spec", "replicas"]).unwrap_or(1)
}

/// Containers, Images and Selector (FormatLabelSelector) of a pod-template workload.
fn wide(template_spec: Option<&Value>, selector: Option<&Value>) -> [Value; 3] {
    let (names, images) = container_cells(template_spec);
    [s(names), s(images), s(format_label_selector(selector))]
}

pub fn deployment(obj: &Value, now: Instant) -> Vec<Value> {
    let (names, images) = container_cells(at(obj, &["spec", "template", "spec"]));
    let selector = selector_string(at(obj, &["spec", "selector"])).unwrap_or_else(|| "<invalid>".to_string());
    vec![
        name(obj),
        s(format!("{}/{}", int_at(obj, &["status", "readyReplicas"]), desired_replicas(obj))),
        i(int_at(obj, &["status", "updatedReplicas"])),
        i(int_at(obj, &["status", "availableReplicas"])),
        age(obj, now),
        s(names),
        s(images),
        s(selector),
    ]
}

pub fn replica_set(obj: &Value, now: Instant) -> Vec<Value> {
    let mut cells = vec![
        name(obj),
        i(desired_replicas(obj)),
        i(int_at(obj, &["status", "replicas"])),
        i(int_at(obj, &["status", "readyReplicas"])),
        age(obj, now),
    ];
    cells.extend(wide(at(obj, &["spec", "template", "spec"]), at(obj, &["spec", "selector"])));
    cells
}

pub fn daemon_set(obj: &Value, now: Instant) -> Vec<Value> {
    let status = |k: &str| i(int_at(obj, &["status", k]));
    let mut cells = vec![
        name(obj),
        status("desiredNumberScheduled"),
        status("currentNumberScheduled"),
        status("numberReady"),
        status("updatedNumberScheduled"),
        status("numberAvailable"),
        s(format_labels(map_at(obj, &["spec", "template", "spec", "nodeSelector"]))),
        age(obj, now),
    ];
    cells.extend(wide(at(obj, &["spec", "template", "spec"]), at(obj, &["spec", "selector"])));
    cells
}

/// Upstream `hasJobCondition`: the first condition of the type decides.
fn has_job_condition(obj: &Value, kind: &str) -> bool {
    list_at(obj, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == kind)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

fn job_status(obj: &Value) -> &'static str {
    if has_job_condition(obj, "Complete") {
        "Complete"
    } else if has_job_condition(obj, "Failed") {
        "Failed"
    } else if present(obj, &["metadata", "deletionTimestamp"]).is_some() {
        "Terminating"
    } else if has_job_condition(obj, "Suspended") {
        "Suspended"
    } else if has_job_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

fn job_completions(obj: &Value) -> String {
    let succeeded = int_at(obj, &["status", "succeeded"]);
    match opt_int_at(obj, &["spec", "completions"]) {
        Some(completions) => format!("{succeeded}/{completions}"),
        None => match opt_int_at(obj, &["spec", "parallelism"]).unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    }
}

fn job_duration(obj: &Value, now: Instant) -> String {
    let Some(start) = time_of(present(obj, &["status", "startTime"])) else {
        return String::new();
    };
    match time_of(present(obj, &["status", "completionTime"])) {
        Some(end) => human_duration(end - start),
        None => human_duration(now - start),
    }
}

pub fn job(obj: &Value, now: Instant) -> Vec<Value> {
    let mut cells =
        vec![name(obj), s(job_status(obj)), s(job_completions(obj)), s(job_duration(obj, now)), age(obj, now)];
    cells.extend(wide(at(obj, &["spec", "template", "spec"]), at(obj, &["spec", "selector"])));
    cells
}

pub fn cron_job(obj: &Value, now: Instant) -> Vec<Value> {
    let last_schedule = match present(obj, &["status", "lastScheduleTime"]) {
        Some(t) => since(time_of(Some(t)), now),
        None => "<none>".to_string(),
    };
    let time_zone = present(obj, &["spec", "timeZone"]).and_then(Value::as_str).unwrap_or("<none>");
    // batch/v1 defaulting sets a missing `suspend` to false.
    let suspend = match at(obj, &["spec", "suspend"]).and_then(Value::as_bool) {
        Some(true) => "True",
        _ => "False",
    };
    let mut cells = vec![
        name(obj),
        s(str_at(obj, &["spec", "schedule"])),
        s(time_zone),
        s(suspend),
        n(list_at(obj, &["status", "active"]).len()),
        s(last_schedule),
        age(obj, now),
    ];
    let job_spec = at(obj, &["spec", "jobTemplate", "spec"]);
    cells.extend(wide(job_spec.and_then(|j| at(j, &["template", "spec"])), job_spec.and_then(|j| j.get("selector"))));
    cells
}
