//! The top of request handling: public endpoints, authentication, then routing to discovery,
//! OpenAPI or the resource handlers.

use std::time::Instant;

use axum::extract::Request;
use axum::http::{header, Method};
use axum::response::Response;
use serde_json::json;

use api::ApiError;

use crate::request::{self, Query, Route};
use crate::state::State;
use crate::{discovery, handlers, response};

fn is_public(path: &str) -> bool {
    matches!(path, "/livez" | "/readyz" | "/healthz" | "/version" | "/version/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
        || path.starts_with("/healthz/")
}

/// Serves one request (the connection layer in `server.rs` calls this).
pub async fn serve(state: State, req: Request) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = dispatch(state, req).await;
    tracing::debug!(%method, %path, code = resp.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
    resp
}

async fn dispatch(state: State, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if is_public(&path) {
        return public(&state, &path);
    }
    let authz = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(user) = state.auth.authenticate(authz) else {
        return response::error(&ApiError::unauthorized());
    };
    if !state.ready.is_ready() {
        return response::error(&ApiError::unavailable("the server is starting up"));
    }
    let query = Query::parse(req.uri().query());
    // Held until the response is built; long-running requests (watches) take none.
    let _permit = match state.inflight.admit(req.method(), &path, &query) {
        Ok(p) => p,
        Err(e) => return response::error(&e),
    };
    // The body is read whole here, once, before anything answers, whatever the verb (bounded in
    // size and time by `handlers::read_body`): answering a request whose body is still arriving makes hyper close the
    // connection under a client that is still writing it (a broken pipe instead of the answer,
    // also for the client's next request on that keep-alive connection). The handlers get the
    // bytes; the request's parts keep its extensions (upgrades, for exec and attach later).
    let (req, body) = req.into_parts();
    let body = match handlers::read_body(body, state.request_timeout).await {
        Ok(b) => b,
        Err(e) => return response::error(&e),
    };
    if path == "/openapi/v3" || path == "/openapi/v3/" {
        return response::json_bytes(200, state.openapi.root());
    }
    if let Some(gv) = path.strip_prefix("/openapi/v3/") {
        return match state.openapi.group_version(gv) {
            Some((body, hash)) => {
                let mut resp = response::json_bytes(200, body);
                if let Ok(v) = axum::http::HeaderValue::from_str(&format!("\"{hash}\"")) {
                    resp.headers_mut().insert(header::ETAG, v);
                }
                resp
            }
            None => response::error(&ApiError::not_found_path(format!("no OpenAPI document for {gv:?}"))),
        };
    }
    if !(path == "/api" || path == "/apis" || path.starts_with("/api/") || path.starts_with("/apis/")) {
        return response::error(&ApiError::not_found_path("the server could not find the requested resource"));
    }
    if let Some(accept) = req.headers.get(header::ACCEPT) {
        if !accept.to_str().is_ok_and(acceptable) {
            return response::error(&ApiError::not_acceptable(
                "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
            ));
        }
    }
    if let Some(ct) = req.headers.get(header::CONTENT_TYPE) {
        if ct.to_str().is_err() {
            return response::error(&ApiError::new(
                415,
                "UnsupportedMediaType",
                "the Content-Type header is not valid: it must be printable ASCII",
            ));
        }
    }
    if let Some(rest) = crate::metrics::strip(&path) {
        return crate::metrics::serve(&state, &req.method, rest, &query).await;
    }
    let route = match request::route(&path) {
        Ok(r) => r,
        Err(e) => return response::error(&e),
    };
    match route {
        Route::DiscoveryRoot { legacy_core } => {
            if req.method != Method::GET {
                return response::with_allow(
                    response::error(&ApiError::method_not_allowed("discovery is read-only")),
                    "GET",
                );
            }
            let accept = req.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
            discovery::root(legacy_core, accept)
        }
        Route::GroupVersion { group, version } => discovery::group_version(&group, &version),
        Route::Group { group } => discovery::group(&group),
        Route::Resource(target) => handlers::resource(state, target, query, user, req, body).await,
    }
}

fn public(state: &State, path: &str) -> Response {
    match path {
        "/version" | "/version/" => response::json(
            200,
            &json!({
                "major": "1",
                "minor": api::KUBE_MINOR,
                "gitVersion": api::KUBE_GIT_VERSION,
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "rust",
                "compiler": "rustc",
                "platform": format!("{}/{}", std::env::consts::OS, goarch()),
            }),
        ),
        p if p.starts_with("/readyz") => {
            if state.ready.is_ready() {
                text(200, "ok")
            } else {
                text(500, "[-]skiff-ready failed: not ready yet\nreadyz check failed")
            }
        }
        _ => text(200, "ok"),
    }
}

fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn text(code: u16, body: &'static str) -> Response {
    let mut r = response::bytes(code, "text/plain; charset=utf-8", body);
    r.headers_mut().insert("x-content-type-options", axum::http::HeaderValue::from_static("nosniff"));
    r
}

/// Whether an `Accept` header names a media type the API can answer in (JSON, which is also
/// YAML; protobuf clients accept JSON as well). Upstream answers 406 otherwise.
pub fn acceptable(accept: &str) -> bool {
    if accept.trim().is_empty() {
        return true;
    }
    accept.split(',').any(|range| {
        let media = range.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        matches!(
            media.as_str(),
            "*/*"
                | "application/*"
                | "application/json"
                | "application/yaml"
                | "application/vnd.kubernetes.protobuf"
                | "application/json-patch+json"
                | "application/merge-patch+json"
                | "application/strategic-merge-patch+json"
                | "application/apply-patch+yaml"
        ) || media.starts_with("application/com.github.proto-openapi")
    })
}
