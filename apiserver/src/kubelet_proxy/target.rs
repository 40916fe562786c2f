//! Where a pod's kubelet request goes: which container (upstream's `validateContainer`) and the
//! kubelet's address (upstream's `NodeConnectionInfoGetter`). Pure, over the stored JSON.

use serde_json::Value;

use api::ApiError;

/// The port a kubelet listens on when its Node does not say.
pub const DEFAULT_KUBELET_PORT: u16 = 10250;

/// The names of a pod's containers in upstream's `VisitContainers` order: init containers,
/// containers, ephemeral containers.
fn container_names(pod: &Value) -> Vec<&str> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|list| pod.pointer(&format!("/spec/{list}")).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect()
}

/// The container a request addresses: the one it names (which must exist), else the pod's only
/// app container. Errors are upstream's 400s.
pub fn container_of(pod: &Value, pod_name: &str, requested: Option<&str>) -> Result<String, ApiError> {
    if let Some(c) = requested {
        return if container_names(pod).contains(&c) {
            Ok(c.to_string())
        } else {
            Err(ApiError::bad_request(format!("container {c} is not valid for pod {pod_name}")))
        };
    }
    let app: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(|c| c.get("name").and_then(Value::as_str)).collect())
        .unwrap_or_default();
    match app.as_slice() {
        [only] => Ok(only.to_string()),
        [] => Err(ApiError::bad_request(format!("a container name must be specified for pod {pod_name}"))),
        _ => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            container_names(pod).join(" ")
        ))),
    }
}

/// A kubelet's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// An IP address (or a host name, when that is all the Node reports).
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// `host:port`, with an IPv6 address in brackets.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The kubelet of a Node: the first address of the preferred type (InternalIP, then
/// ExternalIP, InternalDNS, ExternalDNS, Hostname) and `status.daemonEndpoints.kubeletEndpoint.Port`,
/// 10250 when unset. A Node without an address is a 400 naming the addresses it has.
pub fn endpoint_of(node: &Value, node_name: &str) -> Result<Endpoint, ApiError> {
    let addresses: Vec<(&str, &str)> = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| Some((x.get("type")?.as_str()?, x.get("address")?.as_str()?)))
                .filter(|(_, addr)| !addr.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let preferred = ["InternalIP", "ExternalIP", "InternalDNS", "ExternalDNS", "Hostname"];
    let host = preferred.iter().find_map(|ty| addresses.iter().find(|(t, _)| t == ty).map(|(_, a)| *a));
    let Some(host) = host else {
        let known: Vec<String> = addresses.iter().map(|(t, a)| format!("{{{t} {a}}}")).collect();
        return Err(ApiError::bad_request(format!(
            "node {node_name:?} has no address for its kubelet: no preferred addresses found; known addresses: [{}]",
            known.join(" ")
        )));
    };
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_i64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Ok(Endpoint { host: host.to_string(), port })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: &[&str], init: &[&str]) -> Value {
        let list =
            |names: &[&str]| names.iter().map(|n| json!({"name": n, "image": "busybox:1.36"})).collect::<Vec<_>>();
        json!({"spec": {"containers": list(containers), "initContainers": list(init)}})
    }

    #[test]
    fn containers_as_upstream_picks_them() {
        assert_eq!(container_of(&pod(&["app"], &["setup"]), "web", None).expect("only"), "app");
        assert_eq!(container_of(&pod(&["app"], &["setup"]), "web", Some("setup")).expect("init"), "setup");
        let e = container_of(&pod(&["app"], &[]), "web", Some("nope")).expect_err("unknown");
        assert_eq!((e.code, e.message.as_str()), (400, "container nope is not valid for pod web"));
        let e = container_of(&pod(&["a", "b"], &["setup"]), "web", None).expect_err("several");
        assert_eq!(e.message, "a container name must be specified for pod web, choose one of: [setup a b]");
        let e = container_of(&pod(&[], &[]), "web", None).expect_err("none");
        assert_eq!(e.message, "a container name must be specified for pod web");
    }

    #[test]
    fn endpoints_from_the_node_status() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 12345}}}});
        let ep = endpoint_of(&node, "n1").expect("endpoint");
        assert_eq!(ep, Endpoint { host: "127.0.0.1".into(), port: 12345 });
        assert_eq!(ep.authority(), "127.0.0.1:12345");
        let v6 = json!({"status": {"addresses": [{"type": "InternalIP", "address": "fd00::1"}]}});
        assert_eq!(endpoint_of(&v6, "n").expect("endpoint").authority(), "[fd00::1]:10250");
        let e = endpoint_of(&json!({"status": {}}), "n1").expect_err("no address");
        assert_eq!(e.code, 400);
        assert!(e.message.contains("no preferred addresses found; known addresses: []"), "{}", e.message);
    }
}
