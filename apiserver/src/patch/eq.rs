//! JSON value equality as JSON means it: numbers compare by value, so `80` equals `80.0`
//! (Go's decoder, which upstream uses, reads both as the same float64). `serde_json`'s own
//! `==` tells an integer from a float.

use serde_json::Value;

/// Whether `a` and `b` are the same JSON value, comparing numbers numerically.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x.is_f64() || y.is_f64() {
                x.as_f64() == y.as_f64()
            } else {
                x == y
            }
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(l, r)| json_eq(l, r)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, l)| y.get(k).is_some_and(|r| json_eq(l, r)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_eq(&json!(80), &json!(80.0)));
        assert!(!json_eq(&json!(80), &json!(81)));
        assert!(!json_eq(&json!(80), &json!("80")));
    }

    #[test]
    fn containers_compare_deeply_and_objects_ignore_key_order() {
        assert!(json_eq(&json!({"a": [1, {"b": 2.0}], "c": null}), &json!({"c": null, "a": [1.0, {"b": 2}]})));
        assert!(!json_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!json_eq(&json!([1, 2]), &json!([2, 1])));
    }
}
