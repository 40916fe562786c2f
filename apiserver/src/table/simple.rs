//! Rows of the small kinds: Secret, ConfigMap, Namespace, ServiceAccount, Lease, and the
//! Name + Age fallback for kinds without a printer.

use super::age::{since, time_of, Instant};
use super::json::{at, list_at, map_at, n, s, str_at};
use serde_json::Value;
use std::collections::BTreeSet;

fn name(obj: &Value) -> Value {
    s(str_at(obj, &["metadata", "name"]))
}

fn age(obj: &Value, now: Instant) -> Value {
    s(since(time_of(at(obj, &["metadata", "creationTimestamp"])), now))
}

pub fn secret(obj: &Value, now: Instant) -> Vec<Value> {
    // v1 defaulting gives an untyped Secret "Opaque"; `stringData` merges into `data`.
    let secret_type = match str_at(obj, &["type"]) {
        "" => "Opaque",
        t => t,
    };
    let keys: BTreeSet<&String> =
        map_at(obj, &["data"]).into_iter().chain(map_at(obj, &["stringData"])).flat_map(|m| m.keys()).collect();
    vec![name(obj), s(secret_type), n(keys.len()), age(obj, now)]
}

pub fn config_map(obj: &Value, now: Instant) -> Vec<Value> {
    let count = map_at(obj, &["data"]).map_or(0, |m| m.len()) + map_at(obj, &["binaryData"]).map_or(0, |m| m.len());
    vec![name(obj), n(count), age(obj, now)]
}

pub fn namespace(obj: &Value, now: Instant) -> Vec<Value> {
    // v1 defaulting sets an empty phase to Active.
    let phase = match str_at(obj, &["status", "phase"]) {
        "" => "Active",
        p => p,
    };
    vec![name(obj), s(phase), age(obj, now)]
}

pub fn service_account(obj: &Value, now: Instant) -> Vec<Value> {
    vec![name(obj), n(list_at(obj, &["secrets"]).len()), age(obj, now)]
}

pub fn lease(obj: &Value, now: Instant) -> Vec<Value> {
    vec![name(obj), s(str_at(obj, &["spec", "holderIdentity"])), age(obj, now)]
}

pub fn default(obj: &Value, now: Instant) -> Vec<Value> {
    vec![name(obj), age(obj, now)]
}
