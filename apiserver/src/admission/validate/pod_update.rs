//! `ValidatePodUpdate`: a pod's spec is immutable except container images, a shrinking
//! `activeDeadlineSeconds`, added tolerations (existing ones may only change `tolerationSeconds`) and
//! removed scheduling gates. Binding (`spec.nodeName`) goes through the binding subresource, which must
//! not be validated with this function.

use crate::admission::errs;
use crate::admission::json;
use api::Cause;
use serde_json::{Map, Value};

const FORBIDDEN_MSG: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

pub fn pod_update(out: &mut Vec<Cause>, new: &Value, old: &Value) {
    let new_spec = new.get("spec").unwrap_or(&Value::Null);
    let old_spec = old.get("spec").unwrap_or(&Value::Null);
    active_deadline(out, new_spec, old_spec);
    tolerations(out, new_spec, old_spec);
    gates(out, new_spec, old_spec);

    // Copy the mutable fields from the new spec onto the old one; anything else that differs is forbidden.
    let mut merged = old_spec.clone();
    if let (Some(m), Some(n)) = (merged.as_object_mut(), new_spec.as_object()) {
        for list in ["containers", "initContainers"] {
            if let (Some(Value::Array(olds)), Some(Value::Array(news))) = (m.get_mut(list), n.get(list)) {
                if olds.len() == news.len() {
                    for (o, nw) in olds.iter_mut().zip(news) {
                        copy_field(o, nw, "image");
                    }
                }
            }
        }
        for f in ["activeDeadlineSeconds", "tolerations", "schedulingGates"] {
            set_field(m, n, f);
        }
        let old_grace = json::int(old_spec, "terminationGracePeriodSeconds");
        if old_grace.is_some_and(|g| g < 0) && json::int(new_spec, "terminationGracePeriodSeconds") == Some(1) {
            set_field(m, n, "terminationGracePeriodSeconds");
        }
    }
    if !same(&merged, new_spec) {
        out.push(errs::forbidden("spec", FORBIDDEN_MSG));
    }
}

fn set_field(m: &mut Map<String, Value>, n: &Map<String, Value>, f: &str) {
    match n.get(f) {
        Some(v) => {
            m.insert(f.to_string(), v.clone());
        }
        None => {
            m.shift_remove(f);
        }
    }
}

fn copy_field(o: &mut Value, n: &Value, f: &str) {
    if let (Some(om), Some(nm)) = (o.as_object_mut(), n.as_object()) {
        set_field(om, nm, f);
    }
}

/// Structural equality that ignores key order and treats null like absent.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys = x.iter().filter(|(_, v)| !v.is_null()).count() == y.iter().filter(|(_, v)| !v.is_null()).count();
            keys && x.iter().filter(|(_, v)| !v.is_null()).all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w)),
        _ => a == b,
    }
}

fn active_deadline(out: &mut Vec<Cause>, new: &Value, old: &Value) {
    let p = "spec.activeDeadlineSeconds";
    match (json::int(new, "activeDeadlineSeconds"), json::int(old, "activeDeadlineSeconds")) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            out.push(errs::invalid_int(p, n, "must be between 0 and 2147483647, inclusive"))
        }
        (Some(n), Some(o)) if n > o => {
            out.push(errs::invalid_int(p, n, "must be less than or equal to previous value"))
        }
        (None, Some(_)) => {
            out.push(errs::invalid(p, &Value::Null, "must not update from a positive integer to nil value"))
        }
        _ => {}
    }
}

fn without_seconds(t: &Value) -> Value {
    let mut c = t.clone();
    if let Some(m) = c.as_object_mut() {
        m.shift_remove("tolerationSeconds");
    }
    c
}

fn tolerations(out: &mut Vec<Cause>, new: &Value, old: &Value) {
    let news: Vec<Value> = json::arr(new, "tolerations").iter().map(without_seconds).collect();
    for o in json::arr(old, "tolerations") {
        let o = without_seconds(o);
        if !news.iter().any(|n| same(n, &o)) {
            out.push(errs::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            return;
        }
    }
}

fn gates(out: &mut Vec<Cause>, new: &Value, old: &Value) {
    let olds = json::arr(old, "schedulingGates");
    for n in json::arr(new, "schedulingGates") {
        if !olds.iter().any(|o| same(o, n)) {
            out.push(errs::forbidden(
                "spec.schedulingGates",
                "only deletion is allowed, but found new scheduling gate",
            ));
            return;
        }
    }
}
