//! The scheduler's view of the cluster: every node with the sum of what its pods request, the
//! host ports they hold and how many pods of each owner run there. Pods count from the moment
//! the scheduler decides (assumed, as upstream's cache) so decisions made while bindings are in
//! flight see each other; the watch confirms them, a failed binding forgets them.

use std::collections::HashMap;

use crate::host_ports::HostPort;
use crate::node_info::NodeProps;
use crate::pod_info::PodUsage;
use crate::resources::Resources;

/// A node and what is placed on it. A slot without `props` holds pods bound to a node the
/// scheduler has not seen (or that was deleted); it takes no new pods.
#[derive(Debug, Default)]
pub struct NodeInfo {
    pub name: String,
    pub props: Option<NodeProps>,
    /// Sum of the requests of the pods on the node; `pods` is their number.
    pub requested: Resources,
    pub non_zero_milli_cpu: i64,
    pub non_zero_memory: i64,
    pub ports: Vec<HostPort>,
}

impl NodeInfo {
    fn add(&mut self, u: &PodUsage) {
        self.requested.add(&u.requests.requests);
        self.non_zero_milli_cpu = self.non_zero_milli_cpu.saturating_add(u.requests.non_zero_milli_cpu);
        self.non_zero_memory = self.non_zero_memory.saturating_add(u.requests.non_zero_memory);
        self.ports.extend(u.ports.iter().cloned());
    }

    fn remove(&mut self, u: &PodUsage) {
        self.requested.sub(&u.requests.requests);
        self.non_zero_milli_cpu = self.non_zero_milli_cpu.saturating_sub(u.requests.non_zero_milli_cpu);
        self.non_zero_memory = self.non_zero_memory.saturating_sub(u.requests.non_zero_memory);
        for p in &u.ports {
            if let Some(i) = self.ports.iter().position(|x| x == p) {
                self.ports.swap_remove(i);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PodState {
    /// Placed by this scheduler; the binding is in flight (`bind_done` false) or done but not yet
    /// seen on the watch.
    Assumed { bind_done: bool },
    /// Seen bound on the watch.
    Bound,
}

#[derive(Debug)]
struct PodEntry {
    slot: usize,
    usage: PodUsage,
    state: PodState,
}

/// What a node update changed, to decide whether waiting pods deserve another try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeChange {
    Added,
    Changed,
    Unchanged,
}

#[derive(Debug, Default)]
pub struct Cache {
    slots: Vec<Option<NodeInfo>>,
    free: Vec<usize>,
    by_name: HashMap<String, usize>,
    pods: HashMap<String, PodEntry>,
    /// Owner UID → node slot → number of the owner's pods there.
    owners: HashMap<String, HashMap<usize, u32>>,
    node_count: usize,
}

impl Cache {
    /// All slots, indexed by slot number (some empty).
    pub fn slots(&self) -> &[Option<NodeInfo>] {
        &self.slots
    }

    /// Pods the cache counts (bound or assumed).
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// Nodes known from the API (slots with properties).
    pub fn node_count(&self) -> usize {
        self.node_count
    }

    pub fn node(&self, slot: usize) -> Option<&NodeInfo> {
        self.slots.get(slot).and_then(Option::as_ref)
    }

    /// How many pods of `owner` each node slot holds (slots without any are absent).
    pub fn owner_counts(&self, owner: &str) -> Option<&HashMap<usize, u32>> {
        self.owners.get(owner)
    }

    fn slot_for(&mut self, name: &str) -> usize {
        if let Some(&slot) = self.by_name.get(name) {
            return slot;
        }
        let info = NodeInfo { name: name.to_string(), ..Default::default() };
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s] = Some(info);
                s
            }
            None => {
                self.slots.push(Some(info));
                self.slots.len() - 1
            }
        };
        self.by_name.insert(name.to_string(), slot);
        slot
    }

    /// Frees the slot if it has neither a node nor pods.
    fn release_if_empty(&mut self, slot: usize) {
        let empty = self.node(slot).is_some_and(|n| n.props.is_none() && n.requested.pods <= 0);
        if empty {
            if let Some(info) = self.slots[slot].take() {
                self.by_name.remove(&info.name);
            }
            self.free.push(slot);
        }
    }

    /// Adds or updates a node.
    pub fn apply_node(&mut self, props: NodeProps) -> NodeChange {
        let slot = self.slot_for(&props.name);
        let Some(info) = self.slots[slot].as_mut() else { return NodeChange::Unchanged };
        let change = match &info.props {
            None => NodeChange::Added,
            Some(old) if *old == props => NodeChange::Unchanged,
            Some(old)
                if old.allocatable == props.allocatable
                    && old.labels == props.labels
                    && old.unschedulable == props.unschedulable
                    && old.ready == props.ready
                    && old.taints.len() == props.taints.len()
                    && old
                        .taints
                        .iter()
                        .zip(&props.taints)
                        .all(|(a, b)| a.key == b.key && a.value == b.value && a.effect == b.effect) =>
            {
                // Only timestamps moved: nothing a pod could newly fit on.
                NodeChange::Unchanged
            }
            Some(_) => NodeChange::Changed,
        };
        if change == NodeChange::Added {
            self.node_count += 1;
        }
        info.props = Some(props);
        change
    }

    /// Removes a node; pods still bound to it keep counting until they go.
    pub fn delete_node(&mut self, name: &str) {
        let Some(&slot) = self.by_name.get(name) else { return };
        if let Some(info) = self.slots[slot].as_mut() {
            if info.props.take().is_some() {
                self.node_count -= 1;
            }
        }
        self.release_if_empty(slot);
    }

    fn insert(&mut self, uid: String, slot: usize, usage: PodUsage, state: PodState) {
        if let Some(info) = self.slots[slot].as_mut() {
            info.add(&usage);
        }
        if let Some(owner) = &usage.owner {
            *self.owners.entry(owner.clone()).or_default().entry(slot).or_default() += 1;
        }
        self.pods.insert(uid, PodEntry { slot, usage, state });
    }

    /// Removes a pod from the node it counts on; whether it was counted.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        let Some(entry) = self.pods.remove(uid) else { return false };
        if let Some(info) = self.slots[entry.slot].as_mut() {
            info.remove(&entry.usage);
        }
        if let Some(owner) = &entry.usage.owner {
            if let Some(per_node) = self.owners.get_mut(owner) {
                if let Some(n) = per_node.get_mut(&entry.slot) {
                    *n -= 1;
                    if *n == 0 {
                        per_node.remove(&entry.slot);
                    }
                }
                if per_node.is_empty() {
                    self.owners.remove(owner);
                }
            }
        }
        self.release_if_empty(entry.slot);
        true
    }

    /// Records a pod seen bound to `node` on the watch (confirming an assumption, or a pod
    /// placed by someone else).
    pub fn add_bound(&mut self, uid: &str, node: &str, usage: PodUsage) {
        if let Some(e) = self.pods.get_mut(uid) {
            let same_node = self.slots[e.slot].as_ref().is_some_and(|n| n.name == node);
            if same_node && e.usage == usage {
                e.state = PodState::Bound;
                return;
            }
        }
        self.remove_pod(uid);
        let slot = self.slot_for(node);
        self.insert(uid.to_string(), slot, usage, PodState::Bound);
    }

    /// Counts a pod on the node in `slot` before its binding completes.
    pub fn assume(&mut self, uid: &str, slot: usize, usage: PodUsage) {
        self.remove_pod(uid);
        if self.node(slot).is_some() {
            self.insert(uid.to_string(), slot, usage, PodState::Assumed { bind_done: false });
        }
    }

    /// The binding of an assumed pod succeeded; the watch will confirm it.
    pub fn bind_done(&mut self, uid: &str) {
        if let Some(e) = self.pods.get_mut(uid) {
            if e.state == (PodState::Assumed { bind_done: false }) {
                e.state = PodState::Assumed { bind_done: true };
            }
        }
    }

    /// The binding of an assumed pod failed: it no longer counts.
    pub fn forget(&mut self, uid: &str) {
        if matches!(self.pods.get(uid), Some(e) if matches!(e.state, PodState::Assumed { .. })) {
            self.remove_pod(uid);
        }
    }

    /// Whether the pod is assumed (placed, not yet seen bound).
    pub fn is_assumed(&self, uid: &str) -> bool {
        matches!(self.pods.get(uid), Some(e) if matches!(e.state, PodState::Assumed { .. }))
    }

    /// Whether the pod counts on some node.
    pub fn contains_pod(&self, uid: &str) -> bool {
        self.pods.contains_key(uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::PodRequests;

    fn node(name: &str, cpu: i64) -> NodeProps {
        NodeProps {
            name: name.into(),
            allocatable: Resources { milli_cpu: cpu, pods: 110, ..Default::default() },
            ready: true,
            ..Default::default()
        }
    }

    fn usage(cpu: i64, owner: Option<&str>) -> PodUsage {
        PodUsage {
            requests: PodRequests {
                requests: Resources { milli_cpu: cpu, pods: 1, ..Default::default() },
                non_zero_milli_cpu: cpu,
                non_zero_memory: 0,
            },
            ports: vec![HostPort { ip: "0.0.0.0".into(), protocol: "TCP".into(), port: 80 }],
            owner: owner.map(String::from),
        }
    }

    fn slot(c: &Cache, name: &str) -> usize {
        c.by_name[name]
    }

    #[test]
    fn assume_confirm_forget() {
        let mut c = Cache::default();
        assert_eq!(c.apply_node(node("a", 1000)), NodeChange::Added);
        assert_eq!(c.apply_node(node("a", 1000)), NodeChange::Unchanged);
        assert_eq!(c.apply_node(node("a", 2000)), NodeChange::Changed);
        let a = slot(&c, "a");
        c.assume("p1", a, usage(300, Some("rs")));
        assert!(c.is_assumed("p1"));
        assert_eq!(c.node(a).map(|n| n.requested.milli_cpu), Some(300));
        assert_eq!(c.owner_counts("rs").and_then(|m| m.get(&a)).copied(), Some(1));
        c.bind_done("p1");
        c.add_bound("p1", "a", usage(300, Some("rs")));
        assert!(!c.is_assumed("p1"));
        assert_eq!(c.node(a).map(|n| (n.requested.milli_cpu, n.requested.pods, n.ports.len())), Some((300, 1, 1)));
        // Forgetting a confirmed pod does nothing.
        c.forget("p1");
        assert!(c.contains_pod("p1"));
        c.assume("p2", a, usage(200, Some("rs")));
        c.forget("p2");
        assert_eq!(c.node(a).map(|n| n.requested.milli_cpu), Some(300));
        assert!(c.remove_pod("p1"));
        assert_eq!(c.node(a).map(|n| (n.requested.milli_cpu, n.requested.pods, n.ports.len())), Some((0, 0, 0)));
        assert!(c.owner_counts("rs").is_none());
    }

    #[test]
    fn pods_on_unknown_and_deleted_nodes() {
        let mut c = Cache::default();
        c.add_bound("p1", "ghost", usage(100, None));
        assert_eq!(c.node_count(), 0);
        assert_eq!(c.apply_node(node("ghost", 1000)), NodeChange::Added);
        let g = slot(&c, "ghost");
        assert_eq!(c.node(g).map(|n| n.requested.milli_cpu), Some(100));
        c.delete_node("ghost");
        assert_eq!(c.node_count(), 0);
        // The slot stays while a pod is bound there, and is freed with the last pod.
        assert!(c.node(g).is_some());
        c.remove_pod("p1");
        assert!(c.node(g).is_none());
        c.apply_node(node("b", 1000));
        assert_eq!(slot(&c, "b"), g, "freed slots are reused");
    }

    #[test]
    fn moved_and_removed() {
        let mut c = Cache::default();
        c.apply_node(node("a", 1000));
        c.apply_node(node("b", 1000));
        let (a, b) = (slot(&c, "a"), slot(&c, "b"));
        c.assume("p1", a, usage(100, None));
        // Someone else bound it elsewhere.
        c.add_bound("p1", "b", usage(100, None));
        assert_eq!(c.node(a).map(|n| n.requested.pods), Some(0));
        assert_eq!(c.node(b).map(|n| n.requested.pods), Some(1));
        assert!(c.remove_pod("p1"));
        assert!(!c.contains_pod("p1"));
        c.delete_node("b");
        assert_eq!(c.node_count(), 1);
    }
}
