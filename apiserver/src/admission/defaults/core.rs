//! Secret, Namespace and Node defaults.

use crate::admission::json::{self, default, default_str};
use base64::Engine;
use serde_json::{json, Value};

/// `type: Opaque`; `stringData` folded into `data` (base64, overriding) and removed, as v1 conversion does.
pub fn secret(obj: &mut Value) {
    default_str(obj, "type", "Opaque");
    let Some(m) = obj.as_object_mut() else { return };
    let Some(string_data) = m.shift_remove("stringData") else { return };
    let Some(sd) = string_data.as_object() else { return };
    if sd.is_empty() {
        return;
    }
    let data = m.entry("data").or_insert(Value::Null);
    if !data.is_object() {
        *data = json!({});
    }
    if let Some(d) = data.as_object_mut() {
        for (k, v) in sd {
            let raw = v.as_str().unwrap_or("");
            d.insert(k.clone(), Value::String(base64::engine::general_purpose::STANDARD.encode(raw)));
        }
    }
}

/// `kubernetes.io/metadata.name` label, `spec.finalizers: [kubernetes]` (create-time, so skipped once the
/// namespace is terminating), `status.phase: Active`.
pub fn namespace(obj: &mut Value) {
    let name = json::at(obj, &["metadata", "name"]).and_then(Value::as_str).unwrap_or("").to_string();
    let terminating = json::at(obj, &["metadata", "deletionTimestamp"]).is_some_and(|v| !v.is_null());
    if !name.is_empty() {
        if let Some(labels) = json::ensure_obj(obj, "metadata").and_then(|m| json::ensure_obj(m, "labels")) {
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), Value::String(name));
            }
        }
    }
    if !terminating {
        if let Some(spec) = json::ensure_obj(obj, "spec") {
            default(spec, "finalizers", json!(["kubernetes"]));
        }
    }
    if let Some(status) = json::ensure_obj(obj, "status") {
        default_str(status, "phase", "Active");
    }
}

/// `SetDefaults_NodeStatus`: allocatable defaults to capacity.
pub fn node(obj: &mut Value) {
    // `spec` is a struct, not a pointer, upstream: a Node always has one, if empty.
    if obj.is_object() {
        default(obj, "spec", Value::Object(Default::default()));
    }
    let Some(status) = obj.get_mut("status").filter(|s| s.is_object()) else { return };
    if let Some(cap) = status.get("capacity").filter(|c| c.is_object()).cloned() {
        default(status, "allocatable", cap);
    }
}
