//! Job and CronJob (`pkg/apis/batch/validation`).

use super::cron;
use super::pod;
use crate::admission::errs::{self, child};
use crate::admission::json;
use crate::admission::labels::{selector_matches, validate_selector};
use api::Cause;
use serde_json::Value;

const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";

pub fn job(out: &mut Vec<Cause>, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    job_spec(out, spec, "spec", true);
    if json::boolean(spec, "manualSelector") != Some(true) {
        generated_selector(out, obj, spec);
    }
    if let Some(old) = old {
        let old_spec = old.get("spec").unwrap_or(&Value::Null);
        for f in
            ["selector", "template", "completionMode", "podFailurePolicy", "backoffLimitPerIndex", "manualSelector"]
        {
            errs::immutable(out, &child("spec", f), spec.get(f), old_spec.get(f));
        }
        let indexed_elastic = json::s(spec, "completionMode") == "Indexed"
            && json::int(spec, "completions") == json::int(spec, "parallelism");
        if !indexed_elastic {
            errs::immutable(out, "spec.completions", spec.get("completions"), old_spec.get("completions"));
        }
    }
}

/// The selector and template labels must be the ones generated from `metadata.uid`.
fn generated_selector(out: &mut Vec<Cause>, obj: &Value, spec: &Value) {
    let uid = json::at(obj, &["metadata", "uid"]).and_then(Value::as_str).unwrap_or("");
    if uid.is_empty() {
        out.push(errs::required("metadata.uid", ""));
        return;
    }
    let sel = json::at(spec, &["selector", "matchLabels", CONTROLLER_UID]).and_then(Value::as_str);
    if sel != Some(uid) {
        out.push(errs::invalid(
            "spec.selector",
            spec.get("selector").unwrap_or(&Value::Null),
            "`selector` not auto-generated",
        ));
    }
    let tl = json::at(spec, &["template", "metadata", "labels", CONTROLLER_UID]).and_then(Value::as_str);
    if tl != Some(uid) {
        out.push(errs::invalid(
            "spec.template.metadata.labels",
            json::at(spec, &["template", "metadata", "labels"]).unwrap_or(&Value::Null),
            &format!("must be '{uid}'"),
        ));
    }
}

/// A Job spec at `p`; `require_selector` is false inside a CronJob's jobTemplate.
fn job_spec(out: &mut Vec<Cause>, spec: &Value, p: &str, require_selector: bool) {
    for f in ["parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"] {
        errs::nonnegative(out, &child(p, f), json::int(spec, f));
    }
    errs::nonnegative(out, &child(p, "backoffLimitPerIndex"), json::int(spec, "backoffLimitPerIndex"));
    let mode = json::s(spec, "completionMode");
    match mode {
        "" | "NonIndexed" => {}
        "Indexed" => match json::int(spec, "completions") {
            None => out.push(errs::required(&child(p, "completions"), "when completion mode is Indexed")),
            Some(c) if c > 100_000 => {
                out.push(errs::invalid_int(&child(p, "completions"), c, "must be less than or equal to 100000"))
            }
            _ => {}
        },
        other => out.push(errs::not_supported(&child(p, "completionMode"), other, &["NonIndexed", "Indexed"])),
    }
    let labels = json::at(spec, &["template", "metadata", "labels"]);
    match json::present(spec, "selector") {
        None if require_selector => out.push(errs::required(&child(p, "selector"), "")),
        None => {}
        Some(sel) => {
            validate_selector(out, sel, &child(p, "selector"));
            if !selector_matches(sel, labels) {
                out.push(errs::invalid(
                    &child(p, "template.metadata.labels"),
                    labels.unwrap_or(&Value::Null),
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
    let tp = child(p, "template");
    match json::present(spec, "template") {
        None => out.push(errs::required(&tp, "")),
        Some(t) => {
            pod::template(out, Some(t), &tp);
            let restart = json::at(t, &["spec", "restartPolicy"]).and_then(Value::as_str).unwrap_or("");
            if restart != "OnFailure" && restart != "Never" {
                out.push(errs::not_supported(&child(&tp, "spec.restartPolicy"), restart, &["OnFailure", "Never"]));
            }
        }
    }
    let rp = json::s(spec, "podReplacementPolicy");
    if !rp.is_empty() && rp != "TerminatingOrFailed" && rp != "Failed" {
        out.push(errs::not_supported(&child(p, "podReplacementPolicy"), rp, &["Failed", "TerminatingOrFailed"]));
    }
}

/// CronJob spec; upstream has no update-only rules for it.
pub fn cron_job(out: &mut Vec<Cause>, obj: &Value) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let schedule = json::s(spec, "schedule");
    if schedule.is_empty() {
        out.push(errs::required("spec.schedule", ""));
    } else if let Err(msg) = cron::check(schedule) {
        out.push(errs::invalid_str("spec.schedule", schedule, &msg));
    }
    if let Some(tz) = json::opt_s(spec, "timeZone") {
        if let Err(msg) = cron::check_time_zone(tz) {
            out.push(errs::invalid_str("spec.timeZone", tz, &msg));
        }
    }
    match json::s(spec, "concurrencyPolicy") {
        "" => out.push(errs::required("spec.concurrencyPolicy", "")),
        "Allow" | "Forbid" | "Replace" => {}
        other => out.push(errs::not_supported("spec.concurrencyPolicy", other, &["Allow", "Forbid", "Replace"])),
    }
    for f in ["startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        errs::nonnegative(out, &child("spec", f), json::int(spec, f));
    }
    let jt = spec.get("jobTemplate").unwrap_or(&Value::Null);
    super::meta::template_meta(out, jt.get("metadata"), "spec.jobTemplate.metadata");
    job_spec(out, jt.get("spec").unwrap_or(&Value::Null), "spec.jobTemplate.spec", false);
}
