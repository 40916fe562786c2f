//! Field paths and `Cause` constructors whose messages read like upstream's `field.Error.ErrorBody()`
//! (`Invalid value: "x": detail`, `Required value`, `Unsupported value: "x": supported values: ...`).

use api::Cause;
use serde_json::Value;

/// `parent.name`, or `name` at the root.
pub fn child(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// `parent[i]`.
pub fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// `parent[key]`.
pub fn key(parent: &str, k: &str) -> String {
    format!("{parent}[{k}]")
}

/// Renders a bad value as upstream does: strings quoted, numbers and booleans bare, anything else as JSON.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

/// Quotes a string like Go's `%q` (close enough: JSON escaping).
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn with_detail(head: String, detail: &str) -> String {
    if detail.is_empty() {
        head
    } else {
        format!("{head}: {detail}")
    }
}

/// `FieldValueRequired`, with an optional detail.
pub fn required(path: &str, detail: &str) -> Cause {
    Cause::new("FieldValueRequired", path, with_detail("Required value".into(), detail))
}

/// `FieldValueInvalid` with the bad value rendered by [`show`].
pub fn invalid(path: &str, value: &Value, detail: &str) -> Cause {
    Cause::new("FieldValueInvalid", path, with_detail(format!("Invalid value: {}", show(value)), detail))
}

/// `FieldValueInvalid` with the bad value already rendered (e.g. Go's `[]string{"a"}`).
pub fn invalid_raw(path: &str, rendered: &str, detail: &str) -> Cause {
    Cause::new("FieldValueInvalid", path, with_detail(format!("Invalid value: {rendered}"), detail))
}

/// `FieldValueInvalid` for a string value.
pub fn invalid_str(path: &str, value: &str, detail: &str) -> Cause {
    Cause::new("FieldValueInvalid", path, with_detail(format!("Invalid value: {}", quote(value)), detail))
}

/// `FieldValueInvalid` for an integer value.
pub fn invalid_int(path: &str, value: i64, detail: &str) -> Cause {
    Cause::new("FieldValueInvalid", path, with_detail(format!("Invalid value: {value}"), detail))
}

/// `FieldValueNotSupported`: `Unsupported value: "x": supported values: "a", "b"`.
pub fn not_supported(path: &str, value: &str, supported: &[&str]) -> Cause {
    let list: Vec<String> = supported.iter().map(|s| quote(s)).collect();
    Cause::new(
        "FieldValueNotSupported",
        path,
        format!("Unsupported value: {}: supported values: {}", quote(value), list.join(", ")),
    )
}

/// `FieldValueDuplicate`.
pub fn duplicate(path: &str, value: &Value) -> Cause {
    Cause::new("FieldValueDuplicate", path, format!("Duplicate value: {}", show(value)))
}

/// `FieldValueTooLong`: `Too long: may not be more than N bytes`.
pub fn too_long(path: &str, max: usize) -> Cause {
    Cause::new("FieldValueTooLong", path, format!("Too long: may not be more than {max} bytes"))
}

/// `FieldValueTooMany`: `Too many: N: must have at most M items`.
pub fn too_many(path: &str, actual: usize, max: usize) -> Cause {
    Cause::new("FieldValueTooMany", path, format!("Too many: {actual}: must have at most {max} items"))
}

/// `FieldValueForbidden`.
pub fn forbidden(path: &str, detail: &str) -> Cause {
    Cause::new("FieldValueForbidden", path, with_detail("Forbidden".into(), detail))
}

/// `FieldValueTypeInvalid` (a value of the wrong JSON type; decode errors).
pub fn type_invalid(path: &str, detail: &str) -> Cause {
    Cause::new("FieldValueTypeInvalid", path, with_detail("Invalid value".into(), detail))
}

/// Upstream's `ValidateNonnegativeField`.
pub fn nonnegative(out: &mut Vec<Cause>, path: &str, v: Option<i64>) {
    if let Some(n) = v {
        if n < 0 {
            out.push(invalid_int(path, n, "must be greater than or equal to 0"));
        }
    }
}

/// Upstream's `ValidatePositiveField`-style check (`must be greater than 0`).
pub fn positive(out: &mut Vec<Cause>, path: &str, v: Option<i64>) {
    if let Some(n) = v {
        if n <= 0 {
            out.push(invalid_int(path, n, "must be greater than 0"));
        }
    }
}

/// `field is immutable` when `new != old`.
pub fn immutable(out: &mut Vec<Cause>, path: &str, new: Option<&Value>, old: Option<&Value>) {
    let n = new.filter(|v| !v.is_null());
    let o = old.filter(|v| !v.is_null());
    if n != o {
        out.push(invalid(path, n.unwrap_or(&Value::Null), "field is immutable"));
    }
}
