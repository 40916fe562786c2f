//! Merging an applied configuration into the live object (upstream's `TypedValue.Merge`).
//!
//! Objects merge field by field; keyed and set lists merge item by item (items only in the
//! live list keep their place, the configuration's items come in its order); atomic lists,
//! scalars and fields that changed shape take the configuration's value. A field that is
//! empty on both sides is a leaf and takes the configuration's value.

use super::schema::{name_items, Scope};
use crate::patch::merge_keys::ListType;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `live` with `config` merged in. The configuration's lists were validated beforehand.
pub fn merge(scope: &Scope<'_>, live: &Value, config: &Value) -> Value {
    merge_value(scope, live, config, &mut Vec::new())
}

fn merge_value<'a>(scope: &Scope<'_>, live: &'a Value, config: &'a Value, names: &mut Vec<&'a str>) -> Value {
    match (live, config) {
        (Value::Object(_), Value::Object(_)) if scope.atomic_object(names) => config.clone(),
        (Value::Object(l), Value::Object(c)) if !(l.is_empty() && c.is_empty()) => {
            Value::Object(merge_objects(scope, l, c, names))
        }
        (Value::Array(l), Value::Array(c)) if !(l.is_empty() && c.is_empty()) => {
            let list = scope.list_type(names);
            if list == ListType::Atomic {
                config.clone()
            } else {
                Value::Array(merge_items(scope, list, l, c, names))
            }
        }
        _ => config.clone(),
    }
}

fn merge_objects<'a>(
    scope: &Scope<'_>,
    live: &'a Map<String, Value>,
    config: &'a Map<String, Value>,
    names: &mut Vec<&'a str>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, l) in live {
        let merged = match config.get(key) {
            Some(c) => {
                names.push(key);
                let merged = merge_value(scope, l, c, names);
                names.pop();
                merged
            }
            None => l.clone(),
        };
        out.insert(key.clone(), merged);
    }
    for (key, c) in config {
        if !live.contains_key(key) {
            out.insert(key.clone(), c.clone());
        }
    }
    out
}

/// Merges two non-atomic lists. Walks both in step: a live item the configuration lacks
/// stays where it is; otherwise the configuration's next item comes (merged with its live
/// counterpart when there is one).
fn merge_items<'a>(
    scope: &Scope<'_>,
    list: ListType,
    live: &'a [Value],
    config: &'a [Value],
    names: &mut Vec<&'a str>,
) -> Vec<Value> {
    let live_names = name_items(list, live);
    let config_names = name_items(list, config);
    let live_index: BTreeMap<_, usize> =
        live_names.iter().enumerate().filter_map(|(i, pe)| pe.as_ref().map(|pe| (pe, i))).collect();
    let config_index: BTreeMap<_, usize> =
        config_names.iter().enumerate().filter_map(|(i, pe)| pe.as_ref().map(|pe| (pe, i))).collect();
    let mut live_used = vec![false; live.len()];
    let mut out = Vec::with_capacity(live.len().max(config.len()));
    let (mut li, mut ri) = (0, 0);
    let merge_item = |l: &'a Value, c: &'a Value, names: &mut Vec<&'a str>| match list {
        ListType::Map(_) => merge_value(scope, l, c, names),
        _ => c.clone(),
    };
    while li < live.len() || ri < config.len() {
        if let (Some(item), false) = (live.get(li), live_used.get(li).copied().unwrap_or(true)) {
            let shared = live_names[li].as_ref().and_then(|pe| config_index.get(pe)).copied();
            match shared {
                // Only in the live list (or a repeated name): stays in place.
                None => {
                    out.push(item.clone());
                    live_used[li] = true;
                    li += 1;
                    continue;
                }
                Some(r) if r == ri => {
                    if let Some(c) = config.get(ri) {
                        out.push(merge_item(item, c, names));
                    }
                    live_used[li] = true;
                    li += 1;
                    ri += 1;
                    continue;
                }
                // The configuration orders another item first.
                Some(_) => {}
            }
        } else if li < live.len() {
            li += 1;
            continue;
        }
        let Some(c) = config.get(ri) else {
            li += 1;
            continue;
        };
        let counterpart =
            config_names[ri].as_ref().and_then(|pe| live_index.get(pe)).copied().filter(|&l| !live_used[l]);
        match counterpart {
            Some(l) => {
                out.push(merge_item(&live[l], c, names));
                live_used[l] = true;
            }
            None if config_names[ri].is_some() => out.push(c.clone()),
            // A repeated name in the configuration (rejected earlier); dropped.
            None => {}
        }
        ri += 1;
    }
    out
}
