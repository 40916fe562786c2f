//! Strategic merge patch (`application/strategic-merge-patch+json`), as upstream's
//! `k8s.io/apimachinery/pkg/util/strategicpatch` applies it on the server: maps merge
//! recursively and `null` deletes a key; lists merge as [`merge_keys`](super::merge_keys) says
//! (see [`list`](super::list)); and these directives steer the merge:
//!
//! - `"$patch": "replace"` in a map replaces the map with the rest of the patch map;
//!   `"$patch": "delete"` empties it (upstream leaves `{}` where the map was);
//!   `"$patch": "merge"` is the default and changes nothing;
//! - `"$retainKeys": [..]` drops every key of the original map not listed;
//! - `"$setElementOrder/<list>": [..]` orders a merged list;
//! - `"$deleteFromPrimitiveList/<list>": [..]` removes values from a list of scalars.
//!
//! No directive is ever stored in the result: values the patch adds are merged into an empty
//! value, which strips their directives too. Any other `$`-key is an error.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::error::type_name;
use super::merge_keys::{list_type, ListType};
use super::{PatchError, MAX_DEPTH};

pub(super) const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_FROM: &str = "$deleteFromPrimitiveList/";

/// Applies the strategic merge patch `patch` to `original`, an object of `kind` (`"Pod"`,
/// `"Deployment"`, ...). Both must be JSON objects. Lists of a kind or path the merge-key
/// table does not know are replaced whole, as upstream does for lists without a patch strategy.
pub fn strategic_merge_patch(kind: &str, original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Object(original) = original else {
        return Err(PatchError::WrongRootType {
            what: "the object being patched",
            expected: "object",
            found: type_name(original),
        });
    };
    let Value::Object(patch) = patch else {
        return Err(PatchError::WrongRootType {
            what: "a strategic merge patch",
            expected: "object",
            found: type_name(patch),
        });
    };
    let mut merger = Merger { kind, path: Vec::new() };
    let merged = merger.merge_map(original.clone(), patch, 0)?;
    Ok(Value::Object(merged.unwrap_or_default()))
}

/// The walk through one patch: the object's kind and the field path where the walk stands.
pub(super) struct Merger<'k> {
    pub(super) kind: &'k str,
    pub(super) path: Vec<String>,
}

/// Which part of a [`FieldPatch`] a patch key gives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Value,
    Order,
    Delete,
}

/// What the patch says about one field of a map: its value and its list directives.
#[derive(Default)]
struct FieldPatch<'p> {
    value: Option<&'p Value>,
    order: Option<&'p Value>,
    delete: Option<&'p Value>,
}

impl Merger<'_> {
    /// The field path where the walk stands, for messages.
    pub(super) fn here(&self) -> String {
        if self.path.is_empty() {
            "the object root".into()
        } else {
            self.path.join(".")
        }
    }

    /// How the list at the current path merges.
    pub(super) fn list_type(&self) -> ListType {
        let path: Vec<&str> = self.path.iter().map(String::as_str).collect();
        list_type(self.kind, &path)
    }

    pub(super) fn bad_directive(&self, directive: &str, reason: impl Into<String>) -> PatchError {
        PatchError::BadDirective { path: self.here(), directive: directive.into(), reason: reason.into() }
    }

    /// Merges the patch map `patch` into `original`. `None` means the patch deleted the map
    /// (`$patch: delete`).
    pub(super) fn merge_map(
        &mut self,
        original: Map<String, Value>,
        patch: &Map<String, Value>,
        depth: usize,
    ) -> Result<Option<Map<String, Value>>, PatchError> {
        if depth > MAX_DEPTH {
            return Err(PatchError::TooDeep(MAX_DEPTH));
        }
        match patch.get(PATCH) {
            None => self.merge_fields(original, patch, depth).map(Some),
            Some(Value::String(d)) if d == "merge" => self.merge_fields(original, patch, depth).map(Some),
            Some(Value::String(d)) if d == "replace" => self.merge_fields(Map::new(), patch, depth).map(Some),
            Some(Value::String(d)) if d == "delete" => Ok(None),
            Some(other) => {
                Err(self.bad_directive(PATCH, format!("{other} is not \"replace\", \"delete\" or \"merge\"")))
            }
        }
    }

    /// Merges every field of `patch` (directives aside from `$patch`) into `original`.
    fn merge_fields(
        &mut self,
        mut original: Map<String, Value>,
        patch: &Map<String, Value>,
        depth: usize,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(retain) = patch.get(RETAIN_KEYS) {
            self.retain_keys(&mut original, patch, retain)?;
        }
        let mut fields: Vec<(&str, FieldPatch)> = Vec::new();
        let mut slots: HashMap<&str, usize> = HashMap::new();
        for (key, value) in patch {
            if key == PATCH || key == RETAIN_KEYS {
                continue;
            }
            let (field, role) = if let Some(f) = key.strip_prefix(SET_ORDER) {
                (f, Role::Order)
            } else if let Some(f) = key.strip_prefix(DELETE_FROM) {
                (f, Role::Delete)
            } else if key.starts_with('$') {
                return Err(PatchError::UnknownDirective { path: self.here(), key: key.clone() });
            } else {
                (key.as_str(), Role::Value)
            };
            if field.is_empty() {
                return Err(self.bad_directive(key, "it names no list field after the \"/\""));
            }
            // A list directive must hold a list wherever it appears, as upstream checks before
            // looking at the field (even one that is absent or atomic).
            if role != Role::Value && !value.is_array() {
                self.path.push(field.to_string());
                let e = self.bad_directive(key, format!("must be a list, not {}", super::error::type_name(value)));
                self.path.pop();
                return Err(e);
            }
            let slot = *slots.entry(field).or_insert_with(|| {
                fields.push((field, FieldPatch::default()));
                fields.len() - 1
            });
            if let Some((_, fp)) = fields.get_mut(slot) {
                match role {
                    Role::Value => fp.value = Some(value),
                    Role::Order => fp.order = Some(value),
                    Role::Delete => fp.delete = Some(value),
                }
            }
        }
        for (field, fp) in fields {
            let current = original.get_mut(field).map(std::mem::take);
            self.path.push(field.to_string());
            let merged = self.merge_field(current, &fp, depth);
            self.path.pop();
            match merged? {
                Some(v) => {
                    original.insert(field.to_string(), v);
                }
                None => {
                    original.shift_remove(field);
                }
            }
        }
        Ok(original)
    }

    /// `$retainKeys`: checks that the patch sets no key outside the list, then drops the
    /// original's keys outside it.
    fn retain_keys(
        &self,
        original: &mut Map<String, Value>,
        patch: &Map<String, Value>,
        retain: &Value,
    ) -> Result<(), PatchError> {
        let Value::Array(list) = retain else {
            return Err(
                self.bad_directive(RETAIN_KEYS, format!("must be a list of field names, not {}", type_name(retain)))
            );
        };
        let mut keep: Vec<&str> = Vec::with_capacity(list.len());
        for k in list {
            match k {
                Value::String(s) => keep.push(s),
                other => {
                    return Err(self.bad_directive(RETAIN_KEYS, format!("{other} is not a field name")));
                }
            }
        }
        for (k, v) in patch {
            if !v.is_null() && !k.starts_with('$') && !keep.contains(&k.as_str()) {
                return Err(
                    self.bad_directive(RETAIN_KEYS, format!("the patch sets {k:?}, which the list does not retain"))
                );
            }
        }
        original.retain(|k, _| keep.contains(&k.as_str()));
        Ok(())
    }

    /// Merges what the patch says about the field at the current path into its current value
    /// (`None`: absent). Returns the new value, `None` to remove the field.
    fn merge_field(
        &mut self,
        current: Option<Value>,
        fp: &FieldPatch,
        depth: usize,
    ) -> Result<Option<Value>, PatchError> {
        if fp.order.is_none() && fp.delete.is_none() {
            return match fp.value {
                Some(p) => self.merge_value(current, p, depth),
                None => Ok(current),
            };
        }
        let patch = match fp.value {
            None => None,
            Some(Value::Null) => return Ok(None),
            Some(Value::Array(items)) => Some(items.as_slice()),
            Some(other) => {
                return Err(PatchError::BadValue {
                    path: self.here(),
                    reason: format!(
                        "the patch gives list directives for this field but sets it to {}",
                        type_name(other)
                    ),
                })
            }
        };
        let current = match current {
            None => None,
            Some(Value::Array(items)) => Some(items),
            // A list replaces a value of another type.
            Some(_) if patch.is_some() => None,
            Some(other) => {
                return Err(PatchError::BadValue {
                    path: self.here(),
                    reason: format!("the patch gives list directives for this field, but it is {}", type_name(&other)),
                })
            }
        };
        let merged = self.merge_list(current, patch, fp.order, fp.delete, depth)?;
        Ok(merged.map(Value::Array))
    }

    /// Merges the patch value `patch` into `current` (`None`: absent). Values with no
    /// counterpart are merged into an empty value, so their directives are applied too.
    pub(super) fn merge_value(
        &mut self,
        current: Option<Value>,
        patch: &Value,
        depth: usize,
    ) -> Result<Option<Value>, PatchError> {
        match (current, patch) {
            (_, Value::Null) => Ok(None),
            (Some(Value::Object(o)), Value::Object(p)) => {
                // Upstream leaves an empty map where `$patch: delete` deleted one.
                let merged = self.merge_map(o, p, depth + 1)?;
                Ok(Some(Value::Object(merged.unwrap_or_default())))
            }
            (_, Value::Object(p)) => Ok(self.merge_map(Map::new(), p, depth + 1)?.map(Value::Object)),
            (Some(Value::Array(o)), Value::Array(p)) => {
                Ok(self.merge_list(Some(o), Some(p), None, None, depth)?.map(Value::Array))
            }
            (_, Value::Array(p)) => Ok(self.merge_list(None, Some(p), None, None, depth)?.map(Value::Array)),
            (_, scalar) => Ok(Some(scalar.clone())),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    /// Runs `(description, kind, original, patch, expected)` cases.
    pub(in super::super) fn check(cases: &[(&str, &str, Value, Value, Value)]) {
        for (name, kind, original, patch, expected) in cases {
            match strategic_merge_patch(kind, original, patch) {
                Ok(got) => {
                    assert_eq!(&got, expected, "case {name:?}");
                    // Objects compare regardless of key order; the text does not.
                    assert_eq!(got.to_string(), expected.to_string(), "case {name:?} (key order)");
                    assert!(!has_directive(&got), "case {name:?} stored a directive: {got}");
                }
                Err(e) => panic!("case {name:?} failed: {e}"),
            }
        }
    }

    fn has_directive(v: &Value) -> bool {
        match v {
            Value::Object(m) => m.iter().any(|(k, v)| k.starts_with('$') || has_directive(v)),
            Value::Array(items) => items.iter().any(has_directive),
            _ => false,
        }
    }

    /// Runs `(description, kind, original, patch, text the error must contain)` cases.
    pub(in super::super) fn check_errors(cases: &[(&str, &str, Value, Value, &str)]) {
        for (name, kind, original, patch, want) in cases {
            match strategic_merge_patch(kind, original, patch) {
                Ok(got) => panic!("case {name:?} succeeded with {got}"),
                Err(e) => assert!(e.to_string().contains(want), "case {name:?}: {e:?} lacks {want:?}"),
            }
        }
    }

    #[test]
    fn maps_and_directives_on_maps() {
        check(&[
            ("add a field", "Pod", json!({"name": 1}), json!({"value": 1}), json!({"name": 1, "value": 1})),
            ("empty patch", "Pod", json!({"name": 1}), json!({}), json!({"name": 1})),
            ("null deletes", "Pod", json!({"name": 1, "value": 1}), json!({"name": null}), json!({"value": 1})),
            ("null of an absent key is dropped", "Pod", json!({"a": 1}), json!({"b": null}), json!({"a": 1})),
            (
                "nested maps merge and nulls delete inside them",
                "ConfigMap",
                json!({"metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}, "data": {"k": "v"}}),
                json!({"metadata": {"labels": {"a": null, "c": "3"}, "annotations": {"x": "y"}}}),
                json!({"metadata": {"name": "c", "labels": {"b": "2", "c": "3"}, "annotations": {"x": "y"}}, "data": {"k": "v"}}),
            ),
            (
                "nulls inside new maps are not stored",
                "Pod",
                json!({}),
                json!({"metadata": {"labels": {"a": null, "b": "1"}}}),
                json!({"metadata": {"labels": {"b": "1"}}}),
            ),
            ("a scalar replaces a map", "Pod", json!({"a": {"b": 1}}), json!({"a": 2}), json!({"a": 2})),
            ("a map replaces a scalar", "Pod", json!({"a": 2}), json!({"a": {"b": 1}}), json!({"a": {"b": 1}})),
            (
                "$patch: replace on a nested map",
                "Pod",
                json!({"spec": {"nodeSelector": {"a": "1", "b": "2"}, "x": 1}}),
                json!({"spec": {"nodeSelector": {"$patch": "replace", "c": "3"}}}),
                json!({"spec": {"nodeSelector": {"c": "3"}, "x": 1}}),
            ),
            (
                "$patch: replace at the root",
                "Pod",
                json!({"name": 1, "value": 1}),
                json!({"$patch": "replace"}),
                json!({}),
            ),
            (
                "$patch: replace with a key",
                "Pod",
                json!({"name": 1, "value": 1}),
                json!({"other": "a", "$patch": "replace"}),
                json!({"other": "a"}),
            ),
            (
                "$patch: delete empties a nested map, as upstream",
                "Pod",
                json!({"simpleMap": {"key1": 1, "key2": 1}, "x": 1}),
                json!({"simpleMap": {"$patch": "delete"}}),
                json!({"simpleMap": {}, "x": 1}),
            ),
            (
                "$patch: delete of an absent map adds nothing",
                "Pod",
                json!({"x": 1}),
                json!({"m": {"$patch": "delete"}}),
                json!({"x": 1}),
            ),
            (
                "$patch: merge is the default",
                "Pod",
                json!({"m": {"a": 1}}),
                json!({"m": {"$patch": "merge", "b": 2}}),
                json!({"m": {"a": 1, "b": 2}}),
            ),
            (
                "directives nested in a replacement are applied, not stored",
                "Pod",
                json!({"m": {"a": 1}}),
                json!({"m": {"$patch": "replace", "n": {"$patch": "merge", "b": null, "c": 1}}}),
                json!({"m": {"n": {"c": 1}}}),
            ),
            (
                "$retainKeys drops unlisted keys, then merges",
                "Deployment",
                json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
                json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
                json!({"spec": {"strategy": {"type": "Recreate"}}}),
            ),
            (
                "$retainKeys allows nulls of unlisted keys",
                "Pod",
                json!({"m": {"a": 1, "b": 2, "c": 3}}),
                json!({"m": {"$retainKeys": ["a", "b"], "b": 5, "c": null}}),
                json!({"m": {"a": 1, "b": 5}}),
            ),
            (
                "key order of the original is kept; new keys go last",
                "Pod",
                json!({"z": 1, "a": {"y": 1, "b": 2}, "m": 3}),
                json!({"n": 0, "a": {"c": 3, "y": 9}, "m": null}),
                json!({"z": 1, "a": {"y": 9, "b": 2, "c": 3}, "n": 0}),
            ),
        ]);
    }

    #[test]
    fn malformed_map_directives_are_errors() {
        check_errors(&[
            (
                "bad $patch",
                "Pod",
                json!({}),
                json!({"m": {"$patch": "frob"}}),
                "is not \"replace\", \"delete\" or \"merge\"",
            ),
            ("non-string $patch", "Pod", json!({}), json!({"$patch": 1}), "invalid $patch at the object root"),
            (
                "unknown directive",
                "Pod",
                json!({}),
                json!({"spec": {"$frob": 1}}),
                "unknown patch directive \"$frob\" at spec",
            ),
            (
                "$retainKeys not a list",
                "Pod",
                json!({}),
                json!({"m": {"$retainKeys": "a"}}),
                "must be a list of field names",
            ),
            ("$retainKeys non-string", "Pod", json!({}), json!({"m": {"$retainKeys": [1]}}), "is not a field name"),
            (
                "patch outside $retainKeys",
                "Pod",
                json!({}),
                json!({"m": {"$retainKeys": ["a"], "b": 1}}),
                "which the list does not retain",
            ),
            ("empty directive field", "Pod", json!({}), json!({"$setElementOrder/": []}), "names no list field"),
            ("patch not an object", "Pod", json!({}), json!([1]), "a strategic merge patch must be a JSON object"),
            ("original not an object", "Pod", json!(1), json!({}), "the object being patched must be a JSON object"),
            (
                "list directives for a non-list",
                "Pod",
                json!({"spec": {"containers": {"a": 1}}}),
                json!({"spec": {"$setElementOrder/containers": []}}),
                "but it is an object",
            ),
            (
                "list directives but a map value",
                "Pod",
                json!({}),
                json!({"spec": {"$setElementOrder/containers": [], "containers": {"a": 1}}}),
                "sets it to an object",
            ),
        ]);
    }

    #[test]
    fn refuses_absurd_nesting() {
        let mut patch = json!({"a": 1});
        for _ in 0..(MAX_DEPTH + 5) {
            patch = json!({ "a": patch });
        }
        assert!(matches!(strategic_merge_patch("Pod", &json!({}), &patch), Err(PatchError::TooDeep(_))));
    }
}

#[cfg(test)]
mod directive_types {
    use serde_json::json;

    /// Every list directive of the wrong type is an error, also where the list it names is
    /// absent, atomic or not a list at all (it used to be ignored there).
    #[test]
    fn list_directives_must_be_lists_everywhere() {
        let orig = json!({"metadata":{"finalizers":["a"]},"spec":{"containers":[{"name":"a","image":"x"}]}});
        for p in [
            json!({"spec":{"containers":[{"name":"a","$setElementOrder/ports":5}]}}),
            json!({"spec":{"$setElementOrder/tolerations":5}}),
            json!({"spec":{"$deleteFromPrimitiveList/nodeName":"x"}}),
            json!({"$setElementOrder/x":{}}),
        ] {
            let r = super::strategic_merge_patch("Pod", &orig, &p);
            assert!(r.is_err(), "{p} was accepted: {r:?}");
        }
    }
}
