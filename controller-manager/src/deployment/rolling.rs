//! The RollingUpdate strategy (upstream `rolling.go`): grow the new ReplicaSet while the total
//! stays within `replicas + maxSurge`; shrink old ReplicaSets while at least
//! `replicas - maxUnavailable` pods stay available — first old pods that are not available
//! anyway, then available ones, oldest ReplicaSet first.

use k8s_openapi::api::apps::v1::ReplicaSet;

use super::fenceposts::{self, replicas};
use super::sync::by_creation;
use super::{rs_replicas, rs_status, Error, Rollout};

/// Available pods of a ReplicaSet as far as scaling down may count them: never more than it is
/// meant to have (its status may still count pods it is about to delete).
fn available(rs: &ReplicaSet) -> i32 {
    rs_status(rs).2.min(rs_replicas(rs))
}

impl Rollout<'_> {
    /// `rolloutRolling`.
    pub(super) async fn rollout_rolling(&mut self, rs_list: &[ReplicaSet]) -> Result<(), Error> {
        let (new, mut old) = self.split(rs_list, true).await?;
        let Some(mut new) = new else {
            // Creating it failed in a way that was already reported.
            return self.sync_rollout_status(None, &old).await;
        };
        if self.reconcile_new(&mut new, &old).await? {
            return self.sync_rollout_status(Some(&new), &old).await;
        }
        if self.reconcile_old(&new, &mut old).await? {
            return self.sync_rollout_status(Some(&new), &old).await;
        }
        if super::progress::complete(&self.d, self.d.status.as_ref()) {
            self.cleanup(&old).await?;
        }
        self.sync_rollout_status(Some(&new), &old).await
    }

    /// `reconcileNewReplicaSet`: true when it scaled.
    async fn reconcile_new(&mut self, new: &mut ReplicaSet, old: &[ReplicaSet]) -> Result<bool, Error> {
        let desired = replicas(&self.d);
        let current = rs_replicas(new);
        let target = if current > desired {
            desired
        } else {
            // An old ReplicaSet that has not deleted the pods it was scaled down from yet still
            // has them: count them against the surge (upstream counts only spec.replicas, which
            // lets the total overshoot while the ReplicaSet controller catches up).
            let total: i32 = old.iter().map(|rs| rs_replicas(rs).max(rs_status(rs).0)).sum::<i32>() + current;
            fenceposts::new_rs_new_replicas(&self.d, total, current)
        };
        if target == current {
            return Ok(false);
        }
        *new = self.scale_rs(new, target).await?;
        Ok(true)
    }

    /// `reconcileOldReplicaSets`: true when it scaled down.
    async fn reconcile_old(&mut self, new: &ReplicaSet, old: &mut [ReplicaSet]) -> Result<bool, Error> {
        let old_total: i32 = old.iter().map(rs_replicas).sum();
        if old_total == 0 {
            return Ok(false);
        }
        let all_total = old_total + rs_replicas(new);
        let max_scaled_down = fenceposts::max_scaled_down(&self.d, all_total, rs_replicas(new), available(new));
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        old.sort_by(by_creation);
        let cleaned = self.cleanup_unhealthy(old, max_scaled_down).await?;
        let scaled = self.scale_down_old(new, old).await?;
        Ok(cleaned + scaled > 0)
    }

    /// `cleanupUnhealthyReplicas`: removes old replicas that are not available, at most `max`.
    async fn cleanup_unhealthy(&mut self, old: &mut [ReplicaSet], max: i32) -> Result<i32, Error> {
        let mut total = 0;
        for rs in old.iter_mut() {
            if total >= max {
                break;
            }
            let (wanted, avail) = (rs_replicas(rs), available(rs));
            if wanted == 0 || wanted == avail {
                continue;
            }
            let down = (max - total).min(wanted - avail);
            *rs = self.scale_rs(rs, wanted - down).await?;
            total += down;
        }
        Ok(total)
    }

    /// `scaleDownOldReplicaSetsForRollingUpdate`: removes available old replicas down to
    /// `replicas - maxUnavailable` available in total, oldest ReplicaSet first.
    async fn scale_down_old(&mut self, new: &ReplicaSet, old: &mut [ReplicaSet]) -> Result<i32, Error> {
        let min_available = replicas(&self.d) - fenceposts::max_unavailable(&self.d);
        let available_now: i32 = available(new) + old.iter().map(available).sum::<i32>();
        if available_now <= min_available {
            return Ok(0);
        }
        let to_remove = available_now - min_available;
        let mut total = 0;
        for rs in old.iter_mut() {
            if total >= to_remove {
                break;
            }
            let wanted = rs_replicas(rs);
            if wanted == 0 {
                continue;
            }
            let down = wanted.min(to_remove - total);
            *rs = self.scale_rs(rs, wanted - down).await?;
            total += down;
        }
        Ok(total)
    }
}
