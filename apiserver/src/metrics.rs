//! The built-in resource metrics API, `metrics.k8s.io/v1beta1` (what upstream's metrics-server
//! serves, `sigs.k8s.io/metrics`): `NodeMetrics` and `PodMetrics`, read-only (get, list; pods
//! per namespace or across all; label selectors), so `kubectl top nodes|pods` work with nothing
//! installed.
//!
//! Figures come from the kubelets' `/stats/summary` (reached as `kubelet_proxy` reaches them),
//! fetched when a request needs them and kept for [`CACHE_FOR`]; a node whose kubelet does not
//! answer is left out of a list, never failing it. As metrics-server: CPU is the summary's
//! `usageNanoCores` and memory its `workingSetBytes`; a node or pod without both (e.g. before
//! its second CPU sample) is not reported; pods are those in the store on that node, matched by
//! uid.
//!
//! The group is served here, not through an `APIService` (that kind is not served yet): once
//! it is, an `APIService` for `v1beta1.metrics.k8s.io` that a user installs must take the group
//! over from this built-in one.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::Method;
use axum::response::Response;
use serde_json::{json, Value};
use tokio::time::Instant;

use api::selector::LabelSelector;
use api::ApiError;

use crate::kubelet_proxy::target;
use crate::request::Query;
use crate::response;
use crate::state::State;

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";
/// How long a kubelet's summary is reused.
pub const CACHE_FOR: Duration = Duration::from_secs(5);
/// How long one kubelet may take to answer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The `window` reported: the kubelets' sampling period, over which CPU rates are taken.
const WINDOW: &str = "10s";

/// The summaries last fetched, by node name.
#[derive(Default)]
pub struct Metrics {
    cache: tokio::sync::Mutex<HashMap<String, (Instant, Option<Value>)>>,
}

/// `(plural, kind, namespaced)` of the group's resources.
const RESOURCES: [(&str, &str, &str, bool); 2] =
    [("nodes", "NodeMetrics", "nodemetrics", false), ("pods", "PodMetrics", "podmetrics", true)];

/// The group in aggregated discovery (`apidiscovery.k8s.io/v2` `APIGroupDiscovery`).
pub fn aggregated_group() -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .map(|(plural, kind, singular, namespaced)| {
            json!({
                "resource": plural,
                "responseKind": {"group": GROUP, "version": VERSION, "kind": kind},
                "scope": if *namespaced { "Namespaced" } else { "Cluster" },
                "singularResource": singular,
                "verbs": ["get", "list"],
            })
        })
        .collect();
    json!({"metadata": {"name": GROUP}, "versions": [{"version": VERSION, "resources": resources, "freshness": "Current"}]})
}

/// The group in `/apis` (`APIGroup`).
pub fn api_group() -> Value {
    let v = json!({"groupVersion": format!("{GROUP}/{VERSION}"), "version": VERSION});
    json!({"name": GROUP, "versions": [v.clone()], "preferredVersion": v})
}

fn resource_list() -> Value {
    let list: Vec<Value> = RESOURCES
        .iter()
        .map(|(plural, kind, _, namespaced)| {
            json!({"name": plural, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": ["get", "list"]})
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{GROUP}/{VERSION}"), "resources": list})
}

/// The rest of a path under `/apis/metrics.k8s.io`, when it is one.
pub fn strip(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/apis/")?.strip_prefix(GROUP)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// CPU in nanocores as metrics-server writes it (`resource.NewScaledQuantity(n, -9)`).
pub fn cpu_quantity(nano: u64) -> String {
    if nano == 0 {
        "0".into()
    } else {
        format!("{nano}n")
    }
}

/// Bytes in the binary SI form (`resource.NewQuantity(n, BinarySI)`).
pub fn memory_quantity(bytes: u64) -> String {
    const SUFFIXES: [(&str, u32); 6] = [("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)];
    if bytes != 0 {
        for (suffix, shift) in SUFFIXES {
            if bytes.is_multiple_of(1u64 << shift) {
                return format!("{}{suffix}", bytes >> shift);
            }
        }
    }
    bytes.to_string()
}

/// `{cpu, memory}` from a summary's `cpu`/`memory` objects; None without both.
pub fn usage(cpu: &Value, memory: &Value) -> Option<Value> {
    let nano = cpu.get("usageNanoCores")?.as_u64()?;
    let ws = memory.get("workingSetBytes")?.as_u64()?;
    Some(json!({"cpu": cpu_quantity(nano), "memory": memory_quantity(ws)}))
}

fn labels(obj: &Value) -> Value {
    obj.pointer("/metadata/labels").cloned().unwrap_or_else(|| json!({}))
}

fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A `NodeMetrics` from a node's summary and its Node object.
pub fn node_metrics(node: &Value, summary: &Value) -> Option<Value> {
    let n = summary.get("node")?;
    let usage = usage(n.get("cpu")?, n.get("memory")?)?;
    let name = node.pointer("/metadata/name")?.as_str()?;
    let timestamp = n.pointer("/cpu/time").cloned().unwrap_or_else(|| json!(now()));
    Some(json!({
        "kind": "NodeMetrics",
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": {"name": name, "creationTimestamp": now(), "labels": labels(node)},
        "timestamp": timestamp,
        "window": WINDOW,
        "usage": usage,
    }))
}

/// A `PodMetrics` from a pod's entry of its node's summary (all its containers measured).
pub fn pod_metrics(pod: &Value, stats: &Value) -> Option<Value> {
    let containers: Vec<Value> = stats
        .get("containers")?
        .as_array()?
        .iter()
        .map(|c| Some(json!({"name": c.get("name")?, "usage": usage(c.get("cpu")?, c.get("memory")?)?})))
        .collect::<Option<_>>()?;
    if containers.is_empty() {
        return None;
    }
    let timestamp = stats.pointer("/cpu/time").cloned().unwrap_or_else(|| json!(now()));
    Some(json!({
        "kind": "PodMetrics",
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": {
            "name": pod.pointer("/metadata/name")?,
            "namespace": pod.pointer("/metadata/namespace")?,
            "creationTimestamp": now(),
            "labels": labels(pod),
        },
        "timestamp": timestamp,
        "window": WINDOW,
        "containers": containers,
    }))
}

fn not_found(plural: &str, name: &str) -> ApiError {
    let singular = if plural == "nodes" { "nodemetrics" } else { "podmetrics" };
    ApiError::new(404, "NotFound", format!("{singular}.{GROUP} \"{name}\" not found")).with_details(GROUP, plural, name)
}

fn list(kind: &str, items: Vec<Value>) -> Response {
    response::json(
        200,
        &json!({"kind": kind, "apiVersion": format!("{GROUP}/{VERSION}"), "metadata": {}, "items": items}),
    )
}

/// What a request under the group asks for.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    Group,
    Version,
    Nodes(Option<&'a str>),
    /// Namespace (None: all) and name.
    Pods(Option<&'a str>, Option<&'a str>),
}

fn target(rest: &str) -> Option<Target<'_>> {
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    Some(match segs.as_slice() {
        [] => Target::Group,
        [VERSION] => Target::Version,
        [VERSION, "nodes"] => Target::Nodes(None),
        [VERSION, "nodes", name] => Target::Nodes(Some(name)),
        [VERSION, "pods"] => Target::Pods(None, None),
        [VERSION, "namespaces", ns, "pods"] => Target::Pods(Some(ns), None),
        [VERSION, "namespaces", ns, "pods", name] => Target::Pods(Some(ns), Some(name)),
        _ => return None,
    })
}

/// Serves a request under `/apis/metrics.k8s.io` (`rest` is what follows).
pub async fn serve(state: &State, method: &Method, rest: &str, query: &Query) -> Response {
    match serve_inner(state, method, rest, query).await {
        Ok(r) => r,
        Err(e) => response::error(&e),
    }
}

async fn serve_inner(state: &State, method: &Method, rest: &str, query: &Query) -> Result<Response, ApiError> {
    let Some(t) = target(rest) else {
        return Err(ApiError::not_found_path("the server could not find the requested resource"));
    };
    if method != Method::GET && method != Method::HEAD {
        return Ok(response::with_allow(
            response::error(&ApiError::method_not_allowed(format!("{GROUP} is read-only"))),
            "GET",
        ));
    }
    if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
        return Err(ApiError::method_not_allowed(format!("watch is not supported on {GROUP}")));
    }
    let selector = match query.get("labelSelector") {
        Some(s) => LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?,
        None => LabelSelector::everything(),
    };
    let selected = |obj: &Value| selector.matches(obj.pointer("/metadata/labels").and_then(Value::as_object));
    match t {
        Target::Group => {
            let mut g = api_group();
            g["kind"] = json!("APIGroup");
            g["apiVersion"] = json!("v1");
            Ok(response::json(200, &g))
        }
        Target::Version => Ok(response::json(200, &resource_list())),
        Target::Nodes(name) => {
            let nodes: Vec<Value> = stored(state, "nodes", None, name).into_iter().filter(|n| selected(n)).collect();
            let summaries = state.metrics.summaries(state, &nodes).await;
            let items: Vec<Value> = nodes
                .iter()
                .filter_map(|n| {
                    let s = summaries.get(n.pointer("/metadata/name")?.as_str()?)?;
                    node_metrics(n, s)
                })
                .collect();
            match name {
                Some(n) => {
                    items.into_iter().next().map(|m| response::json(200, &m)).ok_or_else(|| not_found("nodes", n))
                }
                None => Ok(list("NodeMetricsList", items)),
            }
        }
        Target::Pods(ns, name) => {
            let pods: Vec<Value> = stored(state, "pods", ns, name).into_iter().filter(|p| selected(p)).collect();
            let mut node_names: Vec<&str> =
                pods.iter().filter_map(|p| p.pointer("/spec/nodeName").and_then(Value::as_str)).collect();
            node_names.sort();
            node_names.dedup();
            let nodes: Vec<Value> = node_names.iter().flat_map(|n| stored(state, "nodes", None, Some(n))).collect();
            let summaries = state.metrics.summaries(state, &nodes).await;
            // uid → the pod's entry in its node's summary.
            let mut by_uid: HashMap<&str, &Value> = HashMap::new();
            for s in summaries.values() {
                for p in s.get("pods").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(uid) = p.pointer("/podRef/uid").and_then(Value::as_str) {
                        by_uid.insert(uid, p);
                    }
                }
            }
            let items: Vec<Value> = pods
                .iter()
                .filter_map(|p| pod_metrics(p, by_uid.get(p.pointer("/metadata/uid")?.as_str()?)?))
                .collect();
            match name {
                Some(n) => {
                    items.into_iter().next().map(|m| response::json(200, &m)).ok_or_else(|| not_found("pods", n))
                }
                None => Ok(list("PodMetricsList", items)),
            }
        }
    }
}

/// Nodes or pods from the store: one by name, or all (of a namespace).
fn stored(state: &State, plural: &str, namespace: Option<&str>, name: Option<&str>) -> Vec<Value> {
    let Some(info) = api::resources::by_plural("", "v1", plural) else { return Vec::new() };
    let decode = |json: &[u8]| serde_json::from_slice::<Value>(json).ok();
    if let Some(name) = name {
        return state.store.get(&info.key(namespace, name)).and_then(|o| decode(&o.json)).into_iter().collect();
    }
    let prefix = match namespace {
        Some(ns) => format!("{}{ns}/", info.key_prefix()),
        None => info.key_prefix(),
    };
    let (_, objs, _) = state.store.list(&prefix, None, usize::MAX, &|_| true);
    objs.iter().filter_map(|o| decode(&o.json)).collect()
}

impl Metrics {
    /// The summaries of `nodes` (by name), fetched at once where the cached one is too old; a
    /// node whose kubelet fails is left out.
    async fn summaries(&self, state: &State, nodes: &[Value]) -> HashMap<String, Value> {
        let mut out = HashMap::new();
        let mut fetch = Vec::new();
        {
            let cache = self.cache.lock().await;
            for n in nodes {
                let Some(name) = n.pointer("/metadata/name").and_then(Value::as_str) else { continue };
                match cache.get(name) {
                    Some((at, s)) if at.elapsed() < CACHE_FOR => {
                        if let Some(s) = s {
                            out.insert(name.to_string(), s.clone());
                        }
                    }
                    _ => fetch.push((name.to_string(), n)),
                }
            }
        }
        let fetches = fetch.iter().map(|(name, node)| async move {
            let got = match target::endpoint_of(node, name) {
                Ok(ep) => {
                    let call = state.kubelet.get(&ep, "/stats/summary");
                    match tokio::time::timeout(FETCH_TIMEOUT, call).await {
                        Ok(Ok(body)) => serde_json::from_slice::<Value>(&body).map_err(|e| e.to_string()),
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err("timed out".to_string()),
                    }
                }
                Err(e) => Err(e.message),
            };
            (name.clone(), got)
        });
        let results = futures::future::join_all(fetches).await;
        let mut cache = self.cache.lock().await;
        for (name, got) in results {
            let summary = match got {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(node = %name, error = %e, "metrics: cannot read the kubelet's summary");
                    None
                }
            };
            if let Some(s) = &summary {
                out.insert(name.clone(), s.clone());
            }
            cache.insert(name, (Instant::now(), summary));
        }
        // Nodes that are gone leave the cache.
        cache.retain(|_, (at, _)| at.elapsed() < CACHE_FOR * 12);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_as_metrics_server_writes_them() {
        assert_eq!(cpu_quantity(0), "0");
        assert_eq!(cpu_quantity(12_345), "12345n");
        assert_eq!(memory_quantity(4 << 20), "4Mi");
        assert_eq!(memory_quantity(4096 + 1), "4097");
        assert_eq!(memory_quantity(3 << 10), "3Ki");
    }

    #[test]
    fn paths() {
        assert_eq!(strip("/apis/metrics.k8s.io"), Some(""));
        assert_eq!(strip("/apis/metrics.k8s.io/v1beta1/nodes"), Some("/v1beta1/nodes"));
        assert_eq!(strip("/apis/metrics.k8s.iox"), None);
        assert_eq!(strip("/apis/apps/v1"), None);
        assert_eq!(target("/v1beta1/namespaces/d/pods/p"), Some(Target::Pods(Some("d"), Some("p"))));
        assert_eq!(target("/v1beta1/pods"), Some(Target::Pods(None, None)));
        assert_eq!(target("/v1beta1/nodes/n1"), Some(Target::Nodes(Some("n1"))));
        assert_eq!(target("/v1beta1"), Some(Target::Version));
        assert_eq!(target("/v1/nodes"), None);
    }

    #[test]
    fn metrics_from_summaries() {
        let summary = json!({
            "node": {"nodeName": "n1", "cpu": {"time": "2026-01-01T00:00:00Z", "usageNanoCores": 250_000_000u64},
                     "memory": {"workingSetBytes": 1u64 << 30}},
            "pods": [{"podRef": {"uid": "u1"}, "cpu": {"time": "t"},
                      "containers": [{"name": "c", "cpu": {"usageNanoCores": 5}, "memory": {"workingSetBytes": 2048}}]}]
        });
        let node = json!({"metadata": {"name": "n1", "labels": {"a": "b"}}});
        let m = node_metrics(&node, &summary).expect("node metrics");
        assert_eq!(m["usage"], json!({"cpu": "250000000n", "memory": "1Gi"}));
        assert_eq!(m["metadata"]["labels"]["a"], "b");
        assert_eq!(m["timestamp"], "2026-01-01T00:00:00Z");
        let pod = json!({"metadata": {"name": "p", "namespace": "d", "uid": "u1"}});
        let pm = pod_metrics(&pod, &summary["pods"][0]).expect("pod metrics");
        assert_eq!(pm["containers"], json!([{"name": "c", "usage": {"cpu": "5n", "memory": "2Ki"}}]));
        // Without a CPU rate yet, nothing is reported.
        let first = json!({"containers": [{"name": "c", "cpu": {}, "memory": {"workingSetBytes": 1}}]});
        assert!(pod_metrics(&pod, &first).is_none());
        assert!(node_metrics(&node, &json!({"node": {"cpu": {}, "memory": {}}})).is_none());
    }
}
