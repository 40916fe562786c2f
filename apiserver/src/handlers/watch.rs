//! WATCH: a chunked stream of `{"type":..., "object":...}\n` events, from any resourceVersion
//! still in the history window (410 as an ERROR event beyond it), each event exactly once and in
//! order. An object that starts or stops matching the selectors arrives as ADDED or DELETED.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use api::ApiError;

use super::filter::Filter;
use super::table_output::{self, include, wants_table, Include};
use super::Ctx;
use crate::response;
use crate::storage::{Event, EventType, Obj, WatchError, Watcher};

const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

struct Encoder {
    kind: &'static str,
    api_version: String,
    table: Option<Include>,
    columns_sent: bool,
}

impl Encoder {
    fn event(&mut self, kind: EventType, obj: &Obj) -> Option<Bytes> {
        let Some(inc) = self.table else {
            let mut b = BytesMut::with_capacity(obj.json.len() + 40);
            b.put_slice(b"{\"type\":\"");
            b.put_slice(kind.as_str().as_bytes());
            b.put_slice(b"\",\"object\":");
            b.put_slice(&obj.json);
            b.put_slice(b"}\n");
            return Some(b.freeze());
        };
        let v = obj.value().ok()?;
        let row = table_output::row(self.kind, &v, inc, SystemTime::now());
        let rv = obj.rev.to_string();
        let t = table_output::table(self.kind, vec![row], json!({"resourceVersion": rv}), !self.columns_sent);
        self.columns_sent = true;
        line(&json!({"type": kind.as_str(), "object": t}))
    }

    fn bookmark(&self, rev: u64) -> Option<Bytes> {
        line(&json!({
            "type": "BOOKMARK",
            "object": {"kind": self.kind, "apiVersion": self.api_version, "metadata": {"resourceVersion": rev.to_string()}}
        }))
    }
}

fn line(v: &Value) -> Option<Bytes> {
    let mut b = serde_json::to_vec(v).ok()?;
    b.push(b'\n');
    Some(Bytes::from(b))
}

fn error_event(e: &ApiError) -> Bytes {
    line(&json!({"type": "ERROR", "object": e.to_status()})).unwrap_or_default()
}

/// How an event looks to a watcher with selectors: the object may have entered or left the
/// selected set.
fn visible(filter: &Filter, e: &Event) -> Option<EventType> {
    if filter.is_everything() {
        return Some(e.kind);
    }
    let now = filter.matches(&e.obj);
    let before = e.prev.as_ref().map(|p| filter.matches(p)).unwrap_or(false);
    match (e.kind, before, now) {
        (EventType::Deleted, true, _) => Some(EventType::Deleted),
        (EventType::Deleted, false, _) => None,
        (EventType::Added, _, true) => Some(EventType::Added),
        (EventType::Modified, true, true) => Some(EventType::Modified),
        (EventType::Modified, false, true) => Some(EventType::Added),
        (EventType::Modified, true, false) => Some(EventType::Deleted),
        _ => None,
    }
}

/// When the next bookmark is due: every minute, and 2 s before the watch ends, so a client
/// resuming after the timeout has a recent resourceVersion (upstream's cacheWatcher does the same).
fn next_bookmark_time(now: tokio::time::Instant, end: tokio::time::Instant) -> Option<tokio::time::Instant> {
    let heartbeat = now + BOOKMARK_EVERY;
    let pre_timeout = end.checked_sub(Duration::from_secs(2)).unwrap_or(end);
    let at = heartbeat.min(pre_timeout);
    (at > now).then_some(at)
}

pub async fn watch(ctx: &Ctx) -> Result<Response, ApiError> {
    let res = ctx.target.res;
    let filter = Filter::from_ctx(ctx)?;
    let prefix = ctx.target.prefix();
    let bookmarks = ctx.query.bool("allowWatchBookmarks")?;
    let timeout = match ctx.query.u64("timeoutSeconds")? {
        Some(s) => Duration::from_secs(s),
        None => {
            let min = ctx.state.min_request_timeout;
            let jitter = rand::rng().random_range(0.0..1.0);
            min + min.mul_f64(jitter)
        }
    };
    let from = match ctx.query.get("resourceVersion") {
        None | Some("0") => None,
        Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion: Invalid value: {rv:?}: must be a resourceVersion returned by this server"
            ))
        })?),
    };
    let mut enc = Encoder {
        kind: res.kind,
        api_version: res.api_version(),
        table: wants_table(ctx).then(|| include(ctx)),
        columns_sent: false,
    };
    let store = ctx.state.store.clone();
    let (tx, rx) = mpsc::channel::<Bytes>(64);

    let (initial, watcher): (Vec<Arc<Obj>>, Result<Watcher, WatchError>) = match from {
        None => {
            let (_, objs, w) = store.list_and_watch(&prefix);
            (objs.into_iter().filter(|o| filter.matches(o)).collect(), Ok(w))
        }
        Some(rv) => (Vec::new(), store.watch_from(&prefix, rv)),
    };

    tokio::spawn(async move {
        let mut watcher = match watcher {
            Ok(w) => w,
            Err(e) => {
                let _ = tx.send(error_event(&ApiError::gone(e.to_string()))).await;
                return;
            }
        };
        for o in initial {
            if let Some(b) = enc.event(EventType::Added, &o) {
                if tx.send(b).await.is_err() {
                    return;
                }
            }
        }
        let end = tokio::time::Instant::now() + timeout;
        let deadline = tokio::time::sleep_until(end);
        tokio::pin!(deadline);
        let mut next_bookmark = next_bookmark_time(tokio::time::Instant::now(), end);
        loop {
            let bookmark_due = async {
                match next_bookmark {
                    Some(at) if bookmarks => tokio::time::sleep_until(at).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut deadline => break,
                _ = tx.closed() => break,
                _ = bookmark_due => {
                    let rev = store.revision();
                    if watcher.is_caught_up() {
                        if let Some(b) = enc.bookmark(rev) {
                            if tx.send(b).await.is_err() { break; }
                        }
                    }
                    next_bookmark = next_bookmark_time(tokio::time::Instant::now(), end);
                }
                next = watcher.next() => match next {
                    Ok(e) => {
                        let Some(kind) = visible(&filter, &e) else { continue };
                        if let Some(b) = enc.event(kind, &e.obj) {
                            if tx.send(b).await.is_err() { break; }
                        }
                    }
                    Err(WatchError::Lagged) => {
                        tracing::debug!("watcher fell behind; closing the stream so the client resumes");
                        break;
                    }
                    Err(_) => break,
                },
            }
        }
    });

    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, std::convert::Infallible>(b), rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static(response::JSON));
    Ok(resp)
}
