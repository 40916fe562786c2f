//! The registries config file, as k3s's `registries.yaml` (default
//! `<data-dir>/agent/registries.yaml`, `--private-registry FILE`):
//!
//! ```yaml
//! mirrors:
//!   docker.io:                       # or "*" for every registry
//!     endpoint: ["https://mirror.example:5000", "http://127.0.0.1:5001"]
//!     rewrite: {"^library/(.*)": "mirrored/$1"}
//! configs:
//!   mirror.example:5000:
//!     auth: {username: u, password: p}   # or auth: base64(u:p), or identitytoken
//!     tls: {ca_file: ..., cert_file: ..., key_file: ..., insecure_skip_verify: false}
//! ```
//!
//! A pull of an image of registry R tries R's mirror endpoints in order (those of `*` when R has
//! none), then R itself, as containerd does. An endpoint without a scheme is `https://`, or
//! `http://` on a loopback address; R itself is reached over HTTPS, over plain HTTP on loopback
//! (`docker.io` is `registry-1.docker.io`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::auth::Credentials;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistriesFile {
    #[serde(default)]
    pub mirrors: BTreeMap<String, Mirror>,
    #[serde(default)]
    pub configs: BTreeMap<String, HostConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    #[serde(default)]
    pub endpoint: Vec<String>,
    /// Regular expression on the repository → replacement (`$1` for groups).
    #[serde(default)]
    pub rewrite: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    pub auth: Option<AuthFields>,
    pub tls: Option<TlsFields>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFields {
    pub username: Option<String>,
    pub password: Option<String>,
    pub auth: Option<String>,
    pub identitytoken: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFields {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// One place to try a pull at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `scheme://host[:port]`, no trailing slash.
    pub base: String,
    /// `host[:port]` (what `configs` is keyed by).
    pub host: String,
    /// The repository at this endpoint (after any rewrite).
    pub repository: String,
    /// Credentials from `configs` for this host.
    pub credentials: Option<Credentials>,
    pub tls: TlsFields,
    /// The image's own registry (not a mirror): pull-secret credentials go only here.
    pub upstream: bool,
}

impl RegistriesFile {
    /// Reads the file; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<RegistriesFile, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { path: path.display().to_string(), message };
        match std::fs::read_to_string(path) {
            Ok(text) => RegistriesFile::parse(&text).map_err(invalid),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RegistriesFile::default()),
            Err(e) => Err(invalid(e.to_string())),
        }
    }

    pub fn parse(text: &str) -> Result<RegistriesFile, String> {
        if text.trim().is_empty() {
            return Ok(RegistriesFile::default());
        }
        let file: RegistriesFile = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        for (registry, m) in &file.mirrors {
            for pattern in m.rewrite.keys() {
                regex::Regex::new(pattern).map_err(|e| format!("mirrors.{registry}.rewrite {pattern:?}: {e}"))?;
            }
            for e in &m.endpoint {
                split_endpoint(e).ok_or_else(|| format!("mirrors.{registry}.endpoint {e:?} is not a URL"))?;
            }
        }
        Ok(file)
    }

    /// Where to pull `repository` of `registry` (as the reference names it, e.g. `docker.io`,
    /// `library/busybox`) from, in order.
    pub fn endpoints(&self, registry: &str, repository: &str) -> Vec<Endpoint> {
        let mut out = Vec::new();
        let mirror = self.mirrors.get(registry).or_else(|| self.mirrors.get("*"));
        let upstream_host = if registry == "docker.io" { "registry-1.docker.io" } else { registry };
        let upstream_base = format!("{}://{upstream_host}", if is_loopback(upstream_host) { "http" } else { "https" });
        if let Some(m) = mirror {
            let repository = rewrite(&m.rewrite, repository);
            for e in &m.endpoint {
                let Some((base, host)) = split_endpoint(e) else { continue };
                if base == upstream_base {
                    continue; // The registry itself comes last anyway.
                }
                out.push(self.endpoint(base, host, repository.clone(), false));
            }
        }
        // The registry itself: credentials in configs are keyed by the name the image uses
        // (docker.io) or by the host reached.
        let mut own = self.endpoint(upstream_base, upstream_host.to_string(), repository.to_string(), true);
        if own.credentials.is_none() && own.tls == TlsFields::default() && registry != upstream_host {
            if let Some(c) = self.configs.get(registry) {
                own.credentials = c.auth.as_ref().map(credentials).filter(|c| !c.is_empty());
                own.tls = c.tls.clone().unwrap_or_default();
            }
        }
        out.push(own);
        out
    }

    fn endpoint(&self, base: String, host: String, repository: String, upstream: bool) -> Endpoint {
        let config = self.configs.get(&host);
        Endpoint {
            credentials: config.and_then(|c| c.auth.as_ref()).map(credentials).filter(|c| !c.is_empty()),
            tls: config.and_then(|c| c.tls.clone()).unwrap_or_default(),
            base,
            host,
            repository,
            upstream,
        }
    }
}

fn credentials(a: &AuthFields) -> Credentials {
    Credentials::new(a.username.as_deref(), a.password.as_deref(), a.auth.as_deref(), a.identitytoken.as_deref())
}

/// The first rewrite whose pattern matches (patterns in key order), applied once.
fn rewrite(rules: &BTreeMap<String, String>, repository: &str) -> String {
    for (pattern, replacement) in rules {
        if let Ok(re) = regex::Regex::new(pattern) {
            if re.is_match(repository) {
                return re.replace(repository, replacement.as_str()).into_owned();
            }
        }
    }
    repository.to_string()
}

/// `https://h:1/v2/` / `h:1` → (`https://h:1`, `h:1`); a path other than `/` or `/v2` is refused.
fn split_endpoint(e: &str) -> Option<(String, String)> {
    let (scheme, rest) = match e.split_once("://") {
        Some((s, r)) if s == "http" || s == "https" => (Some(s), r),
        Some(_) => return None,
        None => (None, e),
    };
    let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
    if host.is_empty() || host.contains(['@', '?', '#', ' ']) || !matches!(path.trim_end_matches('/'), "" | "v2") {
        return None;
    }
    let scheme = scheme.unwrap_or(if is_loopback(host) { "http" } else { "https" });
    Some((format!("{scheme}://{host}"), host.to_string()))
}

/// Whether `host[:port]` is on a loopback address (`localhost`, 127.0.0.0/8, `[::1]`).
pub fn is_loopback(host: &str) -> bool {
    if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        return true;
    }
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, port)| if port.bytes().all(|b| b.is_ascii_digit()) { h } else { host })
    };
    name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
mirrors:
  docker.io:
    endpoint:
      - "https://mirror.example:5000"
      - "127.0.0.1:5001"
      - "https://registry-1.docker.io"
    rewrite:
      "^library/(.*)": "hub/$1"
  "*":
    endpoint: ["https://everything.example"]
configs:
  "mirror.example:5000":
    auth: {username: u, password: p}
    tls: {ca_file: /etc/ca.pem, insecure_skip_verify: true}
  docker.io:
    auth: {auth: "aHViOnNlY3JldA=="}
  "127.0.0.1:5002":
    auth: {identitytoken: tok}
"#;

    #[test]
    fn mirrors_in_order_then_the_registry_with_rewrites_and_configs() {
        let f = RegistriesFile::parse(FILE).expect("parse");
        let eps = f.endpoints("docker.io", "library/busybox");
        let bases: Vec<&str> = eps.iter().map(|e| e.base.as_str()).collect();
        assert_eq!(bases, ["https://mirror.example:5000", "http://127.0.0.1:5001", "https://registry-1.docker.io"]);
        assert_eq!(eps[0].repository, "hub/busybox");
        assert_eq!(eps[2].repository, "library/busybox", "the registry itself is not rewritten");
        assert_eq!(eps[0].credentials.as_ref().and_then(|c| c.password.as_deref()), Some("p"));
        assert!(eps[0].tls.insecure_skip_verify);
        assert_eq!(eps[0].tls.ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(eps[1].credentials, None);
        assert_eq!(eps[2].credentials.as_ref().and_then(|c| c.username.as_deref()), Some("hub"));
        assert!(eps[2].upstream && !eps[0].upstream);

        // Another registry: the "*" mirror, then itself (loopback over plain HTTP, its own config).
        let eps = f.endpoints("127.0.0.1:5002", "a/b");
        let bases: Vec<&str> = eps.iter().map(|e| e.base.as_str()).collect();
        assert_eq!(bases, ["https://everything.example", "http://127.0.0.1:5002"]);
        assert_eq!(eps[1].credentials.as_ref().and_then(|c| c.identity_token.as_deref()), Some("tok"));
        assert_eq!(eps[1].repository, "a/b");
    }

    #[test]
    fn no_config_is_the_registry_alone() {
        let f = RegistriesFile::parse("").expect("empty");
        assert_eq!(f.endpoints("quay.io", "x/y")[0].base, "https://quay.io");
        assert_eq!(f.endpoints("localhost:5000", "x")[0].base, "http://localhost:5000");
        assert_eq!(f.endpoints("[::1]:5000", "x")[0].base, "http://[::1]:5000");
        assert_eq!(f.endpoints("docker.io", "library/b").len(), 1);
        let missing = RegistriesFile::load(Path::new("/nonexistent/registries.yaml")).expect("missing is empty");
        assert!(missing.mirrors.is_empty());
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        assert!(RegistriesFile::parse("mirrors: [1]").is_err());
        assert!(RegistriesFile::parse("mirorrs: {}").is_err(), "unknown fields are refused");
        let e = RegistriesFile::parse("mirrors: {a: {rewrite: {'(': x}}}").expect_err("bad regex");
        assert!(e.contains("rewrite"), "{e}");
        let e = RegistriesFile::parse("mirrors: {a: {endpoint: ['ftp://x']}}").expect_err("bad scheme");
        assert!(e.contains("ftp://x"), "{e}");
    }

    #[test]
    fn loopback_hosts() {
        for h in ["127.0.0.1", "127.0.0.1:5000", "127.9.9.9:1", "localhost:80", "[::1]:5000", "::1"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["10.0.0.1:5000", "registry-1.docker.io", "[::2]:1", "localhost.example"] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
