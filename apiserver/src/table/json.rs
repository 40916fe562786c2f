//! Shape-tolerant reads of JSON objects and the small formatters the printers share
//! (`labels.FormatLabels`, `metav1.FormatLabelSelector`, `layoutContainerCells`).

use api::selector::LabelSelector;
use serde_json::{Map, Value};

/// The value at a path of object keys.
pub fn at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = obj;
    for p in path {
        cur = cur.get(p)?;
    }
    Some(cur)
}

/// A string field; "" when missing or not a string.
pub fn str_at<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    at(obj, path).and_then(Value::as_str).unwrap_or("")
}

/// An integer field; 0 when missing or not a number.
pub fn int_at(obj: &Value, path: &[&str]) -> i64 {
    at(obj, path).and_then(int_of).unwrap_or(0)
}

/// An optional integer field (a Go `*int32`).
pub fn opt_int_at(obj: &Value, path: &[&str]) -> Option<i64> {
    at(obj, path).and_then(int_of)
}

fn int_of(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
}

/// A boolean field; false when missing.
pub fn bool_at(obj: &Value, path: &[&str]) -> bool {
    at(obj, path).and_then(Value::as_bool).unwrap_or(false)
}

/// A list field; empty when missing or not a list.
pub fn list_at<'a>(obj: &'a Value, path: &[&str]) -> &'a [Value] {
    at(obj, path).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// A map field, if present.
pub fn map_at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    at(obj, path).and_then(Value::as_object)
}

/// `labels.FormatLabels`: "k=v,..." sorted by key, "<none>" when empty.
pub fn format_labels(map: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<String> =
        map.into_iter().flatten().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs.sort();
    pairs.join(",")
}

/// `metav1.LabelSelectorAsSelector(sel).String()`; None when the selector is invalid.
pub fn selector_string(sel: Option<&Value>) -> Option<String> {
    LabelSelector::from_json(sel.unwrap_or(&Value::Null)).ok().map(|s| s.to_string())
}

/// `metav1.FormatLabelSelector`: "<error>" when invalid, "<none>" when empty.
pub fn format_label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        None => "<error>".to_string(),
        Some(s) if s.is_empty() => "<none>".to_string(),
        Some(s) => s,
    }
}

/// `layoutContainerCells`: container names and images, each comma-joined.
pub fn container_cells(pod_spec: Option<&Value>) -> (String, String) {
    let containers = pod_spec.map_or(&[][..], |s| list_at(s, &["containers"]));
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

/// A string cell.
pub fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

/// An integer cell.
pub fn i(v: i64) -> Value {
    Value::from(v)
}

/// An integer cell from a count.
pub fn n(v: usize) -> Value {
    Value::from(i64::try_from(v).unwrap_or(i64::MAX))
}

/// The value at a path when present and not null (a set Go pointer).
pub fn present<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    at(obj, path).filter(|v| !v.is_null())
}
