//! What the apply code needs to know about a kind beyond JSON: how list items are named
//! (from `patch::merge_keys`), which fields no manager ever owns, and which fields the
//! request may not set at all.

use super::fieldset::PathElement;
use crate::patch::merge_keys::{list_type, ListType};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// Metadata fields the server sets; apply keeps the live value and nobody owns them.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Metadata fields that are merged normally but never tracked (upstream's strip set).
const IDENTITY_METADATA: &[&str] = &["name", "namespace"];

/// Kinds served with a `status` subresource: their main resource ignores `status`.
fn has_status_subresource(kind: &str) -> bool {
    matches!(
        kind,
        "Pod"
            | "Service"
            | "Namespace"
            | "Node"
            | "Deployment"
            | "ReplicaSet"
            | "DaemonSet"
            | "StatefulSet"
            | "Job"
            | "CronJob"
    )
}

/// The object being managed: its kind and the subresource the request went through.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub kind: &'a str,
    pub subresource: Option<&'a str>,
}

impl Scope<'_> {
    /// How the list at `names` (field names from the root) merges.
    pub fn list_type(&self, names: &[&str]) -> ListType {
        list_type(self.kind, names)
    }

    /// Whether the object at `names` is replaced whole (upstream's `structType=atomic`):
    /// label selectors of workloads and affinity/spread terms, node selectors of node
    /// affinity, references inside `env[].valueFrom`, and object references of events.
    pub fn atomic_object(&self, names: &[&str]) -> bool {
        let Some((&field, parents)) = names.split_last() else {
            return false;
        };
        match field {
            "labelSelector" | "namespaceSelector" => true,
            "configMapKeyRef" | "secretKeyRef" | "fieldRef" | "resourceFieldRef" => {
                parents.last() == Some(&"valueFrom")
            }
            "requiredDuringSchedulingIgnoredDuringExecution" => parents.last() == Some(&"nodeAffinity"),
            // Service's selector is a plain map merged key by key; the others are LabelSelectors.
            "selector" => parents.last() == Some(&"spec") && self.kind != "Service",
            "involvedObject" | "related" | "regarding" => self.kind == "Event" && parents.is_empty(),
            _ => false,
        }
    }

    /// Top-level fields the request cannot change through this endpoint (the strategy
    /// resets them): `status` on the main resource, `spec` on `/status`.
    fn reset_root(&self, name: &str) -> bool {
        match self.subresource {
            Some("status") => name == "spec",
            _ => name == "status" && has_status_subresource(self.kind),
        }
    }

    /// Whether the field at `names` (a root field, or a field of `metadata`) keeps its
    /// live value in an apply: the server owns it.
    pub fn server_owned(&self, names: &[&str]) -> bool {
        match names {
            [root] => self.reset_root(root),
            ["metadata", field] => SERVER_METADATA.contains(field),
            _ => false,
        }
    }

    /// Whether the field at `names` is left out of every field set.
    pub fn untracked(&self, names: &[&str]) -> bool {
        match names {
            ["apiVersion"] | ["kind"] => true,
            ["metadata", field] if IDENTITY_METADATA.contains(field) => true,
            _ => self.server_owned(names),
        }
    }

    /// A copy of `object` without the server-owned fields (`tracked_only`: without every
    /// untracked field).
    pub fn strip(&self, object: &Value, tracked_only: bool) -> Value {
        let Value::Object(root) = object else {
            return object.clone();
        };
        let drop = |names: &[&str]| {
            if tracked_only {
                self.untracked(names)
            } else {
                self.server_owned(names)
            }
        };
        let mut out = Map::new();
        for (key, value) in root {
            if drop(&[key]) {
                continue;
            }
            match value {
                Value::Object(meta) if key == "metadata" => {
                    let kept = meta
                        .iter()
                        .filter(|(field, _)| !drop(&["metadata", field.as_str()]))
                        .map(|(k, v)| (k.clone(), v.clone()));
                    out.insert(key.clone(), Value::Object(kept.collect()));
                }
                _ => {
                    out.insert(key.clone(), value.clone());
                }
            }
        }
        Value::Object(out)
    }
}

/// Why a list item cannot be named.
#[derive(Debug)]
pub enum ItemError {
    /// A keyed list item that is not an object, or has none of the keys.
    MissingKey(&'static str),
}

/// Names one item of a non-atomic list: `k:{...}` with every key the item has (a missing
/// `protocol` key takes its default "TCP", as upstream's key defaulting), or `v:<value>`.
pub fn item_element(list: ListType, item: &Value) -> Result<PathElement, ItemError> {
    match list {
        ListType::Map(keys) => {
            let first = keys.first().copied().unwrap_or("name");
            let Value::Object(fields) = item else {
                return Err(ItemError::MissingKey(first));
            };
            let mut named = Vec::new();
            let mut given = 0;
            for &key in keys {
                match fields.get(key) {
                    Some(v) if !v.is_null() => {
                        given += 1;
                        named.push((key.to_string(), v.clone()));
                    }
                    _ if key == "protocol" => named.push((key.to_string(), Value::from("TCP"))),
                    _ => {}
                }
            }
            if given == 0 {
                return Err(ItemError::MissingKey(first));
            }
            named.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(named))
        }
        ListType::Set | ListType::Atomic => Ok(PathElement::Value(item.clone())),
    }
}

/// Names the items of a stored list leniently: an item that cannot be named gets its index,
/// and a repeated name is `None` (the first item with a name wins).
pub fn name_items(list: ListType, items: &[Value]) -> Vec<Option<PathElement>> {
    let mut seen = BTreeSet::new();
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let pe = item_element(list, item).unwrap_or(PathElement::Index(i));
            seen.insert(pe.clone()).then_some(pe)
        })
        .collect()
}

/// A copy of `value` without `null` object fields (an applied `null` is treated as absent).
pub fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}
