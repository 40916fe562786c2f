//! Live look-up of an owner (upstream `isDangling`): before a dependent is deleted because its
//! owner is not in the cache, the owner is fetched from the API server, so a stale cache never
//! causes a deletion. Owner kinds outside the graph are resolved by discovery, once per kind.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::discovery::Scope;
use kube::Api;

use super::decide::OwnerState;
use super::graph::{Kind, FOREGROUND};
use super::Error;

pub struct Owners {
    client: kube::Client,
    resolved: Mutex<HashMap<(String, String), (ApiResource, bool)>>,
}

impl Owners {
    pub fn new(client: kube::Client) -> Self {
        Owners { client, resolved: Mutex::new(HashMap::new()) }
    }

    /// The resource of an owner reference's kind and whether it is namespaced.
    async fn resolve(&self, r: &OwnerReference) -> Result<(ApiResource, bool), Error> {
        if let Some(kind) = Kind::of(&r.api_version, &r.kind) {
            return Ok((kind.api_resource(), true));
        }
        let cache_key = (r.api_version.clone(), r.kind.clone());
        if let Some(found) = self.resolved.lock().unwrap_or_else(|p| p.into_inner()).get(&cache_key) {
            return Ok(found.clone());
        }
        let (group, version) = match r.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", r.api_version.as_str()),
        };
        let gvk = GroupVersionKind::gvk(group, version, &r.kind);
        let (ar, caps) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|source| Error::Resolve { kind: format!("{}/{}", r.api_version, r.kind), source })?;
        let found = (ar, caps.scope == Scope::Namespaced);
        self.resolved.lock().unwrap_or_else(|p| p.into_inner()).insert(cache_key, found.clone());
        Ok(found)
    }

    /// The owner's state as the API server has it now.
    pub async fn live(&self, r: &OwnerReference, namespace: Option<&str>) -> Result<OwnerState, Error> {
        let (ar, namespaced) = self.resolve(r).await?;
        let api: Api<DynamicObject> = match (namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            // A namespaced owner of a cluster-scoped dependent cannot exist.
            (true, None) => return Ok(OwnerState::Absent),
            (false, _) => Api::all_with(self.client.clone(), &ar),
        };
        let owner = api.get_opt(&r.name).await.map_err(|source| Error::Api {
            action: "get owner",
            object: r.name.clone(),
            source,
        })?;
        Ok(match owner {
            Some(o) if o.metadata.uid.as_deref() == Some(r.uid.as_str()) => {
                let waiting = o.metadata.deletion_timestamp.is_some()
                    && o.metadata.finalizers.as_ref().is_some_and(|f| f.iter().any(|x| x == FOREGROUND));
                if waiting {
                    OwnerState::Waiting
                } else {
                    OwnerState::Solid
                }
            }
            _ => OwnerState::Absent,
        })
    }
}
