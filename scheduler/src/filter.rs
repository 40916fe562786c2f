//! Filters: can this pod run on this node? In upstream's plugin order (NodeUnschedulable,
//! TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit) behind a Ready check; the first
//! failing filter gives the node's reasons, as upstream stops at the first rejecting plugin.

use std::fmt;

use crate::cache::NodeInfo;
use crate::host_ports::any_conflict;
use crate::node_affinity::{matches_node_selector, matches_required};
use crate::node_info::NodeProps;
use crate::pod_info::Needs;
use crate::taints::{tolerated, untolerated, NOT_READY_TAINT, UNSCHEDULABLE_TAINT};

/// Why a node cannot take a pod; displayed as upstream words it in `FailedScheduling` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason<'a> {
    NotReady,
    Unschedulable,
    Taint { key: &'a str, value: &'a str },
    NodeAffinity,
    Ports,
    TooManyPods,
    Insufficient(&'a str),
}

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotReady => f.write_str("node(s) were not ready"),
            Reason::Unschedulable => f.write_str("node(s) were unschedulable"),
            Reason::Taint { key, value } => write!(f, "node(s) had untolerated taint {{{key}: {value}}}"),
            Reason::NodeAffinity => f.write_str("node(s) didn't match Pod's node affinity/selector"),
            Reason::Ports => f.write_str("node(s) didn't have free ports for the requested pod ports"),
            Reason::TooManyPods => f.write_str("Too many pods"),
            Reason::Insufficient(name) => write!(f, "Insufficient {name}"),
        }
    }
}

/// Whether the pod fits the node; if not, the reasons are appended to `reasons`.
pub fn fits<'a>(needs: &'a Needs, node: &'a NodeInfo, props: &'a NodeProps, reasons: &mut Vec<Reason<'a>>) -> bool {
    let start = reasons.len();
    if let Some(r) = first_rejection(needs, node, props) {
        reasons.push(r);
        return false;
    }
    fit_resources(needs, node, props, reasons);
    reasons.len() == start
}

fn first_rejection<'a>(needs: &Needs, node: &'a NodeInfo, props: &'a NodeProps) -> Option<Reason<'a>> {
    if !props.ready && !tolerated(&needs.tolerations, NOT_READY_TAINT, "", "NoSchedule") {
        return Some(Reason::NotReady);
    }
    if props.unschedulable && !tolerated(&needs.tolerations, UNSCHEDULABLE_TAINT, "", "NoSchedule") {
        return Some(Reason::Unschedulable);
    }
    if let Some(t) = untolerated(&props.taints, &needs.tolerations) {
        return Some(Reason::Taint { key: &t.key, value: t.value.as_deref().unwrap_or("") });
    }
    if !matches_node_selector(&needs.node_selector, &props.labels)
        || needs.required.as_ref().is_some_and(|r| !matches_required(r, &props.name, &props.labels))
    {
        return Some(Reason::NodeAffinity);
    }
    if !needs.usage.ports.is_empty() && any_conflict(&needs.usage.ports, &node.ports) {
        return Some(Reason::Ports);
    }
    None
}

/// Upstream's `fitsRequest`: the pod count, then each requested resource against what is left.
fn fit_resources<'a>(needs: &'a Needs, node: &'a NodeInfo, props: &'a NodeProps, reasons: &mut Vec<Reason<'a>>) {
    let want = &needs.usage.requests.requests;
    let alloc = &props.allocatable;
    let used = &node.requested;
    if used.pods + 1 > alloc.pods {
        reasons.push(Reason::TooManyPods);
    }
    if want.milli_cpu > 0 && want.milli_cpu > alloc.milli_cpu - used.milli_cpu {
        reasons.push(Reason::Insufficient("cpu"));
    }
    if want.memory > 0 && want.memory > alloc.memory - used.memory {
        reasons.push(Reason::Insufficient("memory"));
    }
    if want.ephemeral_storage > 0 && want.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage {
        reasons.push(Reason::Insufficient("ephemeral-storage"));
    }
    for (name, v) in &want.scalars {
        if *v > 0 && *v > alloc.scalar(name) - used.scalar(name) {
            reasons.push(Reason::Insufficient(name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_ports::HostPort;
    use crate::resources::Resources;
    use k8s_openapi::api::core::v1::{NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Taint, Toleration};

    const GI: i64 = 1 << 30;

    fn node() -> (NodeInfo, NodeProps) {
        let props = NodeProps {
            name: "n1".into(),
            allocatable: Resources {
                milli_cpu: 4000,
                memory: 8 * GI,
                ephemeral_storage: 10 * GI,
                pods: 110,
                scalars: vec![("example.com/gpu".into(), 2)],
            },
            labels: [("disk".to_string(), "ssd".to_string())].into_iter().collect(),
            ready: true,
            ..Default::default()
        };
        let info = NodeInfo {
            name: "n1".into(),
            requested: Resources { milli_cpu: 3000, memory: 2 * GI, pods: 10, ..Default::default() },
            ports: vec![HostPort { ip: "0.0.0.0".into(), protocol: "TCP".into(), port: 80 }],
            ..Default::default()
        };
        (info, props)
    }

    fn toleration(key: &str, effect: &str) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Default::default()
        }
    }

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint { key: key.into(), value: Some(value.into()), effect: effect.into(), time_added: None }
    }

    fn affinity(key: &str, op: &str, values: &[&str]) -> NodeSelector {
        NodeSelector {
            node_selector_terms: vec![NodeSelectorTerm {
                match_expressions: Some(vec![NodeSelectorRequirement {
                    key: key.into(),
                    operator: op.into(),
                    values: Some(values.iter().map(|v| v.to_string()).collect()),
                }]),
                match_fields: None,
            }],
        }
    }

    type Tweak = fn(&mut Needs, &mut NodeInfo, &mut NodeProps);

    #[test]
    fn filters() {
        let cases: Vec<(&str, Tweak, &[&str])> = vec![
            ("fits", |_, _, _| {}, &[]),
            ("cpu within what is left", |p, _, _| p.usage.requests.requests.milli_cpu = 1000, &[]),
            ("insufficient cpu", |p, _, _| p.usage.requests.requests.milli_cpu = 1001, &["Insufficient cpu"]),
            (
                "insufficient cpu and memory",
                |p, _, _| {
                    p.usage.requests.requests.milli_cpu = 2000;
                    p.usage.requests.requests.memory = 7 * GI;
                },
                &["Insufficient cpu", "Insufficient memory"],
            ),
            (
                "insufficient ephemeral storage",
                |p, _, _| p.usage.requests.requests.ephemeral_storage = 11 * GI,
                &["Insufficient ephemeral-storage"],
            ),
            (
                "extended resource",
                |p, _, _| p.usage.requests.requests.scalars = vec![("example.com/gpu".into(), 3)],
                &["Insufficient example.com/gpu"],
            ),
            (
                "extended resource the node lacks",
                |p, _, _| p.usage.requests.requests.scalars = vec![("example.com/fpga".into(), 1)],
                &["Insufficient example.com/fpga"],
            ),
            ("too many pods", |_, n, _| n.requested.pods = 110, &["Too many pods"]),
            ("not ready", |_, _, props| props.ready = false, &["node(s) were not ready"]),
            (
                "not ready tolerated",
                |p, _, props| {
                    props.ready = false;
                    p.tolerations = vec![toleration(NOT_READY_TAINT, "NoSchedule")];
                },
                &[],
            ),
            ("unschedulable", |_, _, props| props.unschedulable = true, &["node(s) were unschedulable"]),
            (
                "unschedulable tolerated",
                |p, _, props| {
                    props.unschedulable = true;
                    p.tolerations = vec![toleration(UNSCHEDULABLE_TAINT, "")];
                },
                &[],
            ),
            (
                "NoSchedule taint",
                |_, _, props| props.taints = vec![taint("dedicated", "db", "NoSchedule")],
                &["node(s) had untolerated taint {dedicated: db}"],
            ),
            (
                "NoExecute taint",
                |_, _, props| props.taints = vec![taint("dedicated", "db", "NoExecute")],
                &["node(s) had untolerated taint {dedicated: db}"],
            ),
            (
                "PreferNoSchedule taint does not filter",
                |_, _, props| props.taints = vec![taint("soft", "", "PreferNoSchedule")],
                &[],
            ),
            (
                "taint tolerated",
                |p, _, props| {
                    props.taints = vec![taint("dedicated", "db", "NoSchedule")];
                    p.tolerations = vec![toleration("dedicated", "NoSchedule")];
                },
                &[],
            ),
            ("nodeSelector matches", |p, _, _| p.node_selector = vec![("disk".into(), "ssd".into())], &[]),
            (
                "nodeSelector mismatch",
                |p, _, _| p.node_selector = vec![("disk".into(), "hdd".into())],
                &["node(s) didn't match Pod's node affinity/selector"],
            ),
            ("required affinity matches", |p, _, _| p.required = Some(affinity("disk", "In", &["ssd", "nvme"])), &[]),
            (
                "required affinity mismatch",
                |p, _, _| p.required = Some(affinity("disk", "NotIn", &["ssd"])),
                &["node(s) didn't match Pod's node affinity/selector"],
            ),
            (
                "host port taken",
                |p, _, _| p.usage.ports = vec![HostPort { ip: "10.0.0.1".into(), protocol: "TCP".into(), port: 80 }],
                &["node(s) didn't have free ports for the requested pod ports"],
            ),
            (
                "host port free for another protocol",
                |p, _, _| p.usage.ports = vec![HostPort { ip: "0.0.0.0".into(), protocol: "UDP".into(), port: 80 }],
                &[],
            ),
            (
                "the first rejecting filter wins",
                |p, _, props| {
                    props.unschedulable = true;
                    p.node_selector = vec![("disk".into(), "hdd".into())];
                    p.usage.requests.requests.milli_cpu = 9000;
                },
                &["node(s) were unschedulable"],
            ),
        ];
        for (name, tweak, want) in cases {
            let (mut info, mut props) = node();
            let mut needs = Needs::default();
            needs.usage.requests.requests.pods = 1;
            tweak(&mut needs, &mut info, &mut props);
            let mut reasons = Vec::new();
            let ok = fits(&needs, &info, &props, &mut reasons);
            let got: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
            assert_eq!(got, want, "{name}");
            assert_eq!(ok, want.is_empty(), "{name}");
        }
    }
}
