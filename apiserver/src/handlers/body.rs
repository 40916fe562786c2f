//! Request bodies: reading one (bounded in size and time; `http.rs` reads every body once,
//! before anything answers, and hands the bytes to the handlers), decoding JSON, YAML or
//! Kubernetes protobuf into a JSON object, and the checks every written object passes first
//! (kind, apiVersion, namespace, name).

use std::time::Duration;

use axum::body::Body;
use serde_json::{json, Map, Value};

use api::{ApiError, ResourceInfo};

use super::Ctx;

/// The API's request body limit (3 MiB, as upstream).
pub const BODY_LIMIT: usize = 3 * 1024 * 1024;

/// Reads a request body up to [`BODY_LIMIT`] (413 past it) within `timeout` (408 for a client
/// that sends its body too slowly, or declares more than it sends). The body is read up to the
/// limit even when its declared length is larger, as upstream does, so that the client, which
/// is still sending, gets the 413 rather than a broken pipe.
pub async fn read_body(body: Body, timeout: Duration) -> Result<bytes::Bytes, ApiError> {
    use http_body_util::BodyExt;
    let too_large = || ApiError::too_large(format!("the request body exceeds the limit of {BODY_LIMIT} bytes"));
    match tokio::time::timeout(timeout, http_body_util::Limited::new(body, BODY_LIMIT).collect()).await {
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(e)) => Err(ApiError::bad_request(format!("reading the request body: {e}"))),
        Err(_) => Err(ApiError::new(
            408,
            "Timeout",
            format!("the request body was not received within {}s", timeout.as_secs_f64()),
        )),
    }
}

/// The media type of the request, without parameters, lower-case; empty when absent.
pub fn media_type(ctx: &Ctx) -> String {
    ctx.header("content-type")
        .map(|ct| ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Decodes an object body by its Content-Type (a missing one means JSON, as upstream).
pub fn decode_object(media: &str, body: &[u8]) -> Result<Value, ApiError> {
    let value = match media {
        "" | "application/json" | "*/*" => parse_json(body)?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => parse_yaml(body)?,
        "application/vnd.kubernetes.protobuf" => crate::protobuf::decode(body).map_err(|e| {
            ApiError::bad_request(format!("the body of the request could not be decoded as protobuf: {e}"))
        })?,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if !value.is_object() {
        return Err(ApiError::bad_request("the body of the request must be a JSON object"));
    }
    Ok(value)
}

pub fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}")))
}

/// An options body (`DeleteOptions`): JSON only, empty meaning `{}`; its `kind`, when set,
/// must be `kind`.
pub fn decode_options(raw: &[u8], kind: &str) -> Result<Value, ApiError> {
    let body: Value = if raw.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(raw).map_err(|e| ApiError::bad_request(format!("invalid {kind}: {e}")))?
    };
    if !body.is_object() {
        return Err(ApiError::bad_request(format!("{kind} must be a JSON object")));
    }
    match body.get("kind") {
        None | Some(Value::Null) => {}
        Some(Value::String(k)) if k.is_empty() || k == kind => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "decoded object cannot be converted to {kind}: the body is of kind {other}"
            )))
        }
    }
    Ok(body)
}

/// YAML (a single document); JSON is valid YAML and is parsed as JSON first.
pub fn parse_yaml(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the YAML body is not valid UTF-8"))?;
    if text.trim().is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
}

/// Checks (and where absent, fills in) apiVersion and kind against the resource of the path.
pub fn check_kind(res: &ResourceInfo, obj: &mut Value) -> Result<(), ApiError> {
    let want_av = res.api_version();
    let o =
        obj.as_object_mut().ok_or_else(|| ApiError::bad_request("the body of the request must be a JSON object"))?;
    match o.get("apiVersion") {
        None | Some(Value::Null) => {
            o.insert("apiVersion".into(), Value::String(want_av.clone()));
        }
        Some(Value::String(av)) if *av == want_av => {}
        Some(Value::String(av)) if av.is_empty() => {
            o.insert("apiVersion".into(), Value::String(want_av.clone()));
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({}) does not match the expected API version ({want_av})",
                other.as_str().unwrap_or("<not a string>")
            )))
        }
    }
    match o.get("kind") {
        None | Some(Value::Null) => {
            o.insert("kind".into(), Value::String(res.kind.to_string()));
        }
        Some(Value::String(k)) if k == res.kind => {}
        Some(Value::String(k)) if k.is_empty() => {
            o.insert("kind".into(), Value::String(res.kind.to_string()));
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({}) does not match the kind of the resource ({}) at this path ({})",
                other.as_str().unwrap_or("<not a string>"),
                res.kind,
                res.qualified_plural()
            )))
        }
    }
    match o.get("metadata") {
        None | Some(Value::Null) => {
            o.insert("metadata".into(), Value::Object(Map::new()));
        }
        Some(Value::Object(_)) => {}
        Some(_) => return Err(ApiError::bad_request("metadata must be an object")),
    }
    Ok(())
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata").and_then(|m| m.get(field)).and_then(Value::as_str).filter(|s| !s.is_empty())
}

pub fn set_meta(obj: &mut Value, field: &str, value: Value) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert(field.to_string(), value);
    }
}

/// Namespace of the body against the path: filled in when absent, 400 when different;
/// cluster-scoped objects lose any namespace.
pub fn check_namespace(ctx: &Ctx, obj: &mut Value) -> Result<(), ApiError> {
    if !ctx.target.res.namespaced() {
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("namespace");
        }
        return Ok(());
    }
    let Some(ns) = ctx.target.namespace.clone() else {
        return Err(ApiError::bad_request("a namespaced object must be written under /namespaces/{namespace}/"));
    };
    match meta_str(obj, "namespace") {
        Some(body_ns) if body_ns != ns => Err(ApiError::bad_request(format!(
            "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({ns})"
        ))),
        _ => {
            set_meta(obj, "namespace", Value::String(ns));
            Ok(())
        }
    }
}

/// `metadata.resourceVersion` of a body as a precondition; 400 when it is not a revision.
pub fn resource_version(obj: &Value) -> Result<Option<u64>, ApiError> {
    match meta_str(obj, "resourceVersion") {
        None | Some("") => Ok(None),
        Some(rv) => rv.parse::<u64>().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "metadata.resourceVersion: Invalid value: {rv:?}: must be a resourceVersion returned by this server"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kind_is_filled_or_checked() {
        let Some(pods) = api::resources::by_plural("", "v1", "pods") else { panic!("pods") };
        let mut v = json!({"metadata":{"name":"a"}});
        assert!(check_kind(pods, &mut v).is_ok());
        assert_eq!(v["kind"], "Pod");
        assert_eq!(v["apiVersion"], "v1");
        let mut v = json!({"kind":"Service","apiVersion":"v1","metadata":{}});
        assert_eq!(check_kind(pods, &mut v).map_err(|e| e.code), Err(400));
        let mut v = json!({"kind":"Pod","apiVersion":"apps/v1"});
        assert_eq!(check_kind(pods, &mut v).map_err(|e| e.code), Err(400));
        let mut v = json!({"kind":"Pod","metadata":[]});
        assert_eq!(check_kind(pods, &mut v).map_err(|e| e.code), Err(400));
    }

    #[test]
    fn options_bodies() {
        assert_eq!(decode_options(b" ", "DeleteOptions").ok(), Some(json!({})));
        assert!(decode_options(br#"{"kind":"DeleteOptions","gracePeriodSeconds":0}"#, "DeleteOptions").is_ok());
        assert_eq!(decode_options(b"[]", "DeleteOptions").map_err(|e| e.code), Err(400));
        assert_eq!(decode_options(br#"{"kind":"Pod"}"#, "DeleteOptions").map_err(|e| e.code), Err(400));
    }

    #[test]
    fn bodies_decode_by_media_type() {
        assert!(decode_object("application/json", br#"{"a":1}"#).is_ok());
        assert_eq!(decode_object("application/json", b"{nope").map_err(|e| e.code), Err(400));
        assert_eq!(decode_object("application/json", b"[1]").map_err(|e| e.code), Err(400));
        assert_eq!(decode_object("text/html", b"{}").map_err(|e| e.code), Err(415));
        let v = decode_object("application/yaml", b"kind: ConfigMap\ndata:\n  a: 'yes'\n");
        assert_eq!(v.ok().and_then(|v| v.pointer("/data/a").cloned()), Some(json!("yes")));
        assert_eq!(decode_object("application/yaml", b"a: [1, 2\n").map_err(|e| e.code), Err(400));
    }
}
