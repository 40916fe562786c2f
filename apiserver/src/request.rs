//! Turns a request path and query into what it addresses: discovery, a resource collection, one
//! object, or one of its subresources.

use std::time::Duration;

use api::resources::{self, ResourceInfo};
use api::{ApiError, Cause};

/// A resource request: `/api/v1/namespaces/default/pods/web/status`.
#[derive(Debug, Clone)]
pub struct Target {
    pub res: &'static ResourceInfo,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

impl Target {
    pub fn key(&self, name: &str) -> String {
        self.res.key(self.namespace.as_deref(), name)
    }

    /// Where LIST and WATCH look: one namespace, or every namespace.
    pub fn prefix(&self) -> String {
        match &self.namespace {
            Some(ns) if self.res.namespaced() => format!("{}{}/", self.res.key_prefix(), ns),
            _ => self.res.key_prefix(),
        }
    }
}

/// What a path addresses.
#[derive(Debug)]
pub enum Route {
    Resource(Target),
    /// `/api`, `/apis`: aggregated or legacy discovery.
    DiscoveryRoot {
        legacy_core: bool,
    },
    /// `/api/v1`, `/apis/apps/v1`.
    GroupVersion {
        group: String,
        version: String,
    },
    /// `/apis/apps`.
    Group {
        group: String,
    },
}

/// Parses a path below `/api` or `/apis`. Errors are 404 Status errors.
pub fn route(path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let not_found = || ApiError::not_found_path("the server could not find the requested resource");
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["api"] => return Ok(Route::DiscoveryRoot { legacy_core: true }),
        ["apis"] => return Ok(Route::DiscoveryRoot { legacy_core: false }),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g] => {
            return if resources::group_versions().iter().any(|(gg, _)| gg == g) {
                Ok(Route::Group { group: g.to_string() })
            } else {
                Err(not_found())
            }
        }
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(not_found()),
    };
    if !resources::group_versions().iter().any(|(g, v)| *g == group && *v == version) {
        return Err(not_found());
    }
    if rest.is_empty() {
        return Ok(Route::GroupVersion { group: group.to_string(), version: version.to_string() });
    }
    let lookup = |plural: &str| resources::by_plural(group, version, plural).ok_or_else(not_found);
    let (namespace, rest): (Option<String>, &[&str]) = match rest {
        // namespaces/{ns}/{resource}... but not the namespace object's own subresources
        ["namespaces", ns, tail @ ..]
            if tail
                .first()
                .and_then(|r| resources::by_plural(group, version, r))
                .map(|r| r.namespaced())
                .unwrap_or(false) =>
        {
            (Some(ns.to_string()), tail)
        }
        _ => (None, rest),
    };
    let target = match rest {
        [res] => Target { res: lookup(res)?, namespace, name: None, subresource: None },
        [res, name] => Target { res: lookup(res)?, namespace, name: Some(name.to_string()), subresource: None },
        [res, name, sub] => {
            let r = lookup(res)?;
            if r.subresource(sub).is_none() {
                return Err(not_found());
            }
            Target { res: r, namespace, name: Some(name.to_string()), subresource: Some(sub.to_string()) }
        }
        _ => return Err(not_found()),
    };
    if target.res.namespaced() && target.name.is_some() && target.namespace.is_none() {
        // A namespaced object addressed without a namespace does not exist as a path.
        return Err(not_found());
    }
    Ok(Route::Resource(target))
}

/// Query parameters, repeated keys kept in order (`command=a&command=b`).
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .map(|q| form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
            .unwrap_or_default();
        Query { pairs }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    /// A boolean parameter as Go's ParseBool reads it; a bad value is a 400.
    pub fn bool(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(false),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!("invalid boolean value {v:?} for query parameter {key:?}"))),
        }
    }

    /// A boolean parameter that may be absent (upstream's `*bool`).
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.bool(key).map(Some),
        }
    }

    pub fn u64(&self, key: &str) -> Result<Option<u64>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid value {v:?} for query parameter {key:?}: must be a non-negative integer"
                    ))
                })
            })
            .transpose()
    }

    pub fn i64(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid value {v:?} for query parameter {key:?}: must be an integer"
                    ))
                })
            })
            .transpose()
    }

    /// `dryRun=All` (the only value upstream accepts).
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        let values = self.all("dryRun");
        for v in &values {
            if *v != "All" {
                return Err(ApiError::bad_request(format!("Invalid dry run value: {v:?}: valid values are \"All\"")));
            }
        }
        Ok(!values.is_empty())
    }
}

/// A resourceVersion as upstream's `APIObjectVersioner.ParseResourceVersion` reads it: `"0"` is 0,
/// anything else a decimal number that fits in a u64 (Go's `strconv.ParseUint`: digits only, no
/// sign). A bad one is a 400 with the message of upstream's storage layer.
pub fn parse_resource_version(raw: &str) -> Result<u64, ApiError> {
    let why = if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        "invalid syntax"
    } else {
        match raw.parse::<u64>() {
            Ok(v) => return Ok(v),
            Err(_) => "value out of range",
        }
    };
    Err(ApiError::bad_request(format!(
        "invalid resource version: resourceVersion: Invalid value: {raw:?}: strconv.ParseUint: parsing {raw:?}: {why}"
    )))
}

/// Which state a GET or LIST reads (api-concepts, "Semantics for get and list").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAt {
    /// `resourceVersion` unset: the most recent state.
    Latest,
    /// `resourceVersion=0`: any state; the cache's.
    Any,
    /// At least this revision: the cache's state once it has caught up with it.
    NotOlderThan(u64),
    /// Exactly this revision (`resourceVersionMatch=Exact`, or a paged LIST with a
    /// resourceVersion and no match: upstream's legacy exact read).
    Exact(u64),
}

/// The longest watch a client can ask for with `timeoutSeconds`; larger values (up to 2^64-1)
/// are clamped to it instead of overflowing the clock.
pub const MAX_WATCH_TIMEOUT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The options of a LIST or WATCH (upstream's `ListOptions`), parsed and validated as
/// upstream's `ValidateListOptions` does (WatchList enabled).
#[derive(Debug, Clone)]
pub struct ListOptions {
    /// For a LIST: which state to read.
    pub read_at: ReadAt,
    /// For a WATCH: the revision to start after; `None` for unset or `"0"`.
    pub watch_from: Option<u64>,
    /// Page size; `None` when unset, zero or negative (no limit, as upstream).
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    /// `timeoutSeconds` of a watch, clamped to [`MAX_WATCH_TIMEOUT`]; `None` when unset or 0
    /// (the server's default then applies, as upstream).
    pub timeout: Option<Duration>,
    pub send_initial_events: Option<bool>,
    pub allow_bookmarks: bool,
}

impl ListOptions {
    pub fn from_query(q: &Query, watch: bool) -> Result<ListOptions, ApiError> {
        // Decoding errors first (upstream: the parameter codec, 400), then validation (422),
        // then the resourceVersion itself (storage, 400).
        let limit = q.i64("limit")?.filter(|n| *n > 0).map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        let timeout = if watch {
            q.u64("timeoutSeconds")?.filter(|s| *s > 0).map(clamp_timeout)
        } else {
            // A LIST is answered at once; the value only has to be an integer (upstream's int64).
            q.i64("timeoutSeconds").or_else(|e| q.u64("timeoutSeconds").map(|_| None).map_err(|_| e))?;
            None
        };
        let send_initial_events = q.opt_bool("sendInitialEvents")?;
        let allow_bookmarks = q.bool("allowWatchBookmarks")?;
        let rv = q.get("resourceVersion");
        let rv_match = q.get("resourceVersionMatch");
        let continue_token = q.get("continue").map(str::to_string);

        let causes = validate(watch, rv, rv_match, continue_token.is_some(), send_initial_events);
        if !causes.is_empty() {
            return Err(ApiError::invalid("meta.k8s.io", "ListOptions", "", causes));
        }
        let parsed = rv.map(parse_resource_version).transpose()?;
        let read_at = match (parsed, rv_match) {
            (None, _) => ReadAt::Latest,
            (Some(0), _) => ReadAt::Any,
            (Some(n), Some("Exact")) => ReadAt::Exact(n),
            (Some(n), Some(_)) => ReadAt::NotOlderThan(n),
            (Some(n), None) if limit.is_some() => ReadAt::Exact(n),
            (Some(n), None) => ReadAt::NotOlderThan(n),
        };
        Ok(ListOptions {
            read_at,
            watch_from: parsed.filter(|n| *n > 0),
            limit,
            continue_token,
            timeout,
            send_initial_events,
            allow_bookmarks,
        })
    }
}

fn clamp_timeout(secs: u64) -> Duration {
    Duration::from_secs(secs).min(MAX_WATCH_TIMEOUT)
}

/// Upstream's `ValidateListOptions` / `validateWatchOptions` (apimachinery
/// `meta/internalversion/validation`), the causes of a 422 on `ListOptions.meta.k8s.io`.
fn validate(
    watch: bool,
    rv: Option<&str>,
    rv_match: Option<&str>,
    has_continue: bool,
    send_initial_events: Option<bool>,
) -> Vec<Cause> {
    const FIELD: &str = "resourceVersionMatch";
    let forbidden = |field: &str, msg: &str| Cause::new("FieldValueForbidden", field, format!("Forbidden: {msg}"));
    let not_supported = |value: &str, supported: &[&str]| {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        Cause::new(
            "FieldValueNotSupported",
            FIELD,
            format!("Unsupported value: {value:?}: supported values: {}", list.join(", ")),
        )
    };
    let mut causes = Vec::new();
    if watch {
        if send_initial_events.is_some() && rv_match != Some("NotOlderThan") {
            causes.push(forbidden(FIELD, "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"));
        }
        if let Some(m) = rv_match {
            if send_initial_events.is_none() {
                causes.push(forbidden(
                    FIELD,
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                ));
            }
            if m != "NotOlderThan" {
                causes.push(not_supported(m, &["NotOlderThan"]));
            }
            if has_continue {
                causes.push(forbidden(FIELD, "resourceVersionMatch is forbidden when continue is provided"));
            }
        }
        return causes;
    }
    if let Some(m) = rv_match {
        if rv.is_none() {
            causes.push(forbidden(FIELD, "resourceVersionMatch is forbidden unless resourceVersion is provided"));
        }
        if has_continue {
            causes.push(forbidden(FIELD, "resourceVersionMatch is forbidden when continue is provided"));
        }
        if m != "Exact" && m != "NotOlderThan" {
            causes.push(not_supported(m, &["Exact", "NotOlderThan", ""]));
        }
        if m == "Exact" && rv == Some("0") {
            causes.push(forbidden(FIELD, "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""));
        }
    }
    if send_initial_events.is_some() {
        causes.push(forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list"));
    }
    causes
}

/// How unknown fields are treated (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn from_query(q: &Query) -> Result<FieldValidation, ApiError> {
        match q.get("fieldValidation") {
            None | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(v) => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", \"Strict\" or unset, got {v:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Target {
        match route(path) {
            Ok(Route::Resource(t)) => t,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn routes_resource_paths() {
        let t = target("/api/v1/namespaces/default/pods/web/status");
        assert_eq!(t.res.plural, "pods");
        assert_eq!(t.namespace.as_deref(), Some("default"));
        assert_eq!(t.name.as_deref(), Some("web"));
        assert_eq!(t.subresource.as_deref(), Some("status"));

        let t = target("/api/v1/namespaces/kube-system");
        assert_eq!(t.res.plural, "namespaces");
        assert_eq!(t.name.as_deref(), Some("kube-system"));

        let t = target("/api/v1/namespaces/x/status");
        assert_eq!(t.res.plural, "namespaces");
        assert_eq!(t.subresource.as_deref(), Some("status"));

        let t = target("/apis/apps/v1/deployments");
        assert!(t.namespace.is_none() && t.name.is_none());

        let t = target("/apis/apps/v1/namespaces/a/deployments/d/scale");
        assert_eq!(t.subresource.as_deref(), Some("scale"));
    }

    #[test]
    fn unknown_paths_are_404() {
        for p in [
            "/apis/apps/v2/deployments",
            "/api/v1/widgets",
            "/apis/nope/v1",
            "/api/v1/namespaces/a/pods/b/c/d",
            "/api/v1/pods/x",
            "/api/v1/namespaces/a/pods/b/bogus",
        ] {
            match route(p) {
                Err(e) => assert_eq!(e.code, 404, "{p}"),
                Ok(r) => panic!("{p} routed to {r:?}"),
            }
        }
    }

    fn opts(q: &str, watch: bool) -> Result<ListOptions, ApiError> {
        ListOptions::from_query(&Query::parse(Some(q)), watch)
    }

    #[test]
    fn resource_versions_parse_like_parse_uint() {
        assert_eq!(parse_resource_version("0").ok(), Some(0));
        assert_eq!(parse_resource_version("007").ok(), Some(7));
        assert_eq!(parse_resource_version("18446744073709551615").ok(), Some(u64::MAX));
        for bad in ["", "abc", "-1", "+1", " 1", "1 ", "1e3", "0x10", "１"] {
            let e = parse_resource_version(bad).expect_err(bad);
            assert_eq!(e.code, 400, "{bad:?}");
            assert!(e.message.ends_with("invalid syntax"), "{bad:?}: {}", e.message);
        }
        let e = parse_resource_version("18446744073709551616").expect_err("overflow");
        assert_eq!(
            e.message,
            "invalid resource version: resourceVersion: Invalid value: \"18446744073709551616\": strconv.ParseUint: parsing \"18446744073709551616\": value out of range"
        );
    }

    #[test]
    fn read_semantics_follow_upstream() -> Result<(), ApiError> {
        assert_eq!(opts("", false)?.read_at, ReadAt::Latest);
        assert_eq!(opts("resourceVersion=0", false)?.read_at, ReadAt::Any);
        assert_eq!(opts("resourceVersion=0&limit=5", false)?.read_at, ReadAt::Any);
        assert_eq!(opts("resourceVersion=9", false)?.read_at, ReadAt::NotOlderThan(9));
        assert_eq!(
            opts("resourceVersion=9&resourceVersionMatch=NotOlderThan&limit=5", false)?.read_at,
            ReadAt::NotOlderThan(9)
        );
        assert_eq!(opts("resourceVersion=9&resourceVersionMatch=Exact", false)?.read_at, ReadAt::Exact(9));
        // The legacy exact read: a limit with a resourceVersion and no match.
        assert_eq!(opts("resourceVersion=9&limit=5", false)?.read_at, ReadAt::Exact(9));
        assert_eq!(opts("resourceVersion=9&limit=0", false)?.read_at, ReadAt::NotOlderThan(9));
        assert_eq!(opts("watch=true&resourceVersion=0", true)?.watch_from, None);
        assert_eq!(opts("watch=true&resourceVersion=12", true)?.watch_from, Some(12));
        Ok(())
    }

    #[test]
    fn client_numbers_never_overflow() -> Result<(), ApiError> {
        assert_eq!(
            opts("limit=9223372036854775807", false)?.limit,
            Some(usize::try_from(i64::MAX).unwrap_or(usize::MAX))
        );
        assert_eq!(opts("limit=-9223372036854775808", false)?.limit, None);
        assert_eq!(opts("limit=0", false)?.limit, None);
        assert_eq!(opts("limit=-1", false)?.limit, None);
        assert_eq!(opts("limit=9223372036854775808", false).map(|o| o.limit).map_err(|e| e.code), Err(400));
        for t in ["18446744073709551615", "9223372036854775807", "315360001"] {
            assert_eq!(opts(&format!("timeoutSeconds={t}"), true)?.timeout, Some(MAX_WATCH_TIMEOUT), "{t}");
        }
        assert_eq!(opts("timeoutSeconds=0", true)?.timeout, None);
        assert_eq!(opts("timeoutSeconds=5", true)?.timeout, Some(Duration::from_secs(5)));
        for bad in
            ["timeoutSeconds=18446744073709551616", "timeoutSeconds=-1", "timeoutSeconds=1.5", "sendInitialEvents=2"]
        {
            assert_eq!(opts(bad, true).map_err(|e| e.code).err(), Some(400), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn list_options_validation_is_upstreams() {
        let invalid = |q: &str, watch: bool| match opts(q, watch) {
            Err(e) if e.code == 422 => e.message,
            other => panic!("{q}: {other:?}"),
        };
        assert_eq!(
            invalid("resourceVersion=1&resourceVersionMatch=Garbage", false),
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Unsupported value: \"Garbage\": supported values: \"Exact\", \"NotOlderThan\", \"\""
        );
        assert!(invalid("resourceVersionMatch=Exact", false).contains("forbidden unless resourceVersion is provided"));
        assert!(invalid("resourceVersion=0&resourceVersionMatch=Exact", false)
            .contains("\"exact\" is forbidden for resourceVersion \"0\""));
        assert!(invalid("resourceVersion=1&resourceVersionMatch=Exact&continue=x", false)
            .contains("forbidden when continue is provided"));
        assert!(invalid("sendInitialEvents=false", false).contains("sendInitialEvents is forbidden for list"));
        assert!(invalid("resourceVersionMatch=NotOlderThan", true)
            .contains("forbidden for watch unless sendInitialEvents is provided"));
        assert!(
            invalid("sendInitialEvents=true", true).contains("requires setting resourceVersionMatch to NotOlderThan")
        );
        // Validation comes before the resourceVersion is parsed, as upstream.
        assert_eq!(opts("resourceVersion=abc&resourceVersionMatch=Bad", false).map_err(|e| e.code).err(), Some(422));
        assert_eq!(opts("resourceVersion=abc", false).map_err(|e| e.code).err(), Some(400));
        assert!(opts("sendInitialEvents=true&resourceVersionMatch=NotOlderThan", true).is_ok());
    }

    #[test]
    fn query_bools_follow_parse_bool() -> Result<(), ApiError> {
        let q = Query::parse(Some("watch=true&a=1&b=False&c=yes"));
        assert!(q.bool("watch")?);
        assert!(q.bool("a")?);
        assert!(!q.bool("b")?);
        assert!(q.bool("c").is_err());
        assert!(!q.bool("missing")?);
        Ok(())
    }
}
