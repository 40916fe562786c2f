//! The Node row (upstream `printNode`): Ready/NotReady/Unknown plus SchedulingDisabled, roles
//! from `node-role.kubernetes.io/<role>` and `kubernetes.io/role` labels, addresses and node info.

use super::age::{since, time_of, Instant};
use super::json::{at, bool_at, list_at, map_at, s, str_at};
use serde_json::Value;
use std::collections::BTreeSet;

const ROLE_PREFIX: &str = "node-role.kubernetes.io/";
const ROLE_LABEL: &str = "kubernetes.io/role";

fn status(node: &Value) -> String {
    // The last Ready condition wins, as upstream's condition map does.
    let ready = list_at(node, &["status", "conditions"]).iter().rev().find(|c| str_at(c, &["type"]) == "Ready");
    let mut parts = vec![match ready {
        Some(c) if str_at(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if bool_at(node, &["spec", "unschedulable"]) {
        parts.push("SchedulingDisabled");
    }
    parts.join(",")
}

fn roles(node: &Value) -> String {
    let mut roles = BTreeSet::new();
    for (k, v) in map_at(node, &["metadata", "labels"]).into_iter().flatten() {
        if let Some(role) = k.strip_prefix(ROLE_PREFIX) {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if k == ROLE_LABEL {
            if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                roles.insert(v.to_string());
            }
        }
    }
    if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    }
}

fn address(node: &Value, kind: &str) -> String {
    list_at(node, &["status", "addresses"])
        .iter()
        .find(|a| str_at(a, &["type"]) == kind)
        .map_or_else(|| "<none>".to_string(), |a| str_at(a, &["address"]).to_string())
}

fn info_or_unknown(node: &Value, key: &str) -> Value {
    match str_at(node, &["status", "nodeInfo", key]) {
        "" => s("<unknown>"),
        v => s(v),
    }
}

pub fn row(node: &Value, now: Instant) -> Vec<Value> {
    vec![
        s(str_at(node, &["metadata", "name"])),
        s(status(node)),
        s(roles(node)),
        s(since(time_of(at(node, &["metadata", "creationTimestamp"])), now)),
        s(str_at(node, &["status", "nodeInfo", "kubeletVersion"])),
        s(address(node, "InternalIP")),
        s(address(node, "ExternalIP")),
        info_or_unknown(node, "osImage"),
        info_or_unknown(node, "kernelVersion"),
        info_or_unknown(node, "containerRuntimeVersion"),
    ]
}
