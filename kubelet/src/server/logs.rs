//! `GET /containerLogs/{namespace}/{pod}/{container}`: a container's log, as upstream's kubelet
//! serves it (`getContainerLogs` in `pkg/kubelet/server/server.go`).
//!
//! The query is a `v1.PodLogOptions` (`follow`, `previous`, `timestamps`, `tailLines` — or the
//! old `tail`, where `all` means every line —, `sinceSeconds`, `sinceTime`, `limitBytes`),
//! decoded as upstream's parameter codec does (a boolean is true unless it is `0` or `false`) and
//! validated like the API server validates it. The answer streams: one chunk per batch of lines
//! the runtime hands over, each written out as it comes (`follow` keeps it open while the
//! container runs).
//!
//! What the runtime and the server each do with the options: the runtime is asked for
//! `tail_lines` (where the read starts, in records) and `follow` (keep the stream open while the
//! container runs) only; the server applies the tail again when not following (harmless when the
//! runtime did), then `since` (after the tail, as upstream), `timestamps` and `limitBytes`.

use bytes::Bytes;
use futures::StreamExt;
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use jiff::{SignedDuration, Timestamp};

use super::cri_log::{Converter, Options};
use super::{lookup, text, App, Body};
use crate::runtime::LogOptions;

/// The `v1.PodLogOptions` of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodLogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<i64>,
    pub limit_bytes: Option<i64>,
    pub since_seconds: Option<i64>,
    pub since_time: Option<Timestamp>,
}

/// The query could not be decoded (400) or is invalid (422).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    Decode,
    Invalid,
}

impl PodLogOptions {
    /// Decodes and validates a query string.
    pub fn from_query(query: Option<&str>) -> Result<PodLogOptions, QueryError> {
        let pairs: Vec<(String, String)> = query
            .map(|q| form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
            .unwrap_or_default();
        let first = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let flag = |key: &str| first(key).is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"));
        let int = |key: &str| -> Result<Option<i64>, QueryError> {
            first(key).map(|v| v.parse::<i64>().map_err(|_| QueryError::Decode)).transpose()
        };
        // The old `tail` parameter wins over `tailLines`; `tail=all` means every line.
        let tail_lines = match first("tail").filter(|t| !t.is_empty()) {
            Some("all") => None,
            Some(t) => Some(t.parse::<i64>().map_err(|_| QueryError::Decode)?),
            None => int("tailLines")?,
        };
        let since_time = match first("sinceTime").filter(|t| !t.is_empty() && *t != "null") {
            Some(t) => Some(t.parse::<Timestamp>().map_err(|_| QueryError::Decode)?),
            None => None,
        };
        let opts = PodLogOptions {
            follow: flag("follow"),
            previous: flag("previous"),
            timestamps: flag("timestamps"),
            tail_lines,
            limit_bytes: int("limitBytes")?,
            since_seconds: int("sinceSeconds")?,
            since_time,
        };
        opts.validate()?;
        Ok(opts)
    }

    /// Upstream's `ValidatePodLogOptions`.
    fn validate(&self) -> Result<(), QueryError> {
        let bad = self.tail_lines.is_some_and(|t| t < 0)
            || self.limit_bytes.is_some_and(|l| l < 1)
            || (self.since_seconds.is_some() && self.since_time.is_some())
            || self.since_seconds.is_some_and(|s| s < 1);
        if bad {
            Err(QueryError::Invalid)
        } else {
            Ok(())
        }
    }

    /// The earliest record to show (upstream's `NewLogOptions`: the later of both bounds).
    pub fn since(&self, now: Timestamp) -> Option<Timestamp> {
        let from_seconds = self.since_seconds.and_then(|s| now.checked_sub(SignedDuration::from_secs(s)).ok());
        match (from_seconds, self.since_time) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

pub async fn serve(app: &App, namespace: &str, pod: &str, container: &str, query: Option<&str>) -> Response<Body> {
    if pod.is_empty() {
        return text(400, r#"{"message": "Missing podID."}"#);
    }
    if container.is_empty() {
        return text(400, r#"{"message": "Missing container name."}"#);
    }
    if namespace.is_empty() {
        return text(400, r#"{"message": "Missing podNamespace."}"#);
    }
    let opts = match PodLogOptions::from_query(query) {
        Ok(o) => o,
        Err(QueryError::Decode) => return text(400, r#"{"message": "Unable to decode query."}"#),
        Err(QueryError::Invalid) => return text(422, r#"{"message": "Invalid request."}"#),
    };
    let c = match lookup::for_logs(app.runtime.as_ref(), namespace, pod, container, opts.previous).await {
        Ok(c) => c,
        Err(e) => return text(e.code(), e.to_string()),
    };
    let tail = opts.tail_lines.map(|t| u64::try_from(t).unwrap_or(0));
    // `since` stays here: upstream takes the tail of the file first, then skips older records.
    let read = LogOptions { follow: opts.follow, tail_lines: tail, limit_bytes: None, since: None, timestamps: false };
    let since = opts.since(Timestamp::now());
    let raw = match app.runtime.container_logs(&c.id, &read).await {
        Ok(s) => s,
        Err(e) => return text(400, format!("failed to get logs of container {container:?} in pod {pod:?}: {e}")),
    };
    let converter = Converter::new(Options {
        tail,
        follow: opts.follow,
        since,
        timestamps: opts.timestamps,
        limit_bytes: opts.limit_bytes.map(|l| u64::try_from(l).unwrap_or(0)),
    });
    let container_id = c.id.clone();
    let frames = futures::stream::unfold(Some((raw, converter)), move |state| {
        let container_id = container_id.clone();
        async move {
            let (mut raw, mut conv) = state?;
            loop {
                if conv.done() {
                    return None;
                }
                let out = match raw.next().await {
                    Some(Ok(chunk)) => {
                        let out = conv.feed(&chunk);
                        if out.is_empty() {
                            continue;
                        }
                        return Some((Ok(Frame::data(Bytes::from(out))), Some((raw, conv))));
                    }
                    Some(Err(e)) => {
                        tracing::warn!(container = %container_id, error = %e, "reading a container log failed");
                        conv.finish()
                    }
                    None => conv.finish(),
                };
                return (!out.is_empty()).then(|| (Ok(Frame::data(Bytes::from(out))), None));
            }
        }
    });
    let mut resp = Response::new(StreamBody::new(frames).boxed_unsync());
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Result<PodLogOptions, QueryError> {
        PodLogOptions::from_query(Some(s))
    }

    #[test]
    fn decodes_like_the_parameter_codec() {
        let o = q("follow=true&timestamps=1&previous=false&tailLines=10&limitBytes=5&sinceSeconds=60").expect("ok");
        assert!(o.follow && o.timestamps && !o.previous);
        assert_eq!((o.tail_lines, o.limit_bytes, o.since_seconds), (Some(10), Some(5), Some(60)));
        assert!(q("follow=yes").expect("ok").follow, "anything but 0/false is true");
        assert!(!q("follow=FALSE").expect("ok").follow);
        assert_eq!(q("tail=3&tailLines=7").expect("ok").tail_lines, Some(3));
        assert_eq!(q("tail=all&tailLines=7").expect("ok").tail_lines, None);
        let t = q("sinceTime=2024-05-01T10:00:00Z").expect("ok").since_time;
        assert_eq!(t, Some("2024-05-01T10:00:00Z".parse().expect("ts")));
        assert_eq!(PodLogOptions::from_query(None), Ok(PodLogOptions::default()));
    }

    #[test]
    fn rejects_what_upstream_rejects() {
        for bad in ["tailLines=x", "limitBytes=1.5", "sinceTime=yesterday", "tail=-"] {
            assert_eq!(q(bad), Err(QueryError::Decode), "{bad}");
        }
        for invalid in
            ["tailLines=-1", "limitBytes=0", "sinceSeconds=0", "sinceSeconds=5&sinceTime=2024-05-01T10:00:00Z"]
        {
            assert_eq!(q(invalid), Err(QueryError::Invalid), "{invalid}");
        }
        assert!(q("tailLines=0").is_ok());
    }

    #[test]
    fn since_is_the_later_bound() {
        let now: Timestamp = "2024-05-01T10:00:00Z".parse().expect("ts");
        let o = PodLogOptions { since_seconds: Some(60), ..Default::default() };
        assert_eq!(o.since(now), Some("2024-05-01T09:59:00Z".parse().expect("ts")));
        let o = PodLogOptions { since_time: Some("2024-05-01T09:00:00Z".parse().expect("ts")), ..Default::default() };
        assert_eq!(o.since(now), Some("2024-05-01T09:00:00Z".parse().expect("ts")));
        assert_eq!(PodLogOptions::default().since(now), None);
    }
}
