//! The parts of a sync every strategy shares (upstream `sync.go`): finding or creating the new
//! ReplicaSet and keeping revisions in order, scaling a ReplicaSet (with its Event), scaling all
//! of them for a resize or a paused Deployment (proportionally in the middle of a rollout), and
//! pruning old ReplicaSets beyond `revisionHistoryLimit`.

use std::collections::BTreeMap;

use client_runtime::ObjectRef;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::ResourceExt;

use api::events::EventType;

use super::annotations as ann;
use super::fenceposts::{self, replicas};
use super::proportional::{self, Member, Target};
use super::{active, hash, progress, rs_replicas, rs_status, Error, Rollout};
use client_runtime::claim::{self, Owner};

/// The new ReplicaSet (if any) and all the others.
pub type Split = (Option<ReplicaSet>, Vec<ReplicaSet>);

/// The oldest ReplicaSet whose template equals the Deployment's (`FindNewReplicaSet`).
fn find_new(template: &k8s_openapi::api::core::v1::PodTemplateSpec, rs_list: &[ReplicaSet]) -> Option<usize> {
    let mut order: Vec<usize> = (0..rs_list.len()).collect();
    order.sort_by(|&a, &b| by_creation(&rs_list[a], &rs_list[b]));
    order.into_iter().find(|&i| {
        rs_list[i].spec.as_ref().and_then(|s| s.template.as_ref()).is_some_and(|t| hash::equal_ignore_hash(t, template))
    })
}

/// Older first, then by name.
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> std::cmp::Ordering {
    let t = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    t(a).cmp(&t(b)).then_with(|| a.name_any().cmp(&b.name_any()))
}

fn member(rs: &ReplicaSet) -> Member {
    Member {
        name: rs.name_any(),
        created: rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
        replicas: rs_replicas(rs),
        max_replicas: ann::max_replicas(rs),
    }
}

impl Rollout<'_> {
    fn template(&self) -> k8s_openapi::api::core::v1::PodTemplateSpec {
        self.d.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default()
    }

    fn min_ready_seconds(&self) -> i32 {
        self.d.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
    }

    /// `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (created when `create` and it does
    /// not exist) with its revision above every old one, and the old ReplicaSets.
    pub(super) async fn split(&mut self, rs_list: &[ReplicaSet], create: bool) -> Result<Split, Error> {
        let new_idx = find_new(&self.template(), rs_list);
        let old: Vec<ReplicaSet> =
            rs_list.iter().enumerate().filter(|(i, _)| Some(*i) != new_idx).map(|(_, rs)| rs.clone()).collect();
        let new = self.new_replicaset(new_idx.map(|i| &rs_list[i]), &old, create).await?;
        Ok((new, old))
    }

    /// `getNewReplicaSet`.
    async fn new_replicaset(
        &mut self,
        existing: Option<&ReplicaSet>,
        old: &[ReplicaSet],
        create: bool,
    ) -> Result<Option<ReplicaSet>, Error> {
        let new_revision = ann::max_revision(old) + 1;
        let max_surge = fenceposts::max_surge(&self.d);
        if let Some(existing) = existing {
            let mut rs = existing.clone();
            let annotations_changed = ann::set_new_rs(&self.d, &mut rs, new_revision, true, max_surge);
            let spec = rs.spec.get_or_insert_with(Default::default);
            let min_ready_changed = spec.min_ready_seconds.unwrap_or(0) != self.min_ready_seconds();
            if annotations_changed || min_ready_changed {
                spec.min_ready_seconds = Some(self.min_ready_seconds());
                if ann::revision(&rs) > ann::revision(existing) {
                    tracing::info!(replicaset = %rs.name_any(), revision = ann::revision(&rs), "new replicaset takes the latest revision");
                }
                return self.replace_rs(&rs).await.map(Some);
            }
            let revision = rs.annotations().get(ann::REVISION).cloned().unwrap_or_default();
            self.set_revision(&revision).await?;
            if progress::has_deadline(&self.d) && progress::condition(&self.d, progress::PROGRESSING).is_none() {
                let msg = format!("Found new replica set {:?}", rs.name_any());
                progress::set(&mut self.d, progress::PROGRESSING, "True", progress::FOUND_NEW_RS, &msg);
                self.update_status().await?;
            }
            return Ok(Some(rs));
        }
        if !create {
            return Ok(None);
        }
        self.create_replicaset(old, new_revision, max_surge).await.map(Some)
    }

    async fn create_replicaset(
        &mut self,
        old: &[ReplicaSet],
        new_revision: i64,
        max_surge: i32,
    ) -> Result<ReplicaSet, Error> {
        let collision_count = self.d.status.as_ref().and_then(|s| s.collision_count);
        let mut template = self.template();
        let hash = hash::compute(&template, collision_count);
        let labels = template.metadata.get_or_insert_with(Default::default).labels.get_or_insert_with(BTreeMap::new);
        labels.insert(hash::LABEL.to_string(), hash.clone());
        let labels = labels.clone();
        let mut selector = self.d.spec.as_ref().map(|s| s.selector.clone()).unwrap_or_default();
        selector.match_labels.get_or_insert_with(BTreeMap::new).insert(hash::LABEL.to_string(), hash.clone());
        let name = format!("{}-{}", self.d.name_any(), hash);
        let old_total: i32 = old.iter().map(rs_replicas).sum();
        let count = fenceposts::new_rs_new_replicas(&self.d, old_total, 0);
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: self.d.namespace(),
                owner_references: Some(vec![Owner::of(&self.d).reference()]),
                labels: Some(labels),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(count),
                min_ready_seconds: Some(self.min_ready_seconds()),
                selector,
                template: Some(template),
            }),
            status: None,
        };
        ann::set_new_rs(&self.d, &mut rs, new_revision, false, max_surge);
        let (created, already_existed) = match self.rs_api.create(&PostParams::default(), &rs).await {
            Ok(created) => (created, false),
            Err(kube::Error::Api(s)) if s.is_already_exists() => (self.existing_same(&name).await?, true),
            Err(source) => {
                let msg = format!(
                    "Failed to create new replica set {name:?}: {}",
                    client_runtime::policy::status_message(&source)
                );
                if progress::has_deadline(&self.d) && !client_runtime::policy::namespace_terminating(&source) {
                    progress::set(&mut self.d, progress::PROGRESSING, "False", progress::FAILED_RS_CREATE, &msg);
                    // The create error is the one to report.
                    let _ = self.update_status().await;
                }
                self.event(EventType::Warning, progress::FAILED_RS_CREATE, &msg).await;
                return Err(Error::CreateReplicaSet { key: self.key.clone(), name, source });
            }
        };
        if !already_existed {
            tracing::info!(replicaset = %name, replicas = count, revision = new_revision, "created new replicaset");
            if count > 0 {
                let msg = format!("Scaled up replica set {name} from 0 to {count}");
                self.event(EventType::Normal, "ScalingReplicaSet", &msg).await;
            }
        }
        self.set_revision(&new_revision.to_string()).await?;
        if !already_existed && progress::has_deadline(&self.d) {
            let msg = format!("Created new replica set {name:?}");
            progress::set(&mut self.d, progress::PROGRESSING, "True", progress::NEW_RS_CREATED, &msg);
            self.update_status().await?;
        }
        Ok(created)
    }

    /// After AlreadyExists: the existing ReplicaSet if it is ours with our template; otherwise a
    /// hash collision, resolved by raising `collisionCount` (the next sync hashes differently).
    async fn existing_same(&mut self, name: &str) -> Result<ReplicaSet, Error> {
        let ns = self.d.namespace().unwrap_or_default();
        let existing = match self.st.replicasets.get(&ObjectRef::new(name).within(&ns)) {
            Some(rs) => (*rs).clone(),
            None => self.rs_api.get(name).await.map_err(|source| Error::CreateReplicaSet {
                key: self.key.clone(),
                name: name.to_string(),
                source,
            })?,
        };
        let ours = claim::controller_of(&existing).is_some_and(|r| Some(&r.uid) == self.d.metadata.uid.as_ref());
        let same = existing
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| hash::equal_ignore_hash(t, &self.template()));
        if ours && same {
            return Ok(existing);
        }
        let status = self.d.status.get_or_insert_with(Default::default);
        let count = status.collision_count.unwrap_or(0) + 1;
        status.collision_count = Some(count);
        tracing::info!(replicaset = %name, collision_count = count, "hash collision; raising collisionCount");
        self.update_status().await?;
        Err(Error::HashCollision { key: self.key.clone(), name: name.to_string() })
    }

    async fn replace_rs(&self, rs: &ReplicaSet) -> Result<ReplicaSet, Error> {
        let name = rs.name_any();
        self.rs_api.replace(&name, &PostParams::default(), rs).await.map_err(|source| Error::UpdateReplicaSet {
            key: self.key.clone(),
            name,
            source,
        })
    }

    /// `isScalingEvent`: an active ReplicaSet was sized for another `spec.replicas`.
    pub(super) async fn is_scaling_event(&mut self, rs_list: &[ReplicaSet]) -> Result<bool, Error> {
        let (new, old) = self.split(rs_list, false).await?;
        let desired = replicas(&self.d);
        Ok(active(new.iter().chain(old.iter()))
            .iter()
            .any(|rs| ann::desired_replicas(rs).is_some_and(|n| n != desired)))
    }

    /// `sync`: scale only (a resize, or a paused Deployment), prune history, write the status.
    pub(super) async fn sync(&mut self, rs_list: &[ReplicaSet]) -> Result<(), Error> {
        let (new, mut old) = self.split(rs_list, false).await?;
        let new = self.scale(new, &mut old).await?;
        if self.paused() {
            self.cleanup(&old).await?;
        }
        self.sync_status(new.as_ref(), &old).await
    }

    /// `syncStatusOnly`.
    pub(super) async fn sync_status_only(&mut self, rs_list: &[ReplicaSet]) -> Result<(), Error> {
        let (new, old) = self.split(rs_list, false).await?;
        self.sync_status(new.as_ref(), &old).await
    }

    /// `scale`: brings the ReplicaSets to `spec.replicas` in total.
    async fn scale(
        &mut self,
        mut new: Option<ReplicaSet>,
        old: &mut [ReplicaSet],
    ) -> Result<Option<ReplicaSet>, Error> {
        let desired = replicas(&self.d);
        // One active ReplicaSet (or none: the newest) takes the whole size.
        if let Some(target) = active_or_latest(new.as_ref(), old) {
            if rs_replicas(&target) != desired {
                let scaled = self.scale_rs(&target, desired).await?;
                replace_in(&mut new, old, scaled);
            }
            return Ok(new);
        }
        // A saturated new ReplicaSet: old ones go to zero.
        if new.as_ref().is_some_and(|n| is_saturated(&self.d, n)) {
            for rs in old.iter_mut().filter(|rs| rs_replicas(rs) > 0) {
                *rs = self.scale_rs(rs, 0).await?;
            }
            return Ok(new);
        }
        if !fenceposts::is_rolling_update(&self.d) {
            return Ok(new);
        }
        let mut all: Vec<ReplicaSet> = active(new.iter().chain(old.iter())).into_iter().cloned().collect();
        let members: Vec<Member> = all.iter().map(member).collect();
        let target = Target {
            replicas: desired,
            max_surge: fenceposts::max_surge(&self.d),
            status_replicas: self.d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0),
        };
        let sizes = proportional::sizes(&members, target);
        for (rs, size) in all.iter_mut().zip(sizes) {
            // Annotations are refreshed even when the size stays.
            *rs = self.scale_rs(rs, size).await?;
        }
        for scaled in all {
            replace_in(&mut new, old, scaled);
        }
        Ok(new)
    }

    /// `scaleReplicaSet`: sets the size and the replica annotations; records ScalingReplicaSet.
    pub(super) async fn scale_rs(&self, rs: &ReplicaSet, size: i32) -> Result<ReplicaSet, Error> {
        let desired = replicas(&self.d);
        let max = desired + fenceposts::max_surge(&self.d);
        let current = rs_replicas(rs);
        if current == size && !ann::replicas_need_update(rs, desired, max) {
            return Ok(rs.clone());
        }
        let mut updated = rs.clone();
        updated.spec.get_or_insert_with(Default::default).replicas = Some(size);
        ann::set_replicas(&mut updated, desired, max);
        let updated = self.replace_rs(&updated).await?;
        if current != size {
            let direction = if current < size { "up" } else { "down" };
            tracing::info!(replicaset = %rs.name_any(), from = current, to = size, "scaled replicaset");
            let msg = format!("Scaled {direction} replica set {} to {size} from {current}", rs.name_any());
            self.event(EventType::Normal, "ScalingReplicaSet", &msg).await;
        }
        Ok(updated)
    }

    /// `cleanupDeployment`: deletes the oldest revisions beyond `revisionHistoryLimit`, only
    /// those already scaled to zero and settled.
    pub(super) async fn cleanup(&self, old: &[ReplicaSet]) -> Result<(), Error> {
        let Some(limit) = self.d.spec.as_ref().and_then(|s| s.revision_history_limit) else { return Ok(()) };
        let mut alive: Vec<&ReplicaSet> = old.iter().filter(|rs| rs.metadata.deletion_timestamp.is_none()).collect();
        let excess = alive.len() as i64 - i64::from(limit);
        if excess <= 0 {
            return Ok(());
        }
        alive.sort_by(|a, b| ann::revision(a).cmp(&ann::revision(b)).then_with(|| by_creation(a, b)));
        for rs in alive.into_iter().take(excess as usize) {
            let observed = rs.status.as_ref().and_then(|s| s.observed_generation).unwrap_or(0);
            if rs_status(rs).0 != 0 || rs_replicas(rs) != 0 || rs.metadata.generation.unwrap_or(0) > observed {
                continue;
            }
            let name = rs.name_any();
            tracing::info!(replicaset = %name, revision = ann::revision(rs), "deleting old replicaset beyond revisionHistoryLimit");
            match self.rs_api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.is_not_found() => {}
                Err(source) => return Err(Error::DeleteReplicaSet { key: self.key.clone(), name, source }),
            }
        }
        Ok(())
    }
}

/// Puts a written ReplicaSet back where it came from.
pub fn replace_in(new: &mut Option<ReplicaSet>, old: &mut [ReplicaSet], rs: ReplicaSet) {
    let uid = rs.metadata.uid.clone();
    if let Some(n) = new.as_mut().filter(|n| n.metadata.uid == uid) {
        *n = rs;
    } else if let Some(o) = old.iter_mut().find(|o| o.metadata.uid == uid) {
        *o = rs;
    }
}

/// `FindActiveOrLatest`: the only active ReplicaSet, or with none active the new one (else the
/// newest old one); `None` when several are active.
fn active_or_latest(new: Option<&ReplicaSet>, old: &[ReplicaSet]) -> Option<ReplicaSet> {
    let all: Vec<&ReplicaSet> = active(new.into_iter().chain(old.iter()));
    match all.len() {
        0 => new.cloned().or_else(|| old.iter().max_by(|a, b| by_creation(a, b)).cloned()),
        1 => Some(all[0].clone()),
        _ => None,
    }
}

/// `IsSaturated`: the new ReplicaSet is sized for the Deployment and all its pods are available.
fn is_saturated(d: &k8s_openapi::api::apps::v1::Deployment, rs: &ReplicaSet) -> bool {
    let desired = replicas(d);
    ann::desired_replicas(rs) == Some(desired) && rs_replicas(rs) == desired && rs_status(rs).2 == desired
}
