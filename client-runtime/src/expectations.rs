//! Upstream's `ControllerExpectations` (with `UIDTrackingControllerExpectations`' deletion keys),
//! the one guard every controller that creates or deletes children uses: a controller
//! **raises** its expectations before it creates or deletes, its informer handlers **lower** them
//! as each add or delete is observed, and it never manages children of an owner whose
//! expectations are unsatisfied — its cache may not show its own writes yet, and acting on it
//! would create or delete twice. Expectations expire after [`TIMEOUT`], so a lost event cannot
//! wedge an owner forever.
//!
//! Keys are the owner's `namespace/name` (as upstream's `KeyFunc`); deletions are tracked by
//! the child's key, so that an update setting the deletionTimestamp and the later delete event
//! lower the count once.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::Resource;

use crate::informers::Change;

/// As upstream's `ExpectationsTimeout`.
pub const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Record {
    adds: i64,
    dels: i64,
    deleting: HashSet<String>,
    at: Instant,
}

impl Record {
    fn empty() -> Self {
        Record { adds: 0, dels: 0, deleting: HashSet::new(), at: Instant::now() }
    }
}

#[derive(Debug, Default)]
pub struct Expectations {
    records: Mutex<HashMap<String, Record>>,
}

impl Expectations {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Record>) -> R) -> R {
        f(&mut self.records.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether the controller may act on `key`: nothing is awaited, or what was awaited expired.
    pub fn satisfied(&self, key: &str) -> bool {
        self.with(|m| match m.get(key) {
            None => true,
            Some(r) if r.adds <= 0 && r.dels <= 0 => true,
            Some(r) if r.at.elapsed() > TIMEOUT => {
                tracing::info!(
                    owner = key,
                    adds = r.adds,
                    dels = r.dels,
                    "expectations expired; acting on the cache as it is"
                );
                true
            }
            Some(_) => false,
        })
    }

    /// Expects `n` creations for `key` (replacing what was expected before).
    pub fn expect_creations(&self, key: &str, n: usize) {
        let adds = i64::try_from(n).unwrap_or(i64::MAX);
        self.with(|m| {
            m.insert(key.to_string(), Record { adds, dels: 0, deleting: HashSet::new(), at: Instant::now() })
        });
    }

    /// Expects the deletion of these children (by key) for `key` (replacing what was expected).
    pub fn expect_deletions(&self, key: &str, children: impl IntoIterator<Item = String>) {
        let deleting: HashSet<String> = children.into_iter().collect();
        let dels = i64::try_from(deleting.len()).unwrap_or(i64::MAX);
        self.with(|m| m.insert(key.to_string(), Record { adds: 0, dels, deleting, at: Instant::now() }));
    }

    /// Adds `n` expected creations to what `key` already awaits (upstream `RaiseExpectations`),
    /// for a controller that writes in several steps of one sync.
    pub fn raise_creations(&self, key: &str, n: usize) {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.with(|m| {
            let r = m.entry(key.to_string()).or_insert_with(Record::empty);
            r.adds = r.adds.max(0).saturating_add(n);
            r.at = Instant::now();
        });
    }

    /// Adds expected deletions (by child key) to what `key` already awaits.
    pub fn raise_deletions(&self, key: &str, children: impl IntoIterator<Item = String>) {
        self.with(|m| {
            let r = m.entry(key.to_string()).or_insert_with(Record::empty);
            for child in children {
                if r.deleting.insert(child) {
                    r.dels = r.dels.max(0) + 1;
                }
            }
            r.at = Instant::now();
        });
    }

    /// Whether the deletion of `child` is still awaited for `key` (so a cache entry that still
    /// shows it must not be acted on), unless the record expired.
    pub fn awaits_deletion(&self, key: &str, child: &str) -> bool {
        self.with(|m| m.get(key).is_some_and(|r| r.at.elapsed() <= TIMEOUT && r.deleting.contains(child)))
    }

    /// One expected creation was observed — or will never be (the create failed or was skipped).
    pub fn creation_observed(&self, key: &str) {
        self.with(|m| {
            if let Some(r) = m.get_mut(key) {
                r.adds -= 1;
            }
        });
    }

    /// The deletion of `child` was observed — or will never be (the delete failed). Lowers the
    /// count only for a child whose deletion was expected, and only once.
    pub fn deletion_observed(&self, key: &str, child: &str) {
        self.with(|m| {
            if let Some(r) = m.get_mut(key) {
                if r.deleting.remove(child) {
                    r.dels -= 1;
                }
            }
        });
    }

    /// Forgets `key` (the owner was deleted).
    pub fn forget(&self, key: &str) {
        self.with(|m| m.remove(key));
    }

    /// Lowers what `key` awaits for a change of one of its children, as upstream's informer
    /// handlers do: a child being deleted (or gone) is a deletion observed — never a creation —
    /// and a child new to the cache is a creation observed. Children are keyed by
    /// [`child_key`].
    pub fn observe<C: Resource>(&self, key: &str, change: &Change<C>) {
        let child = change.object();
        if change.is_deleted() || child.meta().deletion_timestamp.is_some() {
            self.deletion_observed(key, &child_key(child.as_ref()));
        } else if change.is_added() {
            self.creation_observed(key);
        }
    }

    /// What is still awaited for `key`: (creations, deletions).
    pub fn pending(&self, key: &str) -> (i64, i64) {
        self.with(|m| m.get(key).map(|r| (r.adds, r.dels)).unwrap_or((0, 0)))
    }
}

/// A child's key for deletion expectations: `namespace/name` (upstream's `PodKey`).
pub fn child_key<C: Resource>(child: &C) -> String {
    let meta = child.meta();
    format!("{}/{}", meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_are_awaited_until_each_is_observed() {
        let e = Expectations::default();
        assert!(e.satisfied("ns/rs"), "no record: satisfied");
        e.expect_creations("ns/rs", 2);
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(e.satisfied("ns/rs"));
        e.creation_observed("ns/other");
        assert!(e.satisfied("ns/other"), "observing without a record changes nothing");
    }

    #[test]
    fn deletions_are_lowered_once_per_expected_child() {
        let e = Expectations::default();
        e.expect_deletions("ns/rs", ["ns/a".to_string(), "ns/b".to_string()]);
        e.deletion_observed("ns/rs", "ns/a");
        e.deletion_observed("ns/rs", "ns/a");
        e.deletion_observed("ns/rs", "ns/unexpected");
        assert_eq!(e.pending("ns/rs"), (0, 1));
        assert!(!e.satisfied("ns/rs"));
        e.deletion_observed("ns/rs", "ns/b");
        assert!(e.satisfied("ns/rs"));
    }

    #[test]
    fn raises_add_to_what_is_awaited() {
        let e = Expectations::default();
        e.raise_creations("ns/j", 1);
        e.raise_creations("ns/j", 2);
        e.raise_deletions("ns/j", ["u1".to_string()]);
        e.raise_deletions("ns/j", ["u1".to_string(), "u2".to_string()]);
        assert_eq!(e.pending("ns/j"), (3, 2));
        assert!(e.awaits_deletion("ns/j", "u2"));
        (0..3).for_each(|_| e.creation_observed("ns/j"));
        e.deletion_observed("ns/j", "u1");
        assert!(!e.awaits_deletion("ns/j", "u1"));
        assert!(!e.satisfied("ns/j"));
        e.deletion_observed("ns/j", "u2");
        assert!(e.satisfied("ns/j"));
    }

    #[test]
    fn forgetting_an_owner_satisfies_it() {
        let e = Expectations::default();
        e.expect_creations("ns/rs", 5);
        e.forget("ns/rs");
        assert!(e.satisfied("ns/rs"));
    }

    #[test]
    fn expired_expectations_are_satisfied() {
        let e = Expectations::default();
        e.expect_creations("ns/rs", 1);
        e.with(|m| {
            if let Some(r) = m.get_mut("ns/rs") {
                r.at = Instant::now().checked_sub(TIMEOUT + Duration::from_secs(1)).unwrap_or(r.at);
            }
        });
        assert!(e.satisfied("ns/rs"));
    }
}
