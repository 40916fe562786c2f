//! What a controller has written but may not have seen in its watch cache yet (upstream's
//! `ControllerExpectations`): pods it created, pods it deleted, pods whose finalizer it removed.
//! A reconcile that reads a cache older than its own writes would otherwise create pods twice or
//! count a finished pod twice. Entries are forgotten once the cache shows the write, or after
//! [`EXPECTATION_TIMEOUT`] (a lost watch event must not wedge the owner forever).
//!
//! Shared by the Job and DaemonSet controllers; keyed by owner UID.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// As upstream's `ExpectationsTimeout`.
pub const EXPECTATION_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Pending {
    /// Names of pods created and not yet in the cache.
    created: HashSet<String>,
    /// UIDs of pods deleted (or finalizer-stripped) whose change the cache has not shown yet.
    gone: HashSet<String>,
    since: Option<Instant>,
}

/// What the cache says about one pod, for [`Expectations::satisfied`].
pub enum Seen {
    /// Not in the cache.
    Absent,
    /// In the cache, with or without the awaited change (deletion timestamp, finalizer removed).
    Present { changed: bool },
}

#[derive(Default)]
pub struct Expectations {
    by_owner: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    fn with<R>(&self, owner: &str, f: impl FnOnce(&mut Pending) -> R) -> R {
        let mut map = self.by_owner.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(owner.to_string()).or_default();
        entry.since.get_or_insert_with(Instant::now);
        f(entry)
    }

    /// Records a pod created by name.
    pub fn created(&self, owner: &str, name: String) {
        self.with(owner, |p| p.created.insert(name));
    }

    /// Records a pod (by UID) the controller deleted or stripped of its finalizer.
    pub fn changed(&self, owner: &str, uid: String) {
        self.with(owner, |p| p.gone.insert(uid));
    }

    /// Whether a pod UID is still awaited (so a stale cache entry must be ignored).
    pub fn awaiting(&self, owner: &str, uid: &str) -> bool {
        let map = self.by_owner.lock().unwrap_or_else(|p| p.into_inner());
        map.get(owner).is_some_and(|p| p.gone.contains(uid))
    }

    /// Drops what the cache now shows and reports whether nothing is awaited any more.
    /// `by_name` and `by_uid` look a pod up in the cache.
    pub fn satisfied(&self, owner: &str, by_name: impl Fn(&str) -> bool, by_uid: impl Fn(&str) -> Seen) -> bool {
        let mut map = self.by_owner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(p) = map.get_mut(owner) else { return true };
        p.created.retain(|name| !by_name(name));
        p.gone.retain(|uid| matches!(by_uid(uid), Seen::Present { changed: false }));
        let expired = p.since.is_some_and(|s| s.elapsed() > EXPECTATION_TIMEOUT);
        if p.created.is_empty() && p.gone.is_empty() || expired {
            map.remove(owner);
            return true;
        }
        false
    }

    /// Forgets an owner (deleted).
    pub fn forget(&self, owner: &str) {
        let mut map = self.by_owner.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_and_deletions_are_awaited_until_seen() {
        let e = Expectations::default();
        assert!(e.satisfied("j", |_| false, |_| Seen::Absent));
        e.created("j", "p1".into());
        e.changed("j", "u1".into());
        assert!(e.awaiting("j", "u1"));
        assert!(!e.satisfied("j", |_| false, |_| Seen::Present { changed: false }));
        // p1 appears; u1 still unchanged.
        assert!(!e.satisfied("j", |n| n == "p1", |_| Seen::Present { changed: false }));
        // u1 shows its change: done, and forgotten.
        assert!(e.satisfied("j", |_| false, |_| Seen::Present { changed: true }));
        assert!(!e.awaiting("j", "u1"));
        e.changed("j", "u2".into());
        assert!(e.satisfied("j", |_| false, |_| Seen::Absent));
    }
}
