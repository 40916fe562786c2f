//! Pod volumes: names, exactly one source, and the common sources' required fields and modes.

use super::container::{field_ref, local_descending_path, resource_ref};
use super::resources::parse_nonnegative;
use crate::admission::defaults::pod::volume_sources;
use crate::admission::errs::{self, child, index};
use crate::admission::json;
use crate::admission::names::{config_key, dns1123_label};
use api::Cause;
use serde_json::Value;
use std::collections::HashSet;

const MODE_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";

fn mode(out: &mut Vec<Cause>, obj: &Value, field: &str, p: &str) {
    if let Some(m) = json::int(obj, field) {
        if !(0..=0o777).contains(&m) {
            out.push(errs::invalid_int(&child(p, field), m, MODE_MSG));
        }
    }
}

/// Validates `volumes` and returns their names.
pub fn volumes(out: &mut Vec<Cause>, list: &[Value], path: &str) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, v) in list.iter().enumerate() {
        let p = index(path, i);
        let name = json::s(v, "name");
        if name.is_empty() {
            out.push(errs::required(&child(&p, "name"), ""));
        } else {
            for msg in dns1123_label(name) {
                out.push(errs::invalid_str(&child(&p, "name"), name, &msg));
            }
            if !names.insert(name.to_string()) {
                out.push(errs::duplicate(&child(&p, "name"), &Value::String(name.into())));
            }
        }
        let sources = volume_sources(v);
        match sources.as_slice() {
            [] => out.push(errs::required(&p, "must specify a volume type")),
            [one] => source(out, one, v.get(*one).unwrap_or(&Value::Null), &child(&p, one)),
            [_, rest @ ..] => {
                for s in rest {
                    out.push(errs::forbidden(&child(&p, s), "may not specify more than 1 volume type"));
                }
            }
        }
    }
    names
}

fn items(out: &mut Vec<Cause>, src: &Value, p: &str) {
    for (i, it) in json::arr(src, "items").iter().enumerate() {
        let ip = index(&child(p, "items"), i);
        let key = json::s(it, "key");
        if key.is_empty() {
            out.push(errs::required(&child(&ip, "key"), ""));
        } else {
            for msg in config_key(key) {
                out.push(errs::invalid_str(&child(&ip, "key"), key, &msg));
            }
        }
        item_path(out, it, &ip);
        mode(out, it, "mode", &ip);
    }
}

fn item_path(out: &mut Vec<Cause>, it: &Value, ip: &str) {
    let path = json::s(it, "path");
    if path.is_empty() {
        out.push(errs::required(&child(ip, "path"), ""));
    } else {
        local_descending_path(out, path, &child(ip, "path"));
    }
}

fn downward_items(out: &mut Vec<Cause>, src: &Value, p: &str) {
    for (i, it) in json::arr(src, "items").iter().enumerate() {
        let ip = index(&child(p, "items"), i);
        item_path(out, it, &ip);
        mode(out, it, "mode", &ip);
        match (json::present(it, "fieldRef"), json::present(it, "resourceFieldRef")) {
            (Some(fr), None) => field_ref(out, fr, &child(&ip, "fieldRef"), true),
            (None, Some(rr)) => resource_ref(out, rr, &child(&ip, "resourceFieldRef")),
            (Some(_), Some(_)) => out.push(errs::invalid_str(
                &ip,
                "",
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            )),
            (None, None) => out.push(errs::required(&ip, "one of fieldRef and resourceFieldRef is required")),
        }
    }
}

fn source(out: &mut Vec<Cause>, kind: &str, src: &Value, p: &str) {
    match kind {
        "hostPath" => {
            if json::s(src, "path").is_empty() {
                out.push(errs::required(&child(p, "path"), ""));
            }
            let ty = json::s(src, "type");
            let allowed =
                ["", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"];
            if !allowed.contains(&ty) {
                out.push(errs::not_supported(&child(p, "type"), ty, &allowed));
            }
        }
        "emptyDir" => {
            let medium = json::s(src, "medium");
            if !matches!(medium, "" | "Memory" | "HugePages") && !medium.starts_with("HugePages-") {
                out.push(errs::not_supported(&child(p, "medium"), medium, &["", "Memory", "HugePages"]));
            }
            if let Some(q) = json::present(src, "sizeLimit") {
                parse_nonnegative(out, &child(p, "sizeLimit"), q);
            }
        }
        "secret" => {
            if json::s(src, "secretName").is_empty() {
                out.push(errs::required(&child(p, "secretName"), ""));
            }
            mode(out, src, "defaultMode", p);
            items(out, src, p);
        }
        "configMap" => {
            if json::s(src, "name").is_empty() {
                out.push(errs::required(&child(p, "name"), ""));
            }
            mode(out, src, "defaultMode", p);
            items(out, src, p);
        }
        "persistentVolumeClaim" if json::s(src, "claimName").is_empty() => {
            out.push(errs::required(&child(p, "claimName"), ""));
        }
        "downwardAPI" => {
            mode(out, src, "defaultMode", p);
            downward_items(out, src, p);
        }
        "projected" => {
            mode(out, src, "defaultMode", p);
            for (i, s) in json::arr(src, "sources").iter().enumerate() {
                let sp = index(&child(p, "sources"), i);
                for (k, sub) in s.as_object().into_iter().flatten() {
                    let kp = child(&sp, k);
                    match k.as_str() {
                        "secret" | "configMap" => items(out, sub, &kp),
                        "downwardAPI" => downward_items(out, sub, &kp),
                        "serviceAccountToken" => {
                            if let Some(e) = json::int(sub, "expirationSeconds").filter(|&e| e < 600) {
                                out.push(errs::invalid_int(
                                    &child(&kp, "expirationSeconds"),
                                    e,
                                    "may not specify a duration less than 10 minutes",
                                ));
                            }
                            if json::s(sub, "path").is_empty() {
                                out.push(errs::required(&child(&kp, "path"), ""));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        "nfs" => {
            if json::s(src, "server").is_empty() {
                out.push(errs::required(&child(p, "server"), ""));
            }
            if json::s(src, "path").is_empty() {
                out.push(errs::required(&child(p, "path"), ""));
            }
        }
        "image" if json::s(src, "reference").is_empty() => {
            out.push(errs::required(&child(p, "reference"), ""));
        }
        _ => {}
    }
}
