//! The Events a pod's worker records about it, as upstream's kubelet words them (Pulling,
//! Pulled, Created, Started, Killing, Unhealthy, BackOff, Failed ...). Recording never blocks
//! or fails the worker: each Event is written by a task of its own, and the recorder folds
//! repeats into one Event's `count`.

use api::events::{EventType, Recorder};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};

/// Writes Events about one pod (and its containers, by field path).
#[derive(Clone)]
pub struct PodEvents {
    recorder: Option<Recorder>,
    pod: ObjectReference,
}

/// The field path of a container in the pod spec (`spec.containers{web}`), as events name it.
pub fn field_path(pod: &Pod, container: &str) -> String {
    let init = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|list| list.iter().any(|c| c.name == container));
    if init {
        format!("spec.initContainers{{{container}}}")
    } else {
        format!("spec.containers{{{container}}}")
    }
}

impl PodEvents {
    /// Events about `pod`; with no recorder (unit tests, hollow fleets) nothing is written.
    pub fn new(recorder: Option<Recorder>, pod: &Pod) -> Self {
        PodEvents { recorder, pod: api::events::reference(pod) }
    }

    pub fn normal(&self, field_path: Option<String>, reason: &str, message: impl Into<String>) {
        self.emit(field_path, EventType::Normal, reason, message.into());
    }

    pub fn warning(&self, field_path: Option<String>, reason: &str, message: impl Into<String>) {
        self.emit(field_path, EventType::Warning, reason, message.into());
    }

    fn emit(&self, field_path: Option<String>, kind: EventType, reason: &str, message: String) {
        let Some(recorder) = self.recorder.clone() else { return };
        let mut object = self.pod.clone();
        object.field_path = field_path;
        let reason = reason.to_string();
        tokio::spawn(async move { recorder.record(&object, kind, &reason, &message).await });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    #[test]
    fn field_paths_name_the_list_a_container_is_in() {
        let pod = Pod {
            spec: Some(PodSpec {
                init_containers: Some(vec![Container { name: "setup".into(), ..Default::default() }]),
                containers: vec![Container { name: "web".into(), ..Default::default() }],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(field_path(&pod, "setup"), "spec.initContainers{setup}");
        assert_eq!(field_path(&pod, "web"), "spec.containers{web}");
    }
}
