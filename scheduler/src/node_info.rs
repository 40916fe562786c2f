//! What the scheduler keeps of a Node object: allocatable resources, labels, taints and whether
//! it takes pods at all.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Taint};

use crate::resources::Resources;

/// The scheduling-relevant properties of a node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeProps {
    pub name: String,
    pub allocatable: Resources,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    /// The Ready condition is True.
    pub ready: bool,
}

impl NodeProps {
    pub fn from_node(node: &Node) -> Self {
        let status = node.status.as_ref();
        NodeProps {
            name: node.metadata.name.clone().unwrap_or_default(),
            allocatable: status
                .and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()))
                .map(Resources::from_map)
                .unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            taints: node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default(),
            unschedulable: node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false),
            ready: status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
                .is_some_and(|c| c.status == "True"),
        }
    }
}
