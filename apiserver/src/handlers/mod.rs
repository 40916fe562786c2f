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

use axum::extract::Request;
use axum::http::{HeaderMap, Method};
use axum::response::Response;

use api::ApiError;

use crate::auth::UserInfo;
use crate::request::{Query, Target};
use crate::response;
use crate::state::State;

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

pub async fn resource(state: State, target: Target, query: Query, user: UserInfo, req: Request) -> Response {
    let method = req.method().clone();
    let headers = req.headers().clone();
    let ctx = Ctx { state, target, query, user, headers };
    match dispatch(&ctx, method, req).await {
        Ok(r) => r,
        Err(e) => response::error(&e),
    }
}

async fn dispatch(ctx: &Ctx, method: Method, req: Request) -> Result<Response, ApiError> {
    let named = ctx.target.name.is_some();
    let sub = ctx.target.subresource.clone();
    let sub = sub.as_deref();
    match (&method, named, sub) {
        (&Method::GET, false, None) => {
            if ctx.query.bool("watch")? {
                watch::watch(ctx).await
            } else {
                read::list(ctx)
            }
        }
        (&Method::GET, true, None) if ctx.query.bool("watch")? => watch::watch(ctx).await,
        (&Method::GET, true, None | Some("status")) => read::get(ctx),
        (&Method::GET, true, Some("scale")) => subresource::get_scale(ctx),
        (_, true, Some("log" | "exec" | "attach")) => Err(subresource::no_kubelet(ctx)),
        (&Method::POST, false, None) => {
            let body = crate::http::read_body(req.into_body()).await?;
            write::create(ctx, &body).await
        }
        (&Method::POST, true, Some("binding")) => {
            let body = crate::http::read_body(req.into_body()).await?;
            subresource::bind(ctx, &body).await
        }
        (&Method::POST, true, Some("eviction")) => {
            let body = crate::http::read_body(req.into_body()).await?;
            subresource::evict(ctx, &body).await
        }
        (&Method::PUT, true, None | Some("status") | Some("finalize")) => {
            let body = crate::http::read_body(req.into_body()).await?;
            write::update(ctx, &body).await
        }
        (&Method::PUT, true, Some("scale")) => {
            let body = crate::http::read_body(req.into_body()).await?;
            subresource::put_scale(ctx, &body).await
        }
        (&Method::PATCH, true, None | Some("status")) => {
            let body = crate::http::read_body(req.into_body()).await?;
            write::patch(ctx, &body).await
        }
        (&Method::PATCH, true, Some("scale")) => {
            let body = crate::http::read_body(req.into_body()).await?;
            subresource::patch_scale(ctx, &body).await
        }
        (&Method::DELETE, true, None) => {
            let body = crate::http::read_body(req.into_body()).await?;
            delete::delete(ctx, &body).await
        }
        (&Method::DELETE, false, None) => {
            let body = crate::http::read_body(req.into_body()).await?;
            delete::delete_collection(ctx, &body).await
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method} {})",
            ctx.target.res.qualified_plural()
        ))),
    }
}
