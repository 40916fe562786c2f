//! Bounds on concurrent requests, as upstream's max-in-flight filter: one budget for
//! non-mutating and one for mutating requests; long-running requests (watches, and later
//! logs, exec and proxies) are not counted. Beyond a budget a request gets 429 with
//! `Retry-After: 1` at once, rather than queueing and exhausting the server.

use std::sync::Arc;

use axum::http::Method;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use api::ApiError;

use crate::request::Query;

pub struct Inflight {
    readonly: Option<Arc<Semaphore>>,
    mutating: Option<Arc<Semaphore>>,
}

impl Inflight {
    /// A limit of 0 means unbounded, as upstream's flags.
    pub fn new(max_readonly: usize, max_mutating: usize) -> Inflight {
        let sem = |n: usize| (n > 0).then(|| Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS))));
        Inflight { readonly: sem(max_readonly), mutating: sem(max_mutating) }
    }

    /// A permit for one request, held until its response is built; `None` when the request is
    /// not counted. 429 when the budget is spent.
    pub fn admit(&self, method: &Method, path: &str, query: &Query) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
        if is_long_running(method, path, query) {
            return Ok(None);
        }
        let mutating = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        let Some(sem) = (if mutating { &self.mutating } else { &self.readonly }) else {
            return Ok(None);
        };
        match sem.clone().try_acquire_owned() {
            Ok(p) => Ok(Some(p)),
            Err(_) => {
                let mut e = ApiError::new(429, "TooManyRequests", "Too many requests, please try again later.");
                e.retry_after = Some(1);
                Err(e)
            }
        }
    }
}

/// Watches and the streaming subresources, as upstream's long-running request check.
pub fn is_long_running(method: &Method, path: &str, query: &Query) -> bool {
    if *method != Method::GET && *method != Method::POST {
        return false;
    }
    let watch_param = matches!(query.get("watch"), Some("true" | "1"));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // /api/v1/watch/... and /apis/GROUP/VERSION/watch/...
    let watch_path = matches!(segments.as_slice(), ["api", _, "watch", ..] | ["apis", _, _, "watch", ..]);
    // The subresource follows the object name: core paths have 2 segments before the
    // resource, group paths 3, and a namespace adds 2.
    let base = if segments.first() == Some(&"apis") { 3 } else { 2 };
    let base = if segments.get(base) == Some(&"namespaces") && segments.len() > base + 3 { base + 2 } else { base };
    let streaming = matches!(segments.get(base + 2), Some(&("log" | "exec" | "attach" | "portforward" | "proxy")));
    (*method == Method::GET && (watch_param || watch_path)) || streaming
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        Query::parse(Some(s))
    }

    #[test]
    fn watches_are_long_running() {
        assert!(is_long_running(&Method::GET, "/api/v1/pods", &q("watch=true")));
        assert!(is_long_running(&Method::GET, "/api/v1/watch/pods", &q("")));
        assert!(is_long_running(&Method::GET, "/apis/apps/v1/watch/namespaces/a/deployments", &q("")));
        assert!(is_long_running(&Method::POST, "/api/v1/namespaces/a/pods/p/exec", &q("")));
        assert!(!is_long_running(&Method::GET, "/api/v1/pods", &q("watch=false")));
        assert!(!is_long_running(&Method::POST, "/api/v1/namespaces/a/pods", &q("watch=true")));
        assert!(!is_long_running(&Method::GET, "/api/v1/namespaces/watch", &q("")));
        assert!(is_long_running(&Method::GET, "/api/v1/namespaces/a/pods/p/log", &q("")));
        assert!(is_long_running(&Method::GET, "/api/v1/nodes/n/proxy/metrics", &q("")));
        assert!(is_long_running(&Method::GET, "/api/v1/namespaces/a/services/s/proxy/x/y", &q("")));
        assert!(!is_long_running(&Method::GET, "/api/v1/namespaces/a/configmaps/proxy", &q("")));
        assert!(!is_long_running(&Method::GET, "/api/v1/namespaces/proxy", &q("")));
    }

    #[test]
    fn a_spent_budget_answers_429() {
        let l = Inflight::new(1, 1);
        let first = l.admit(&Method::GET, "/api/v1/pods", &q("")).expect("first").expect("counted");
        let e = l.admit(&Method::GET, "/api/v1/pods", &q("")).expect_err("second");
        assert_eq!((e.code, e.reason, e.retry_after), (429, "TooManyRequests", Some(1)));
        // The mutating budget is separate, and watches are not counted.
        assert!(l.admit(&Method::POST, "/api/v1/namespaces/a/pods", &q("")).is_ok());
        assert!(l.admit(&Method::GET, "/api/v1/pods", &q("watch=1")).expect("watch").is_none());
        drop(first);
        assert!(l.admit(&Method::GET, "/api/v1/pods", &q("")).is_ok());
    }

    #[test]
    fn zero_means_unbounded() {
        let l = Inflight::new(0, 0);
        assert!(l.admit(&Method::DELETE, "/api/v1/namespaces/a", &q("")).expect("ok").is_none());
    }
}
