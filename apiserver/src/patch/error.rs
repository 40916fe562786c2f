//! The one error type of the patch module. Every variant is the client's fault (a malformed or
//! inapplicable patch); the API server answers 422 or 400 with the message as it stands.

/// Why a patch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The object or the patch has the wrong JSON type at its root.
    #[error("{what} must be a JSON {expected}, not {found}")]
    WrongRootType { what: &'static str, expected: &'static str, found: &'static str },

    /// A `$`-key of a strategic merge patch that is not one of the known directives.
    #[error(
        "unknown patch directive {key:?} at {path}; known directives are $patch, $retainKeys, \
         $setElementOrder/<list> and $deleteFromPrimitiveList/<list>"
    )]
    UnknownDirective { path: String, key: String },

    /// A known directive used with a wrong value or in a wrong place.
    #[error("invalid {directive} at {path}: {reason}")]
    BadDirective { path: String, directive: String, reason: String },

    /// An item of a list merged by key lacks the key.
    #[error("list {path} is merged by key {key:?}, but this item has no {key:?}: {item}")]
    MissingMergeKey { path: String, key: &'static str, item: String },

    /// A value in a strategic merge patch whose type cannot be merged where it stands.
    #[error("invalid value at {path}: {reason}")]
    BadValue { path: String, reason: String },

    /// A malformed or inapplicable RFC 6902 operation (operations are numbered from 0).
    #[error("JSON patch operation {index} ({op}): {reason}")]
    JsonPatchOp { index: usize, op: String, reason: String },

    /// An RFC 6902 `test` operation whose value differs from the document's.
    #[error("JSON patch operation {index} (test) failed: the value at {path:?} is not {expected}")]
    TestFailed { index: usize, path: String, expected: String },

    /// The patch nests deeper than the server accepts.
    #[error("the patch nests deeper than {0} levels")]
    TooDeep(usize),

    /// A JSON patch with more operations than the server accepts (413, as upstream).
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations { max: usize, got: usize },

    /// The `copy` operations of a JSON patch would add more than the limit.
    #[error(
        "JSON patch operation {index} (copy): unable to complete the copy, the accumulated size of the \
         copies would exceed the limit of {limit} bytes"
    )]
    CopyTooLarge { index: usize, limit: usize },
}

/// The JSON type name of `v`, for messages.
pub(crate) fn type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// `v` as compact JSON, cut to a length fit for an error message.
pub(crate) fn snippet(v: &serde_json::Value) -> String {
    const MAX: usize = 200;
    let s = v.to_string();
    if s.len() <= MAX {
        return s;
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
