//! GET of one object and LIST (with selectors, paging and Table output).

use std::time::SystemTime;

use axum::response::Response;
use base64::Engine;
use bytes::{BufMut, BytesMut};
use serde_json::{json, Value};

use api::ApiError;

use super::filter::Filter;
use super::table_output::{self, include, wants_table};
use super::Ctx;
use crate::response;

pub fn get(ctx: &Ctx) -> Result<Response, ApiError> {
    let name = ctx.name()?;
    let res = ctx.target.res;
    let obj =
        ctx.state.store.get(&ctx.target.key(name)).ok_or_else(|| ApiError::not_found(res.group, res.plural, name))?;
    if wants_table(ctx) {
        let v = obj.value().map_err(|e| ApiError::internal(e.to_string()))?;
        let row = table_output::row(res.kind, &v, include(ctx), SystemTime::now());
        let t = table_output::table(res.kind, vec![row], json!({"resourceVersion": obj.rev.to_string()}), true);
        return Ok(response::json(200, &t));
    }
    Ok(response::json_bytes(200, obj.json.clone()))
}

/// The position a `continue` token resumes from.
struct Continue {
    start_after: String,
    /// The revision of the first page: every page is read from that snapshot.
    rev: u64,
}

fn decode_continue(token: &str, prefix: &str) -> Result<Continue, ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    if !start.starts_with(prefix) {
        return Err(bad());
    }
    let rev = v.get("rv").and_then(Value::as_u64).ok_or_else(bad)?;
    Ok(Continue { start_after: start.to_string(), rev })
}

fn encode_continue(rev: u64, last_key: &str) -> String {
    let raw = json!({"rv": rev, "start": last_key}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

pub fn list(ctx: &Ctx) -> Result<Response, ApiError> {
    let res = ctx.target.res;
    let filter = Filter::from_ctx(ctx)?;
    let prefix = ctx.target.prefix();
    let limit = match ctx.query.u64("limit")? {
        Some(0) | None => usize::MAX,
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    let cont = ctx.query.get("continue").map(|t| decode_continue(t, &prefix)).transpose()?;
    let keep = |o: &crate::storage::Obj| filter.matches(o);
    let (rev, objs, remaining) = match &cont {
        None => ctx.state.store.list(&prefix, None, limit, &keep),
        Some(c) => {
            let (objs, remaining) =
                ctx.state.store.list_at(&prefix, Some(&c.start_after), limit, &keep, c.rev).map_err(|_| {
                    ApiError::gone(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                    )
                })?;
            (c.rev, objs, remaining)
        }
    };
    let mut meta = json!({"resourceVersion": rev.to_string()});
    if let (Some(n), Some(last)) = (remaining, objs.last()) {
        meta["continue"] = json!(encode_continue(rev, &last.key));
        meta["remainingItemCount"] = json!(n);
    }
    if wants_table(ctx) {
        let now = SystemTime::now();
        let inc = include(ctx);
        let mut rows = Vec::with_capacity(objs.len());
        for o in &objs {
            let v = o.value().map_err(|e| ApiError::internal(e.to_string()))?;
            rows.push(table_output::row(res.kind, &v, inc, now));
        }
        return Ok(response::json(200, &table_output::table(res.kind, rows, meta, true)));
    }
    // The items are already serialized: splice them into the list without re-encoding.
    let head = json!({"kind": format!("{}List", res.kind), "apiVersion": res.api_version(), "metadata": meta});
    let head = serde_json::to_vec(&head).map_err(|e| ApiError::internal(e.to_string()))?;
    let size: usize = objs.iter().map(|o| o.json.len() + 1).sum::<usize>() + head.len() + 16;
    let mut buf = BytesMut::with_capacity(size);
    buf.put_slice(&head[..head.len().saturating_sub(1)]);
    buf.put_slice(b",\"items\":[");
    for (i, o) in objs.iter().enumerate() {
        if i > 0 {
            buf.put_u8(b',');
        }
        buf.put_slice(&o.json);
    }
    buf.put_slice(b"]}");
    Ok(response::json_bytes(200, buf.freeze()))
}
