//! Objects every cluster has from its first start: the namespaces `default`, `kube-system`,
//! `kube-public` and `kube-node-lease`, and the `kubernetes` Service in `default` at the first
//! address of the service range.

use std::net::{IpAddr, Ipv4Addr};

use serde_json::json;

use api::resources;

use crate::handlers::internal_create;
use crate::state::AppState;
use crate::Error;

pub const NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

pub async fn ensure(state: &AppState, kubernetes_ip: Ipv4Addr, advertise: IpAddr, port: u16) -> Result<(), Error> {
    let ns_res =
        resources::by_kind("v1", "Namespace").ok_or_else(|| Error::Setup("namespaces not registered".into()))?;
    for ns in NAMESPACES {
        if state.store.get(&ns_res.key(None, ns)).is_some() {
            continue;
        }
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        create(state, ns_res, obj).await?;
    }
    let svc_res = resources::by_kind("v1", "Service").ok_or_else(|| Error::Setup("services not registered".into()))?;
    if state.store.get(&svc_res.key(Some("default"), "kubernetes")).is_none() {
        let obj = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "type": "ClusterIP",
                "clusterIP": kubernetes_ip.to_string(),
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
                "sessionAffinity": "None",
            },
        });
        create(state, svc_res, obj).await?;
    }
    let ep_res =
        resources::by_kind("v1", "Endpoints").ok_or_else(|| Error::Setup("endpoints not registered".into()))?;
    // Endpoints may not point into the loopback range (upstream validation): a server that
    // advertises 127.0.0.1 has no address pods could use, so it publishes no endpoints.
    if !advertise.is_loopback() && state.store.get(&ep_res.key(Some("default"), "kubernetes")).is_none() {
        let obj = json!({
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": advertise.to_string()}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        });
        create(state, ep_res, obj).await?;
    }
    Ok(())
}

async fn create(state: &AppState, res: &'static api::ResourceInfo, obj: serde_json::Value) -> Result<(), Error> {
    match internal_create(state, res, obj).await {
        Ok(()) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(Error::Setup(format!("bootstrap {}: {}", res.plural, e.message))),
    }
}
