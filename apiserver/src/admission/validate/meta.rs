//! `ObjectMeta` validation (apimachinery `ValidateObjectMeta` / `ValidateObjectMetaUpdate`) and the
//! template metadata rule.

use crate::admission::errs::{self, child};
use crate::admission::json;
use crate::admission::labels::{validate_annotations, validate_finalizers, validate_labels};
use crate::admission::names::{self, dns1123_label};
use api::Cause;
use serde_json::Value;

const P: &str = "metadata";

pub fn object_meta(out: &mut Vec<Cause>, kind: &str, meta: &Value, namespaced: bool) {
    let name = json::s(meta, "name");
    let generate = json::s(meta, "generateName");
    let rule = names::rule_for(kind);
    if !generate.is_empty() {
        for msg in names::check(rule, generate, true) {
            out.push(errs::invalid_str(&child(P, "generateName"), generate, &msg));
        }
    }
    if name.is_empty() {
        out.push(errs::required(&child(P, "name"), "name or generateName is required"));
    } else {
        for msg in names::validate_name(kind, name) {
            out.push(errs::invalid_str(&child(P, "name"), name, &msg));
        }
    }
    let ns = json::s(meta, "namespace");
    if namespaced {
        if ns.is_empty() {
            out.push(errs::required(&child(P, "namespace"), ""));
        } else {
            for msg in dns1123_label(ns) {
                out.push(errs::invalid_str(&child(P, "namespace"), ns, &msg));
            }
        }
    } else if !ns.is_empty() {
        out.push(errs::forbidden(&child(P, "namespace"), "not allowed on this type"));
    }
    errs::nonnegative(out, &child(P, "generation"), json::int(meta, "generation"));
    validate_labels(out, meta.get("labels"), &child(P, "labels"));
    validate_annotations(out, meta.get("annotations"), &child(P, "annotations"));
    validate_finalizers(out, meta.get("finalizers"), &child(P, "finalizers"));
    owner_references(out, meta);
}

fn owner_references(out: &mut Vec<Cause>, meta: &Value) {
    let p = child(P, "ownerReferences");
    let mut controllers = Vec::new();
    for r in json::arr(meta, "ownerReferences") {
        for (field, what) in [("apiVersion", "version"), ("kind", "kind"), ("name", "name"), ("uid", "uid")] {
            if json::s(r, field).is_empty() {
                out.push(errs::invalid_str(&child(&p, field), "", &format!("{what} must not be empty")));
            }
        }
        if json::boolean(r, "controller") == Some(true) {
            controllers.push(format!("{}/{}", json::s(r, "kind"), json::s(r, "name")));
        }
    }
    if controllers.len() > 1 {
        out.push(errs::invalid(
            &p,
            meta.get("ownerReferences").unwrap_or(&Value::Null),
            &format!(
                "Only one reference can have Controller set to true. Found \"true\" in references for {}",
                controllers.join(" and ")
            ),
        ));
    }
}

/// Update rules: name, namespace, uid and creationTimestamp never change.
pub fn object_meta_update(out: &mut Vec<Cause>, new: &Value, old: &Value) {
    for field in ["name", "namespace", "uid", "creationTimestamp"] {
        let n = json::s(new, field);
        let o = json::s(old, field);
        // An empty uid/creationTimestamp on the new object is filled from the old one by the caller.
        let skip_empty = matches!(field, "uid" | "creationTimestamp") && n.is_empty();
        if n != o && !skip_empty {
            out.push(errs::invalid_str(&child(P, field), n, "field is immutable"));
        }
    }
}

/// `ValidateTemplateObjectMeta`: a pod template's labels and annotations.
pub fn template_meta(out: &mut Vec<Cause>, meta: Option<&Value>, path: &str) {
    let meta = meta.unwrap_or(&Value::Null);
    validate_labels(out, meta.get("labels"), &child(path, "labels"));
    validate_annotations(out, meta.get("annotations"), &child(path, "annotations"));
}

/// Names in a list must be unique; returns each duplicate's index.
pub fn duplicate_indices<'a>(names: impl Iterator<Item = &'a str>) -> Vec<(usize, &'a str)> {
    let mut seen = std::collections::HashSet::new();
    names.enumerate().filter(|(_, n)| !n.is_empty() && !seen.insert(*n)).collect()
}
