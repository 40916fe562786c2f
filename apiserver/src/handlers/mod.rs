//! The verbs on resources: dispatch by method, path shape and subresource.

mod body;
mod delete;
mod duplicates;
mod filter;
mod read;
mod service_alloc;
mod subresource;
mod table_output;
mod watch;
mod write;

use axum::http::{HeaderMap, Method};
use axum::response::Response;

use api::ApiError;

use crate::auth::UserInfo;
use crate::request::{Query, Target};
use crate::response;
use crate::state::State;

pub use body::read_body;
pub use write::internal_create;

/// Everything a verb handler needs about its request.
pub struct Ctx {
    pub state: State,
    pub target: Target,
    pub query: Query,
    /// Who is asking; authorization (a later issue) reads it.
    #[allow(dead_code)]
    pub user: UserInfo,
    pub headers: HeaderMap,
    /// The connection upgrade of an exec or attach request (the client's WebSocket).
    pub upgrade: Option<hyper::upgrade::OnUpgrade>,
}

impl Ctx {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The object name from the path; handlers reached only for named paths call this.
    pub fn name(&self) -> Result<&str, ApiError> {
        self.target.name.as_deref().ok_or_else(|| ApiError::method_not_allowed("this verb needs an object name"))
    }
}

/// Serves a resource request whose body `http` has already read.
pub async fn resource(
    state: State,
    target: Target,
    query: Query,
    user: UserInfo,
    req: http::request::Parts,
    body: bytes::Bytes,
) -> Response {
    let upgrade = req.extensions.get::<hyper::upgrade::OnUpgrade>().cloned();
    let ctx = Ctx { state, target, query, user, headers: req.headers, upgrade };
    let named = ctx.target.name.is_some();
    match dispatch(&ctx, req.method, &body).await {
        Ok(r) => r,
        Err(e) if e.code == 405 => {
            let allow = match allowed_methods(named, ctx.target.subresource.as_deref()) {
                "GET, POST, DELETE" if !ctx.target.res.supports("deletecollection") => "GET, POST",
                other => other,
            };
            response::with_allow(response::error(&e), allow)
        }
        Err(e) => response::error(&e),
    }
}

/// The methods `dispatch` serves for a path shape (the `Allow` header of a 405).
fn allowed_methods(named: bool, sub: Option<&str>) -> &'static str {
    match (named, sub) {
        (false, None) => "GET, POST, DELETE",
        (true, None) => "GET, PUT, PATCH, DELETE",
        (true, Some("status" | "scale")) => "GET, PUT, PATCH",
        (true, Some("finalize")) => "PUT",
        (true, Some("binding" | "eviction")) => "POST",
        (true, Some("log")) => "GET",
        (true, Some("exec" | "attach" | "portforward")) => "GET, POST",
        _ => "",
    }
}

/// A failed commit as the client sees it: a write refused while the server shuts down is 503
/// (retry elsewhere or later), anything else the store reports is 500.
pub fn storage_error(e: crate::storage::WriteError) -> ApiError {
    match e {
        crate::storage::WriteError::Closed => {
            let mut e = ApiError::unavailable("the server is shutting down; retry the request");
            e.retry_after = Some(1);
            e
        }
        other => ApiError::internal(other.to_string()),
    }
}

async fn dispatch(ctx: &Ctx, method: Method, body: &[u8]) -> Result<Response, ApiError> {
    let named = ctx.target.name.is_some();
    let sub = ctx.target.subresource.clone();
    let sub = sub.as_deref();
    match (&method, named, sub) {
        (&Method::GET, false, None) => {
            if ctx.query.bool("watch")? {
                watch::watch(ctx).await
            } else {
                read::list(ctx).await
            }
        }
        (&Method::GET, true, None) if ctx.query.bool("watch")? => watch::watch(ctx).await,
        (&Method::GET, true, None | Some("status")) => read::get(ctx).await,
        (&Method::GET, true, Some("scale")) => subresource::get_scale(ctx),
        (&Method::GET, true, Some("log")) => subresource::pod_log(ctx).await,
        (&Method::GET | &Method::POST, true, Some("exec" | "attach")) => subresource::pod_stream(ctx, &method).await,
        (&Method::GET | &Method::POST, true, Some("portforward")) => subresource::pod_port_forward(ctx, &method).await,
        (&Method::POST, false, None) => write::create(ctx, body).await,
        (&Method::POST, true, Some("binding")) => subresource::bind(ctx, body).await,
        (&Method::POST, true, Some("eviction")) => subresource::evict(ctx, body).await,
        (&Method::PUT, true, None | Some("status") | Some("finalize")) => write::update(ctx, body).await,
        (&Method::PUT, true, Some("scale")) => subresource::put_scale(ctx, body).await,
        (&Method::PATCH, true, None | Some("status")) => write::patch(ctx, body).await,
        (&Method::PATCH, true, Some("scale")) => subresource::patch_scale(ctx, body).await,
        (&Method::DELETE, true, None) => delete::delete(ctx, body).await,
        (&Method::DELETE, false, None) if ctx.target.res.supports("deletecollection") => {
            delete::delete_collection(ctx, body).await
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method} {})",
            ctx.target.res.qualified_plural()
        ))),
    }
}
