//! The Recreate strategy (upstream `recreate.go`): scale every old ReplicaSet to zero, wait until
//! none of their pods is left running, and only then create (or scale up) the new one.

use std::collections::HashSet;

use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::ResourceExt;

use super::fenceposts::replicas;
use client_runtime::{claim, pods};

use super::{rs_replicas, rs_status, Error, Rollout};

impl Rollout<'_> {
    /// `rolloutRecreate`.
    pub(super) async fn rollout_recreate(&mut self, rs_list: &[ReplicaSet]) -> Result<(), Error> {
        // Do not create the new ReplicaSet yet: nothing may scale up before the old are gone.
        let (mut new, mut old) = self.split(rs_list, false).await?;
        let mut scaled_down = false;
        for rs in old.iter_mut() {
            if rs_replicas(rs) > 0 {
                *rs = self.scale_rs(rs, 0).await?;
                scaled_down = true;
            }
        }
        if scaled_down {
            return self.sync_rollout_status(new.as_ref(), &old).await;
        }
        if self.old_pods_running(new.as_ref(), &old) {
            // The deletion of the last old pod triggers the next sync.
            return self.sync_rollout_status(new.as_ref(), &old).await;
        }
        if new.is_none() {
            (new, old) = self.split(rs_list, true).await?;
        }
        if let Some(n) = new.as_mut() {
            let desired = replicas(&self.d);
            if rs_replicas(n) != desired {
                *n = self.scale_rs(n, desired).await?;
            }
        }
        if super::progress::complete(&self.d, self.d.status.as_ref()) {
            self.cleanup(&old).await?;
        }
        self.sync_rollout_status(new.as_ref(), &old).await
    }

    /// `oldPodsRunning`: an old ReplicaSet still reports pods, or a pod of one (terminating
    /// included) has not finished.
    fn old_pods_running(&self, new: Option<&ReplicaSet>, old: &[ReplicaSet]) -> bool {
        if old.iter().map(|rs| rs_status(rs).0).sum::<i32>() > 0 {
            return true;
        }
        let ns = self.d.namespace().unwrap_or_default();
        let old_uids: HashSet<String> = old.iter().filter_map(|rs| rs.uid()).collect();
        let new_uid = new.and_then(|n| n.uid());
        self.st.pods.state().iter().any(|p| {
            p.metadata.namespace.as_deref() == Some(ns.as_str())
                && claim::controller_of(p.as_ref())
                    .is_some_and(|r| old_uids.contains(&r.uid) && Some(&r.uid) != new_uid.as_ref())
                && !pods::is_terminal(p)
        })
    }
}
