//! Emptying a namespace (upstream `namespacedResourcesDeleter.deleteAllContent`): a delete
//! collection per namespaced resource, then a list to see what remains and which finalizers
//! hold it. Pods are deleted gracefully, so they may linger while their kubelet stops them.

use std::collections::BTreeMap;

use api::resources::{ResourceInfo, RESOURCES};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams};
use kube::Client;
use tracing::debug;

/// What is left in a namespace after one round of deletes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Remaining {
    /// Objects left per resource (`pods`, `deployments.apps`), only resources with some.
    pub objects: BTreeMap<String, usize>,
    /// Objects held by each finalizer.
    pub finalizers: BTreeMap<String, usize>,
    /// Deletes or lists that failed, one message each.
    pub failures: Vec<String>,
}

impl Remaining {
    /// Nothing left and nothing failed: the namespace may be finalized.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty() && self.failures.is_empty()
    }
}

fn api_resource(r: &ResourceInfo) -> ApiResource {
    ApiResource {
        group: r.group.to_string(),
        version: r.version.to_string(),
        api_version: r.api_version(),
        kind: r.kind.to_string(),
        plural: r.plural.to_string(),
    }
}

/// Deletes every namespaced object of `namespace` and reports what remains.
pub async fn delete_all(client: &Client, namespace: &str) -> Remaining {
    let mut remaining = Remaining::default();
    for r in RESOURCES.iter().filter(|r| r.namespaced()) {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &api_resource(r));
        let resource = r.qualified_plural();
        if let Err(e) = api.delete_collection(&DeleteParams::default(), &ListParams::default()).await {
            remaining.failures.push(format!("{resource}: delete collection: {e}"));
            continue;
        }
        match api.list(&ListParams::default()).await {
            Ok(list) if list.items.is_empty() => {}
            Ok(list) => {
                debug!(resource = %resource, count = list.items.len(), "objects remain");
                remaining.objects.insert(resource, list.items.len());
                for obj in &list.items {
                    for f in obj.metadata.finalizers.iter().flatten() {
                        *remaining.finalizers.entry(f.clone()).or_default() += 1;
                    }
                }
            }
            Err(e) => remaining.failures.push(format!("{resource}: list: {e}")),
        }
    }
    remaining
}
