//! Job and CronJob defaults (`pkg/apis/batch/v1/defaults.go`) and the Job strategy's selector
//! generation. The caller must set `metadata.uid` before defaulting a new Job: the generated selector
//! is `batch.kubernetes.io/controller-uid=<uid>`. Without a uid no selector is generated (validation
//! then reports `metadata.uid`).

use super::pod;
use crate::admission::json::{self, default, default_str, each_mut};
use serde_json::{json, Map, Value};

pub fn job(obj: &mut Value) {
    let name = json::at(obj, &["metadata", "name"]).and_then(Value::as_str).unwrap_or("").to_string();
    let uid = json::at(obj, &["metadata", "uid"]).and_then(Value::as_str).unwrap_or("").to_string();
    let Some(spec) = json::ensure_obj(obj, "spec") else { return };
    if json::present(spec, "completions").is_none() && json::present(spec, "parallelism").is_none() {
        default(spec, "completions", json!(1));
    }
    default(spec, "parallelism", json!(1));
    let backoff = if json::present(spec, "backoffLimitPerIndex").is_some() { i64::from(i32::MAX) } else { 6 };
    default(spec, "backoffLimit", json!(backoff));
    default_str(spec, "completionMode", "NonIndexed");
    default(spec, "suspend", json!(false));
    let has_pfp = json::present(spec, "podFailurePolicy").is_some();
    default_str(spec, "podReplacementPolicy", if has_pfp { "Failed" } else { "TerminatingOrFailed" });
    if let Some(pfp) = spec.get_mut("podFailurePolicy") {
        for rule in each_mut(pfp, "rules") {
            for cond in each_mut(rule, "onPodConditions") {
                default_str(cond, "status", "True");
            }
        }
    }
    if let Some(t) = json::ensure_obj(spec, "template") {
        pod::template(t);
    }
    let manual = json::boolean(spec, "manualSelector") == Some(true);
    if !manual && !uid.is_empty() {
        generate_selector(spec, &name, &uid);
    }
    // Upstream aliases the template's label map into an unlabelled Job, so the generated labels show too.
    let template_labels = json::at(spec, &["template", "metadata", "labels"]).filter(|l| l.is_object()).cloned();
    if let (Some(labels), Some(meta)) = (template_labels, json::ensure_obj(obj, "metadata")) {
        if json::obj(meta, "labels").is_none_or(Map::is_empty) {
            if let Some(m) = meta.as_object_mut() {
                m.insert("labels".into(), labels);
            }
        }
    }
}

/// Labels every Job's pods carry, and the selector key matching on the uid.
pub const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
pub const LEGACY_CONTROLLER_UID: &str = "controller-uid";
const JOB_NAME: &str = "batch.kubernetes.io/job-name";
const LEGACY_JOB_NAME: &str = "job-name";

fn generate_selector(spec: &mut Value, name: &str, uid: &str) {
    if let Some(labels) = json::ensure_obj(spec, "template")
        .and_then(|t| json::ensure_obj(t, "metadata"))
        .and_then(|m| json::ensure_obj(m, "labels"))
        .and_then(Value::as_object_mut)
    {
        for (k, v) in [(LEGACY_JOB_NAME, name), (JOB_NAME, name), (LEGACY_CONTROLLER_UID, uid), (CONTROLLER_UID, uid)] {
            labels.entry(k).or_insert_with(|| Value::String(v.to_string()));
        }
    }
    if let Some(ml) = json::ensure_obj(spec, "selector")
        .and_then(|s| json::ensure_obj(s, "matchLabels"))
        .and_then(Value::as_object_mut)
    {
        ml.entry(CONTROLLER_UID).or_insert_with(|| Value::String(uid.to_string()));
    }
}

pub fn cron_job(obj: &mut Value) {
    let Some(spec) = json::ensure_obj(obj, "spec") else { return };
    default_str(spec, "concurrencyPolicy", "Allow");
    default(spec, "suspend", json!(false));
    default(spec, "successfulJobsHistoryLimit", json!(3));
    default(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(t) = json::ensure_obj(spec, "jobTemplate")
        .and_then(|jt| json::ensure_obj(jt, "spec"))
        .and_then(|s| json::ensure_obj(s, "template"))
    {
        pod::template(t);
    }
}
