//! The Kubernetes `Status` error: every failed request answers with one of these.

use serde_json::{json, Value};

/// One cause of an invalid object (`details.causes[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// Upstream reason: `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`,
    /// `FieldValueDuplicate`, `FieldValueTooLong`, `FieldValueForbidden`, `FieldValueTypeInvalid`.
    pub reason: String,
    pub message: String,
    /// The field path, e.g. `spec.template.spec.containers[0].image`.
    pub field: String,
}

impl Cause {
    pub fn new(reason: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Cause { reason: reason.to_string(), field: field.into(), message: message.into() }
    }
    pub fn required(field: impl Into<String>) -> Self {
        Cause::new("FieldValueRequired", field, "Required value")
    }
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Cause::new("FieldValueInvalid", field, message)
    }
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }
}

/// An API error, rendered as a `Status` object with the matching HTTP code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details.name`, `details.group`, `details.kind` (the plural resource name, as upstream).
    pub details: Option<Box<Details>>,
    pub causes: Vec<Cause>,
    /// Seconds to wait before retrying (429/503/500 with retry hints).
    pub retry_after: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    pub name: String,
    pub group: String,
    pub kind: String,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError { code, reason, message: message.into(), details: None, causes: Vec::new(), retry_after: None }
    }

    pub fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        self.details =
            Some(Box::new(Details { name: name.to_string(), group: group.to_string(), kind: kind.to_string() }));
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }
    pub fn unauthorized() -> Self {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(403, "Forbidden", message)
    }
    pub fn not_found_path(message: impl Into<String>) -> Self {
        ApiError::new(404, "NotFound", message)
    }
    /// `pods "x" not found`, with details like upstream.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        ApiError::new(404, "NotFound", format!("{} \"{}\" not found", qualified(group, plural), name))
            .with_details(group, plural, name)
    }
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        ApiError::new(409, "AlreadyExists", format!("{} \"{}\" already exists", qualified(group, plural), name))
            .with_details(group, plural, name)
    }
    /// The optimistic-concurrency conflict of a stale resourceVersion.
    pub fn conflict(group: &str, plural: &str, name: &str) -> Self {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(group, plural),
                name
            ),
        )
        .with_details(group, plural, name)
    }
    pub fn conflict_message(group: &str, plural: &str, name: &str, message: impl Into<String>) -> Self {
        ApiError::new(409, "Conflict", message).with_details(group, plural, name)
    }
    pub fn gone(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        ApiError::new(405, "MethodNotAllowed", message)
    }
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        ApiError::new(406, "NotAcceptable", message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        ApiError::new(413, "RequestEntityTooLarge", message)
    }
    pub fn unsupported_media_type(content_type: &str) -> Self {
        ApiError::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type:?})"))
    }
    /// 422 with causes: `Deployment.apps "x" is invalid: spec.replicas: Invalid value: ...`.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let qualified_kind = if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") };
        let list: Vec<String> = causes
            .iter()
            .map(|c| if c.field.is_empty() { c.message.clone() } else { format!("{}: {}", c.field, c.message) })
            .collect();
        let message = if list.len() == 1 {
            format!("{qualified_kind} \"{name}\" is invalid: {}", list[0])
        } else {
            format!("{qualified_kind} \"{name}\" is invalid: [{}]", list.join(", "))
        };
        let mut e = ApiError::new(422, "Invalid", message).with_details(group, kind, name);
        e.causes = causes;
        e
    }
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(500, "InternalError", format!("Internal error occurred: {}", message.into()))
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(503, "ServiceUnavailable", message)
    }
    /// 504 `Timeout` (upstream's NewTimeoutError): the message gets upstream's `Timeout: ` prefix.
    pub fn timeout(message: impl Into<String>, retry_after_seconds: u32) -> Self {
        let mut e = ApiError::new(504, "Timeout", format!("Timeout: {}", message.into()));
        e.retry_after = Some(retry_after_seconds);
        e
    }
    /// A read at a resourceVersion the server has not reached (upstream's storage
    /// NewTooLargeResourceVersionError): 504 with the cause `ResourceVersionTooLarge`.
    pub fn too_large_resource_version(requested: u64, current: u64, retry_after_seconds: u32) -> Self {
        let mut e = ApiError::timeout(
            format!("Too large resource version: {requested}, current: {current}"),
            retry_after_seconds,
        );
        e.causes = vec![Cause::new("ResourceVersionTooLarge", "", "Too large resource version")];
        e
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if self.details.is_some() || !self.causes.is_empty() || self.retry_after.is_some() {
            let mut details = serde_json::Map::new();
            if let Some(d) = &self.details {
                if !d.name.is_empty() {
                    details.insert("name".into(), json!(d.name));
                }
                if !d.group.is_empty() {
                    details.insert("group".into(), json!(d.group));
                }
                if !d.kind.is_empty() {
                    details.insert("kind".into(), json!(d.kind));
                }
            }
            if !self.causes.is_empty() {
                let causes: Vec<Value> = self
                    .causes
                    .iter()
                    .map(|c| {
                        // `field` is omitempty upstream (a ResourceVersionTooLarge cause has none).
                        let mut v = json!({"reason": c.reason, "message": c.message});
                        if !c.field.is_empty() {
                            v["field"] = json!(c.field);
                        }
                        v
                    })
                    .collect();
                details.insert("causes".into(), Value::Array(causes));
            }
            if let Some(s) = self.retry_after {
                details.insert("retryAfterSeconds".into(), json!(s));
            }
            status["details"] = Value::Object(details);
        }
        status
    }
}

fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

/// The `Status` of a successful delete of an object that is gone at once.
pub fn success_status(group: &str, plural: &str, name: &str, uid: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": group, "kind": plural, "uid": uid}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_lists_every_cause() {
        let e = ApiError::invalid(
            "apps",
            "Deployment",
            "web",
            vec![
                Cause::required("spec.selector"),
                Cause::invalid("spec.replicas", "must be greater than or equal to 0"),
            ],
        );
        assert_eq!(e.code, 422);
        let s = e.to_status();
        assert_eq!(s["details"]["causes"].as_array().map(|a| a.len()), Some(2));
        assert!(e.message.starts_with("Deployment.apps \"web\" is invalid: ["));
    }

    #[test]
    fn too_large_resource_version_is_upstreams_timeout() {
        let s = ApiError::too_large_resource_version(120, 7, 1).to_status();
        assert_eq!(s["code"], 504);
        assert_eq!(s["reason"], "Timeout");
        assert_eq!(s["message"], "Timeout: Too large resource version: 120, current: 7");
        assert_eq!(
            s["details"],
            json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1})
        );
    }

    #[test]
    fn not_found_names_the_resource() {
        let e = ApiError::not_found("", "pods", "x");
        assert_eq!(e.message, "pods \"x\" not found");
        assert_eq!(e.to_status()["details"]["kind"], "pods");
    }
}
