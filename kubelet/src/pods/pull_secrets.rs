//! Registry credentials from a pod's `imagePullSecrets`, matched to an image as upstream's
//! credential keyring does: `kubernetes.io/dockerconfigjson` (`.dockerconfigjson`:
//! `{"auths": {KEY: {...}}}`) and the legacy `kubernetes.io/dockercfg` (`.dockercfg`:
//! `{KEY: {...}}`), each entry with `username`/`password`, `auth` (base64 `user:password`) or
//! `identitytoken`. A KEY is `[scheme://]host[:port][/path]`, its host may have `*` globs per
//! label (`*.example.com`); it matches an image whose registry host (and port) match and whose
//! repository starts with its path. Docker Hub's keys (`https://index.docker.io/v1/`,
//! `docker.io`, ...) match images on `docker.io`. Every match is returned, most specific key
//! first; the kubelet tries them in turn.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::runtime::image_ref::ImageRef;
use crate::runtime::AuthConfig;

const DOCKER_HUB_HOSTS: [&str; 4] = ["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"];

/// The credentials for `image` out of the `data` of the pod's pull Secrets (in the pod's order).
pub fn credentials_for(image: &str, secrets: &[BTreeMap<String, Vec<u8>>]) -> Vec<AuthConfig> {
    let Ok(r) = ImageRef::parse(image) else { return Vec::new() };
    let Some((registry, repository)) = r.name.split_once('/') else { return Vec::new() };
    let mut matches: Vec<(usize, AuthConfig)> = Vec::new();
    for data in secrets {
        for (key, entry) in entries(data) {
            if let Some(specificity) = key_matches(&key, registry, repository) {
                if let Some(auth) = auth_config(&entry) {
                    if !matches.iter().any(|(_, a)| same(a, &auth)) {
                        matches.push((specificity, auth));
                    }
                }
            }
        }
    }
    // Most specific first; stable, so the pod's order breaks ties.
    matches.sort_by_key(|m| std::cmp::Reverse(m.0));
    matches.into_iter().map(|(_, a)| a).collect()
}

fn same(a: &AuthConfig, b: &AuthConfig) -> bool {
    a.username == b.username && a.password == b.password && a.identity_token == b.identity_token
}

/// The (key, entry) pairs of one Secret's data.
fn entries(data: &BTreeMap<String, Vec<u8>>) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Some(Ok(Value::Object(doc))) = data.get(".dockerconfigjson").map(|b| serde_json::from_slice::<Value>(b)) {
        if let Some(Value::Object(auths)) = doc.get("auths") {
            out.extend(auths.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    if let Some(Ok(Value::Object(doc))) = data.get(".dockercfg").map(|b| serde_json::from_slice::<Value>(b)) {
        out.extend(doc.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out
}

fn auth_config(entry: &Value) -> Option<AuthConfig> {
    let s = |k: &str| entry.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    let creds = crate::runtime::linux::registry::auth::Credentials::new(
        s("username"),
        s("password"),
        s("auth"),
        s("identitytoken").or(s("identityToken")),
    );
    (!creds.is_empty()).then_some(AuthConfig {
        username: creds.username,
        password: creds.password,
        identity_token: creds.identity_token,
    })
}

/// Whether a keyring KEY matches an image of `registry`/`repository`; its specificity (longer
/// is more specific) when it does.
fn key_matches(key: &str, registry: &str, repository: &str) -> Option<usize> {
    let rest = key.split_once("://").map_or(key, |(_, r)| r);
    let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
    let host = host.to_ascii_lowercase();
    let path = path.trim_matches('/');
    if DOCKER_HUB_HOSTS.contains(&host.as_str()) {
        if registry != "docker.io" {
            return None;
        }
        // `index.docker.io/v1/` is the whole of Docker Hub.
        let path = if matches!(path, "v1" | "v2") { "" } else { path };
        return path_prefix(path, repository).then_some(host.len() + path.len());
    }
    let (key_host, key_port) = split_port(&host);
    let (img_host, img_port) = split_port(registry);
    if key_port != img_port || !host_glob(key_host, img_host) {
        return None;
    }
    path_prefix(path, repository).then_some(host.len() + path.len())
}

fn split_port(host: &str) -> (&str, Option<&str>) {
    if host.starts_with('[') {
        return match host.rsplit_once("]:") {
            Some((h, p)) => (&host[..h.len() + 1], Some(p)),
            None => (host, None),
        };
    }
    match host.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    }
}

/// Label by label, each label of the pattern a glob (`*` any run of characters).
fn host_glob(pattern: &str, host: &str) -> bool {
    let (p, h): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), host.split('.').collect());
    p.len() == h.len() && p.iter().zip(&h).all(|(p, h)| glob(p.as_bytes(), h.as_bytes()))
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((c, rest)) => s.split_first().is_some_and(|(d, srest)| c == d && glob(rest, srest)),
    }
}

/// Whether `prefix` is empty or a whole-component prefix of `repository`.
fn path_prefix(prefix: &str, repository: &str) -> bool {
    prefix.is_empty()
        || repository == prefix
        || repository.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn secret(key: &str, json: &str) -> BTreeMap<String, Vec<u8>> {
        [(key.to_string(), json.as_bytes().to_vec())].into()
    }

    fn users(image: &str, secrets: &[BTreeMap<String, Vec<u8>>]) -> Vec<String> {
        credentials_for(image, secrets).into_iter().map(|a| a.username.unwrap_or_default()).collect()
    }

    #[test]
    fn dockerconfigjson_entries_match_by_host_port_and_path() {
        let auth = base64::engine::general_purpose::STANDARD.encode("fromauth:pw");
        let s = secret(
            ".dockerconfigjson",
            &format!(
                r#"{{"auths": {{
                "127.0.0.1:5000": {{"username": "plain", "password": "p"}},
                "http://127.0.0.1:5000/test": {{"auth": "{auth}"}},
                "127.0.0.1:5001": {{"username": "otherport", "password": "p"}},
                "*.example.com": {{"username": "glob", "password": "p"}},
                "https://index.docker.io/v1/": {{"username": "hub", "password": "p"}},
                "quay.io/team": {{"username": "team", "password": "p"}},
                "empty.example": {{}}
            }}}}"#
            ),
        );
        let all = [s];
        assert_eq!(users("127.0.0.1:5000/test/busybox:1", &all), ["fromauth", "plain"], "the longer key first");
        assert_eq!(users("127.0.0.1:5000/testing/x", &all), ["plain"], "a path matches whole components");
        assert_eq!(users("127.0.0.1:5001/x", &all), ["otherport"]);
        assert_eq!(users("127.0.0.1/x", &all), Vec::<String>::new(), "no port is not port 5000");
        assert_eq!(users("r.example.com/a/b", &all), ["glob"]);
        assert_eq!(users("a.r.example.com/a/b", &all), Vec::<String>::new(), "a glob is one label");
        assert_eq!(users("busybox", &all), ["hub"]);
        assert_eq!(users("docker.io/library/busybox:1", &all), ["hub"]);
        assert_eq!(users("quay.io/team/app", &all), ["team"]);
        assert_eq!(users("quay.io/other/app", &all), Vec::<String>::new());
        assert_eq!(users("empty.example/x", &all), Vec::<String>::new(), "an entry without credentials is none");
        let c = &credentials_for("127.0.0.1:5000/test/busybox:1", &all)[0];
        assert_eq!(c.password.as_deref(), Some("pw"));
    }

    #[test]
    fn legacy_dockercfg_and_broken_secrets() {
        let legacy =
            secret(".dockercfg", r#"{"registry.example:443": {"username": "old", "password": "p", "email": "x"}}"#);
        let broken = secret(".dockerconfigjson", "not json");
        let token = secret(".dockerconfigjson", r#"{"auths": {"registry.example:443": {"identitytoken": "t"}}}"#);
        let all = [broken, legacy, token];
        let found = credentials_for("registry.example:443/a", &all);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].username.as_deref(), Some("old"));
        assert_eq!(found[1].identity_token.as_deref(), Some("t"));
        assert!(credentials_for("Not A Ref", &all).is_empty());
    }
}
