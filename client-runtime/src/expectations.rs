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

/// As upstream's `ExpectationsTimeout`.
pub const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Record {
    adds: i64,
    dels: i64,
    deleting: HashSet<String>,
    at: Instant,
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

    /// What is still awaited for `key`: (creations, deletions).
    pub fn pending(&self, key: &str) -> (i64, i64) {
        self.with(|m| m.get(key).map(|r| (r.adds, r.dels)).unwrap_or((0, 0)))
    }
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
