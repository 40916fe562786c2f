//! Authentication: who is making a request. A layer of [`Authenticator`]s; the first that
//! recognises the credential wins. Node and ServiceAccount identities (a later issue) join as
//! further authenticators; authorization then reads the [`UserInfo`].

use std::path::Path;

use base64::Engine;
use rand::RngCore;

use crate::files;

/// The authenticated identity of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

pub trait Authenticator: Send + Sync {
    /// The user a bearer token belongs to, or None if this authenticator does not know it.
    fn authenticate_token(&self, token: &str) -> Option<UserInfo>;
}

/// Static tokens: the admin token (and, later, others from a token file).
pub struct StaticTokens {
    tokens: Vec<(String, UserInfo)>,
}

impl StaticTokens {
    pub fn new(tokens: Vec<(String, UserInfo)>) -> Self {
        StaticTokens { tokens }
    }
}

impl Authenticator for StaticTokens {
    fn authenticate_token(&self, token: &str) -> Option<UserInfo> {
        self.tokens.iter().find(|(t, _)| constant_time_eq(t.as_bytes(), token.as_bytes())).map(|(_, u)| u.clone())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The chain of authenticators the server consults.
pub struct AuthChain {
    chain: Vec<Box<dyn Authenticator>>,
}

impl AuthChain {
    pub fn new(chain: Vec<Box<dyn Authenticator>>) -> Self {
        AuthChain { chain }
    }

    /// Authenticates the value of an `Authorization` header.
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<UserInfo> {
        let header = authorization?;
        let (scheme, token) = header.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let token = token.trim();
        if token.is_empty() {
            return None;
        }
        self.chain.iter().find_map(|a| a.authenticate_token(token))
    }
}

/// A fresh random token (32 bytes, URL-safe base64).
pub fn new_token() -> String {
    let mut buf = [0u8; 32];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Reads the token at `path`, creating it (mode 0600) on first start.
pub fn load_or_create_token(path: &Path) -> Result<String, files::FileError> {
    if path.exists() {
        let t = files::read_string(path)?;
        let t = t.trim();
        if !t.is_empty() {
            return Ok(t.to_string());
        }
    }
    let token = new_token();
    files::write_atomic(path, format!("{token}\n").as_bytes(), 0o600)?;
    Ok(token)
}

pub fn admin_user() -> UserInfo {
    UserInfo { name: "system:admin".into(), groups: vec!["system:masters".into(), "system:authenticated".into()] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_checked_exactly() {
        let chain = AuthChain::new(vec![Box::new(StaticTokens::new(vec![("s3cret".into(), admin_user())]))]);
        assert_eq!(chain.authenticate(Some("Bearer s3cret")), Some(admin_user()));
        assert_eq!(chain.authenticate(Some("bearer s3cret")), Some(admin_user()));
        assert_eq!(chain.authenticate(Some("Bearer s3cre")), None);
        assert_eq!(chain.authenticate(Some("Basic s3cret")), None);
        assert_eq!(chain.authenticate(Some("Bearer ")), None);
        assert_eq!(chain.authenticate(None), None);
    }
}
