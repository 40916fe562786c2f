//! Deployment status and conditions (upstream `progress.go`, `sync.go` `calculateStatus`):
//! replica counts summed over the ReplicaSets; `Available` (MinimumReplicasAvailable /
//! MinimumReplicasUnavailable); `Progressing` (NewReplicaSetCreated, FoundNewReplicaSet,
//! ReplicaSetUpdated, NewReplicaSetAvailable, ProgressDeadlineExceeded, DeploymentPaused /
//! DeploymentResumed); `ReplicaFailure` copied from a ReplicaSet. A rollout that makes no
//! progress for `progressDeadlineSeconds` is marked failed, which `kubectl rollout status`
//! reports.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::fenceposts::{self, replicas};
use super::{rs_replicas, rs_status, Error, Rollout};

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
const PAUSED: &str = "DeploymentPaused";
const RESUMED: &str = "DeploymentResumed";
const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

fn now() -> Timestamp {
    let n = Timestamp::now();
    Timestamp::from_second(n.as_second()).unwrap_or(n)
}

/// A condition of the Deployment's status.
pub fn condition<'a>(d: &'a Deployment, type_: &str) -> Option<&'a DeploymentCondition> {
    status_condition(d.status.as_ref()?, type_)
}

fn status_condition<'a>(s: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    s.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

fn new_condition(type_: &str, status: &str, reason: &str, message: &str) -> DeploymentCondition {
    let t = Some(Time(now()));
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_update_time: t.clone(),
        last_transition_time: t,
    }
}

/// `SetDeploymentCondition`: no change for the same status and reason; the transition time
/// stays when only the reason changes.
fn set_status_condition(s: &mut DeploymentStatus, mut c: DeploymentCondition) {
    if let Some(cur) = status_condition(s, &c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove_status_condition(s, &c.type_);
    s.conditions.get_or_insert_with(Vec::new).push(c);
}

fn remove_status_condition(s: &mut DeploymentStatus, type_: &str) {
    if let Some(cs) = s.conditions.as_mut() {
        cs.retain(|c| c.type_ != type_);
    }
}

/// Sets a condition on the working copy.
pub fn set(d: &mut Deployment, type_: &str, status: &str, reason: &str, message: &str) {
    set_status_condition(d.status.get_or_insert_with(Default::default), new_condition(type_, status, reason, message));
}

/// `HasProgressDeadline`: set and not "never".
pub fn has_deadline(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).is_some_and(|s| s != i32::MAX)
}

fn n(v: Option<i32>) -> i32 {
    v.unwrap_or(0)
}

/// `DeploymentComplete`: every replica updated and available, no old ones, generation seen.
pub fn complete(d: &Deployment, s: Option<&DeploymentStatus>) -> bool {
    let Some(s) = s else { return false };
    let want = replicas(d);
    n(s.updated_replicas) == want
        && n(s.replicas) == want
        && n(s.available_replicas) == want
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// `DeploymentProgressing`: more updated, fewer old, more ready or more available replicas.
fn progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    n(new.updated_replicas) > n(old.updated_replicas)
        || n(new.replicas) - n(new.updated_replicas) < n(old.replicas) - n(old.updated_replicas)
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

fn deadline(d: &Deployment) -> SignedDuration {
    SignedDuration::from_secs(i64::from(d.spec.as_ref().and_then(|s| s.progress_deadline_seconds).unwrap_or(600)))
}

/// `DeploymentTimedOut`: the Progressing condition has not been updated for the deadline.
fn timed_out(d: &Deployment, new: &DeploymentStatus, now: Timestamp) -> bool {
    if !has_deadline(d) {
        return false;
    }
    let Some(c) = status_condition(new, PROGRESSING) else { return false };
    match c.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => c.last_update_time.as_ref().is_some_and(|t| t.0 + deadline(d) < now),
    }
}

/// `calculateStatus`.
pub fn calculate(all: &[&ReplicaSet], new: Option<&ReplicaSet>, d: &Deployment) -> DeploymentStatus {
    let available: i32 = all.iter().map(|rs| rs_status(rs).2).sum();
    let wanted: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
    let mut s = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(all.iter().map(|rs| rs_status(rs).0).sum()),
        updated_replicas: Some(new.map_or(0, |rs| rs_status(rs).0)),
        ready_replicas: Some(all.iter().map(|rs| rs_status(rs).1).sum()),
        available_replicas: Some(available),
        unavailable_replicas: Some((wanted - available).max(0)),
        collision_count: d.status.as_ref().and_then(|s| s.collision_count),
        conditions: d.status.as_ref().and_then(|s| s.conditions.clone()),
        terminating_replicas: None,
    };
    let c = if available >= replicas(d) - fenceposts::max_unavailable(d) {
        new_condition(AVAILABLE, "True", MIN_AVAILABLE, "Deployment has minimum availability.")
    } else {
        new_condition(AVAILABLE, "False", MIN_UNAVAILABLE, "Deployment does not have minimum availability.")
    };
    set_status_condition(&mut s, c);
    s
}

/// Whether two statuses say the same (unset counts equal zero, as they do on the wire).
fn same(a: &DeploymentStatus, b: &DeploymentStatus) -> bool {
    a.observed_generation.unwrap_or(0) == b.observed_generation.unwrap_or(0)
        && n(a.replicas) == n(b.replicas)
        && n(a.updated_replicas) == n(b.updated_replicas)
        && n(a.ready_replicas) == n(b.ready_replicas)
        && n(a.available_replicas) == n(b.available_replicas)
        && n(a.unavailable_replicas) == n(b.unavailable_replicas)
        && a.collision_count == b.collision_count
        && a.conditions.clone().unwrap_or_default() == b.conditions.clone().unwrap_or_default()
}

impl Rollout<'_> {
    /// `syncDeploymentStatus`: counts and Available only.
    pub(super) async fn sync_status(&mut self, new: Option<&ReplicaSet>, old: &[ReplicaSet]) -> Result<(), Error> {
        let all: Vec<&ReplicaSet> = new.into_iter().chain(old.iter()).collect();
        let status = calculate(&all, new, &self.d);
        self.write_status(status).await
    }

    async fn write_status(&mut self, status: DeploymentStatus) -> Result<(), Error> {
        if self.d.status.as_ref().is_some_and(|cur| same(cur, &status)) {
            return Ok(());
        }
        self.d.status = Some(status);
        self.update_status().await
    }

    /// `syncRolloutStatus`: counts, Available, and the Progressing estimate.
    pub(super) async fn sync_rollout_status(
        &mut self,
        new: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> Result<(), Error> {
        let all: Vec<&ReplicaSet> = new.into_iter().chain(old.iter()).collect();
        let mut s = calculate(&all, new, &self.d);
        let now = now();
        if !has_deadline(&self.d) {
            remove_status_condition(&mut s, PROGRESSING);
        }
        let current = condition(&self.d, PROGRESSING).cloned();
        let was_complete = n(s.replicas) == n(s.updated_replicas)
            && current.as_ref().is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
        let name = self.d.name_any();
        let subject = |what: &str| match new {
            Some(rs) => format!("ReplicaSet {:?} {what}", rs.name_any()),
            None => format!("Deployment {name:?} {what}"),
        };
        if has_deadline(&self.d) && !was_complete {
            if complete(&self.d, Some(&s)) {
                let c = new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, &subject("has successfully progressed."));
                set_status_condition(&mut s, c);
            } else if progressing(&self.d, &s) {
                let mut c = new_condition(PROGRESSING, "True", RS_UPDATED, &subject("is progressing."));
                // Progress refreshes lastUpdateTime even with the same reason.
                if let Some(cur) = &current {
                    if cur.status == "True" {
                        c.last_transition_time = cur.last_transition_time.clone();
                    }
                    remove_status_condition(&mut s, PROGRESSING);
                }
                set_status_condition(&mut s, c);
            } else if timed_out(&self.d, &s, now) {
                let c = new_condition(PROGRESSING, "False", TIMED_OUT, &subject("has timed out progressing."));
                set_status_condition(&mut s, c);
                if current.as_ref().and_then(|c| c.reason.as_deref()) != Some(TIMED_OUT) {
                    tracing::info!("rollout exceeded its progress deadline");
                }
            }
        }
        match replica_failure(&all, new) {
            Some(c) => set_status_condition(&mut s, c),
            None => remove_status_condition(&mut s, REPLICA_FAILURE),
        }
        if self.d.status.as_ref().is_some_and(|cur| same(cur, &s)) {
            self.requeue_if_stuck(&s, now);
            return Ok(());
        }
        self.write_status(s).await
    }

    /// `requeueStuckDeployment`: without an event, look again when the deadline would pass.
    fn requeue_if_stuck(&mut self, s: &DeploymentStatus, now: Timestamp) {
        let Some(cur) = condition(&self.d, PROGRESSING) else { return };
        if !has_deadline(&self.d) || complete(&self.d, Some(s)) || cur.reason.as_deref() == Some(TIMED_OUT) {
            return;
        }
        let Some(updated) = cur.last_update_time.as_ref() else { return };
        let after = (updated.0 + deadline(&self.d)).duration_since(now);
        let after = Duration::try_from(after).unwrap_or_default();
        let wait = if after < Duration::from_secs(1) { Duration::from_secs(1) } else { after + Duration::from_secs(1) };
        self.requeue = Some(self.requeue.map_or(wait, |r| r.min(wait)));
    }

    /// `checkPausedConditions`: Progressing Unknown while paused, so that the time spent paused
    /// never counts against the deadline.
    pub(super) async fn check_paused_conditions(&mut self) -> Result<(), Error> {
        if !has_deadline(&self.d) {
            return Ok(());
        }
        let reason = condition(&self.d, PROGRESSING).and_then(|c| c.reason.clone());
        if reason.as_deref() == Some(TIMED_OUT) {
            return Ok(());
        }
        let paused_cond = reason.as_deref() == Some(PAUSED);
        if self.paused() && !paused_cond {
            set(&mut self.d, PROGRESSING, "Unknown", PAUSED, "Deployment is paused");
        } else if !self.paused() && paused_cond {
            set(&mut self.d, PROGRESSING, "Unknown", RESUMED, "Deployment is resumed");
        } else {
            return Ok(());
        }
        self.update_status().await
    }
}

/// The ReplicaFailure condition of a ReplicaSet (the new one first), as a Deployment condition.
fn replica_failure(all: &[&ReplicaSet], new: Option<&ReplicaSet>) -> Option<DeploymentCondition> {
    let failure = |rs: &ReplicaSet| {
        rs.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == REPLICA_FAILURE).map(|c| {
            DeploymentCondition {
                type_: REPLICA_FAILURE.into(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_update_time: c.last_transition_time.clone(),
                last_transition_time: c.last_transition_time.clone(),
            }
        })
    };
    new.and_then(failure).or_else(|| all.iter().find_map(|rs| failure(rs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(replicas: i32, generation: i64, status: serde_json::Value) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "generation": generation},
            "spec": {"replicas": replicas, "selector": {}, "template": {}, "progressDeadlineSeconds": 600},
            "status": status,
        }))
        .unwrap()
    }

    fn rs(replicas: i32, current: i32, ready: i32, available: i32) -> ReplicaSet {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "r"},
            "spec": {"replicas": replicas, "selector": {}},
            "status": {"replicas": current, "readyReplicas": ready, "availableReplicas": available},
        }))
        .unwrap()
    }

    #[test]
    fn status_counts_and_availability() {
        let d = deployment(6, 3, serde_json::json!({}));
        let (old, new) = (rs(1, 2, 2, 2), rs(6, 5, 4, 3));
        let s = calculate(&[&new, &old], Some(&new), &d);
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!((s.replicas, s.updated_replicas, s.ready_replicas), (Some(7), Some(5), Some(6)));
        assert_eq!((s.available_replicas, s.unavailable_replicas), (Some(5), Some(2)));
        // 25% of 6 → 1 may be unavailable: 5 available is enough.
        let a = status_condition(&s, AVAILABLE).unwrap();
        assert_eq!((a.status.as_str(), a.reason.as_deref()), ("True", Some(MIN_AVAILABLE)));
        let s = calculate(&[&rs(6, 6, 4, 4)], None, &d);
        assert_eq!(status_condition(&s, AVAILABLE).unwrap().reason.as_deref(), Some(MIN_UNAVAILABLE));
    }

    #[test]
    fn completion_progress_and_deadline() {
        let done =
            serde_json::json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3});
        assert!(complete(&deployment(3, 2, done.clone()), deployment(3, 2, done.clone()).status.as_ref()));
        assert!(
            !complete(&deployment(3, 3, done.clone()), deployment(3, 3, done).status.as_ref()),
            "generation not seen"
        );

        let d = deployment(3, 1, serde_json::json!({"replicas": 4, "updatedReplicas": 1, "readyReplicas": 3}));
        let more_updated: DeploymentStatus =
            serde_json::from_value(serde_json::json!({"replicas": 4, "updatedReplicas": 2, "readyReplicas": 3}))
                .unwrap();
        assert!(progressing(&d, &more_updated));
        assert!(!progressing(&d, d.status.as_ref().unwrap()));

        let now: Timestamp = "2024-01-01T01:00:00Z".parse().unwrap();
        let stale: DeploymentStatus = serde_json::from_value(serde_json::json!({"conditions": [{"type": "Progressing",
            "status": "True", "reason": RS_UPDATED, "lastUpdateTime": "2024-01-01T00:49:59Z"}]}))
        .unwrap();
        assert!(timed_out(&d, &stale, now), "601 s without progress");
        let fresh: DeploymentStatus = serde_json::from_value(serde_json::json!({"conditions": [{"type": "Progressing",
            "status": "True", "reason": RS_UPDATED, "lastUpdateTime": "2024-01-01T00:50:01Z"}]}))
        .unwrap();
        assert!(!timed_out(&d, &fresh, now));
    }

    #[test]
    fn conditions_keep_transition_time() {
        let mut s = DeploymentStatus::default();
        let mut first = new_condition(PROGRESSING, "True", NEW_RS_CREATED, "a");
        first.last_transition_time = Some(Time("2020-01-01T00:00:00Z".parse().unwrap()));
        set_status_condition(&mut s, first.clone());
        set_status_condition(&mut s, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, "b"));
        let c = status_condition(&s, PROGRESSING).unwrap();
        assert_eq!(c.reason.as_deref(), Some(NEW_RS_AVAILABLE));
        assert_eq!(c.last_transition_time, first.last_transition_time, "same status keeps the transition time");
        set_status_condition(&mut s, new_condition(PROGRESSING, "False", TIMED_OUT, "c"));
        assert_ne!(status_condition(&s, PROGRESSING).unwrap().last_transition_time, first.last_transition_time);
    }
}
