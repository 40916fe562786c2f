//! The owner→dependents graph (upstream `graph.go`): one node per object of the kinds the
//! collector follows, keyed for the work queue, plus indexes from a uid to its node and from an
//! owner's uid to the nodes that name it in `ownerReferences`.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use client_runtime::ObjectRef;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::core::{ApiResource, DynamicResourceScope};

pub const ORPHAN: &str = "orphan";
pub const FOREGROUND: &str = "foregroundDeletion";

/// The kinds whose objects are in the graph (as dependents and as owners).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Pod,
    ReplicaSet,
    Deployment,
    DaemonSet,
    Job,
    CronJob,
    Service,
    EndpointSlice,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Pod,
        Kind::ReplicaSet,
        Kind::Deployment,
        Kind::DaemonSet,
        Kind::Job,
        Kind::CronJob,
        Kind::Service,
        Kind::EndpointSlice,
    ];

    pub fn api_resource(self) -> ApiResource {
        match self {
            Kind::Pod => ApiResource::erase::<Pod>(&()),
            Kind::ReplicaSet => ApiResource::erase::<ReplicaSet>(&()),
            Kind::Deployment => ApiResource::erase::<Deployment>(&()),
            Kind::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
            Kind::Job => ApiResource::erase::<Job>(&()),
            Kind::CronJob => ApiResource::erase::<CronJob>(&()),
            Kind::Service => ApiResource::erase::<Service>(&()),
            Kind::EndpointSlice => ApiResource::erase::<EndpointSlice>(&()),
        }
    }

    /// The kind an owner reference names, when it is one of ours (group/version must match).
    pub fn of(api_version: &str, kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| {
            let ar = k.api_resource();
            ar.api_version == api_version && ar.kind == kind
        })
    }
}

/// One object in the graph: what the collector needs of it. Changes to anything else (status,
/// labels, resourceVersion) leave the node equal, so they cause no work.
///
/// `meta.name` is the work-queue key `Kind/name` (the queue keys objects by namespace and name,
/// so the kind must be part of the name); the object's own name is [`Item::name`].
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub kind: Kind,
    pub name: String,
    meta: ObjectMeta,
}

impl kube::Resource for Item {
    type DynamicType = ();
    type Scope = DynamicResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("GraphNode")
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("gc.skiff.internal")
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("graphnodes")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

/// The queue key of an object of `kind`.
pub fn key(kind: Kind, namespace: Option<&str>, name: &str) -> ObjectRef<Item> {
    let r = ObjectRef::new(&format!("{kind:?}/{name}"));
    match namespace {
        Some(ns) => r.within(ns),
        None => r,
    }
}

impl Item {
    /// The graph node of an object; `None` for an object without name or uid.
    pub fn new(kind: Kind, meta: &ObjectMeta) -> Option<Item> {
        let name = meta.name.clone()?;
        meta.uid.as_ref()?;
        Some(Item {
            kind,
            meta: ObjectMeta {
                name: Some(format!("{kind:?}/{name}")),
                namespace: meta.namespace.clone(),
                uid: meta.uid.clone(),
                owner_references: meta.owner_references.clone(),
                deletion_timestamp: meta.deletion_timestamp.clone(),
                finalizers: meta.finalizers.clone(),
                ..Default::default()
            },
            name,
        })
    }

    pub fn key(&self) -> ObjectRef<Item> {
        key(self.kind, self.namespace(), &self.name)
    }
    pub fn uid(&self) -> &str {
        self.meta.uid.as_deref().unwrap_or_default()
    }
    pub fn namespace(&self) -> Option<&str> {
        self.meta.namespace.as_deref()
    }
    pub fn owners(&self) -> &[OwnerReference] {
        self.meta.owner_references.as_deref().unwrap_or_default()
    }
    pub fn deleting(&self) -> bool {
        self.meta.deletion_timestamp.is_some()
    }
    pub fn has_finalizer(&self, f: &str) -> bool {
        self.meta.finalizers.as_ref().is_some_and(|fs| fs.iter().any(|x| x == f))
    }
    /// Being deleted in the foreground: waiting for its blocking dependents to go.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting() && self.has_finalizer(FOREGROUND)
    }
    /// Whether this object names `owner_uid` as an owner that must wait for it.
    pub fn blocks(&self, owner_uid: &str) -> bool {
        self.owners().iter().any(|r| r.uid == owner_uid && r.block_owner_deletion == Some(true))
    }
    pub fn describe(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{:?} {ns}/{}", self.kind, self.name),
            None => format!("{:?} {}", self.kind, self.name),
        }
    }
}

/// uid → node and owner uid → dependents.
#[derive(Debug, Default)]
pub struct Index {
    by_uid: HashMap<String, ObjectRef<Item>>,
    dependents: HashMap<String, HashSet<ObjectRef<Item>>>,
}

impl Index {
    pub fn insert(&mut self, item: &Item) {
        let key = item.key();
        self.by_uid.insert(item.uid().to_string(), key.clone());
        for owner in item.owners() {
            self.dependents.entry(owner.uid.clone()).or_default().insert(key.clone());
        }
    }

    pub fn remove(&mut self, item: &Item) {
        let key = item.key();
        if self.by_uid.get(item.uid()) == Some(&key) {
            self.by_uid.remove(item.uid());
        }
        for owner in item.owners() {
            if let Some(deps) = self.dependents.get_mut(&owner.uid) {
                deps.remove(&key);
                if deps.is_empty() {
                    self.dependents.remove(&owner.uid);
                }
            }
        }
    }

    /// The node of the object with this uid, if it is in the graph.
    pub fn by_uid(&self, uid: &str) -> Option<ObjectRef<Item>> {
        self.by_uid.get(uid).cloned()
    }

    /// The nodes naming `owner_uid` as an owner.
    pub fn dependents(&self, owner_uid: &str) -> Vec<ObjectRef<Item>> {
        self.dependents.get(owner_uid).map(|d| d.iter().cloned().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn meta(name: &str, uid: &str, owners: &[(&str, bool)]) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            uid: Some(uid.into()),
            owner_references: Some(
                owners
                    .iter()
                    .map(|(u, block)| OwnerReference {
                        api_version: "apps/v1".into(),
                        kind: "ReplicaSet".into(),
                        name: format!("owner-{u}"),
                        uid: u.to_string(),
                        block_owner_deletion: Some(*block),
                        controller: Some(true),
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn keys_separate_kinds_of_one_name() {
        let pod = Item::new(Kind::Pod, &meta("web", "u1", &[])).unwrap();
        let rs = Item::new(Kind::ReplicaSet, &meta("web", "u2", &[])).unwrap();
        assert_ne!(pod.key(), rs.key());
        assert_eq!(pod.key(), key(Kind::Pod, Some("ns"), "web"));
        assert_eq!(pod.name, "web");
        assert!(Item::new(Kind::Pod, &ObjectMeta { name: Some("x".into()), ..Default::default() }).is_none());
    }

    #[test]
    fn index_follows_owner_changes() {
        let mut index = Index::default();
        let a = Item::new(Kind::Pod, &meta("a", "pa", &[("rs1", true)])).unwrap();
        let b = Item::new(Kind::Pod, &meta("b", "pb", &[("rs1", false), ("rs2", true)])).unwrap();
        index.insert(&a);
        index.insert(&b);
        let mut deps = index.dependents("rs1");
        deps.sort_by(|x, y| x.name.cmp(&y.name));
        assert_eq!(deps, vec![a.key(), b.key()]);
        assert_eq!(index.dependents("rs2"), vec![b.key()]);
        assert_eq!(index.by_uid("pa"), Some(a.key()));
        assert!(a.blocks("rs1") && !b.blocks("rs1") && b.blocks("rs2"));
        // b is orphaned from rs1: re-index with its new owners.
        let b2 = Item::new(Kind::Pod, &meta("b", "pb", &[("rs2", true)])).unwrap();
        index.remove(&b);
        index.insert(&b2);
        assert_eq!(index.dependents("rs1"), vec![a.key()]);
        index.remove(&a);
        assert!(index.dependents("rs1").is_empty());
        assert_eq!(index.by_uid("pa"), None);
        // A recreated object with the same name but a new uid keeps the new uid's entry.
        let a2 = Item::new(Kind::Pod, &meta("a", "pa2", &[])).unwrap();
        index.insert(&a2);
        index.remove(&a);
        assert_eq!(index.by_uid("pa2"), Some(a2.key()));
    }

    #[test]
    fn owner_kinds() {
        assert_eq!(Kind::of("apps/v1", "ReplicaSet"), Some(Kind::ReplicaSet));
        assert_eq!(Kind::of("v1", "Service"), Some(Kind::Service));
        assert_eq!(Kind::of("discovery.k8s.io/v1", "EndpointSlice"), Some(Kind::EndpointSlice));
        assert_eq!(Kind::of("extensions/v1beta1", "ReplicaSet"), None);
        assert_eq!(Kind::of("v1", "ConfigMap"), None);
    }
}
