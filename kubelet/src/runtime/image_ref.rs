//! Image references normalised as Docker does: `busybox:1.36` is `docker.io/library/busybox:1.36`,
//! a missing tag is `latest`, a first component with a `.` or `:` (or `localhost`) is a registry.

use super::RuntimeError;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `registry/repository`, e.g. `docker.io/library/busybox`.
    pub name: String,
    /// The tag; `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    /// `sha256:<hex>` when the reference pins a digest.
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(reference: &str) -> Result<Self, RuntimeError> {
        let invalid = |message: &str| RuntimeError::InvalidImage {
            reference: reference.to_string(),
            message: message.to_string(),
        };
        if reference.is_empty() || reference.chars().any(|c| c.is_whitespace() || c.is_ascii_uppercase()) {
            return Err(invalid("must be a non-empty lowercase reference without spaces"));
        }
        let (rest, digest) = match reference.split_once('@') {
            Some((r, d)) => {
                let hex = d.strip_prefix("sha256:").ok_or_else(|| invalid("digest must be sha256:<hex>"))?;
                if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(invalid("digest must be sha256 followed by 64 hex digits"));
                }
                (r, Some(d.to_string()))
            }
            None => (reference, None),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (path, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(rest[last_slash + i + 1..].to_string())),
            None => (rest, None),
        };
        if path.is_empty() || path.starts_with('/') || path.ends_with('/') || path.contains("//") {
            return Err(invalid("bad repository name"));
        }
        if tag.as_deref() == Some("") {
            return Err(invalid("empty tag"));
        }
        let mut parts = path.splitn(2, '/');
        let first = parts.next().unwrap_or_default();
        let name = match parts.next() {
            Some(remainder) if first.contains('.') || first.contains(':') || first == "localhost" => {
                format!("{first}/{remainder}")
            }
            Some(_) => format!("docker.io/{path}"),
            None => format!("docker.io/library/{path}"),
        };
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(ImageRef { name, tag, digest })
    }

    /// The normalised reference: `name:tag`, `name@digest` or `name:tag@digest`.
    pub fn full(&self) -> String {
        let mut s = self.name.clone();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        let d = format!("sha256:{}", "a".repeat(64));
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox:1.36", "docker.io/library/busybox:1.36"),
            ("foo/bar", "docker.io/foo/bar:latest"),
            ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
            ("localhost:5000/x/y:z", "localhost:5000/x/y:z"),
            ("localhost/x", "localhost/x:latest"),
            ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"),
        ];
        for (input, want) in cases {
            assert_eq!(ImageRef::parse(input).map(|r| r.full()).ok().as_deref(), Some(want), "{input}");
        }
        let pinned = ImageRef::parse(&format!("busybox@{d}")).ok();
        assert_eq!(pinned.map(|r| r.full()), Some(format!("docker.io/library/busybox@{d}")));
    }

    #[test]
    fn rejects_bad_references() {
        for bad in ["", "Busybox", "a b", "busybox:", "/x", "x/", "busybox@md5:00", "busybox@sha256:abc"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?}");
        }
    }
}
