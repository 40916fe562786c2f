//! JSON patch (RFC 6902), the body of `application/json-patch+json`: an array of `add`,
//! `remove`, `replace`, `move`, `copy` and `test` operations addressed by JSON pointers
//! (RFC 6901: `~1` is `/`, `~0` is `~`, `-` is the end of an array). The operations apply in
//! order to a copy of the document; the first that fails fails the whole patch.

use serde_json::{Map, Value};

use super::eq::json_eq;
use super::error::{snippet, type_name};
use super::PatchError;

/// Applies the RFC 6902 operations `ops` (a JSON array) to `original`.
pub fn json_patch(original: &Value, ops: &Value) -> Result<Value, PatchError> {
    let Value::Array(ops) = ops else {
        return Err(PatchError::WrongRootType {
            what: "a JSON patch",
            expected: "array of operations",
            found: type_name(ops),
        });
    };
    if ops.len() > MAX_OPERATIONS {
        return Err(PatchError::TooManyOperations { max: MAX_OPERATIONS, got: ops.len() });
    }
    let mut doc = original.clone();
    // `copy` is the one operation that grows the document beyond the patch's own size: each
    // copy may double it. Upstream bounds the accumulated size of copies (CVE-2019-1002100).
    let mut copied = 0usize;
    for (index, op) in ops.iter().enumerate() {
        apply_op(&mut doc, index, op, &mut copied)?;
    }
    Ok(doc)
}

/// Most operations in one JSON patch (upstream's `maxJSONPatchOperations`).
pub const MAX_OPERATIONS: usize = 10_000;
/// Most bytes all `copy` operations of one patch may add (upstream's `JSONPatchMaxCopyBytes`,
/// the request body limit).
pub const MAX_COPY_BYTES: usize = 3 * 1024 * 1024;

/// One operation, with what it needs to report an error.
struct Op<'a> {
    index: usize,
    name: &'a str,
    fields: &'a Map<String, Value>,
}

impl Op<'_> {
    fn err(&self, reason: impl Into<String>) -> PatchError {
        PatchError::JsonPatchOp { index: self.index, op: self.name.to_string(), reason: reason.into() }
    }

    /// The pointer in member `member` (`path` or `from`), parsed.
    fn pointer(&self, member: &str) -> Result<Vec<String>, PatchError> {
        match self.fields.get(member) {
            Some(Value::String(p)) => parse_pointer(p).map_err(|reason| self.err(reason)),
            Some(other) => {
                Err(self.err(format!("\"{member}\" must be a string (a JSON pointer), not {}", type_name(other))))
            }
            None => Err(self.err(format!("missing \"{member}\""))),
        }
    }

    fn value(&self) -> Result<&Value, PatchError> {
        self.fields.get("value").ok_or_else(|| self.err("missing \"value\""))
    }

    fn path_text(&self) -> String {
        match self.fields.get("path") {
            Some(Value::String(p)) => p.clone(),
            _ => String::new(),
        }
    }
}

fn apply_op(doc: &mut Value, index: usize, op: &Value, copied: &mut usize) -> Result<(), PatchError> {
    let Value::Object(fields) = op else {
        return Err(PatchError::JsonPatchOp {
            index,
            op: "?".into(),
            reason: format!("an operation must be an object, not {}", type_name(op)),
        });
    };
    let name = match fields.get("op") {
        Some(Value::String(s)) => s.as_str(),
        _ => {
            return Err(PatchError::JsonPatchOp {
                index,
                op: "?".into(),
                reason: "missing \"op\" (one of add, remove, replace, move, copy, test)".into(),
            })
        }
    };
    let op = Op { index, name, fields };
    match name {
        "add" => {
            let path = op.pointer("path")?;
            let value = op.value()?.clone();
            add(doc, &path, value).map_err(|r| op.err(r))
        }
        "remove" => {
            let path = op.pointer("path")?;
            remove(doc, &path).map(drop).map_err(|r| op.err(r))
        }
        "replace" => {
            let path = op.pointer("path")?;
            let value = op.value()?.clone();
            let target = get_mut(doc, &path).map_err(|r| op.err(r))?;
            *target = value;
            Ok(())
        }
        "move" => {
            let from = op.pointer("from")?;
            let path = op.pointer("path")?;
            if from == path {
                return get_mut(doc, &from).map(drop).map_err(|r| op.err(r));
            }
            if path.len() > from.len() && path.starts_with(&from) {
                return Err(op.err("cannot move a value into one of its own children"));
            }
            let value = remove(doc, &from).map_err(|r| op.err(r))?;
            add(doc, &path, value).map_err(|r| op.err(r))
        }
        "copy" => {
            let from = op.pointer("from")?;
            let path = op.pointer("path")?;
            let source = get_mut(doc, &from).map_err(|r| op.err(r))?;
            let budget = MAX_COPY_BYTES.saturating_sub(*copied);
            let size = super::json_size_within(source, budget)
                .ok_or(PatchError::CopyTooLarge { index, limit: MAX_COPY_BYTES })?;
            *copied += size;
            let value = source.clone();
            add(doc, &path, value).map_err(|r| op.err(r))
        }
        "test" => {
            let path = op.pointer("path")?;
            let expected = op.value()?;
            let actual = get_mut(doc, &path).map_err(|r| op.err(r))?;
            if json_eq(actual, expected) {
                Ok(())
            } else {
                Err(PatchError::TestFailed { index, path: op.path_text(), expected: snippet(expected) })
            }
        }
        other => Err(op.err(format!("unknown operation {other:?}; expected add, remove, replace, move, copy or test"))),
    }
}

/// Splits an RFC 6901 pointer into its unescaped reference tokens.
fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!("JSON pointer {pointer:?} must be empty or start with \"/\""));
    };
    rest.split('/')
        .map(|token| {
            let mut out = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => out.push('~'),
                    Some('1') => out.push('/'),
                    _ => return Err(format!("JSON pointer {pointer:?} has \"~\" not followed by 0 or 1")),
                }
            }
            Ok(out)
        })
        .collect()
}

/// The array index `token` names in an array of `len` items; `allow_end` admits `len`
/// itself (as `-` or a number), where `add` inserts at the end.
fn array_index(token: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    if token == "-" {
        return if allow_end {
            Ok(len)
        } else {
            Err("\"-\" (past the end of the array) names no existing item".into())
        };
    }
    let digits_ok =
        !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) && (token == "0" || !token.starts_with('0'));
    let index = match token.parse::<usize>() {
        Ok(i) if digits_ok => i,
        _ => return Err(format!("{token:?} is not an array index")),
    };
    let max = if allow_end { len } else { len.saturating_sub(1) };
    if index > max || (!allow_end && len == 0) {
        return Err(format!("index {index} is out of bounds (the array has {len} items)"));
    }
    Ok(index)
}

/// The value at `path`, which must exist.
fn get_mut<'a>(doc: &'a mut Value, path: &[String]) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for (depth, token) in path.iter().enumerate() {
        cur = match cur {
            Value::Object(map) => {
                map.get_mut(token).ok_or_else(|| format!("no such key {token:?} at {}", show(path, depth)))?
            }
            Value::Array(items) => {
                let i = array_index(token, items.len(), false).map_err(|e| format!("at {}: {e}", show(path, depth)))?;
                items.get_mut(i).ok_or_else(|| format!("no item {i} at {}", show(path, depth)))?
            }
            other => {
                return Err(format!("{} is {}, which has no member {token:?}", show(path, depth), type_name(other)))
            }
        };
    }
    Ok(cur)
}

/// Adds `value` at `path`: sets an object member, or inserts into an array.
fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parent_path)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    let depth = parent_path.len();
    match get_mut(doc, parent_path)? {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let i = array_index(last, items.len(), true).map_err(|e| format!("at {}: {e}", show(path, depth)))?;
            items.insert(i, value);
            Ok(())
        }
        other => Err(format!("{} is {}, which cannot hold {last:?}", show(path, depth), type_name(other))),
    }
}

/// Removes and returns the value at `path`, which must exist.
fn remove(doc: &mut Value, path: &[String]) -> Result<Value, String> {
    let Some((last, parent_path)) = path.split_last() else {
        return Err("cannot remove the whole document".into());
    };
    let depth = parent_path.len();
    match get_mut(doc, parent_path)? {
        Value::Object(map) => {
            map.shift_remove(last).ok_or_else(|| format!("no such key {last:?} at {}", show(path, depth)))
        }
        Value::Array(items) => {
            let i = array_index(last, items.len(), false).map_err(|e| format!("at {}: {e}", show(path, depth)))?;
            if i < items.len() {
                Ok(items.remove(i))
            } else {
                Err(format!("no item {i} at {}", show(path, depth)))
            }
        }
        other => Err(format!("{} is {}, which has no member {last:?}", show(path, depth), type_name(other))),
    }
}

/// The pointer to the first `depth` tokens of `path`, escaped again, for messages.
fn show(path: &[String], depth: usize) -> String {
    let shown: String =
        path.iter().take(depth).map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1"))).collect();
    if shown.is_empty() {
        "the document root".into()
    } else {
        format!("{shown:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 6902 appendix A examples (A.1–A.16 where they succeed), then API server cases.
    #[test]
    fn successful_patches() {
        let cases = [
            (
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/baz", "value": "qux"}]),
                json!({"foo": "bar", "baz": "qux"}),
            ),
            (
                json!({"foo": ["bar", "baz"]}),
                json!([{"op": "add", "path": "/foo/1", "value": "qux"}]),
                json!({"foo": ["bar", "qux", "baz"]}),
            ),
            (json!({"baz": "qux", "foo": "bar"}), json!([{"op": "remove", "path": "/baz"}]), json!({"foo": "bar"})),
            (
                json!({"foo": ["bar", "qux", "baz"]}),
                json!([{"op": "remove", "path": "/foo/1"}]),
                json!({"foo": ["bar", "baz"]}),
            ),
            (
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "replace", "path": "/baz", "value": "boo"}]),
                json!({"baz": "boo", "foo": "bar"}),
            ),
            (
                json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
                json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]),
                json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
            ),
            (
                json!({"foo": ["all", "grass", "cows", "eat"]}),
                json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}]),
                json!({"foo": ["all", "cows", "eat", "grass"]}),
            ),
            (
                json!({"baz": "qux", "foo": ["a", 2, "c"]}),
                json!([{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}]),
                json!({"baz": "qux", "foo": ["a", 2, "c"]}),
            ),
            (
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}]),
                json!({"foo": "bar", "child": {"grandchild": {}}}),
            ),
            // A.11: unknown members of an operation are ignored.
            (
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}]),
                json!({"foo": "bar", "baz": "qux"}),
            ),
            (
                json!({"/": 9, "~1": 10}),
                json!([{"op": "test", "path": "/~01", "value": 10}]),
                json!({"/": 9, "~1": 10}),
            ),
            (
                json!({"foo": ["bar"]}),
                json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}]),
                json!({"foo": ["bar", ["abc", "def"]]}),
            ),
            // A.16 and friends
            (
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/baz", "value": null}]),
                json!({"foo": "bar", "baz": null}),
            ),
            (
                json!({"a/b": 1, "m~n": 2}),
                json!([{"op": "replace", "path": "/a~1b", "value": 3}, {"op": "remove", "path": "/m~0n"}]),
                json!({"a/b": 3}),
            ),
            (json!({"foo": 1}), json!([{"op": "copy", "from": "/foo", "path": "/bar"}]), json!({"foo": 1, "bar": 1})),
            (json!({"foo": 1}), json!([{"op": "replace", "path": "", "value": [1]}]), json!([1])),
            (json!({"foo": 1}), json!([{"op": "add", "path": "", "value": {"x": 2}}]), json!({"x": 2})),
            (json!({"a": [1]}), json!([{"op": "add", "path": "/a/1", "value": 2}]), json!({"a": [1, 2]})),
            (json!({"a": 1}), json!([{"op": "move", "from": "/a", "path": "/a"}]), json!({"a": 1})),
            (json!({"n": 1.0}), json!([{"op": "test", "path": "/n", "value": 1}]), json!({"n": 1.0})),
            (json!({"a": 1}), json!([]), json!({"a": 1})),
            // What the Python client sends for a list body.
            (
                json!({"metadata": {"labels": {"app": "web"}}, "spec": {"replicas": 1}}),
                json!([
                    {"op": "replace", "path": "/spec/replicas", "value": 4},
                    {"op": "add", "path": "/metadata/labels/tier", "value": "front"},
                    {"op": "remove", "path": "/metadata/labels/app"}
                ]),
                json!({"metadata": {"labels": {"tier": "front"}}, "spec": {"replicas": 4}}),
            ),
        ];
        for (original, ops, expected) in cases {
            match json_patch(&original, &ops) {
                Ok(got) => assert_eq!(got, expected, "{original} + {ops}"),
                Err(e) => panic!("{original} + {ops}: {e}"),
            }
        }
    }

    #[test]
    fn failing_patches() {
        let cases = [
            // A.9: a failing test.
            (json!({"baz": "qux"}), json!([{"op": "test", "path": "/baz", "value": "bar"}]), "failed"),
            // A.12: adding to a nonexistent target.
            (json!({"foo": "bar"}), json!([{"op": "add", "path": "/baz/bat", "value": "qux"}]), "no such key \"baz\""),
            // A.14-ish: escapes are applied before lookup, so "~01" is "~1", not "/".
            (json!({"/": 9, "~1": 10}), json!([{"op": "test", "path": "/~01", "value": "10"}]), "failed"),
            (json!({"foo": "bar"}), json!([{"op": "remove", "path": "/nope"}]), "no such key"),
            (json!({"foo": "bar"}), json!([{"op": "replace", "path": "/nope", "value": 1}]), "no such key"),
            (json!({"a": [1, 2]}), json!([{"op": "add", "path": "/a/5", "value": 3}]), "out of bounds"),
            (json!({"a": [1, 2]}), json!([{"op": "add", "path": "/a/01", "value": 3}]), "not an array index"),
            (json!({"a": [1, 2]}), json!([{"op": "remove", "path": "/a/-"}]), "\"-\""),
            (json!({"a": [1, 2]}), json!([{"op": "remove", "path": "/a/2"}]), "out of bounds"),
            (json!({"a": [1, 2]}), json!([{"op": "replace", "path": "/a/x", "value": 0}]), "not an array index"),
            (json!({"a": []}), json!([{"op": "remove", "path": "/a/0"}]), "out of bounds"),
            (json!({"a": 1}), json!([{"op": "add", "path": "a", "value": 1}]), "must be empty or start with"),
            (json!({"a": 1}), json!([{"op": "add", "path": "/a~2", "value": 1}]), "not followed by 0 or 1"),
            (json!({"a": 1}), json!([{"op": "add", "path": "/a/b", "value": 1}]), "cannot hold"),
            (json!({"a": 1}), json!([{"op": "add", "path": "/b"}]), "missing \"value\""),
            (json!({"a": 1}), json!([{"op": "move", "path": "/b"}]), "missing \"from\""),
            (json!({"a": {"b": 1}}), json!([{"op": "move", "from": "/a", "path": "/a/b/c"}]), "own children"),
            (json!({"a": 1}), json!([{"op": "frobnicate", "path": "/a"}]), "unknown operation"),
            (json!({"a": 1}), json!([{"path": "/a"}]), "missing \"op\""),
            (json!({"a": 1}), json!([{"op": "remove", "path": 7}]), "must be a string"),
            (json!({"a": 1}), json!([{"op": "remove", "path": ""}]), "whole document"),
            (json!({"a": 1}), json!(["remove"]), "must be an object"),
            (json!({"a": 1}), json!({"op": "remove", "path": "/a"}), "array of operations"),
        ];
        for (original, ops, want) in cases {
            match json_patch(&original, &ops) {
                Ok(got) => panic!("{original} + {ops} succeeded with {got}"),
                Err(e) => assert!(e.to_string().contains(want), "{ops}: {e} lacks {want:?}"),
            }
        }
    }

    #[test]
    fn a_failure_leaves_no_partial_result_and_names_the_operation() {
        let original = json!({"a": 1});
        let ops = json!([
            {"op": "replace", "path": "/a", "value": 2},
            {"op": "test", "path": "/a", "value": 1}
        ]);
        match json_patch(&original, &ops) {
            Err(PatchError::TestFailed { index, path, .. }) => {
                assert_eq!((index, path.as_str()), (1, "/a"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(original, json!({"a": 1}));
    }

    /// CVE-2019-1002100: 24 self-appending copies of a small array would need gigabytes.
    #[test]
    fn self_doubling_copies_stop_at_the_limit() {
        let ops: Vec<Value> = (0..24).map(|_| json!({"op": "copy", "from": "/data/a", "path": "/data/a/-"})).collect();
        let doc = json!({"data": {"a": ["0123456789abcdef0123456789abcdef"]}});
        match json_patch(&doc, &Value::Array(ops)) {
            Err(PatchError::CopyTooLarge { limit, .. }) => assert_eq!(limit, MAX_COPY_BYTES),
            other => panic!("unexpected {:?}", other.map(|v| v.to_string().len())),
        }
    }

    #[test]
    fn too_many_operations_are_refused_before_any_is_applied() {
        let ops: Vec<Value> = (0..=MAX_OPERATIONS).map(|_| json!({"op": "test", "path": "", "value": {}})).collect();
        assert!(matches!(
            json_patch(&json!({}), &Value::Array(ops)),
            Err(PatchError::TooManyOperations { max: MAX_OPERATIONS, .. })
        ));
    }

    #[test]
    fn modest_copies_still_work() {
        let ops = json!([{"op": "copy", "from": "/a", "path": "/b"}, {"op": "copy", "from": "/b", "path": "/c"}]);
        assert_eq!(json_patch(&json!({"a": [1, 2]}), &ops).ok(), Some(json!({"a": [1, 2], "b": [1, 2], "c": [1, 2]})));
    }
}
