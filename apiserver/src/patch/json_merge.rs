//! JSON merge patch (RFC 7386), the body of `application/merge-patch+json`: an object patch
//! merges key by key, `null` removes a key, anything else (arrays included) replaces.

use serde_json::{Map, Value};

use super::{PatchError, MAX_DEPTH};

/// Applies the RFC 7386 merge patch `patch` to `original`. A patch that is not an object
/// replaces the whole document.
pub fn json_merge_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    merge(original, patch, 0)
}

fn merge(target: &Value, patch: &Value, depth: usize) -> Result<Value, PatchError> {
    if depth > MAX_DEPTH {
        return Err(PatchError::TooDeep(MAX_DEPTH));
    }
    let Value::Object(patch) = patch else {
        return Ok(patch.clone());
    };
    let mut result = match target {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    for (key, value) in patch {
        if value.is_null() {
            result.remove(key);
        } else {
            let merged = merge(result.get(key).unwrap_or(&Value::Null), value, depth + 1)?;
            result.insert(key.clone(), merged);
        }
    }
    Ok(Value::Object(result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The examples of RFC 7386 appendix A, then cases the API server meets.
    #[test]
    fn rfc7386_examples_and_more() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (json!({"a": "b", "b": "c"}), json!({"a": null}), json!({"b": "c"})),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (json!({"a": {"b": "c"}}), json!({"a": {"b": "d", "c": null}}), json!({"a": {"b": "d"}})),
            (json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (json!({"e": null}), json!({"a": 1}), json!({"e": null, "a": 1})),
            (json!([1, 2]), json!({"a": "b", "c": null}), json!({"a": "b"})),
            (json!({}), json!({"a": {"bb": {"ccc": null}}}), json!({"a": {"bb": {}}})),
            // kubectl scale / kubectl label
            (
                json!({"spec": {"replicas": 1, "selector": {"app": "x"}}}),
                json!({"spec": {"replicas": 3}}),
                json!({"spec": {"replicas": 3, "selector": {"app": "x"}}}),
            ),
            (
                json!({"metadata": {"name": "n", "labels": {"a": "1", "b": "2"}}}),
                json!({"metadata": {"labels": {"a": null, "c": "3"}}}),
                json!({"metadata": {"name": "n", "labels": {"b": "2", "c": "3"}}}),
            ),
            // Lists are replaced whole, even keyed ones: no merge by name here.
            (
                json!({"containers": [{"name": "a", "image": "x", "ports": [80]}]}),
                json!({"containers": [{"name": "a", "image": "y"}]}),
                json!({"containers": [{"name": "a", "image": "y"}]}),
            ),
        ];
        for (original, patch, expected) in cases {
            let got = json_merge_patch(&original, &patch);
            assert_eq!(got.ok(), Some(expected.clone()), "{original} + {patch}");
        }
    }

    #[test]
    fn keeps_key_order_of_the_original_and_appends_new_keys() {
        let got = json_merge_patch(&json!({"z": 1, "a": 2}), &json!({"b": 3, "z": 4}));
        let keys: Vec<String> = match got {
            Ok(Value::Object(m)) => m.keys().cloned().collect(),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(keys, ["z", "a", "b"]);
    }

    #[test]
    fn refuses_absurd_nesting() {
        let mut patch = json!(1);
        for _ in 0..(MAX_DEPTH + 5) {
            patch = json!({ "a": patch });
        }
        assert!(matches!(json_merge_patch(&json!({}), &patch), Err(PatchError::TooDeep(_))));
    }
}
