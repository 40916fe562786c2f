//! Server-side printing (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`): the columns and
//! row cells kube-apiserver 1.33 prints for every served kind, computed from the stored JSON
//! object as upstream's `pkg/printers/internalversion` does. kube-apiserver always prints the wide
//! set; kubectl hides the `priority: 1` columns unless `-o wide`.

mod age;
mod columns;
mod descriptions;
mod event;
mod json;
mod network;
mod node;
mod pod;
mod simple;
mod workloads;

#[cfg(test)]
mod tests;

pub use age::human_duration;

use serde_json::{json, Value};
use std::time::SystemTime;

/// `columnDefinitions` for kind (JSON objects `{name,type,format,description,priority}`),
/// exactly the columns kube-apiserver 1.33 prints; Name and Age for kinds without a printer.
pub fn column_definitions(kind: &str) -> Vec<Value> {
    columns::columns(kind)
        .iter()
        .map(|c| {
            json!({
                "name": c.0,
                "type": c.1,
                "format": c.2,
                "description": c.3,
                "priority": c.4,
            })
        })
        .collect()
}

/// The cells of one row, computed from the object as upstream's printers do (`now` for AGE and
/// other relative times). One cell per column of [`column_definitions`]; never panics.
pub fn row_cells(kind: &str, obj: &Value, now: SystemTime) -> Vec<Value> {
    let now = age::from_system_time(now);
    match kind {
        "Pod" => pod::row(obj, now),
        "Service" => network::service(obj, now),
        "Endpoints" => network::endpoints(obj, now),
        "EndpointSlice" => network::endpoint_slice(obj, now),
        "Secret" => simple::secret(obj, now),
        "ConfigMap" => simple::config_map(obj, now),
        "Namespace" => simple::namespace(obj, now),
        "ServiceAccount" => simple::service_account(obj, now),
        "Lease" => simple::lease(obj, now),
        "Node" => node::row(obj, now),
        "Event" => event::row(obj, now),
        "Deployment" => workloads::deployment(obj, now),
        "ReplicaSet" => workloads::replica_set(obj, now),
        "DaemonSet" => workloads::daemon_set(obj, now),
        "Job" => workloads::job(obj, now),
        "CronJob" => workloads::cron_job(obj, now),
        _ => simple::default(obj, now),
    }
}
