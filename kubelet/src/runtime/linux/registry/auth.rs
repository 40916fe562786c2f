//! Registry authentication: the `WWW-Authenticate` challenge of a 401 (`Basic realm=...` or
//! `Bearer realm=...,service=...,scope=...`, RFC 7235 auth-params) and the credentials a pull
//! carries (from the pod's imagePullSecrets or the registries config).

use base64::Engine;

/// Credentials for one registry host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<String>,
    /// An OAuth2 refresh token (`identitytoken`): exchanged at the token realm.
    pub identity_token: Option<String>,
}

impl Credentials {
    /// From `username`/`password`, or a base64 `auth` of `user:password` when those are empty.
    pub fn new(username: Option<&str>, password: Option<&str>, auth: Option<&str>, identity: Option<&str>) -> Self {
        let nonempty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
        let (mut username, mut password) = (nonempty(username), nonempty(password));
        if username.is_none() && password.is_none() {
            if let Some((u, p)) = nonempty(auth).and_then(|a| decode_auth(&a)) {
                username = Some(u);
                password = Some(p);
            }
        }
        Credentials { username, password, identity_token: nonempty(identity) }
    }

    pub fn is_empty(&self) -> bool {
        self.username.is_none() && self.password.is_none() && self.identity_token.is_none()
    }

    /// The `Authorization: Basic ...` value, if there is a user name or password.
    pub fn basic(&self) -> Option<String> {
        if self.username.is_none() && self.password.is_none() {
            return None;
        }
        let pair = format!("{}:{}", self.username.as_deref().unwrap_or(""), self.password.as_deref().unwrap_or(""));
        Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))
    }
}

/// `user:password` from a base64 `auth` field (as in `.docker/config.json`).
pub fn decode_auth(auth: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(auth.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// What a registry asks for in `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

/// The first challenge of a `WWW-Authenticate` value that this client answers (Bearer or Basic).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
    let params = parse_params(rest);
    let get = |k: &str| params.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer { realm: get("realm")?, service: get("service"), scope: get("scope") })
    } else if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else {
        None
    }
}

/// `k=v, k="quoted \" value", ...` → pairs (a comma inside quotes belongs to the value, as in a
/// scope `repository:a/b:pull,push`).
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.trim().is_empty() {
            return out;
        }
        if chars.next() != Some('=') {
            continue;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n)
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key.trim().to_string(), value.trim().to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_bearer_challenge() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#;
        assert_eq!(
            parse_challenge(h),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
    }

    #[test]
    fn quoted_commas_escapes_spaces_and_missing_params() {
        let h = r#"bearer  realm = "http://127.0.0.1:1/t" , scope="repository:a/b:pull,push", service=reg\x"#;
        match parse_challenge(h) {
            Some(Challenge::Bearer { realm, service, scope }) => {
                assert_eq!(realm, "http://127.0.0.1:1/t");
                assert_eq!(scope.as_deref(), Some("repository:a/b:pull,push"));
                assert_eq!(service.as_deref(), Some(r"reg\x"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_challenge(r#"Bearer realm="a\"b""#),
            Some(Challenge::Bearer { realm: "a\"b".into(), service: None, scope: None })
        );
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(parse_challenge("Bearer service=x"), None, "a bearer challenge needs a realm");
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge(""), None);
    }

    #[test]
    fn credentials_from_fields_or_auth() {
        let c = Credentials::new(None, None, Some("dXNlcjpwYTpzcw=="), None);
        assert_eq!((c.username.as_deref(), c.password.as_deref()), (Some("user"), Some("pa:ss")));
        assert_eq!(c.basic().as_deref(), Some("Basic dXNlcjpwYTpzcw=="));
        let c = Credentials::new(Some("a"), Some("b"), Some("dXNlcjpwYTpzcw=="), None);
        assert_eq!(c.username.as_deref(), Some("a"));
        assert!(Credentials::new(Some(""), None, Some("!!"), Some("")).is_empty());
        assert_eq!(Credentials::new(None, None, None, Some("tok")).basic(), None);
    }
}
