//! Removing what an applier dropped from its configuration (upstream's `Updater.prune`).
//!
//! A field or list item goes when the applier owned it last time (`last`) and nobody owns it
//! now (`keep`: the new configuration plus every other manager). Objects count as owned by
//! whoever owns something inside them (upstream's `EnsureNamedFieldsAreMembers`), so an
//! object nobody owns anything in any more goes whole; a list item must be owned itself.

use super::fieldset::{FieldSet, Node, PathElement};
use super::schema::{name_items, Scope};
use crate::patch::merge_keys::ListType;
use serde_json::{Map, Value};

/// `merged` without the fields of `last` that `keep` does not cover.
pub fn prune(scope: &Scope<'_>, merged: Value, last: &FieldSet, keep: &FieldSet) -> Value {
    if last.is_empty() {
        return merged;
    }
    let Value::Object(root) = merged else {
        return merged;
    };
    let mut names = Vec::new();
    Value::Object(prune_fields(scope, root, last, Some(keep), &mut names))
}

fn prune_fields(
    scope: &Scope<'_>,
    object: Map<String, Value>,
    last: &FieldSet,
    keep: Option<&FieldSet>,
    names: &mut Vec<String>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in object {
        let pe = PathElement::Field(key.clone());
        let last_node = last.get(&pe);
        let keep_node = keep.and_then(|k| k.get(&pe));
        names.push(key.clone());
        let at_root_meta = names.len() == 1 && key == "metadata";
        let untracked = {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            scope.untracked(&refs)
        };
        let kept = match last_node {
            _ if untracked => Some(value),
            None => Some(value),
            // Owned last time, by nobody now: goes (except `metadata`, which holds the name).
            Some(_) if keep_node.is_none() && !at_root_meta => None,
            Some(node) => Some(prune_value(scope, value, node, keep_node, names)),
        };
        names.pop();
        if let Some(value) = kept {
            out.insert(key, value);
        }
    }
    out
}

/// Descends into a value some of whose contents were owned last time.
fn prune_value(scope: &Scope<'_>, value: Value, last: &Node, keep: Option<&Node>, names: &mut Vec<String>) -> Value {
    if last.set.is_empty() {
        return value;
    }
    let keep_set = keep.map(|k| &k.set);
    match value {
        Value::Object(map) => Value::Object(prune_fields(scope, map, &last.set, keep_set, names)),
        Value::Array(items) => {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let list = scope.list_type(&refs);
            if list == ListType::Atomic {
                return Value::Array(items);
            }
            Value::Array(prune_items(scope, list, items, &last.set, keep_set, names))
        }
        other => other,
    }
}

fn prune_items(
    scope: &Scope<'_>,
    list: ListType,
    items: Vec<Value>,
    last: &FieldSet,
    keep: Option<&FieldSet>,
    names: &mut Vec<String>,
) -> Vec<Value> {
    let item_names = name_items(list, &items);
    let mut out = Vec::with_capacity(items.len());
    for (item, pe) in items.into_iter().zip(item_names) {
        let Some(pe) = pe else {
            out.push(item);
            continue;
        };
        let last_node = last.get(&pe);
        let keep_node = keep.and_then(|k| k.get(&pe));
        match last_node {
            None => out.push(item),
            Some(node) if node.member && !keep_node.is_some_and(|k| k.member) => {}
            Some(node) => out.push(prune_value(scope, item, node, keep_node, names)),
        }
    }
    out
}
