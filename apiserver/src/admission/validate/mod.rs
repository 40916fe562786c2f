//! Validation dispatch: object metadata for every kind, then the kind's own rules, then (on update)
//! immutability.

mod apps;
mod batch;
mod cluster;
mod config;
mod container;
mod cron;
mod meta;
mod misc;
mod net;
mod pod;
mod pod_update;
mod resources;
mod service;
mod volumes;

use api::resources::{Scope, RESOURCES};
use api::Cause;
use serde_json::Value;

/// See [`super::validate`].
pub fn validate(kind: &str, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    if kind == "Service" {
        // Upstream's allocator runs (and fails) before validation.
        let alloc = service::allocation(obj);
        if !alloc.is_empty() {
            return alloc;
        }
    }
    let mut out = Vec::new();
    let namespaced = RESOURCES.iter().find(|r| r.kind == kind).is_none_or(|r| r.scope == Scope::Namespaced);
    meta::object_meta(&mut out, kind, obj.get("metadata").unwrap_or(&Value::Null), namespaced);
    if let Some(old) = old {
        meta::object_meta_update(
            &mut out,
            obj.get("metadata").unwrap_or(&Value::Null),
            old.get("metadata").unwrap_or(&Value::Null),
        );
    }
    match kind {
        "Pod" => pod::pod(&mut out, obj, old),
        "Service" => service::service(&mut out, obj, old),
        "Endpoints" => misc::endpoints(&mut out, obj),
        "EndpointSlice" => misc::endpoint_slice(&mut out, obj, old),
        "Secret" => config::secret(&mut out, obj, old),
        "ConfigMap" => config::config_map(&mut out, obj, old),
        "ServiceAccount" => {}
        "Namespace" => cluster::namespace(&mut out, obj),
        "Node" => cluster::node(&mut out, obj, old),
        "Event" => misc::event(&mut out, obj),
        "Lease" => misc::lease(&mut out, obj),
        "Deployment" => apps::deployment(&mut out, obj, old),
        "ReplicaSet" => apps::replica_set(&mut out, obj, old),
        "DaemonSet" => apps::daemon_set(&mut out, obj, old),
        "Job" => batch::job(&mut out, obj, old),
        "CronJob" => batch::cron_job(&mut out, obj),
        _ => {}
    }
    out
}
