//! WATCH: a chunked stream of `{"type":..., "object":...}\n` events, from any resourceVersion
//! still in the history window (410 as an ERROR event beyond it), each event exactly once and in
//! order. An object that starts or stops matching the selectors arrives as ADDED or DELETED.
//! A resourceVersion the cache has not reached is waited for up to 3 s, then the stream ends with
//! one ERROR event (504 `Too large resource version`). `sendInitialEvents` streams the state
//! and a `k8s.io/initial-events-end` bookmark first, as upstream's watch-list.

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
use super::read::wait_fresh;
use super::table_output::{self, include, wants_table, Include};
use super::Ctx;
use crate::request::{ListOptions, MAX_WATCH_TIMEOUT};
use crate::response;
use crate::storage::{Event, EventType, Obj, WatchError};

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

    /// The bookmark that ends the initial events of a `sendInitialEvents=true` watch.
    fn initial_events_end(&self, rev: u64) -> Option<Bytes> {
        line(&json!({
            "type": "BOOKMARK",
            "object": {
                "kind": self.kind,
                "apiVersion": self.api_version,
                "metadata": {
                    "resourceVersion": rev.to_string(),
                    "annotations": {"k8s.io/initial-events-end": "true"}
                }
            }
        }))
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
    let heartbeat = now.checked_add(BOOKMARK_EVERY).unwrap_or(end);
    let pre_timeout = end.checked_sub(Duration::from_secs(2)).unwrap_or(end);
    let at = heartbeat.min(pre_timeout);
    (at > now).then_some(at)
}

/// The watch's duration: `timeoutSeconds` (already clamped), or else a random time in
/// [min, 2·min) of the server's `--min-request-timeout`, as upstream.
fn watch_timeout(requested: Option<Duration>, min: Duration, jitter: f64) -> Duration {
    requested.unwrap_or_else(|| {
        let secs = min.as_secs_f64() * (1.0 + jitter.clamp(0.0, 1.0));
        Duration::try_from_secs_f64(secs).unwrap_or(MAX_WATCH_TIMEOUT).min(MAX_WATCH_TIMEOUT)
    })
}

/// When a watch of `timeout` starting `now` ends; never overflows the clock.
fn watch_end(now: tokio::time::Instant, timeout: Duration) -> tokio::time::Instant {
    now.checked_add(timeout.min(MAX_WATCH_TIMEOUT)).or_else(|| now.checked_add(BOOKMARK_EVERY)).unwrap_or(now)
}

/// Where the stream starts.
enum Start {
    /// The current state as ADDED events, then every change (`resourceVersion` unset or "0").
    ListThenWatch,
    /// Every change after this revision.
    From(u64),
    /// `sendInitialEvents=true`: the state (at least as fresh as the requested revision) as
    /// ADDED events, an initial-events-end bookmark when bookmarks are allowed, then changes.
    InitialEvents,
    /// `sendInitialEvents=false` without a revision: changes from now on.
    Now,
}

pub async fn watch(ctx: &Ctx) -> Result<Response, ApiError> {
    let res = ctx.target.res;
    let opts = ListOptions::from_query(&ctx.query, true)?;
    let filter = Filter::from_ctx(ctx)?;
    let prefix = ctx.target.prefix();
    let bookmarks = opts.allow_bookmarks;
    let timeout = watch_timeout(opts.timeout, ctx.state.min_request_timeout, rand::rng().random_range(0.0..1.0));
    let end = watch_end(tokio::time::Instant::now(), timeout);
    let from = opts.watch_from;
    let start = match (opts.send_initial_events, from) {
        (Some(true), _) => Start::InitialEvents,
        (Some(false), None) => Start::Now,
        (_, Some(rv)) => Start::From(rv),
        (None, None) => Start::ListThenWatch,
    };
    let mut enc = Encoder {
        kind: res.kind,
        api_version: res.api_version(),
        table: wants_table(ctx).then(|| include(ctx)),
        columns_sent: false,
    };
    let store = ctx.state.store.clone();
    let (tx, rx) = mpsc::channel::<Bytes>(64);

    tokio::spawn(async move {
        // A revision the cache has not reached yet: wait for it (without holding a thread), up
        // to upstream's 3 s, then end the stream with one ERROR event (504 Too large resource
        // version) instead of silently waiting for events that may never come.
        if let Some(rv) = from {
            let fresh = tokio::select! {
                r = wait_fresh(&store, rv) => r,
                _ = tx.closed() => return,
            };
            if let Err(e) = fresh {
                let _ = tx.send(error_event(&e)).await;
                return;
            }
        }
        let (initial, watcher, initial_end) = match start {
            Start::ListThenWatch | Start::InitialEvents => {
                let (rev, objs, w) = store.list_and_watch(&prefix);
                let objs: Vec<Arc<Obj>> = objs.into_iter().filter(|o| filter.matches(o)).collect();
                let end_rev = matches!(start, Start::InitialEvents).then_some(rev);
                (objs, Ok(w), end_rev)
            }
            Start::Now => (Vec::new(), store.watch_from(&prefix, store.revision()), None),
            Start::From(rv) => (Vec::new(), store.watch_from(&prefix, rv), None),
        };
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
        if let (Some(rev), true) = (initial_end, bookmarks) {
            if let Some(b) = enc.initial_events_end(rev) {
                if tx.send(b).await.is_err() {
                    return;
                }
            }
        }
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
                    // Never a bookmark older than the revision the client asked to start from.
                    if watcher.is_caught_up() && from.is_none_or(|f| rev >= f) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_timeouts_do_not_overflow_the_clock() {
        let now = tokio::time::Instant::now();
        for t in [Duration::MAX, Duration::from_secs(u64::MAX), Duration::from_secs(i64::MAX as u64), MAX_WATCH_TIMEOUT]
        {
            let end = watch_end(now, t);
            assert!(end > now);
            // The bookmark schedule is computed from it too.
            assert!(next_bookmark_time(now, end).is_some());
        }
        assert_eq!(watch_end(now, Duration::from_secs(5)), now + Duration::from_secs(5));
    }

    #[test]
    fn default_timeout_is_between_min_and_twice_min() {
        let min = Duration::from_secs(1800);
        assert_eq!(watch_timeout(None, min, 0.0), min);
        assert!(watch_timeout(None, min, 0.999) < 2 * min);
        assert_eq!(watch_timeout(Some(Duration::from_secs(7)), min, 0.5), Duration::from_secs(7));
        // A nonsensical server setting does not panic either.
        assert_eq!(watch_timeout(None, Duration::MAX, 1.0), MAX_WATCH_TIMEOUT);
        assert!(watch_timeout(None, min, f64::NAN) <= MAX_WATCH_TIMEOUT);
    }
}
