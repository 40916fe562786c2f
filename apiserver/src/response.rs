//! Building HTTP responses: JSON bodies, Status errors, warnings.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

use api::ApiError;

pub const JSON: &str = "application/json";

pub fn bytes(code: u16, content_type: &str, body: impl Into<Bytes>) -> Response {
    let mut resp = Response::new(Body::from(body.into()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

pub fn json_bytes(code: u16, body: impl Into<Bytes>) -> Response {
    bytes(code, JSON, body)
}

pub fn json(code: u16, value: &Value) -> Response {
    match serde_json::to_vec(value) {
        Ok(b) => json_bytes(code, b),
        Err(e) => error(&ApiError::internal(format!("encode response: {e}"))),
    }
}

pub fn error(e: &ApiError) -> Response {
    let mut resp = json(e.code, &e.to_status());
    if let Some(s) = e.retry_after {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

/// Adds `Warning: 299 - "<text>"` headers, as upstream does for unknown fields.
pub fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

/// Adds the `Allow` header a 405 answer carries.
pub fn with_allow(mut resp: Response, methods: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(methods) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    resp
}
