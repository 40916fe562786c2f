//! Owner references: the one builder of a controller reference and the lookups every component
//! shares (upstream `metav1.NewControllerRef`, `metav1.GetControllerOf`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::{Metadata, Resource};

/// The controller reference to `owner` (`controller` and `blockOwnerDeletion` true), as a
/// controller sets it on the objects it creates.
pub fn controller_ref<K: Resource + Metadata<Ty = ObjectMeta>>(owner: &K) -> OwnerReference {
    let meta = owner.metadata();
    OwnerReference {
        api_version: K::API_VERSION.to_string(),
        kind: K::KIND.to_string(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A plain (non-controller) reference to `owner`, e.g. a Lease owned by its Node.
pub fn reference<K: Resource + Metadata<Ty = ObjectMeta>>(owner: &K) -> OwnerReference {
    OwnerReference { controller: None, block_owner_deletion: None, ..controller_ref(owner) }
}

/// The controller reference of an object, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.as_ref()?.iter().find(|r| r.controller == Some(true))
}

/// Whether `meta` has a controller reference to the object with this uid.
pub fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use k8s_openapi::api::core::v1::Pod;

    #[test]
    fn controller_references_name_the_owner_and_are_found_again() {
        let rs = ReplicaSet {
            metadata: ObjectMeta { name: Some("web".into()), uid: Some("u1".into()), ..Default::default() },
            ..Default::default()
        };
        let r = controller_ref(&rs);
        assert_eq!((r.api_version.as_str(), r.kind.as_str(), r.name.as_str()), ("apps/v1", "ReplicaSet", "web"));
        assert_eq!((r.controller, r.block_owner_deletion), (Some(true), Some(true)));
        let plain = reference(&rs);
        assert_eq!((plain.controller, plain.uid.as_str()), (None, "u1"));
        let pod = Pod {
            metadata: ObjectMeta { owner_references: Some(vec![plain, r]), ..Default::default() },
            ..Default::default()
        };
        assert_eq!(controller_of(&pod.metadata).map(|r| r.uid.as_str()), Some("u1"));
        assert!(is_controlled_by(&pod.metadata, "u1"));
        assert!(!is_controlled_by(&pod.metadata, "u2"));
        assert!(controller_of(&ObjectMeta::default()).is_none());
    }
}
