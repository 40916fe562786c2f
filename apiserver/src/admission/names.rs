//! Name syntax as apimachinery's `util/validation`: DNS-1123 labels and subdomains, DNS-1035 labels,
//! IANA port names, config keys, and the per-kind object name rule (with upstream messages).

pub use api::validation::{dns1035_label, dns1123_label, dns1123_subdomain, lower_alnum, max_len_error, regex_error};

/// Upstream `IsValidPortName` (IANA_SVC_NAME).
pub fn port_name(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 15 {
        out.push(max_len_error(15));
    }
    if !s.bytes().all(|c| lower_alnum(c) || c == b'-') || s.is_empty() {
        out.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string());
    }
    if !s.bytes().any(|c| c.is_ascii_lowercase()) {
        out.push("must contain at least one letter (a-z)".to_string());
    }
    if s.contains("--") {
        out.push("must not contain consecutive hyphens".to_string());
    }
    if s.starts_with('-') || s.ends_with('-') {
        out.push("must not begin or end with a hyphen".to_string());
    }
    out
}

/// Upstream `IsValidPortNum`.
pub fn port_num(p: i64) -> Vec<String> {
    if (1..=65535).contains(&p) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".to_string()]
    }
}

/// Upstream `IsConfigMapKey` (Secret and ConfigMap data keys).
pub fn config_key(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 253 {
        out.push(max_len_error(253));
    }
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_') {
        out.push(regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            "[-._a-zA-Z0-9]+",
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if s == "." {
        out.push("must not be '.'".to_string());
    } else if s == ".." {
        out.push("must not be '..'".to_string());
    } else if s.starts_with("..") {
        out.push("must not start with '..'".to_string());
    }
    out
}

/// Which name rule a kind uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    Dns1123Label,
    Dns1123Subdomain,
    Dns1035Label,
}

/// Upstream name validators per kind: Namespace is a DNS-1123 label, Service a DNS-1035 label
/// (`ValidateServiceName`), everything else a DNS-1123 subdomain.
pub fn rule_for(kind: &str) -> NameRule {
    match kind {
        "Namespace" => NameRule::Dns1123Label,
        "Service" => NameRule::Dns1035Label,
        _ => NameRule::Dns1123Subdomain,
    }
}

/// Checks `name` (or a `generateName` prefix when `prefix`) against a rule. A prefix may end with a dash.
pub fn check(rule: NameRule, name: &str, prefix: bool) -> Vec<String> {
    let masked;
    let name = match name.strip_suffix('-') {
        Some(stem) if prefix && !stem.is_empty() => {
            masked = format!("{stem}a");
            masked.as_str()
        }
        _ => name,
    };
    match rule {
        NameRule::Dns1123Label => dns1123_label(name),
        NameRule::Dns1123Subdomain => dns1123_subdomain(name),
        NameRule::Dns1035Label => dns1035_label(name),
    }
}

/// The object-name messages for `kind` (empty when valid): the kind's DNS rule (which already excludes
/// the path-segment hazards `.`, `..`, `/`, `%`), and CronJob's 52-character limit (its Jobs append an
/// 11-character suffix).
pub fn validate_name(kind: &str, name: &str) -> Vec<String> {
    let mut out = check(rule_for(kind), name, false);
    if kind == "CronJob" && name.len() > 52 {
        out.push(max_len_error(52));
    }
    out
}
