//! Creating and deleting pods to reach `spec.replicas` (upstream `manageReplicas`): at most
//! [`BURST`] per sync, creations in slow-start batches of 1, 2, 4, ... that stop at the first
//! batch with a failure (so a quota error costs one request, not hundreds), deletions in
//! parallel, chosen by [`super::rank`]. Every pod gets an Event on the ReplicaSet as upstream.
//!
//! Expectations are raised before any write and lowered here for every write that will never be
//! observed (a failed or skipped create, a failed delete); the informer lowers the rest.

use std::sync::Arc;

use futures::future::join_all;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};

use api::events::{reference, EventType, Recorder};

use client_runtime::expectations::child_key as pod_key;
use client_runtime::policy::{namespace_terminating, status_message};
use client_runtime::Expectations;

use super::rank;

/// Upstream's `burstReplicas`: the most pods created or deleted in one sync.
pub const BURST: usize = 500;

/// What one sync changed, for the status and the log.
#[derive(Default)]
pub struct Outcome {
    pub error: Option<kube::Error>,
}

pub struct Manager<'a> {
    pub api: &'a Api<Pod>,
    pub recorder: &'a Recorder,
    pub expectations: &'a Expectations,
    /// The ReplicaSet's expectations key (`namespace/name`).
    pub key: &'a str,
}

impl Manager<'_> {
    /// Creates or deletes pods of `rs` so that `active` reaches the desired count.
    pub async fn manage(&self, rs: &ReplicaSet, active: &[Arc<Pod>], related: &[Arc<Pod>]) -> Outcome {
        let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0) as usize;
        if active.len() < desired {
            self.create(rs, (desired - active.len()).min(BURST)).await
        } else if active.len() > desired {
            let doomed = rank::pods_to_delete(active, related, (active.len() - desired).min(BURST), Timestamp::now());
            self.delete(rs, doomed).await
        } else {
            Outcome::default()
        }
    }

    async fn create(&self, rs: &ReplicaSet, count: usize) -> Outcome {
        let template = pod_from_template(rs);
        let (mut remaining, mut batch) = (count, 1usize);
        tracing::info!(count, "creating pods");
        self.expectations.expect_creations(self.key, count);
        while remaining > 0 {
            let size = batch.min(remaining);
            let results = join_all((0..size).map(|_| self.create_one(rs, &template))).await;
            let mut first_err = None;
            for r in results {
                if let Err(e) = r {
                    // No pod will appear for this one.
                    self.expectations.creation_observed(self.key);
                    first_err.get_or_insert(e);
                }
            }
            remaining -= size;
            if let Some(e) = first_err {
                // The rest are skipped: none of them will appear either.
                (0..remaining).for_each(|_| self.expectations.creation_observed(self.key));
                // A terminating namespace refuses every create; there is nothing to retry.
                return Outcome { error: (!namespace_terminating(&e)).then_some(e) };
            }
            batch = size * 2;
        }
        Outcome::default()
    }

    async fn create_one(&self, rs: &ReplicaSet, template: &Pod) -> Result<Pod, kube::Error> {
        match self.api.create(&PostParams::default(), template).await {
            Ok(pod) => {
                let msg = format!("Created pod: {}", pod.name_any());
                self.recorder.record(&reference(rs), EventType::Normal, "SuccessfulCreate", &msg).await;
                Ok(pod)
            }
            Err(e) => {
                self.recorder
                    .record(
                        &reference(rs),
                        EventType::Warning,
                        "FailedCreate",
                        &format!("Error creating: {}", status_message(&e)),
                    )
                    .await;
                Err(e)
            }
        }
    }

    async fn delete(&self, rs: &ReplicaSet, doomed: Vec<Arc<Pod>>) -> Outcome {
        tracing::info!(count = doomed.len(), "deleting pods");
        self.expectations.expect_deletions(self.key, doomed.iter().map(|p| pod_key(p.as_ref())));
        let results = join_all(doomed.iter().map(|pod| async move {
            let name = pod.name_any();
            match self.api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {
                    let msg = format!("Deleted pod: {name}");
                    self.recorder.record(&reference(rs), EventType::Normal, "SuccessfulDelete", &msg).await;
                    Ok(())
                }
                Err(kube::Error::Api(s)) if s.is_not_found() => {
                    // Already gone: its deletion may have been observed before it was expected.
                    self.expectations.deletion_observed(self.key, &pod_key(pod.as_ref()));
                    Ok(())
                }
                Err(e) => {
                    let msg = format!("Error deleting: {}", status_message(&e));
                    self.recorder.record(&reference(rs), EventType::Warning, "FailedDelete", &msg).await;
                    Err(e)
                }
            }
        }))
        .await;
        let mut outcome = Outcome::default();
        for (pod, r) in doomed.iter().zip(results) {
            if let Err(e) = r {
                // The pod stays: its deletion will never be observed.
                self.expectations.deletion_observed(self.key, &pod_key(pod.as_ref()));
                outcome.error.get_or_insert(e);
            }
        }
        outcome
    }
}

/// A pod of `rs` (upstream `GetPodFromTemplate`): the template's labels, annotations, finalizers
/// and spec; named `<rs>-<random>` by the server; controlled by the ReplicaSet.
pub fn pod_from_template(rs: &ReplicaSet) -> Pod {
    let template = rs.spec.as_ref().and_then(|s| s.template.clone()).unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", rs.name_any())),
            namespace: rs.namespace(),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![api::owner::controller_ref(rs)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_carry_template_and_controller_reference() {
        let rs: ReplicaSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-5d4f8d6c9b", "namespace": "ns", "uid": "u1"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}, "annotations": {"x": "y"}},
                                  "spec": {"containers": [{"name": "c", "image": "i:1"}]}}},
        }))
        .unwrap();
        let pod = pod_from_template(&rs);
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-5d4f8d6c9b-"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(pod.labels().get("app").map(String::as_str), Some("web"));
        assert_eq!(pod.annotations().get("x").map(String::as_str), Some("y"));
        let r = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((r.kind.as_str(), r.name.as_str(), r.uid.as_str()), ("ReplicaSet", "web-5d4f8d6c9b", "u1"));
        assert_eq!((r.controller, r.block_owner_deletion), (Some(true), Some(true)));
        assert_eq!(pod.spec.unwrap().containers[0].image.as_deref(), Some("i:1"));
    }
}
