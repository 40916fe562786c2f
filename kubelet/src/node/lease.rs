//! The node's Lease in `kube-node-lease`: the cheap heartbeat the node lifecycle controller reads.

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};

use crate::error::{code, Error};

pub const NAMESPACE: &str = "kube-node-lease";

fn owner(node: &str, node_uid: &str) -> Vec<OwnerReference> {
    vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node.into(),
        uid: node_uid.into(),
        ..Default::default()
    }]
}

/// Renews (or creates) the Lease named after the node, owned by the Node so that it goes with it.
pub async fn renew(client: &Client, node: &str, node_uid: &str, duration_seconds: i32) -> Result<(), Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let now = MicroTime(Timestamp::now());
    let patch = serde_json::json!({
        "metadata": {"ownerReferences": owner(node, node_uid)},
        "spec": {"holderIdentity": node, "leaseDurationSeconds": duration_seconds, "renewTime": now},
    });
    match api.patch(node, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(e) if code(&e) == Some(404) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(node.into()),
                    namespace: Some(NAMESPACE.into()),
                    owner_references: Some(owner(node, node_uid)),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(node.into()),
                    lease_duration_seconds: Some(duration_seconds),
                    renew_time: Some(now),
                    ..Default::default()
                }),
            };
            match api.create(&PostParams::default(), &lease).await {
                // Created meanwhile by an earlier attempt: the next renewal patches it.
                Ok(_) => Ok(()),
                Err(e) if code(&e) == Some(409) => Ok(()),
                Err(e) => Err(Error::api("create lease", format!("{NAMESPACE}/{node}"), e)),
            }
        }
        Err(e) => Err(Error::api("renew lease", format!("{NAMESPACE}/{node}"), e)),
    }
}
