//! The three patch formats of `PATCH` requests, applied to objects held as `serde_json::Value`:
//!
//! - `application/strategic-merge-patch+json` — [`strategic_merge_patch`], Kubernetes' own format,
//!   which merges keyed lists by the merge keys of [`merge_keys`] and obeys the `$patch`,
//!   `$retainKeys`, `$setElementOrder/…` and `$deleteFromPrimitiveList/…` directives;
//! - `application/merge-patch+json` — [`json_merge_patch`] (RFC 7386);
//! - `application/json-patch+json` — [`json_patch`] (RFC 6902).
//!
//! Every function takes its inputs by reference and returns a new value, so a failed patch
//! leaves nothing half-applied. Every failure is a [`PatchError`] whose message says what in
//! the patch is wrong.

mod eq;
mod error;
mod json_merge;
mod json_patch;
mod list;
pub mod merge_keys;
mod strategic;

pub use error::PatchError;
pub use json_merge::json_merge_patch;
pub use json_patch::json_patch;
pub use strategic::strategic_merge_patch;

/// How deep a patch may nest before it is refused (the JSON parser already stops at 128).
pub const MAX_DEPTH: usize = 128;

/// The size of `v` as compact JSON if it is at most `budget` bytes; `None` (without walking
/// further) once it is larger. Cheap enough to run before every copy or store.
pub fn json_size_within(v: &serde_json::Value, budget: usize) -> Option<usize> {
    use serde_json::Value;
    fn walk(v: &Value, used: &mut usize, budget: usize) -> bool {
        let own = match v {
            Value::Null => 4,
            Value::Bool(b) => {
                if *b {
                    4
                } else {
                    5
                }
            }
            Value::Number(n) => n.to_string().len(),
            // Quotes; escapes are not counted (the bound need not be exact, only monotonic).
            Value::String(s) => s.len() + 2,
            Value::Array(items) => {
                *used = used.saturating_add(items.len() + 1);
                if *used > budget {
                    return false;
                }
                return items.iter().all(|i| walk(i, used, budget));
            }
            Value::Object(map) => {
                *used = used.saturating_add(map.len() * 2 + 1);
                if *used > budget {
                    return false;
                }
                return map.iter().all(|(k, i)| {
                    *used = used.saturating_add(k.len() + 2);
                    *used <= budget && walk(i, used, budget)
                });
            }
        };
        *used = used.saturating_add(own);
        *used <= budget
    }
    let mut used = 0;
    walk(v, &mut used, budget).then_some(used)
}

/// Whether `v` nests at most `max` levels (objects and arrays), walked without recursion so
/// that any depth is safe to check.
pub fn depth_within(v: &serde_json::Value, max: usize) -> bool {
    use serde_json::Value;
    let mut stack: Vec<(&Value, usize)> = vec![(v, 0)];
    while let Some((v, depth)) = stack.pop() {
        match v {
            Value::Array(items) if !items.is_empty() => {
                if depth + 1 > max {
                    return false;
                }
                stack.extend(items.iter().map(|i| (i, depth + 1)));
            }
            Value::Object(map) if !map.is_empty() => {
                if depth + 1 > max {
                    return false;
                }
                stack.extend(map.values().map(|i| (i, depth + 1)));
            }
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod size_tests {
    use serde_json::json;

    #[test]
    fn size_is_bounded_and_close_to_the_encoding() {
        let v = json!({"a": [1, "xy", null, true], "b": {"c": false}});
        let exact = v.to_string().len();
        let got = super::json_size_within(&v, 1000).expect("small");
        assert!(got <= exact + 4 && got + 4 >= exact, "{got} vs {exact}");
        assert_eq!(super::json_size_within(&v, 10), None);
    }

    #[test]
    fn depth_is_checked_without_recursion() {
        let mut v = json!(1);
        for _ in 0..100_000 {
            v = serde_json::Value::Array(vec![v]);
        }
        assert!(!super::depth_within(&v, 128));
        assert!(super::depth_within(&json!([[1]]), 2));
        assert!(!super::depth_within(&json!([[[1]]]), 2));
        // Dropping a 100,000-deep value recursively would overflow the test's stack; leak it.
        std::mem::forget(v);
    }
}
