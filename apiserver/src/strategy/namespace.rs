//! Namespaces: the status one starts with, the phase a deletion moves it to, and the ones the
//! server itself needs.

use serde_json::{json, Map, Value};

/// The namespaces the server itself needs (upstream's NamespaceLifecycle "immortal" set).
pub const IMMORTAL: [&str; 3] = ["default", "kube-system", "kube-public"];

/// A new namespace is Active.
pub fn initial_status(_: &Value) -> Value {
    json!({"phase": "Active"})
}

/// Whether a namespace is going away (no new content may be created in it): marked for
/// deletion, or in phase Terminating.
pub fn is_terminating(ns: &Value) -> bool {
    super::is_deleting(ns) || ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating")
}

/// A namespace being deleted (it keeps its finalizers until emptied) is Terminating.
pub fn set_terminating(ns: &mut Value) {
    let Some(o) = ns.as_object_mut() else { return };
    let status = o.entry("status").or_insert_with(|| Value::Object(Map::new()));
    match status.as_object_mut() {
        Some(s) => {
            s.insert("phase".into(), json!("Terminating"));
        }
        None => *status = json!({"phase": "Terminating"}),
    }
}
