//! Controller references: which objects a controller owns (upstream `ControllerRefManager`).
//! An object controlled by the owner whose labels still match stays; one that no longer matches is
//! released; an orphan that matches is adopted — unless the owner is being deleted. Adoption
//! re-reads the owner from the API first, so a stale cache never adopts for a deleted owner.

use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use api::selector::LabelSelector;

/// The controller claiming objects, as its ownerReference will name it.
#[derive(Debug, Clone)]
pub struct Owner {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    pub deleting: bool,
}

impl Owner {
    pub fn of<K: Resource<DynamicType = ()>>(obj: &K) -> Owner {
        let meta = obj.meta();
        Owner {
            api_version: K::api_version(&()).to_string(),
            kind: K::kind(&()).to_string(),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
        }
    }

    /// The controller ownerReference (controller and blockOwnerDeletion true), as
    /// [`api::owner::controller_ref`] builds it.
    pub fn reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }
}

/// The controller reference of an object, if any.
pub fn controller_of<K: Resource>(obj: &K) -> Option<&OwnerReference> {
    api::owner::controller_of(obj.meta())
}

/// Labels as the JSON map `LabelSelector::matches` takes.
pub fn label_map<K: Resource>(obj: &K) -> Map<String, Value> {
    obj.labels().iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect()
}

/// Whether `selector` selects `obj`.
pub fn selects<K: Resource>(selector: &LabelSelector, obj: &K) -> bool {
    selector.matches(Some(&label_map(obj)))
}

/// Claims `candidates` (objects of the owner's namespace) for `owner`: returns the objects it
/// controls afterwards. Adoptions and releases that fail are reported as the first error, after
/// every candidate has been handled; the objects already claimed are returned with it.
pub async fn claim<K, O>(
    api: &Api<K>,
    owner_api: &Api<O>,
    owner: &Owner,
    selector: &LabelSelector,
    candidates: Vec<Arc<K>>,
) -> (Vec<Arc<K>>, Option<kube::Error>)
where
    K: Resource + Clone + Debug + DeserializeOwned,
    O: Resource + Clone + Debug + DeserializeOwned,
{
    let mut claimed = Vec::new();
    let mut first_err = None;
    let mut can_adopt: Option<bool> = None;
    for obj in candidates {
        let result = match controller_of(obj.as_ref()) {
            Some(r) if r.uid != owner.uid => continue,
            Some(_) if selects(selector, obj.as_ref()) => {
                claimed.push(obj);
                continue;
            }
            Some(_) if owner.deleting => continue,
            Some(_) => release(api, owner, obj.as_ref()).await,
            None => {
                if owner.deleting || obj.meta().deletion_timestamp.is_some() || !selects(selector, obj.as_ref()) {
                    continue;
                }
                if can_adopt.is_none() {
                    can_adopt = Some(owner_still_current(owner_api, owner).await);
                }
                if can_adopt != Some(true) {
                    continue;
                }
                match adopt(api, owner, obj.as_ref()).await {
                    Ok(adopted) => {
                        claimed.push(Arc::new(adopted));
                        continue;
                    }
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(()) => {}
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    (claimed, first_err)
}

/// Upstream's `RecheckDeletionTimestamp`: the owner, read from the API, is the same object and
/// not being deleted.
async fn owner_still_current<O>(owner_api: &Api<O>, owner: &Owner) -> bool
where
    O: Resource + Clone + Debug + DeserializeOwned,
{
    match owner_api.get(&owner.name).await {
        Ok(o) => o.meta().uid.as_deref() == Some(owner.uid.as_str()) && o.meta().deletion_timestamp.is_none(),
        Err(e) => {
            tracing::debug!(error = %e, owner = %owner.name, "cannot re-read owner before adoption");
            false
        }
    }
}

async fn adopt<K>(api: &Api<K>, owner: &Owner, obj: &K) -> Result<K, kube::Error>
where
    K: Resource + Clone + Debug + DeserializeOwned,
{
    let patch = json!({"metadata": {"ownerReferences": [owner.reference()], "uid": obj.meta().uid}});
    let adopted = api.patch(&obj.name_any(), &PatchParams::default(), &Patch::Strategic(&patch)).await?;
    tracing::info!(object = %obj.name_any(), owner = %owner.name, "adopted orphan");
    Ok(adopted)
}

async fn release<K>(api: &Api<K>, owner: &Owner, obj: &K) -> Result<(), kube::Error>
where
    K: Resource + Clone + Debug + DeserializeOwned,
{
    let patch =
        json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner.uid}], "uid": obj.meta().uid}});
    api.patch(&obj.name_any(), &PatchParams::default(), &Patch::Strategic(&patch)).await?;
    tracing::info!(object = %obj.name_any(), owner = %owner.name, "released object that no longer matches");
    Ok(())
}
