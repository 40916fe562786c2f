//! API discovery: the aggregated form (`apidiscovery.k8s.io/v2`, what kubectl asks for first)
//! and the legacy per-group-version documents, both generated from `api::RESOURCES`, plus the
//! built-in read-only `metrics.k8s.io` group ([`crate::metrics`]).

use axum::response::Response;
use serde_json::{json, Value};

use api::resources::{self, ResourceInfo, RESOURCES};
use api::ApiError;

use crate::response;

const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const AGGREGATED_V2BETA1: &str = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

fn scope(r: &ResourceInfo) -> &'static str {
    if r.namespaced() {
        "Namespaced"
    } else {
        "Cluster"
    }
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let subs: Vec<Value> = r
        .subresources
        .iter()
        .map(|s| {
            json!({
                "subresource": s.name,
                "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                "verbs": s.verbs,
            })
        })
        .collect();
    let mut v = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": scope(r),
        "singularResource": r.singular,
        "verbs": r.verbs(),
    });
    if !r.short_names.is_empty() {
        v["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        v["categories"] = json!(r.categories);
    }
    if !subs.is_empty() {
        v["subresources"] = Value::Array(subs);
    }
    v
}

fn aggregated_group(group: &str) -> Value {
    let versions: Vec<Value> = resources::group_versions()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(_, version)| {
            let res: Vec<Value> = RESOURCES
                .iter()
                .filter(|r| r.group == group && r.version == version)
                .map(aggregated_resource)
                .collect();
            json!({"version": version, "resources": res, "freshness": "Current"})
        })
        .collect();
    json!({"metadata": {"name": group}, "versions": versions})
}

fn groups(legacy_core: bool) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for (g, _) in resources::group_versions() {
        if (g.is_empty()) == legacy_core && !out.contains(&g) {
            out.push(g);
        }
    }
    out
}

/// `/api` or `/apis`, aggregated when the client asks for it.
pub fn root(legacy_core: bool, accept: &str) -> Response {
    let content_type = if accept.contains("v=v2;") || accept.contains("v=v2,") || accept.ends_with("v=v2") {
        Some(AGGREGATED_V2)
    } else if accept.contains("v=v2beta1") {
        Some(AGGREGATED_V2BETA1)
    } else {
        None
    };
    let wants_aggregated = accept.contains("as=APIGroupDiscoveryList");
    if let (true, Some(ct)) = (wants_aggregated, content_type) {
        let api_version = if ct == AGGREGATED_V2 { "apidiscovery.k8s.io/v2" } else { "apidiscovery.k8s.io/v2beta1" };
        let mut items: Vec<Value> = groups(legacy_core).into_iter().map(aggregated_group).collect();
        if !legacy_core {
            items.push(crate::metrics::aggregated_group());
        }
        let body = json!({"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items});
        return match serde_json::to_vec(&body) {
            Ok(b) => response::bytes(200, ct, b),
            Err(e) => response::error(&ApiError::internal(e.to_string())),
        };
    }
    if legacy_core {
        return response::json(
            200,
            &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}),
        );
    }
    let mut groups: Vec<Value> = groups(false).into_iter().map(api_group).collect();
    groups.push(crate::metrics::api_group());
    response::json(200, &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
}

fn api_group(group: &str) -> Value {
    let versions: Vec<Value> = resources::group_versions()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}

/// `/apis/<group>`.
pub fn group(group: &str) -> Response {
    let mut g = api_group(group);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    response::json(200, &g)
}

/// `/api/v1`, `/apis/<group>/<version>`: the legacy APIResourceList.
pub fn group_version(group: &str, version: &str) -> Response {
    let mut list = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group && r.version == version) {
        let mut v = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced(),
            "kind": r.kind,
            "verbs": r.verbs(),
        });
        if !r.short_names.is_empty() {
            v["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            v["categories"] = json!(r.categories);
        }
        list.push(v);
        for s in r.subresources {
            let mut sv = json!({
                "name": format!("{}/{}", r.plural, s.name),
                "singularName": "",
                "namespaced": r.namespaced(),
                "kind": s.kind,
                "verbs": s.verbs,
            });
            if s.group != r.group || s.version != r.version {
                sv["group"] = json!(s.group);
                sv["version"] = json!(s.version);
            }
            list.push(sv);
        }
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    response::json(200, &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}))
}
