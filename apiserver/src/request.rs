//! Turns a request path and query into what it addresses: discovery, a resource collection, one
//! object, or one of its subresources.

use api::resources::{self, ResourceInfo};
use api::ApiError;

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
