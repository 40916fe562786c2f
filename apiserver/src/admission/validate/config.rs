//! Secret and ConfigMap: data keys, 1 MiB total, Secret type-specific keys, and `immutable: true`.

use crate::admission::errs::{self, child, key};
use crate::admission::json;
use crate::admission::names::config_key;
use api::Cause;
use base64::Engine;
use serde_json::Value;

/// Upstream `MaxSecretSize` (also the ConfigMap limit).
pub const MAX_SIZE: usize = 1024 * 1024;

/// Validates the keys of a data map; returns the total decoded size.
fn keys(out: &mut Vec<Cause>, map: Option<&Value>, path: &str, base64: bool) -> usize {
    let Some(m) = map.and_then(Value::as_object) else { return 0 };
    let mut total = 0usize;
    for (k, v) in m {
        for msg in config_key(k) {
            out.push(errs::invalid_str(&key(path, k), k, &msg));
        }
        let s = v.as_str().unwrap_or("");
        let len = if base64 {
            base64::engine::general_purpose::STANDARD.decode(s).map(|b| b.len()).unwrap_or(s.len())
        } else {
            s.len()
        };
        total = total.saturating_add(len);
    }
    total
}

fn has_key(obj: &Value, field: &str, k: &str) -> bool {
    json::obj(obj, field).is_some_and(|m| m.contains_key(k))
}

fn data_value(obj: &Value, k: &str) -> Option<Vec<u8>> {
    let s = json::at(obj, &["data", k]).and_then(Value::as_str)?;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

pub fn secret(out: &mut Vec<Cause>, obj: &Value, old: Option<&Value>) {
    let mut total = keys(out, obj.get("data"), "data", true);
    total = total.saturating_add(keys(out, obj.get("stringData"), "stringData", false));
    if total > MAX_SIZE {
        out.push(errs::too_long("data", MAX_SIZE));
    }
    let has = |k: &str| has_key(obj, "data", k) || has_key(obj, "stringData", k);
    let required = |out: &mut Vec<Cause>, k: &str| {
        if !has(k) {
            out.push(errs::required(&key("data", k), ""));
        }
    };
    match json::s(obj, "type") {
        "kubernetes.io/service-account-token" => {
            let ann = json::at(obj, &["metadata", "annotations", "kubernetes.io/service-account.name"]);
            if ann.and_then(Value::as_str).unwrap_or("").is_empty() {
                out.push(errs::required("metadata.annotations[kubernetes.io/service-account.name]", ""));
            }
        }
        "kubernetes.io/dockercfg" => docker_json(out, obj, ".dockercfg"),
        "kubernetes.io/dockerconfigjson" => docker_json(out, obj, ".dockerconfigjson"),
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            out.push(errs::required("data[username]", ""));
            out.push(errs::required("data[password]", ""));
        }
        "kubernetes.io/ssh-auth" => required(out, "ssh-privatekey"),
        "kubernetes.io/tls" => {
            required(out, "tls.crt");
            required(out, "tls.key");
        }
        _ => {}
    }
    if let Some(old) = old {
        errs::immutable(out, "type", obj.get("type"), old.get("type"));
        immutable(out, obj, old, &["data"]);
    }
}

fn docker_json(out: &mut Vec<Cause>, obj: &Value, k: &str) {
    let p = key("data", k);
    match data_value(obj, k) {
        None if !has_key(obj, "stringData", k) => out.push(errs::required(&p, "")),
        Some(bytes) if serde_json::from_slice::<Value>(&bytes).is_err() => {
            out.push(errs::invalid_str(&p, "<secret contents redacted>", "invalid character"));
        }
        _ => {}
    }
}

pub fn config_map(out: &mut Vec<Cause>, obj: &Value, old: Option<&Value>) {
    let mut total = keys(out, obj.get("data"), "data", false);
    total = total.saturating_add(keys(out, obj.get("binaryData"), "binaryData", true));
    if let (Some(d), Some(b)) = (json::obj(obj, "data"), json::obj(obj, "binaryData")) {
        for k in b.keys().filter(|k| d.contains_key(*k)) {
            out.push(errs::invalid_str(&key("binaryData", k), k, "duplicate of key present in data"));
        }
    }
    if total > MAX_SIZE {
        out.push(errs::too_long("", MAX_SIZE));
    }
    if let Some(old) = old {
        immutable(out, obj, old, &["data", "binaryData"]);
    }
}

/// `immutable: true` can't be undone, and freezes the data fields.
fn immutable(out: &mut Vec<Cause>, new: &Value, old: &Value, fields: &[&str]) {
    if json::boolean(old, "immutable") != Some(true) {
        return;
    }
    if json::boolean(new, "immutable") != Some(true) {
        out.push(errs::forbidden("immutable", "field is immutable when `immutable` is set"));
    }
    for f in fields {
        let n = json::present(new, f).filter(|v| v.as_object().is_none_or(|m| !m.is_empty()));
        let o = json::present(old, f).filter(|v| v.as_object().is_none_or(|m| !m.is_empty()));
        if n != o {
            out.push(errs::forbidden(&child("", f), "field is immutable when `immutable` is set"));
        }
    }
}
