//! The controller's own pod writes that the shared cache has not shown yet — the role of
//! upstream's "expectations". Pods it created count as existing and pods it deleted as gone until
//! the cache agrees, so a reconcile that runs on a stale cache neither creates nor deletes twice,
//! and the status it writes already reflects its own changes (the shared watch does not deliver
//! deletions, so no later event would correct it). Entries expire after upstream's expectations
//! timeout in case the cache never agrees (a pod created and deleted again before it was seen).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{ObjectRef, Store};

use super::pods;

const EXPIRY: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Writes {
    /// Created pods by name, with the object the API returned.
    created: HashMap<String, (Arc<Pod>, Instant)>,
    /// Deleted pods by uid, with their name.
    deleted: HashMap<String, (String, Instant)>,
}

/// Per ReplicaSet (keyed by uid), the writes not yet seen in the cache.
#[derive(Default, Clone)]
pub struct Overlay {
    inner: Arc<Mutex<HashMap<String, Writes>>>,
}

impl Overlay {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Writes>) -> R) -> R {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    pub fn created(&self, rs_uid: &str, pod: Pod) {
        let Some(name) = pod.metadata.name.clone() else { return };
        self.with(|m| m.entry(rs_uid.to_string()).or_default().created.insert(name, (Arc::new(pod), Instant::now())));
    }

    pub fn deleted(&self, rs_uid: &str, pod: &Pod) {
        let (Some(uid), Some(name)) = (pod.metadata.uid.clone(), pod.metadata.name.clone()) else { return };
        self.with(|m| m.entry(rs_uid.to_string()).or_default().deleted.insert(uid, (name, Instant::now())));
    }

    /// Forgets, for `rs_uid`, what the snapshot `active` (listed from the cache by this reconcile)
    /// already shows, and what expired. Judged against the snapshot, not the live cache: a pod that
    /// reaches the cache after the snapshot was taken must still be counted from the overlay, or it
    /// would be counted nowhere and created twice.
    fn settle(&self, rs_uid: &str, namespace: &str, store: &Store<Pod>, active: &[Arc<Pod>]) {
        let in_snapshot = |uid: Option<&String>| active.iter().any(|p| p.metadata.uid.as_ref() == uid);
        self.with(|m| {
            m.retain(|_, w| {
                w.created.retain(|_, (_, at)| at.elapsed() < EXPIRY);
                w.deleted.retain(|_, (_, at)| at.elapsed() < EXPIRY);
                !w.created.is_empty() || !w.deleted.is_empty()
            });
            let Some(w) = m.get_mut(rs_uid) else { return };
            w.created.retain(|name, (pod, _)| {
                if in_snapshot(pod.metadata.uid.as_ref()) {
                    return false;
                }
                // Not in the snapshot: keep counting it unless the cache already shows it inactive.
                let cached = store.get(&ObjectRef::new(name).within(namespace));
                cached.is_none_or(|c| c.metadata.uid != pod.metadata.uid || pods::is_active(&c))
            });
            // A deleted pod stays hidden while the snapshot still lists it as active.
            w.deleted.retain(|uid, _| in_snapshot(Some(uid)));
        });
    }

    /// The active pods as the controller believes them: the cache's, minus what it deleted, plus
    /// what it created and the cache does not show yet.
    pub fn apply(&self, rs_uid: &str, namespace: &str, store: &Store<Pod>, active: Vec<Arc<Pod>>) -> Vec<Arc<Pod>> {
        self.settle(rs_uid, namespace, store, &active);
        self.with(|m| {
            let Some(w) = m.get(rs_uid) else { return active };
            let mut out: Vec<Arc<Pod>> = active
                .into_iter()
                .filter(|p| p.metadata.uid.as_ref().is_none_or(|u| !w.deleted.contains_key(u)))
                .collect();
            out.extend(w.created.values().map(|(p, _)| p.clone()));
            out
        })
    }
}
