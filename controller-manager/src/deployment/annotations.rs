//! The annotations a Deployment keeps on its ReplicaSets (upstream `deploymentutil`):
//! `deployment.kubernetes.io/revision` (and `revision-history` when a ReplicaSet comes back by a
//! rollback), `desired-replicas` and `max-replicas` (for proportional scaling), and a copy of the
//! Deployment's own annotations — which is how `kubectl rollout history` shows change causes.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
/// Upstream's `maxRevHistoryLengthInChars`.
const MAX_HISTORY_CHARS: usize = 2000;

fn skip_copy(key: &str) -> bool {
    matches!(key, LAST_APPLIED | REVISION | REVISION_HISTORY | DESIRED_REPLICAS | MAX_REPLICAS | ROLLBACK_TO)
}

/// The revision of a ReplicaSet (0 when missing or not a number).
pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata.annotations.as_ref().and_then(|a| a.get(REVISION)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The highest revision among `rss`.
pub fn max_revision<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    rss.into_iter().map(revision).max().unwrap_or(0)
}

fn int_annotation(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata.annotations.as_ref()?.get(key)?.parse().ok()
}

pub fn desired_replicas(rs: &ReplicaSet) -> Option<i32> {
    int_annotation(rs, DESIRED_REPLICAS)
}

pub fn max_replicas(rs: &ReplicaSet) -> Option<i32> {
    int_annotation(rs, MAX_REPLICAS)
}

/// Sets `desired-replicas` and `max-replicas`; true when they changed.
pub fn set_replicas(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired.to_string()), (MAX_REPLICAS, max.to_string())] {
        if a.get(k) != Some(&v) {
            a.insert(k.to_string(), v);
            changed = true;
        }
    }
    changed
}

/// Whether `set_replicas` would change something.
pub fn replicas_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    desired_replicas(rs) != Some(desired) || max_replicas(rs) != Some(max)
}

/// `SetNewReplicaSetAnnotations`: copies the Deployment's annotations, raises the revision to
/// `new_revision` (recording the old one in `revision-history` when it had one — a rollback), and
/// for a ReplicaSet about to be created sets the replica annotations. True when anything changed.
pub fn set_new_rs(d: &Deployment, rs: &mut ReplicaSet, new_revision: i64, exists: bool, max_surge: i32) -> bool {
    let mut changed = false;
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if skip_copy(k) || annotations.get(k) == Some(v) {
            continue;
        }
        annotations.insert(k.clone(), v.clone());
        changed = true;
    }
    let old = annotations.get(REVISION).cloned();
    let old_revision = match old.as_deref().map(str::parse::<i64>) {
        None => 0,
        Some(Ok(n)) => n,
        // Upstream leaves a ReplicaSet with a garbled revision alone.
        Some(Err(_)) => return changed,
    };
    if old_revision < new_revision {
        annotations.insert(REVISION.to_string(), new_revision.to_string());
        changed = true;
        if let Some(old) = old {
            let history = annotations.get(REVISION_HISTORY).cloned().unwrap_or_default();
            if let Some(h) = append_history(&history, &old) {
                annotations.insert(REVISION_HISTORY.to_string(), h);
            }
        }
    }
    if !exists {
        let desired = super::fenceposts::replicas(d);
        changed |= set_replicas(rs, desired, desired + max_surge);
    }
    changed
}

/// Appends `old` to a comma-separated history, dropping the oldest entries beyond the limit.
fn append_history(history: &str, old: &str) -> Option<String> {
    if history.is_empty() {
        return Some(old.to_string());
    }
    let entries: Vec<&str> = history.split(',').collect();
    let mut total = history.len() + old.len() + 1;
    let mut start = 0;
    while total > MAX_HISTORY_CHARS && start < entries.len() {
        total -= entries[start].len() + 1;
        start += 1;
    }
    if total > MAX_HISTORY_CHARS {
        return None;
    }
    let mut kept: Vec<&str> = entries[start..].to_vec();
    kept.push(old);
    Some(kept.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(annotations: serde_json::Value) -> ReplicaSet {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "r", "annotations": annotations}})).unwrap()
    }

    fn deployment(annotations: serde_json::Value) -> Deployment {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "d", "annotations": annotations},
            "spec": {"replicas": 4, "selector": {}, "template": {}}}))
        .unwrap()
    }

    #[test]
    fn new_replica_set_annotations() {
        let d = deployment(serde_json::json!({"kubernetes.io/change-cause": "v2", REVISION: "7", LAST_APPLIED: "{}"}));
        let mut r = rs(serde_json::json!({}));
        assert!(set_new_rs(&d, &mut r, 3, false, 1));
        let a = r.metadata.annotations.unwrap();
        assert_eq!(a.get("kubernetes.io/change-cause").map(String::as_str), Some("v2"));
        assert_eq!(a.get(REVISION).map(String::as_str), Some("3"), "the deployment's revision is not copied");
        assert!(!a.contains_key(LAST_APPLIED));
        assert_eq!((a[DESIRED_REPLICAS].as_str(), a[MAX_REPLICAS].as_str()), ("4", "5"));
        assert!(!a.contains_key(REVISION_HISTORY));
    }

    #[test]
    fn rollback_bumps_revision_and_keeps_history() {
        let d = deployment(serde_json::json!({}));
        let mut r = rs(serde_json::json!({REVISION: "1"}));
        assert!(set_new_rs(&d, &mut r, 3, true, 0));
        assert_eq!(revision(&r), 3);
        assert_eq!(r.metadata.annotations.as_ref().unwrap()[REVISION_HISTORY], "1");
        assert!(set_new_rs(&d, &mut r, 5, true, 0));
        assert_eq!(r.metadata.annotations.as_ref().unwrap()[REVISION_HISTORY], "1,3");
        assert!(!set_new_rs(&d, &mut r, 4, true, 0), "never lowers a revision");
        assert_eq!(max_revision([&r, &rs(serde_json::json!({REVISION: "9"}))]), 9);
    }

    #[test]
    fn history_is_bounded() {
        let long = vec!["1234567890"; 182].join(","); // 2001 chars
        let h = append_history(&long, "42").unwrap();
        assert!(h.len() <= MAX_HISTORY_CHARS && h.ends_with(",42"), "{}", h.len());
    }
}
