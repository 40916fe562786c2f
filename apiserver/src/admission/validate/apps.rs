//! Deployment, ReplicaSet and DaemonSet (`pkg/apis/apps/validation`).

use super::pod;
use crate::admission::errs::{self, child};
use crate::admission::json;
use crate::admission::labels::{selector_is_empty, selector_matches, validate_selector};
use api::Cause;
use serde_json::Value;

/// Selector required and non-empty, template labels matched by it, template valid with
/// `restartPolicy: Always` and no `activeDeadlineSeconds`.
fn selector_and_template(out: &mut Vec<Cause>, spec: &Value, what: &str) {
    match json::present(spec, "selector") {
        None => out.push(errs::required("spec.selector", "")),
        Some(sel) => {
            validate_selector(out, sel, "spec.selector");
            if selector_is_empty(sel) {
                out.push(errs::invalid("spec.selector", sel, &format!("empty selector is invalid for {what}")));
            }
        }
    }
    let template = json::present(spec, "template");
    let labels = template.and_then(|t| json::at(t, &["metadata", "labels"]));
    if let Some(sel) = json::present(spec, "selector") {
        if !selector_is_empty(sel) && !selector_matches(sel, labels) {
            out.push(errs::invalid(
                "spec.template.metadata.labels",
                labels.unwrap_or(&Value::Null),
                "`selector` does not match template `labels`",
            ));
        }
    }
    match template {
        None => out.push(errs::required("spec.template", "")),
        Some(t) => {
            pod::template(out, Some(t), "spec.template");
            let restart = json::at(t, &["spec", "restartPolicy"]).and_then(Value::as_str).unwrap_or("");
            if !restart.is_empty() && restart != "Always" {
                out.push(errs::not_supported("spec.template.spec.restartPolicy", restart, &["Always"]));
            }
            if let Some(ads) = json::at(t, &["spec", "activeDeadlineSeconds"]).filter(|v| !v.is_null()) {
                out.push(errs::invalid(
                    "spec.template.spec.activeDeadlineSeconds",
                    ads,
                    "activeDeadlineSeconds in ReplicaSet is not Supported",
                ));
            }
        }
    }
}

/// `maxUnavailable` / `maxSurge`: a non-negative integer or a percentage; percentages ≤ 100% when `cap`.
/// Returns whether the value is zero.
fn int_or_percent(out: &mut Vec<Cause>, v: Option<&Value>, p: &str, cap: bool) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(-1);
            errs::nonnegative(out, p, Some(n));
            n == 0
        }
        Some(Value::String(s)) => {
            let Some(num) = s.strip_suffix('%').and_then(|d| d.parse::<i64>().ok()) else {
                out.push(errs::invalid_str(p, s, "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"));
                return false;
            };
            if num < 0 {
                out.push(errs::invalid_str(p, s, "must be greater than or equal to 0"));
            }
            if cap && num > 100 {
                out.push(errs::invalid_str(p, s, "must not be greater than 100%"));
            }
            num == 0
        }
        Some(other) => {
            out.push(errs::invalid(p, other, "must be an integer or percentage (e.g '5%')"));
            false
        }
    }
}

fn rolling(out: &mut Vec<Cause>, ru: &Value, p: &str) {
    let unavailable_zero = int_or_percent(out, ru.get("maxUnavailable"), &child(p, "maxUnavailable"), true);
    let surge_zero = int_or_percent(out, ru.get("maxSurge"), &child(p, "maxSurge"), false);
    if unavailable_zero && surge_zero {
        out.push(errs::invalid(
            &child(p, "maxUnavailable"),
            ru.get("maxUnavailable").unwrap_or(&Value::Null),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
}

fn common_counts(out: &mut Vec<Cause>, spec: &Value) {
    for f in ["replicas", "minReadySeconds", "revisionHistoryLimit"] {
        errs::nonnegative(out, &child("spec", f), json::int(spec, f));
    }
}

fn selector_immutable(out: &mut Vec<Cause>, obj: &Value, old: Option<&Value>) {
    if let Some(old) = old {
        errs::immutable(
            out,
            "spec.selector",
            json::at(obj, &["spec", "selector"]),
            json::at(old, &["spec", "selector"]),
        );
    }
}

pub fn deployment(out: &mut Vec<Cause>, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    common_counts(out, spec);
    selector_and_template(out, spec, "deployment");
    let strategy = spec.get("strategy").unwrap_or(&Value::Null);
    let ty = json::s(strategy, "type");
    match ty {
        "Recreate" => {
            if json::present(strategy, "rollingUpdate").is_some() {
                out.push(errs::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match json::present(strategy, "rollingUpdate") {
            None => {
                out.push(errs::required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"))
            }
            Some(ru) => rolling(out, ru, "spec.strategy.rollingUpdate"),
        },
        "" => out.push(errs::required("spec.strategy.type", "")),
        other => out.push(errs::not_supported("spec.strategy.type", other, &["Recreate", "RollingUpdate"])),
    }
    errs::nonnegative(out, "spec.progressDeadlineSeconds", json::int(spec, "progressDeadlineSeconds"));
    if let Some(pd) = json::int(spec, "progressDeadlineSeconds") {
        if pd <= json::int(spec, "minReadySeconds").unwrap_or(0) {
            out.push(errs::invalid_int("spec.progressDeadlineSeconds", pd, "must be greater than minReadySeconds"));
        }
    }
    selector_immutable(out, obj, old);
}

pub fn replica_set(out: &mut Vec<Cause>, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    common_counts(out, spec);
    selector_and_template(out, spec, "deployment");
    selector_immutable(out, obj, old);
}

pub fn daemon_set(out: &mut Vec<Cause>, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    common_counts(out, spec);
    selector_and_template(out, spec, "daemonset");
    let strategy = spec.get("updateStrategy").unwrap_or(&Value::Null);
    match json::s(strategy, "type") {
        "OnDelete" => {}
        "RollingUpdate" => match json::present(strategy, "rollingUpdate") {
            None => out.push(errs::required("spec.updateStrategy.rollingUpdate", "")),
            Some(ru) => {
                let p = "spec.updateStrategy.rollingUpdate";
                let unavailable_zero = int_or_percent(out, ru.get("maxUnavailable"), &child(p, "maxUnavailable"), true);
                let surge_zero = int_or_percent(out, ru.get("maxSurge"), &child(p, "maxSurge"), true);
                if unavailable_zero && surge_zero {
                    out.push(errs::invalid(
                        &child(p, "maxUnavailable"),
                        ru.get("maxUnavailable").unwrap_or(&Value::Null),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
            }
        },
        "" => out.push(errs::required("spec.updateStrategy.type", "")),
        other => out.push(errs::not_supported("spec.updateStrategy.type", other, &["OnDelete", "RollingUpdate"])),
    }
    selector_immutable(out, obj, old);
}
