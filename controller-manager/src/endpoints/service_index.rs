//! Which Services a pod event concerns: those whose selector matches the pod now, and those it
//! matched when last seen (so a pod relabelled out of a Service, or deleted, still triggers it).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::runtime::reflector::{ObjectRef, Store};

use super::pods;

/// The Services each pod matched when last seen.
type Matched = HashMap<ObjectRef<Pod>, HashSet<ObjectRef<Service>>>;

/// Maps pod events to the Services to reconcile. Cheap to clone; clones share the memory.
#[derive(Clone)]
pub struct PodToServices {
    services: Store<Service>,
    pods: Store<Pod>,
    last: Arc<Mutex<Matched>>,
}

impl PodToServices {
    pub fn new(services: Store<Service>, pods: Store<Pod>) -> Self {
        PodToServices { services, pods, last: Arc::default() }
    }

    /// For a pod that changed, appeared, or is gone (no longer in the cache: the shared
    /// subscription passes on deletions with the pod's last state).
    pub fn services_of(&self, pod: Arc<Pod>) -> Vec<ObjectRef<Service>> {
        let key = ObjectRef::from_obj(pod.as_ref());
        let now: HashSet<_> = self
            .services
            .state()
            .iter()
            .filter(|s| pods::selects(s, &pod))
            .map(|s| ObjectRef::from_obj(s.as_ref()))
            .collect();
        let gone = self.pods.get(&key).is_none();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let before = if gone { last.remove(&key) } else { last.insert(key, now.clone()) };
        now.union(&before.unwrap_or_default()).cloned().collect()
    }
}
