//! What to do with a dependent given the state of its owners (upstream `attemptToDeleteItem`).

use kube::api::PropagationPolicy;

use super::graph::{Item, FOREGROUND, ORPHAN};

/// An owner as seen (from the graph, or live when the graph does not have it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// Not found, or found with another uid.
    Absent,
    /// Exists and is not waiting for its dependents.
    Solid,
    /// Being deleted in the foreground (`foregroundDeletion` finalizer and a deletionTimestamp).
    Waiting,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Keep,
    /// Some owner still exists: drop the references to absent owners and stop blocking the owners
    /// being deleted in the foreground (this object will not go, so they must not wait for it).
    FixReferences {
        dangling: Vec<String>,
        unblock: Vec<String>,
    },
    /// No owner exists any more. `unblock_first`: a dependent is itself waiting for its dependents,
    /// so this object's references are made non-blocking first to break a possible cycle.
    Delete {
        policy: PropagationPolicy,
        unblock_first: bool,
    },
}

/// Decides for `item`, whose owner references are `owners` (uid, state).
/// `dependents` are the graph nodes that name `item` as an owner.
pub fn decide(item: &Item, owners: &[(String, OwnerState)], dependents: &[Item]) -> Decision {
    let of = |s: OwnerState| owners.iter().filter(|(_, o)| *o == s).map(|(u, _)| u.clone()).collect::<Vec<_>>();
    let (solid, dangling, waiting) = (of(OwnerState::Solid), of(OwnerState::Absent), of(OwnerState::Waiting));
    if owners.is_empty() {
        return Decision::Keep;
    }
    if !solid.is_empty() {
        if dangling.is_empty() && waiting.is_empty() {
            return Decision::Keep;
        }
        return Decision::FixReferences { dangling, unblock: waiting };
    }
    if !waiting.is_empty() && !dependents.is_empty() {
        let unblock_first = dependents.iter().any(Item::deleting_dependents);
        return Decision::Delete { policy: PropagationPolicy::Foreground, unblock_first };
    }
    let policy = if item.has_finalizer(ORPHAN) {
        PropagationPolicy::Orphan
    } else if item.has_finalizer(FOREGROUND) {
        PropagationPolicy::Foreground
    } else {
        PropagationPolicy::Background
    };
    Decision::Delete { policy, unblock_first: false }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::garbage_collector::graph::Kind;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn item(name: &str, finalizers: &[&str], deleting: bool) -> Item {
        let meta = ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            uid: Some(format!("uid-{name}")),
            finalizers: Some(finalizers.iter().map(|s| s.to_string()).collect()),
            deletion_timestamp: deleting.then(|| Time(jiff::Timestamp::now())),
            ..Default::default()
        };
        Item::new(Kind::Pod, &meta).unwrap()
    }

    fn owners(states: &[(&str, OwnerState)]) -> Vec<(String, OwnerState)> {
        states.iter().map(|(u, s)| (u.to_string(), *s)).collect()
    }

    fn policy(p: Decision) -> Option<(String, bool)> {
        match p {
            Decision::Delete { policy, unblock_first } => Some((format!("{policy:?}"), unblock_first)),
            _ => None,
        }
    }

    #[test]
    fn decisions() {
        use OwnerState::*;
        let plain = item("p", &[], false);
        assert_eq!(decide(&plain, &[], &[]), Decision::Keep);
        assert_eq!(decide(&plain, &owners(&[("a", Solid)]), &[]), Decision::Keep);
        assert_eq!(
            decide(&plain, &owners(&[("a", Solid), ("b", Absent), ("c", Waiting)]), &[]),
            Decision::FixReferences { dangling: vec!["b".into()], unblock: vec!["c".into()] }
        );
        assert_eq!(policy(decide(&plain, &owners(&[("a", Absent)]), &[])), Some(("Background".into(), false)));
        // Owner waits, item has no dependents: plain delete.
        assert_eq!(policy(decide(&plain, &owners(&[("a", Waiting)]), &[])), Some(("Background".into(), false)));
        // Owner waits, item has dependents: foreground, so the owner waits for the whole tree.
        let child = item("c", &[], false);
        assert_eq!(
            policy(decide(&plain, &owners(&[("a", Waiting)]), std::slice::from_ref(&child))),
            Some(("Foreground".into(), false))
        );
        let waiting_child = item("w", &[FOREGROUND], true);
        assert_eq!(
            policy(decide(&plain, &owners(&[("a", Waiting), ("b", Absent)]), &[waiting_child])),
            Some(("Foreground".into(), true))
        );
        // Existing finalizers on the item choose the policy.
        let orphaning = item("o", &[ORPHAN], false);
        assert_eq!(policy(decide(&orphaning, &owners(&[("a", Absent)]), &[])), Some(("Orphan".into(), false)));
        let fg = item("f", &[FOREGROUND], false);
        assert_eq!(policy(decide(&fg, &owners(&[("a", Absent)]), &[])), Some(("Foreground".into(), false)));
    }
}
