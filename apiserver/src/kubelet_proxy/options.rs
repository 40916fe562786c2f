//! The query options of `pods/log` (`v1.PodLogOptions`) and `pods/exec`, `pods/attach`
//! (`v1.PodExecOptions`, `v1.PodAttachOptions`): decoded as upstream's parameter codec decodes
//! them (400 when a value does not convert), validated as `ValidatePodLogOptions` (422), and
//! re-encoded for the kubelet as `LogLocation` / `streamParams` do.

use jiff::Timestamp;

use api::{ApiError, Cause};

use crate::request::Query;

/// The first value of a query parameter, as upstream's conversions read it.
fn first<'a>(q: &'a Query, key: &str) -> Option<&'a str> {
    q.all(key).into_iter().next()
}

/// `Convert_Slice_string_To_bool`: absent is false, `0` and `false` (any case) are false,
/// anything else is true.
fn flag(q: &Query, key: &str) -> bool {
    first(q, key).is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// `Convert_Slice_string_To_Pointer_int64`, with Go's `strconv.ParseInt` error.
fn int(q: &Query, key: &str) -> Result<Option<i64>, ApiError> {
    match first(q, key) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("strconv.ParseInt: parsing {v:?}: invalid syntax"))),
    }
}

/// `metav1.Time` from a query: RFC 3339 (`""` and `null` are unset).
fn time(q: &Query, key: &str) -> Result<Option<Timestamp>, ApiError> {
    match first(q, key) {
        None | Some("") | Some("null") => Ok(None),
        Some(v) => v.parse::<Timestamp>().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "parsing time {v:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse {v:?} as an RFC3339 time"
            ))
        }),
    }
}

/// `v1.PodLogOptions` of a `pods/log` request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub container: Option<String>,
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub since_seconds: Option<i64>,
    pub since_time: Option<Timestamp>,
    pub tail_lines: Option<i64>,
    pub limit_bytes: Option<i64>,
}

impl LogOptions {
    /// Decodes (400) and validates (422, `PodLogOptions "<pod>" is invalid: …`) the options.
    pub fn from_query(q: &Query, pod: &str) -> Result<LogOptions, ApiError> {
        let opts = LogOptions {
            container: first(q, "container").filter(|c| !c.is_empty()).map(str::to_string),
            follow: flag(q, "follow"),
            previous: flag(q, "previous"),
            timestamps: flag(q, "timestamps"),
            since_seconds: int(q, "sinceSeconds")?,
            since_time: time(q, "sinceTime")?,
            tail_lines: int(q, "tailLines")?,
            limit_bytes: int(q, "limitBytes")?,
        };
        let causes = opts.validate();
        if causes.is_empty() {
            Ok(opts)
        } else {
            Err(invalid(pod, causes))
        }
    }

    /// `ValidatePodLogOptions`.
    fn validate(&self) -> Vec<Cause> {
        let mut causes = Vec::new();
        if let Some(t) = self.tail_lines.filter(|t| *t < 0) {
            causes.push(Cause::invalid("tailLines", format!("Invalid value: {t}: must be greater than or equal to 0")));
        }
        if let Some(l) = self.limit_bytes.filter(|l| *l < 1) {
            causes.push(Cause::invalid("limitBytes", format!("Invalid value: {l}: must be greater than 0")));
        }
        match (self.since_seconds, self.since_time) {
            (Some(_), Some(_)) => causes.push(Cause::new(
                "FieldValueForbidden",
                "",
                "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
            )),
            (Some(s), None) if s < 1 => {
                causes.push(Cause::invalid("sinceSeconds", format!("Invalid value: {s}: must be greater than 0")))
            }
            _ => {}
        }
        causes
    }

    /// The kubelet's query (upstream's `LogLocation`, keys sorted as `url.Values.Encode`).
    pub fn kubelet_query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if self.follow {
            q.append_pair("follow", "true");
        }
        if let Some(l) = self.limit_bytes {
            q.append_pair("limitBytes", &l.to_string());
        }
        if self.previous {
            q.append_pair("previous", "true");
        }
        if let Some(s) = self.since_seconds {
            q.append_pair("sinceSeconds", &s.to_string());
        }
        if let Some(t) = self.since_time {
            // `time.RFC3339`: whole seconds.
            let whole = Timestamp::from_second(t.as_second()).unwrap_or(t);
            q.append_pair("sinceTime", &whole.to_string());
        }
        if let Some(t) = self.tail_lines {
            q.append_pair("tailLines", &t.to_string());
        }
        if self.timestamps {
            q.append_pair("timestamps", "true");
        }
        q.finish()
    }
}

/// `errors.NewInvalid(Kind("PodLogOptions"), pod, errs)`: a cause without a field reads
/// `: <message>` in the message, as Go prints a field error with an empty path.
fn invalid(pod: &str, causes: Vec<Cause>) -> ApiError {
    let list: Vec<String> = causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
    let message = if list.len() == 1 {
        format!("PodLogOptions \"{pod}\" is invalid: {}", list[0])
    } else {
        format!("PodLogOptions \"{pod}\" is invalid: [{}]", list.join(", "))
    };
    let mut e = ApiError::new(422, "Invalid", message).with_details("", "PodLogOptions", pod);
    e.causes = causes;
    e
}

/// `v1.PodExecOptions` / `v1.PodAttachOptions` of a `pods/exec` or `pods/attach` request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamOptions {
    pub container: Option<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    /// Exec only.
    pub command: Vec<String>,
}

impl StreamOptions {
    pub fn from_query(q: &Query, exec: bool) -> StreamOptions {
        StreamOptions {
            container: first(q, "container").filter(|c| !c.is_empty()).map(str::to_string),
            stdin: flag(q, "stdin"),
            stdout: flag(q, "stdout"),
            stderr: flag(q, "stderr"),
            tty: flag(q, "tty"),
            command: if exec { q.all("command").into_iter().map(str::to_string).collect() } else { Vec::new() },
        }
    }

    /// The kubelet's query (upstream's `streamParams`: `input`, `output`, `error`, `tty` = `1`
    /// and every `command`, keys sorted).
    pub fn kubelet_query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for c in &self.command {
            q.append_pair("command", c);
        }
        if self.stderr {
            q.append_pair("error", "1");
        }
        if self.stdin {
            q.append_pair("input", "1");
        }
        if self.stdout {
            q.append_pair("output", "1");
        }
        if self.tty {
            q.append_pair("tty", "1");
        }
        q.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        Query::parse(Some(s))
    }

    #[test]
    fn log_options_decode_and_reencode() {
        let o = LogOptions::from_query(
            &q("container=c&follow=true&timestamps=1&tailLines=5&limitBytes=10&sinceTime=2024-05-01T10:00:00.7Z"),
            "web",
        )
        .expect("valid");
        assert_eq!(o.container.as_deref(), Some("c"));
        assert_eq!(
            o.kubelet_query(),
            "follow=true&limitBytes=10&sinceTime=2024-05-01T10%3A00%3A00Z&tailLines=5&timestamps=true"
        );
        assert_eq!(LogOptions::from_query(&q(""), "web").expect("valid").kubelet_query(), "");
        assert!(LogOptions::from_query(&q("follow=yes"), "web").expect("valid").follow);
        assert!(!LogOptions::from_query(&q("previous=False"), "web").expect("valid").previous);
    }

    #[test]
    fn log_options_errors_are_upstreams() {
        let e = LogOptions::from_query(&q("tailLines=abc"), "web").expect_err("bad int");
        assert_eq!((e.code, e.message.as_str()), (400, "strconv.ParseInt: parsing \"abc\": invalid syntax"));
        assert_eq!(LogOptions::from_query(&q("sinceTime=yesterday"), "web").expect_err("bad time").code, 400);
        let e = LogOptions::from_query(&q("tailLines=-1"), "web").expect_err("negative");
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "PodLogOptions \"web\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
        );
        let s = e.to_status();
        assert_eq!(s["details"]["kind"], "PodLogOptions");
        assert_eq!(s["details"]["causes"][0]["field"], "tailLines");
        let e = LogOptions::from_query(&q("limitBytes=0&sinceSeconds=0"), "web").expect_err("two");
        assert_eq!(
            e.message,
            "PodLogOptions \"web\" is invalid: [limitBytes: Invalid value: 0: must be greater than 0, sinceSeconds: Invalid value: 0: must be greater than 0]"
        );
        let e = LogOptions::from_query(&q("sinceSeconds=5&sinceTime=2024-05-01T10:00:00Z"), "web").expect_err("both");
        assert_eq!(
            e.message,
            "PodLogOptions \"web\" is invalid: : Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"
        );
    }

    #[test]
    fn stream_options_for_the_kubelet() {
        let o = StreamOptions::from_query(
            &q("command=sh&command=-c&command=echo%20hi&container=c&stdin=true&stdout=true&stderr=true&tty=false"),
            true,
        );
        assert_eq!(o.container.as_deref(), Some("c"));
        assert_eq!(o.kubelet_query(), "command=sh&command=-c&command=echo+hi&error=1&input=1&output=1");
        let attach = StreamOptions::from_query(&q("command=ignored&stdout=1&tty=1"), false);
        assert_eq!(attach.kubelet_query(), "output=1&tty=1");
    }
}
