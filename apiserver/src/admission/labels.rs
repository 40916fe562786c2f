//! Label keys (qualified names), label values, annotations, finalizer names, and label selectors
//! (syntax and matching), as apimachinery's `util/validation` and `apis/meta/v1/validation`.

use super::errs::{self, child, index};
use super::json;
use api::Cause;
use serde_json::Value;

/// Upstream `TotalAnnotationSizeLimitB`.
pub const ANNOTATIONS_MAX: usize = 256 * 1024;

pub use api::validation::{label_value, qualified_name};

/// Upstream `ValidateLabels`: every key a qualified name, every value a label value. Non-string values
/// are reported too (they cannot come out of normalization, but `validate` takes any `Value`).
pub fn validate_labels(out: &mut Vec<Cause>, v: Option<&Value>, path: &str) {
    let Some(m) = v.and_then(Value::as_object) else { return };
    for (k, val) in m {
        for msg in qualified_name(k) {
            out.push(errs::invalid_str(path, k, &msg));
        }
        match val.as_str() {
            Some(s) => {
                for msg in label_value(s) {
                    out.push(errs::invalid_str(path, s, &msg));
                }
            }
            None => out.push(errs::invalid(&errs::key(path, k), val, "must be a string")),
        }
    }
}

/// Upstream `ValidateAnnotations`: keys are qualified names (checked lower-cased), total size ≤ 256 KiB.
pub fn validate_annotations(out: &mut Vec<Cause>, v: Option<&Value>, path: &str) {
    let Some(m) = v.and_then(Value::as_object) else { return };
    let mut total = 0usize;
    for (k, val) in m {
        for msg in qualified_name(&k.to_lowercase()) {
            out.push(errs::invalid_str(path, k, &msg));
        }
        total = total.saturating_add(k.len()).saturating_add(val.as_str().map_or(0, str::len));
    }
    if total > ANNOTATIONS_MAX {
        out.push(errs::too_long(path, ANNOTATIONS_MAX));
    }
}

/// The finalizer names upstream accepts without a domain prefix.
const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// Upstream `ValidateFinalizers` (apimachinery + core's standard-name rule).
pub fn validate_finalizers(out: &mut Vec<Cause>, v: Option<&Value>, path: &str) {
    let Some(list) = v.and_then(Value::as_array) else { return };
    for f in list {
        let s = f.as_str().unwrap_or("");
        let msgs = qualified_name(s);
        for msg in &msgs {
            out.push(errs::invalid_str(path, s, msg));
        }
        if msgs.is_empty() && !s.contains('/') && !STANDARD_FINALIZERS.contains(&s) {
            out.push(errs::invalid_str(path, s, "name is neither a standard finalizer name nor is it fully qualified"));
        }
    }
}

/// Upstream `ValidateLabelSelector` (`matchLabels` and `matchExpressions` syntax).
pub fn validate_selector(out: &mut Vec<Cause>, sel: &Value, path: &str) {
    validate_labels(out, sel.get("matchLabels"), &child(path, "matchLabels"));
    for (i, req) in json::arr(sel, "matchExpressions").iter().enumerate() {
        let p = index(&child(path, "matchExpressions"), i);
        let key = json::s(req, "key");
        let op = json::s(req, "operator");
        let values = json::arr(req, "values");
        match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    out.push(errs::required(
                        &child(&p, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    out.push(errs::forbidden(
                        &child(&p, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            _ => out.push(errs::invalid_str(&child(&p, "operator"), op, "not a valid selector operator")),
        }
        for msg in qualified_name(key) {
            out.push(errs::invalid_str(&child(&p, "key"), key, &msg));
        }
        for (j, v) in values.iter().enumerate() {
            for msg in label_value(v.as_str().unwrap_or("")) {
                out.push(errs::invalid(&index(&child(&p, "values"), j), v, &msg));
            }
        }
    }
}

/// True when the selector has neither `matchLabels` nor `matchExpressions`.
pub fn selector_is_empty(sel: &Value) -> bool {
    json::obj(sel, "matchLabels").is_none_or(|m| m.is_empty()) && json::arr(sel, "matchExpressions").is_empty()
}

/// Whether a label selector matches a label set (an empty selector matches everything).
pub fn selector_matches(sel: &Value, labels: Option<&Value>) -> bool {
    let set = json::str_map(labels);
    let get = |k: &str| set.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    for (k, v) in json::str_map(sel.get("matchLabels")) {
        if get(k) != Some(v) {
            return false;
        }
    }
    for req in json::arr(sel, "matchExpressions") {
        let key = json::s(req, "key");
        let values: Vec<&str> = json::arr(req, "values").iter().filter_map(Value::as_str).collect();
        let ok = match json::s(req, "operator") {
            "In" => get(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => get(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => get(key).is_some(),
            "DoesNotExist" => get(key).is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}
