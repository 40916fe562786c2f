//! GET of one object and LIST (with selectors, paging and Table output).
//!
//! A `resourceVersion` newer than the cache is waited for up to [`FRESH_WAIT`] (upstream's
//! watch cache blockTimeout), then answered with 504 `Too large resource version` (upstream's
//! NewTooLargeResourceVersionError, retryAfterSeconds 1).

use std::time::{Duration, SystemTime};

use axum::response::Response;
use base64::Engine;
use bytes::{BufMut, BytesMut};
use serde_json::{json, Value};

use api::ApiError;

use super::filter::Filter;
use super::table_output::{self, include, wants_table};
use super::Ctx;
use crate::request::{parse_resource_version, ListOptions, ReadAt};
use crate::response;
use crate::storage::Store;

/// How long a read waits for the cache to reach a requested resourceVersion.
pub(super) const FRESH_WAIT: Duration = Duration::from_secs(3);
/// `retryAfterSeconds` of a 504 for a too large resourceVersion (upstream's
/// resourceVersionTooHighRetrySeconds).
pub(super) const TOO_LARGE_RETRY_SECONDS: u32 = 1;

/// Waits (asynchronously) until the cache has applied `rev`; 504 when it does not within
/// [`FRESH_WAIT`].
pub(super) async fn wait_fresh(store: &Store, rev: u64) -> Result<u64, ApiError> {
    store
        .wait_for_revision(rev, FRESH_WAIT)
        .await
        .map_err(|current| ApiError::too_large_resource_version(rev, current, TOO_LARGE_RETRY_SECONDS))
}

pub async fn get(ctx: &Ctx) -> Result<Response, ApiError> {
    let name = ctx.name()?;
    let res = ctx.target.res;
    // GetOptions has only resourceVersion: unset is the latest state, "0" any state, anything
    // else "not older than" (resourceVersionMatch is not a GET parameter upstream).
    if let Some(raw) = ctx.query.get("resourceVersion") {
        let rv = parse_resource_version(raw)?;
        if rv > 0 {
            wait_fresh(&ctx.state.store, rv).await?;
        }
    }
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

/// Decodes a token this server issued; its revision must be one the store has reached (a forged
/// token must not make a LIST report an invented resourceVersion).
fn decode_continue(token: &str, prefix: &str, current: u64) -> Result<Continue, ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    if !start.starts_with(prefix) {
        return Err(bad());
    }
    let rev = v.get("rv").and_then(Value::as_u64).ok_or_else(bad)?;
    if rev == 0 {
        return Err(ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion"));
    }
    if rev > current {
        return Err(ApiError::bad_request(format!(
            "continue key is not valid: resourceVersion {rev} is newer than the current resourceVersion {current}"
        )));
    }
    Ok(Continue { start_after: start.to_string(), rev })
}

fn encode_continue(rev: u64, last_key: &str) -> String {
    let raw = json!({"rv": rev, "start": last_key}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

pub async fn list(ctx: &Ctx) -> Result<Response, ApiError> {
    let res = ctx.target.res;
    let opts = ListOptions::from_query(&ctx.query, false)?;
    let filter = Filter::from_ctx(ctx)?;
    let prefix = ctx.target.prefix();
    let limit = opts.limit.unwrap_or(usize::MAX);
    let store = &ctx.state.store;
    let cont = opts.continue_token.as_deref().map(|t| decode_continue(t, &prefix, store.revision())).transpose()?;
    if cont.is_some() && !matches!(opts.read_at, ReadAt::Latest | ReadAt::Any) {
        return Err(ApiError::bad_request("specifying resource version is not allowed when using continue"));
    }
    let keep = |o: &crate::storage::Obj| filter.matches(o);
    let at = match (&cont, opts.read_at) {
        (Some(c), _) => Some((c.rev, true)),
        (None, ReadAt::Exact(rv)) => {
            wait_fresh(store, rv).await?;
            Some((rv, false))
        }
        (None, ReadAt::NotOlderThan(rv)) => {
            wait_fresh(store, rv).await?;
            None
        }
        (None, ReadAt::Latest | ReadAt::Any) => None,
    };
    let (rev, objs, remaining) = match at {
        None => store.list(&prefix, None, limit, &keep),
        Some((rev, continued)) => {
            let after = cont.as_ref().map(|c| c.start_after.as_str());
            let (objs, remaining) = store.list_at(&prefix, after, limit, &keep, rev).map_err(|_| {
                ApiError::gone(if continued {
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter."
                } else {
                    "The resourceVersion for the provided list is too old."
                })
            })?;
            (rev, objs, remaining)
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

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "/registry/configmaps/default/";

    fn token(v: Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(7, "/registry/configmaps/default/a");
        let c = decode_continue(&t, PREFIX, 7).expect("own token");
        assert_eq!((c.rev, c.start_after.as_str()), (7, "/registry/configmaps/default/a"));
    }

    #[test]
    fn forged_continue_tokens_are_400() {
        let start = "/registry/configmaps/default/a";
        for (t, why) in [
            (token(json!({"rv": 8, "start": start})), "newer than the store"),
            (token(json!({"rv": u64::MAX, "start": start})), "u64::MAX"),
            (token(json!({"rv": 0, "start": start})), "zero"),
            (token(json!({"rv": -1, "start": start})), "negative"),
            (token(json!({"rv": 1e300, "start": start})), "float"),
            (token(json!({"rv": "5", "start": start})), "string"),
            (token(json!({"rv": 5, "start": "/registry/secrets/default/a"})), "another prefix"),
            (token(json!({"rv": 5})), "no start"),
            ("%%%".to_string(), "not base64"),
            (base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("[1,2"), "not JSON"),
        ] {
            match decode_continue(&t, PREFIX, 7) {
                Err(e) => assert_eq!((e.code, e.reason), (400, "BadRequest"), "{why}"),
                Ok(c) => panic!("{why}: accepted at {}", c.rev),
            }
        }
    }
}
