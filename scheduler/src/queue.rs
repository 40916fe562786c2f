//! The scheduling queue (upstream's `PriorityQueue`): an active heap ordered by priority then
//! arrival, a backoff set for pods that just failed, and a side set of unschedulable pods that
//! wait for a cluster change (or a periodic flush) before they are tried again.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::pod_info::PendingPod;

const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Active,
    Backoff(Instant),
    Unschedulable(Instant),
    /// Popped: being placed or bound.
    InFlight,
}

#[derive(Debug)]
struct Entry {
    pod: Arc<PendingPod>,
    state: State,
    attempts: u32,
    last_attempt: Option<Instant>,
    /// Identifies the entry's current position in the heap or backoff set (stale ones are skipped).
    seq: u64,
}

#[derive(Debug)]
pub struct Queue {
    entries: HashMap<String, Entry>,
    active: BinaryHeap<(i32, Reverse<u64>, String)>,
    backoff: BTreeSet<(Instant, u64, String)>,
    /// By the time each pod became unschedulable.
    unschedulable: BTreeSet<(Instant, u64, String)>,
    next_seq: u64,
    max_unschedulable: Duration,
}

impl Queue {
    /// `max_unschedulable`: how long a pod waits in the unschedulable set without any cluster
    /// change before it is retried anyway.
    pub fn new(max_unschedulable: Duration) -> Self {
        Queue {
            entries: HashMap::new(),
            active: BinaryHeap::new(),
            backoff: BTreeSet::new(),
            unschedulable: BTreeSet::new(),
            next_seq: 0,
            max_unschedulable,
        }
    }

    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn activate(&mut self, uid: &str) {
        let seq = self.seq();
        if let Some(e) = self.entries.get_mut(uid) {
            e.state = State::Active;
            e.seq = seq;
            self.active.push((e.pod.priority, Reverse(seq), uid.to_string()));
        }
    }

    fn back_off_until(&mut self, uid: &str, until: Instant) {
        let seq = self.seq();
        if let Some(e) = self.entries.get_mut(uid) {
            e.state = State::Backoff(until);
            e.seq = seq;
            self.backoff.insert((until, seq, uid.to_string()));
        }
    }

    /// When the pod's current backoff ends (1 s doubling per attempt, at most 10 s).
    fn backoff_end(e: &Entry) -> Option<Instant> {
        let last = e.last_attempt?;
        let shift = e.attempts.saturating_sub(1).min(16);
        Some(last + (INITIAL_BACKOFF * (1u32 << shift)).min(MAX_BACKOFF))
    }

    /// Adds a pending pod, or refreshes one already queued. An unschedulable pod whose needs
    /// changed is retried; our own status writes do not count as a change.
    pub fn add_or_update(&mut self, pod: Arc<PendingPod>, now: Instant) {
        let uid = pod.uid.clone();
        match self.entries.get_mut(&uid) {
            None => {
                self.entries
                    .insert(uid.clone(), Entry { pod, state: State::Active, attempts: 0, last_attempt: None, seq: 0 });
                self.activate(&uid);
            }
            Some(e) => {
                let changed = e.pod.needs != pod.needs;
                let reprioritized = e.pod.priority != pod.priority;
                e.pod = pod;
                match e.state {
                    State::Unschedulable(_) if changed => self.requeue(&uid, now),
                    State::Active if reprioritized => self.activate(&uid),
                    _ => {}
                }
            }
        }
    }

    /// Forgets a pod (bound, deleted, or no longer ours).
    pub fn remove(&mut self, uid: &str) {
        self.entries.remove(uid);
    }

    pub fn contains(&self, uid: &str) -> bool {
        self.entries.contains_key(uid)
    }

    /// Whether a pod is waiting in the active heap (possibly a stale entry).
    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    /// The next pod to place; it stays known (in flight) until [`Queue::remove`],
    /// [`Queue::unschedulable`] or [`Queue::backoff`].
    pub fn pop(&mut self, now: Instant) -> Option<Arc<PendingPod>> {
        while let Some((_, Reverse(seq), uid)) = self.active.pop() {
            let Some(e) = self.entries.get_mut(&uid) else { continue };
            if e.seq != seq || e.state != State::Active {
                continue;
            }
            e.state = State::InFlight;
            e.attempts += 1;
            e.last_attempt = Some(now);
            return Some(e.pod.clone());
        }
        None
    }

    /// No node fits the pod: park it until the cluster changes.
    pub fn unschedulable(&mut self, uid: &str, now: Instant) {
        let seq = self.seq();
        if let Some(e) = self.entries.get_mut(uid) {
            e.state = State::Unschedulable(now);
            e.seq = seq;
            self.unschedulable.insert((now, seq, uid.to_string()));
        }
    }

    /// Takes the unschedulable pods (all, or those parked since before `before`) off the side set.
    fn take_unschedulable(&mut self, before: Option<Instant>) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(first) = self.unschedulable.first() {
            if before.is_some_and(|b| first.0 > b) {
                break;
            }
            let Some((_, seq, uid)) = self.unschedulable.pop_first() else { break };
            if self.entries.get(&uid).is_some_and(|e| e.seq == seq && matches!(e.state, State::Unschedulable(_))) {
                out.push(uid);
            }
        }
        out
    }

    /// Placing or binding failed for a transient reason: retry after the pod's backoff.
    pub fn backoff(&mut self, uid: &str, now: Instant) {
        let until = self.entries.get(uid).and_then(Self::backoff_end).unwrap_or(now);
        self.back_off_until(uid, until);
    }

    /// To the active heap, or to backoff if its backoff has not run out.
    fn requeue(&mut self, uid: &str, now: Instant) {
        match self.entries.get(uid).and_then(Self::backoff_end) {
            Some(until) if until > now => self.back_off_until(uid, until),
            _ => self.activate(uid),
        }
    }

    /// The cluster changed (a node came or changed, a pod went): every unschedulable pod gets
    /// another try, after its backoff. Returns how many moved.
    pub fn move_all_unschedulable(&mut self, now: Instant) -> usize {
        let uids = self.take_unschedulable(None);
        for uid in &uids {
            self.requeue(uid, now);
        }
        uids.len()
    }

    /// Moves pods whose backoff ended to the active heap, and pods unschedulable for longer
    /// than the flush interval back for another try.
    pub fn flush(&mut self, now: Instant) {
        while let Some(first) = self.backoff.first() {
            if first.0 > now {
                break;
            }
            let Some((_, seq, uid)) = self.backoff.pop_first() else { break };
            if self.entries.get(&uid).is_some_and(|e| e.seq == seq && matches!(e.state, State::Backoff(_))) {
                self.activate(&uid);
            }
        }
        let stale = match now.checked_sub(self.max_unschedulable) {
            Some(before) => self.take_unschedulable(Some(before)),
            None => Vec::new(),
        };
        for uid in &stale {
            self.requeue(uid, now);
        }
    }

    /// When [`Queue::flush`] next has work: the first backoff deadline, or the next
    /// unschedulable timeout check.
    pub fn next_wakeup(&self, now: Instant) -> Instant {
        let backoff = self.backoff.first().map(|(t, _, _)| *t);
        let unschedulable = self.unschedulable.first().map(|(since, _, _)| *since + self.max_unschedulable);
        [backoff, unschedulable].into_iter().flatten().min().unwrap_or(now + self.max_unschedulable)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, priority: i32) -> Arc<PendingPod> {
        Arc::new(PendingPod { uid: uid.into(), name: uid.into(), priority, ..Default::default() })
    }

    fn pop_uid(q: &mut Queue, now: Instant) -> Option<String> {
        q.pop(now).map(|p| p.uid.clone())
    }

    #[test]
    fn priority_then_arrival() {
        let now = Instant::now();
        let mut q = Queue::new(Duration::from_secs(60));
        q.add_or_update(pod("a", 0), now);
        q.add_or_update(pod("b", 10), now);
        q.add_or_update(pod("c", 0), now);
        q.add_or_update(pod("a", 0), now); // an update does not duplicate
        assert_eq!(pop_uid(&mut q, now).as_deref(), Some("b"));
        assert_eq!(pop_uid(&mut q, now).as_deref(), Some("a"));
        assert_eq!(pop_uid(&mut q, now).as_deref(), Some("c"));
        assert_eq!(pop_uid(&mut q, now), None);
        assert_eq!(q.len(), 3, "popped pods stay known while in flight");
        q.remove("a");
        assert!(!q.contains("a"));
    }

    #[test]
    fn unschedulable_waits_for_a_change() {
        let t0 = Instant::now();
        let mut q = Queue::new(Duration::from_secs(60));
        q.add_or_update(pod("a", 0), t0);
        assert!(q.pop(t0).is_some());
        q.unschedulable("a", t0);
        // A status-only update (same needs) does not retry it.
        q.add_or_update(pod("a", 0), t0);
        assert_eq!(pop_uid(&mut q, t0), None);
        // A cluster change within the backoff (1 s after the first attempt) goes through backoff.
        assert_eq!(q.move_all_unschedulable(t0), 1);
        assert_eq!(pop_uid(&mut q, t0), None);
        assert_eq!(q.next_wakeup(t0), t0 + Duration::from_secs(1));
        q.flush(t0 + Duration::from_secs(1));
        assert_eq!(pop_uid(&mut q, t0 + Duration::from_secs(1)).as_deref(), Some("a"));
        // Second failure: backoff 2 s; a change after it moves the pod straight to active.
        let t1 = t0 + Duration::from_secs(1);
        q.unschedulable("a", t1);
        assert_eq!(q.move_all_unschedulable(t1 + Duration::from_secs(3)), 1);
        assert_eq!(pop_uid(&mut q, t1 + Duration::from_secs(3)).as_deref(), Some("a"));
    }

    #[test]
    fn periodic_flush_and_changed_pods() {
        let t0 = Instant::now();
        let mut q = Queue::new(Duration::from_secs(30));
        q.add_or_update(pod("a", 0), t0);
        q.add_or_update(pod("b", 0), t0);
        q.pop(t0);
        q.pop(t0);
        q.unschedulable("a", t0);
        q.unschedulable("b", t0);
        assert_eq!(q.next_wakeup(t0), t0 + Duration::from_secs(30));
        q.flush(t0 + Duration::from_secs(29));
        assert_eq!(pop_uid(&mut q, t0 + Duration::from_secs(29)), None);
        q.flush(t0 + Duration::from_secs(30));
        let mut got =
            vec![pop_uid(&mut q, t0 + Duration::from_secs(30)), pop_uid(&mut q, t0 + Duration::from_secs(30))];
        got.sort();
        assert_eq!(got, vec![Some("a".to_string()), Some("b".to_string())]);
        // A pod whose needs changed is retried without a cluster change.
        let t2 = t0 + Duration::from_secs(100);
        q.unschedulable("a", t2);
        let mut changed = PendingPod { uid: "a".into(), ..Default::default() };
        changed.needs.node_selector = vec![("k".into(), "v".into())];
        q.add_or_update(Arc::new(changed), t2 + Duration::from_secs(20));
        assert_eq!(pop_uid(&mut q, t2 + Duration::from_secs(20)).as_deref(), Some("a"));
    }

    #[test]
    fn bind_failures_back_off() {
        let t0 = Instant::now();
        let mut q = Queue::new(Duration::from_secs(60));
        q.add_or_update(pod("a", 0), t0);
        q.pop(t0);
        q.backoff("a", t0);
        assert_eq!(pop_uid(&mut q, t0), None);
        q.flush(t0 + Duration::from_millis(999));
        assert_eq!(pop_uid(&mut q, t0), None);
        q.flush(t0 + Duration::from_secs(1));
        assert_eq!(pop_uid(&mut q, t0 + Duration::from_secs(1)).as_deref(), Some("a"));
    }
}
