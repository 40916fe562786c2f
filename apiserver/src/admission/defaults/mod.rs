//! Upstream defaulting (`pkg/apis/*/v1/defaults.go`, the generated defaulters) plus the bits of
//! create-time strategy and admission that fill fields in (DefaultTolerationSeconds, ServiceAccount,
//! Priority, Job selector generation, Namespace finalizer). Every function takes any `Value` and
//! silently skips parts of the wrong JSON type (validation reports those).

mod apps;
mod batch;
mod core;
pub(crate) mod pod;
pub(crate) mod service;

use serde_json::Value;

/// Knobs the API server passes to defaulting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultOptions {
    /// `tolerationSeconds` of the `node.kubernetes.io/not-ready` toleration added to pods.
    pub not_ready_toleration_seconds: i64,
    /// `tolerationSeconds` of the `node.kubernetes.io/unreachable` toleration added to pods.
    pub unreachable_toleration_seconds: i64,
}

impl Default for DefaultOptions {
    fn default() -> Self {
        DefaultOptions { not_ready_toleration_seconds: 300, unreachable_toleration_seconds: 300 }
    }
}

/// See [`super::apply_defaults`].
pub fn apply_defaults(kind: &str, obj: &mut Value, opts: &DefaultOptions) {
    match kind {
        "Pod" => pod::pod(obj, opts),
        "Service" => service::service(obj),
        "Endpoints" => service::endpoints(obj),
        "EndpointSlice" => service::endpoint_slice(obj),
        "Secret" => core::secret(obj),
        "Namespace" => core::namespace(obj),
        "Node" => core::node(obj),
        "Deployment" => apps::deployment(obj),
        "ReplicaSet" => apps::replica_set(obj),
        "DaemonSet" => apps::daemon_set(obj),
        "Job" => batch::job(obj),
        "CronJob" => batch::cron_job(obj),
        _ => {}
    }
}
