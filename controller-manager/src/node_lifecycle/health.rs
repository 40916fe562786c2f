//! Heartbeat tracking (upstream `tryUpdateNodeHealth`). A node is alive while its Lease's
//! `renewTime` or its Ready condition's `lastHeartbeatTime` keeps changing; what counts is when
//! this controller saw the change (its own monotonic clock), so clock skew between node and
//! controller does not matter.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The conditions set to Unknown when heartbeats stop (NetworkUnavailable is not the kubelet's).
const KUBELET_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

#[derive(Debug, Clone, PartialEq)]
struct Seen {
    uid: Option<String>,
    ready_heartbeat: Option<Time>,
    lease_renew: Option<String>,
}

#[derive(Debug)]
struct Health {
    seen: Seen,
    probe: Instant,
    /// The Ready status at the last reconcile, to report a transition once.
    ready: Option<String>,
}

/// Heartbeats observed per node name.
#[derive(Debug, Default)]
pub struct HealthMap {
    nodes: HashMap<String, Health>,
}

/// What [`HealthMap::observe`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// How long since the last heartbeat was seen.
    pub silent_for: Duration,
}

impl HealthMap {
    /// Records the node's current heartbeats as seen at `now` and says how long it has been silent.
    /// A node seen for the first time (or recreated) gets a full grace period.
    pub fn observe(&mut self, node: &Node, lease: Option<&Lease>, now: Instant) -> Observation {
        let name = node.metadata.name.clone().unwrap_or_default();
        let seen = Seen {
            uid: node.metadata.uid.clone(),
            ready_heartbeat: ready_condition(node).and_then(|c| c.last_heartbeat_time.clone()),
            lease_renew: lease
                .and_then(|l| l.spec.as_ref())
                .and_then(|s| s.renew_time.as_ref())
                .map(|t| t.0.to_string()),
        };
        let health = self.nodes.entry(name).or_insert_with(|| Health { seen: seen.clone(), probe: now, ready: None });
        if health.seen != seen {
            health.seen = seen;
            health.probe = now;
        }
        Observation { silent_for: now.saturating_duration_since(health.probe) }
    }

    /// Records the Ready status; true when it just went from "True" to something else.
    pub fn ready_transition(&mut self, node_name: &str, ready: Option<&str>) -> bool {
        let Some(health) = self.nodes.get_mut(node_name) else { return false };
        let was_ready = health.ready.as_deref() == Some("True");
        health.ready = ready.map(String::from);
        was_ready && ready != Some("True")
    }

    /// Forgets nodes no longer in the cache (`cached` of them are), when some are gone.
    pub fn retain(&mut self, cached: usize, mut keep: impl FnMut(&str) -> bool) {
        if self.nodes.len() > cached {
            self.nodes.retain(|name, _| keep(name));
        }
    }
}

pub fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")
}

/// Sets the kubelet's conditions to Unknown (adding those it never posted), as upstream does when
/// the grace period has passed. Returns whether anything changed.
pub fn mark_unknown(node: &mut Node, now: jiff::Timestamp) -> bool {
    let created = node.metadata.creation_timestamp.clone();
    let status = node.status.get_or_insert_with(Default::default);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let mut changed = false;
    for type_ in KUBELET_CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            None => {
                conditions.push(NodeCondition {
                    type_: type_.to_string(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: created.clone(),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
            Some(c) if c.status != "Unknown" => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(Time(now));
                changed = true;
            }
            Some(_) => {}
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::api::core::v1::NodeStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};

    fn node(heartbeat: i64, ready: &str) -> Node {
        Node {
            metadata: ObjectMeta { name: Some("n1".into()), uid: Some("u1".into()), ..Default::default() },
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: ready.into(),
                    last_heartbeat_time: Some(Time(jiff::Timestamp::from_second(heartbeat).unwrap())),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn lease(renew: i64) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                renew_time: Some(MicroTime(jiff::Timestamp::from_second(renew).unwrap())),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn silence_counts_from_the_last_change_seen() {
        let mut map = HealthMap::default();
        let t0 = Instant::now();
        let s = |d: u64| t0 + Duration::from_secs(d);
        assert_eq!(map.observe(&node(1, "True"), Some(&lease(1)), t0).silent_for, Duration::ZERO);
        // Nothing renewed.
        assert_eq!(map.observe(&node(1, "True"), Some(&lease(1)), s(3)).silent_for, Duration::from_secs(3));
        // The lease renews: silence resets.
        assert_eq!(map.observe(&node(1, "True"), Some(&lease(2)), s(4)).silent_for, Duration::ZERO);
        assert_eq!(map.observe(&node(1, "True"), Some(&lease(2)), s(10)).silent_for, Duration::from_secs(6));
        // Our own Unknown write does not touch the heartbeat: still silent.
        assert_eq!(map.observe(&node(1, "Unknown"), Some(&lease(2)), s(11)).silent_for, Duration::from_secs(7));
        // A status heartbeat alone also counts.
        assert_eq!(map.observe(&node(5, "True"), Some(&lease(2)), s(12)).silent_for, Duration::ZERO);
    }

    #[test]
    fn ready_transitions_are_reported_once() {
        let mut map = HealthMap::default();
        map.observe(&node(1, "True"), None, Instant::now());
        assert!(!map.ready_transition("n1", Some("True")));
        assert!(map.ready_transition("n1", Some("Unknown")));
        assert!(!map.ready_transition("n1", Some("Unknown")));
        assert!(!map.ready_transition("n1", Some("True")));
        assert!(map.ready_transition("n1", Some("False")));
        assert!(!map.ready_transition("other", Some("False")));
    }

    #[test]
    fn marks_kubelet_conditions_unknown() {
        let now = jiff::Timestamp::from_second(100).unwrap();
        let mut n = node(1, "True");
        assert!(mark_unknown(&mut n, now));
        let conds = n.status.as_ref().and_then(|s| s.conditions.clone()).unwrap();
        assert_eq!(conds.len(), 4);
        let ready = &conds[0];
        assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("Unknown", Some("NodeStatusUnknown")));
        assert_eq!(ready.message.as_deref(), Some("Kubelet stopped posting node status."));
        assert_eq!(ready.last_heartbeat_time, Some(Time(jiff::Timestamp::from_second(1).unwrap())));
        assert!(conds[1..]
            .iter()
            .all(|c| c.status == "Unknown" && c.reason.as_deref() == Some("NodeStatusNeverUpdated")));
        assert!(!mark_unknown(&mut n, now));
    }
}
