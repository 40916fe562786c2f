//! Packing a Service's endpoints into slices with as few writes as possible (upstream
//! `reconcileByPortMapping` and `finalize`): endpoints stay in the slice they are in, slices
//! that change anyway are filled first, leftovers go into the existing slice they fill best or
//! into new slices, emptied slices are deleted — or reused for what would otherwise be created.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};

use super::desired::{endpoint_key, ports_key, EndpointKey, PortsKey};

/// The endpoints that should exist for one set of resolved ports.
#[derive(Debug, Clone, Default)]
pub struct Group {
    pub ports: Vec<EndpointPort>,
    pub endpoints: BTreeMap<EndpointKey, Endpoint>,
}

/// The writes that bring the slices of one address type to the desired state.
#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<EndpointSlice>,
}

/// How slices are made and labelled (the parts that depend on the Service).
pub trait SliceTemplate {
    /// A new, unnamed slice for these ports.
    fn new_slice(&self, ports: &[EndpointPort]) -> EndpointSlice;
    /// The labels `slice` should carry, and whether they differ from what it has.
    fn labels(&self, slice: &EndpointSlice) -> (BTreeMap<String, String>, bool);
}

/// Plans the writes for `existing` (the Service's own slices of one address type, any order)
/// given the desired endpoints grouped by ports.
pub fn plan(
    existing: &[EndpointSlice],
    mut desired: BTreeMap<PortsKey, Group>,
    template: &impl SliceTemplate,
    max_per_slice: usize,
) -> Plan {
    let mut existing: Vec<&EndpointSlice> = existing.iter().collect();
    existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut by_ports: BTreeMap<PortsKey, Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in &existing {
        by_ports.entry(ports_key(slice.ports.as_deref().unwrap_or_default())).or_default().push(slice);
    }
    let mut plan = Plan::default();
    for (key, slices) in &by_ports {
        if !desired.contains_key(key) {
            plan.delete.extend(slices.iter().map(|s| (*s).clone()));
        }
    }
    for (key, group) in desired.iter_mut() {
        let slices = by_ports.get(key).map(Vec::as_slice).unwrap_or_default();
        let part = plan_group(slices, group, template, max_per_slice);
        plan.create.extend(part.create);
        plan.update.extend(part.update);
        plan.delete.extend(part.delete);
    }
    // A Service with no endpoints keeps exactly one empty placeholder slice.
    if existing.len() == plan.delete.len() && plan.create.is_empty() {
        let placeholder = template.new_slice(&[]);
        if plan.delete.len() == 1 && is_placeholder(&plan.delete[0], &placeholder) {
            plan.delete.clear();
        } else {
            plan.create.push(placeholder);
        }
    }
    reuse_deleted(&mut plan);
    plan
}

fn plan_group(slices: &[&EndpointSlice], group: &mut Group, template: &impl SliceTemplate, max: usize) -> Plan {
    let mut by_name: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut unchanged = BTreeSet::new();
    let mut to_update = BTreeSet::new();
    let mut plan = Plan::default();
    // 1. Keep the endpoints still wanted where they are, refreshed; drop the rest.
    for slice in slices {
        let name = slice.metadata.name.clone().unwrap_or_default();
        let mut kept = Vec::new();
        let mut refreshed = false;
        for ep in &slice.endpoints {
            if let Some(want) = group.endpoints.remove(&endpoint_key(ep)) {
                refreshed |= want != *ep;
                kept.push(want);
            }
        }
        let (labels, labels_changed) = template.labels(slice);
        if refreshed || kept.len() != slice.endpoints.len() {
            if kept.is_empty() {
                plan.delete.push((*slice).clone());
                continue;
            }
            let mut s = (*slice).clone();
            s.endpoints = kept;
            s.metadata.labels = Some(labels);
            to_update.insert(name.clone());
            by_name.insert(name, s);
        } else if labels_changed {
            let mut s = (*slice).clone();
            s.metadata.labels = Some(labels);
            to_update.insert(name.clone());
            by_name.insert(name, s);
        } else {
            unchanged.insert(name.clone());
            by_name.insert(name, (*slice).clone());
        }
    }
    let mut remaining = std::mem::take(&mut group.endpoints).into_values();
    let mut left = remaining.len();
    let mut fill = |slice: &mut EndpointSlice, left: &mut usize| {
        while slice.endpoints.len() < max {
            let Some(ep) = remaining.next() else { break };
            slice.endpoints.push(ep);
            *left -= 1;
        }
    };
    // 2. Fill the slices that are written anyway, fullest first.
    let mut updating: Vec<String> = to_update.iter().cloned().collect();
    updating.sort_by_key(|n| std::cmp::Reverse(by_name.get(n).map_or(0, |s| s.endpoints.len())));
    for name in updating {
        if let Some(slice) = by_name.get_mut(&name) {
            fill(slice, &mut left);
        }
    }
    // 3. Put what is left into the unchanged slice it fits best, or into new slices.
    while left > 0 {
        let target = (left < max).then(|| best_fit(&unchanged, &by_name, left, max)).flatten();
        match target.and_then(|name| by_name.get_mut(&name).map(|s| (name, s))) {
            Some((name, slice)) => {
                fill(slice, &mut left);
                unchanged.remove(&name);
                to_update.insert(name);
            }
            None => {
                let mut slice = template.new_slice(&group.ports);
                fill(&mut slice, &mut left);
                plan.create.push(slice);
            }
        }
    }
    plan.update = to_update.iter().filter_map(|n| by_name.remove(n)).collect();
    plan
}

/// Upstream `getSliceToFill`: the unchanged slice that ends up closest to full.
fn best_fit(
    names: &BTreeSet<String>,
    slices: &BTreeMap<String, EndpointSlice>,
    n: usize,
    max: usize,
) -> Option<String> {
    names
        .iter()
        .filter_map(|name| Some((name, slices.get(name)?.endpoints.len())))
        .filter(|(_, len)| len + n <= max)
        .min_by_key(|(_, len)| max - (len + n))
        .map(|(name, _)| name.clone())
}

fn is_placeholder(slice: &EndpointSlice, placeholder: &EndpointSlice) -> bool {
    slice.endpoints.is_empty()
        && slice.ports.as_deref().unwrap_or_default().is_empty()
        && slice.metadata.labels == placeholder.metadata.labels
        && slice.metadata.owner_references == placeholder.metadata.owner_references
}

/// Upstream `finalize`: a slice about to be created takes the place of one about to be deleted
/// (same address type) — an update instead of a create and a delete.
fn reuse_deleted(plan: &mut Plan) {
    let mut kept = Vec::new();
    for old in std::mem::take(&mut plan.delete) {
        let reusable = plan.create.last().is_some_and(|new| new.address_type == old.address_type);
        match if reusable { plan.create.pop() } else { None } {
            Some(mut new) => {
                new.metadata.name = old.metadata.name.clone();
                new.metadata.generate_name = None;
                new.metadata.resource_version = old.metadata.resource_version.clone();
                new.metadata.uid = old.metadata.uid.clone();
                new.metadata.annotations = old.metadata.annotations.clone();
                plan.update.push(new);
            }
            None => kept.push(old),
        }
    }
    plan.delete = kept;
}

#[cfg(test)]
mod tests;
