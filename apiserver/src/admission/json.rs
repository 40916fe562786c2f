//! Panic-free accessors over `serde_json::Value` objects: read with a default, write creating parents.

use serde_json::{Map, Value};

/// The string at `key`, or `""` when absent or not a string.
pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The string at `key` when present and a string.
pub fn opt_s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The integer at `key`, when present and integral.
pub fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

/// The boolean at `key`, when present.
pub fn boolean(v: &Value, key: &str) -> Option<bool> {
    v.get(key).and_then(Value::as_bool)
}

/// The array at `key`, or an empty slice.
pub fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// The object at `key`, when present.
pub fn obj<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

/// The value at `key` unless absent or null.
pub fn present<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// The value at a dotted path of object keys.
pub fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for k in path {
        cur = cur.get(*k)?;
    }
    Some(cur)
}

/// A string-to-string map (labels, annotations, selectors); non-string values are skipped.
pub fn str_map(v: Option<&Value>) -> Vec<(&str, &str)> {
    v.and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.as_str(), s))).collect())
        .unwrap_or_default()
}

/// The object at `key`, created (as `{}`) when absent or null. `None` if `v` is not an object or the
/// value there is some other type.
pub fn ensure_obj<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let m = v.as_object_mut()?;
    let slot = m.entry(key.to_string()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    if slot.is_object() {
        Some(slot)
    } else {
        None
    }
}

/// Sets `key` to `val` when absent or null (what Go's `if x == nil { x = ... }` does).
pub fn default(v: &mut Value, key: &str, val: Value) {
    if let Some(m) = v.as_object_mut() {
        let slot = m.entry(key.to_string()).or_insert(Value::Null);
        if slot.is_null() {
            *slot = val;
        }
    }
}

/// Sets `key` to `val` when absent, null or the empty string (Go's `if x == "" { x = ... }`).
pub fn default_str(v: &mut Value, key: &str, val: &str) {
    if let Some(m) = v.as_object_mut() {
        let slot = m.entry(key.to_string()).or_insert(Value::Null);
        if slot.is_null() || slot.as_str() == Some("") {
            *slot = Value::String(val.to_string());
        }
    }
}

/// Mutable access to each element of the array at `key` (nothing if absent).
pub fn each_mut<'a>(v: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    v.get_mut(key).and_then(Value::as_array_mut).into_iter().flat_map(|a| a.iter_mut())
}
