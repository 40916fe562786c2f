//! Per-kind rules the generic write and delete paths apply, as upstream's registry strategies
//! do (`PrepareForCreate`, `PrepareForUpdate`, `CheckGracefulDelete`, `DefaultGarbageCollectionPolicy`,
//! `ReturnDeletedObject`): which kinds keep `status` apart (status subresource), which track
//! `metadata.generation`, what a create or an update resets, which writes allocate Service
//! addresses, and how a delete goes. The handlers ask [`of`] for a kind's [`Strategy`] and never
//! test kinds themselves.
//!
//! The per-kind rules live beside this table: `pod.rs`, `service.rs`, `namespace.rs`.

mod namespace;
mod pod;
mod service;

use serde_json::{json, Map, Value};

use api::ResourceInfo;

/// What happens to an object's dependents when a delete names no propagation policy
/// (upstream's `rest.GarbageCollectionPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcPolicy {
    /// The garbage collector deletes the dependents (in the background).
    DeleteDependents,
    /// The dependents are orphaned.
    OrphanDependents,
}

/// What a create does with the `status` the client sent.
#[derive(Debug, Clone, Copy)]
enum StatusOnCreate {
    /// Kept as sent.
    Keep,
    /// Dropped: it is written only through the status subresource.
    Reset,
    /// Replaced by the kind's initial status, computed from the new object.
    Initial(fn(&Value) -> Value),
}

/// One kind's rules. Built by [`of`]; everything not named there is the generic behaviour.
#[derive(Debug, Clone, Copy)]
pub struct Strategy {
    /// `status` is written only through the status subresource: a main-resource update keeps
    /// the stored one.
    status_subresource: bool,
    status_on_create: StatusOnCreate,
    /// `metadata.generation` counts spec changes: 1 on create, one more per changed spec.
    tracks_generation: bool,
    /// What an update carries over from the stored object besides system metadata and status.
    carry_over_on_update: Option<fn(&mut Value, &Value)>,
    /// Writes allocate ClusterIPs and NodePorts (give back what a failed write took, release what
    /// an update dropped); the object's deletion releases all it held.
    pub allocates_service_addresses: bool,
    /// Dependents' fate when the delete names no policy.
    pub gc_policy: GcPolicy,
    /// A delete that removes the object answers with the object, not a success Status.
    pub returns_deleted_object: bool,
    /// The grace period of a delete (the request's, if any, is the second argument); none
    /// means the object goes at once.
    graceful_delete: Option<fn(&Value, Option<i64>) -> i64>,
    /// `spec.finalizers` hold the object too (a Namespace's).
    spec_finalizers: bool,
    /// What a delete that only marks the object (grace period or finalizers) also changes.
    on_graceful_delete: Option<fn(&mut Value)>,
    /// Names that may not be deleted.
    immortal: &'static [&'static str],
}

/// The strategy of the resource's kind.
pub fn of(res: &ResourceInfo) -> Strategy {
    let status_subresource = res.subresource("status").is_some();
    let generic = Strategy {
        status_subresource,
        status_on_create: if status_subresource { StatusOnCreate::Reset } else { StatusOnCreate::Keep },
        tracks_generation: false,
        carry_over_on_update: None,
        allocates_service_addresses: false,
        gc_policy: GcPolicy::DeleteDependents,
        returns_deleted_object: false,
        graceful_delete: None,
        spec_finalizers: false,
        on_graceful_delete: None,
        immortal: &[],
    };
    match res.kind {
        "Pod" => Strategy {
            status_on_create: StatusOnCreate::Initial(pod::initial_status),
            returns_deleted_object: true,
            graceful_delete: Some(pod::grace_period),
            ..generic
        },
        "Service" => Strategy {
            status_on_create: StatusOnCreate::Initial(service::initial_status),
            carry_over_on_update: Some(service::patch_allocated_values),
            allocates_service_addresses: true,
            returns_deleted_object: true,
            ..generic
        },
        "Namespace" => Strategy {
            status_on_create: StatusOnCreate::Initial(namespace::initial_status),
            spec_finalizers: true,
            on_graceful_delete: Some(namespace::set_terminating),
            immortal: &namespace::IMMORTAL,
            ..generic
        },
        // A node reports its status from its first write.
        "Node" => Strategy { status_on_create: StatusOnCreate::Keep, ..generic },
        "Deployment" | "ReplicaSet" | "DaemonSet" | "CronJob" => Strategy { tracks_generation: true, ..generic },
        // batch/v1 Jobs orphan their pods by default, for backward compatibility (upstream).
        "Job" => Strategy { tracks_generation: true, gc_policy: GcPolicy::OrphanDependents, ..generic },
        _ => generic,
    }
}

fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    obj.get_mut("metadata").and_then(Value::as_object_mut)
}

impl Strategy {
    /// System metadata of a new object: uid, creationTimestamp, generation; client-set system
    /// fields dropped. Status reset as upstream's PrepareForCreate.
    pub fn prepare_for_create(&self, obj: &mut Value, uid: &str, now: &str) {
        if let Some(meta) = meta_mut(obj) {
            meta.insert("uid".into(), json!(uid));
            meta.insert("creationTimestamp".into(), json!(now));
            for f in ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"] {
                meta.remove(f);
            }
            if self.tracks_generation {
                meta.insert("generation".into(), json!(1));
            } else {
                meta.remove("generation");
            }
        }
        let status = match self.status_on_create {
            StatusOnCreate::Keep => return,
            StatusOnCreate::Reset => None,
            StatusOnCreate::Initial(initial) => Some(initial(obj)),
        };
        let Some(o) = obj.as_object_mut() else { return };
        match status {
            Some(s) => {
                o.insert("status".into(), s);
            }
            None => {
                o.remove("status");
            }
        }
    }

    /// Carries over what a main-resource update may not change: system metadata (generation
    /// included: [`Strategy::update_generation`] bumps it once the new object is defaulted) and,
    /// for kinds with a status subresource, the status; then what the kind itself carries over
    /// (a Service's allocated values), so that defaulting sees what upstream's sees.
    pub fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        let old_meta = old.get("metadata").cloned().unwrap_or(Value::Null);
        if let Some(meta) = meta_mut(new) {
            for f in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"] {
                match old_meta.get(f) {
                    Some(v) => {
                        meta.insert(f.into(), v.clone());
                    }
                    None => {
                        meta.remove(f);
                    }
                }
            }
            meta.remove("selfLink");
            if !meta.contains_key("managedFields") {
                if let Some(mf) = old_meta.get("managedFields") {
                    meta.insert("managedFields".into(), mf.clone());
                }
            }
        }
        if self.status_subresource {
            if let Some(o) = new.as_object_mut() {
                match old.get("status") {
                    Some(s) => {
                        o.insert("status".into(), s.clone());
                    }
                    None => {
                        o.remove("status");
                    }
                }
            }
        }
        if let Some(carry_over) = self.carry_over_on_update {
            carry_over(new, old);
        }
    }

    /// After defaulting, as upstream (which defaults when decoding, before the strategy compares):
    /// `metadata.generation` goes up by one when the defaulted spec differs from the stored one,
    /// so an update that only drops fields the server defaults changes nothing.
    pub fn update_generation(&self, new: &mut Value, old: &Value) {
        if !self.tracks_generation || new.get("spec") == old.get("spec") {
            return;
        }
        let g = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0) + 1;
        if let Some(meta) = meta_mut(new) {
            meta.insert("generation".into(), json!(g));
        }
    }

    /// Finalizers that keep an object from going away: `metadata.finalizers`, and for a
    /// Namespace also `spec.finalizers`.
    pub fn has_finalizers(&self, obj: &Value) -> bool {
        let non_empty = |p: &str| obj.pointer(p).and_then(Value::as_array).map(|a| !a.is_empty()).unwrap_or(false);
        non_empty("/metadata/finalizers") || (self.spec_finalizers && non_empty("/spec/finalizers"))
    }

    /// The grace period a delete gives the object (upstream's CheckGracefulDelete): 0 (gone at
    /// once) unless the kind deletes gracefully (pods on a node).
    pub fn grace_period(&self, obj: &Value, requested: Option<i64>) -> i64 {
        self.graceful_delete.map(|grace| grace(obj, requested)).unwrap_or(0)
    }

    /// What a delete that keeps the object for now (a grace period, or finalizers) changes besides
    /// the deletion timestamp: a Namespace goes to phase Terminating.
    pub fn prepare_for_graceful_delete(&self, obj: &mut Value) {
        if let Some(mark) = self.on_graceful_delete {
            mark(obj);
        }
    }

    /// Whether the object named `name` is one the server itself needs (upstream's
    /// NamespaceLifecycle "immortal" namespaces), which no delete may remove.
    pub fn is_immortal(&self, name: &str) -> bool {
        self.immortal.contains(&name)
    }
}

/// A status-subresource write: the old object with only `status` taken from `new`.
pub fn prepare_for_status_update(new: &Value, old: &Value) -> Value {
    let mut out = old.clone();
    if let Some(o) = out.as_object_mut() {
        match new.get("status") {
            Some(s) => {
                o.insert("status".into(), s.clone());
            }
            None => {
                o.remove("status");
            }
        }
        if let (Some(meta), Some(new_rv)) =
            (o.get_mut("metadata").and_then(Value::as_object_mut), new.pointer("/metadata/resourceVersion"))
        {
            meta.insert("resourceVersion".into(), new_rv.clone());
        }
    }
    out
}

/// A `finalize`-subresource write (namespaces): the old object with only `spec.finalizers`
/// taken from `new`.
pub fn prepare_for_finalize_update(new: &Value, old: &Value) -> Value {
    let mut out = old.clone();
    let finalizers = new.pointer("/spec/finalizers").cloned().unwrap_or_else(|| json!([]));
    if let Some(o) = out.as_object_mut() {
        let spec = o.entry("spec").or_insert_with(|| json!({}));
        match spec.as_object_mut() {
            Some(s) => {
                s.insert("finalizers".into(), finalizers);
            }
            None => *spec = json!({"finalizers": finalizers}),
        }
    }
    out
}

pub use namespace::is_terminating as namespace_is_terminating;

/// Whether the object is marked for deletion (`metadata.deletionTimestamp` set).
pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").map(|v| !v.is_null()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(api_version: &str, kind: &str) -> Strategy {
        let Some(res) = api::resources::by_kind(api_version, kind) else { panic!("{kind} not registered") };
        of(res)
    }

    #[test]
    fn update_bumps_generation_only_on_spec_change() {
        let st = strategy("apps/v1", "Deployment");
        let old =
            json!({"metadata":{"name":"d","uid":"u","generation":3},"spec":{"replicas":1},"status":{"replicas":1}});
        let mut new = json!({"metadata":{"name":"d","labels":{"a":"b"}},"spec":{"replicas":1},"status":{"replicas":9}});
        st.prepare_for_update(&mut new, &old);
        st.update_generation(&mut new, &old);
        assert_eq!(new["metadata"]["generation"], 3);
        assert_eq!(new["metadata"]["uid"], "u");
        assert_eq!(new["status"]["replicas"], 1, "status comes from the old object");
        let mut new = json!({"metadata":{"name":"d"},"spec":{"replicas":2}});
        st.prepare_for_update(&mut new, &old);
        assert_eq!(new["metadata"]["generation"], 3, "not bumped before defaulting");
        st.update_generation(&mut new, &old);
        assert_eq!(new["metadata"]["generation"], 4);
    }

    #[test]
    fn create_sets_system_fields_and_initial_status() {
        let mut pod = json!({"metadata":{"name":"p","resourceVersion":"7","generation":5},
            "spec":{"containers":[{"name":"a"}]},"status":{"phase":"Running"}});
        strategy("v1", "Pod").prepare_for_create(&mut pod, "u", "2026-01-01T00:00:00Z");
        assert_eq!(pod["metadata"]["uid"], "u");
        assert_eq!(pod["metadata"].get("resourceVersion"), None);
        assert_eq!(pod["metadata"].get("generation"), None);
        assert_eq!(pod["status"], json!({"phase": "Pending", "qosClass": "BestEffort"}));
        let mut ns = json!({"metadata":{"name":"n"}});
        strategy("v1", "Namespace").prepare_for_create(&mut ns, "u", "now");
        assert_eq!(ns["status"], json!({"phase": "Active"}));
        let mut svc = json!({"metadata":{"name":"s"},"status":{"x":1}});
        strategy("v1", "Service").prepare_for_create(&mut svc, "u", "now");
        assert_eq!(svc["status"], json!({"loadBalancer": {}}));
        let mut node = json!({"metadata":{"name":"n"},"status":{"capacity":{"cpu":"1"}}});
        strategy("v1", "Node").prepare_for_create(&mut node, "u", "now");
        assert_eq!(node["status"]["capacity"]["cpu"], "1", "a node keeps the status it was created with");
        let mut d = json!({"metadata":{"name":"d"},"status":{"replicas":3}});
        strategy("apps/v1", "Deployment").prepare_for_create(&mut d, "u", "now");
        assert_eq!(d.get("status"), None, "status is written through the subresource");
        assert_eq!(d["metadata"]["generation"], 1);
        let mut cm = json!({"metadata":{"name":"c"},"data":{}});
        strategy("v1", "ConfigMap").prepare_for_create(&mut cm, "u", "now");
        assert_eq!(cm["data"], json!({}));
    }

    #[test]
    fn delete_rules_per_kind() {
        assert_eq!(strategy("batch/v1", "Job").gc_policy, GcPolicy::OrphanDependents);
        assert_eq!(strategy("apps/v1", "ReplicaSet").gc_policy, GcPolicy::DeleteDependents);
        assert!(strategy("v1", "Pod").returns_deleted_object);
        assert!(strategy("v1", "Service").returns_deleted_object);
        assert!(!strategy("v1", "ConfigMap").returns_deleted_object);
        assert!(strategy("v1", "Service").allocates_service_addresses);
        assert!(!strategy("v1", "Pod").allocates_service_addresses);
        let ns = strategy("v1", "Namespace");
        assert!(ns.is_immortal("kube-system"));
        assert!(!ns.is_immortal("kube-node-lease"));
        assert!(!strategy("v1", "ConfigMap").is_immortal("default"));
        let held = json!({"kind":"Namespace","spec":{"finalizers":["kubernetes"]}});
        assert!(ns.has_finalizers(&held));
        assert!(!strategy("v1", "ConfigMap").has_finalizers(&held), "only a namespace's spec finalizers count");
        let mut obj = json!({"metadata":{"name":"n"}});
        ns.prepare_for_graceful_delete(&mut obj);
        assert_eq!(obj["status"]["phase"], "Terminating");
        assert!(namespace_is_terminating(&obj));
        assert!(namespace_is_terminating(&json!({"metadata":{"deletionTimestamp":"2026-01-01T00:00:00Z"}})));
        assert!(!namespace_is_terminating(&json!({"status":{"phase":"Active"}})));
        let bound = json!({"spec":{"nodeName":"n"},"status":{"phase":"Running"}});
        assert_eq!(strategy("v1", "Pod").grace_period(&bound, None), 30);
        assert_eq!(strategy("v1", "ConfigMap").grace_period(&bound, Some(10)), 0);
    }

    #[test]
    fn finalize_takes_only_spec_finalizers() {
        let old =
            json!({"metadata":{"name":"n"},"spec":{"finalizers":["kubernetes"]},"status":{"phase":"Terminating"}});
        let new = json!({"metadata":{"name":"n","labels":{"a":"b"}},"spec":{},"status":{"phase":"Active"}});
        let out = prepare_for_finalize_update(&new, &old);
        assert_eq!(out["spec"]["finalizers"], json!([]));
        assert_eq!(out["status"]["phase"], "Terminating");
        assert_eq!(out["metadata"].get("labels"), None);
    }
}
