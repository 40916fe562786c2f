//! Which message decodes the `raw` bytes of each `apiVersion`/`kind` the API server accepts.

use super::desc::Message;
use super::{apps_v1, autoscaling_v1, batch_v1, coordination_v1, core_v1, discovery_v1, meta_v1, policy_v1};

/// `(apiVersion, kind, message)` for every kind with a protobuf decoder.
static KINDS: &[(&str, &str, &Message)] = &[
    ("v1", "Pod", &core_v1::POD),
    ("v1", "Service", &core_v1::SERVICE),
    ("v1", "Endpoints", &core_v1::ENDPOINTS),
    ("v1", "Secret", &core_v1::SECRET),
    ("v1", "ConfigMap", &core_v1::CONFIG_MAP),
    ("v1", "Namespace", &core_v1::NAMESPACE),
    ("v1", "Node", &core_v1::NODE),
    ("v1", "Event", &core_v1::EVENT),
    ("v1", "ServiceAccount", &core_v1::SERVICE_ACCOUNT),
    ("v1", "Binding", &core_v1::BINDING),
    ("apps/v1", "Deployment", &apps_v1::DEPLOYMENT),
    ("apps/v1", "ReplicaSet", &apps_v1::REPLICA_SET),
    ("apps/v1", "DaemonSet", &apps_v1::DAEMON_SET),
    ("batch/v1", "Job", &batch_v1::JOB),
    ("batch/v1", "CronJob", &batch_v1::CRON_JOB),
    ("discovery.k8s.io/v1", "EndpointSlice", &discovery_v1::ENDPOINT_SLICE),
    ("coordination.k8s.io/v1", "Lease", &coordination_v1::LEASE),
    ("policy/v1", "Eviction", &policy_v1::EVICTION),
    ("autoscaling/v1", "Scale", &autoscaling_v1::SCALE),
];

/// The message for `apiVersion`/`kind`. `DeleteOptions` is accepted under any apiVersion, since
/// client-go encodes it with the group version of the client that sends it.
pub fn lookup(api_version: &str, kind: &str) -> Option<&'static Message> {
    if kind == "DeleteOptions" {
        return Some(&meta_v1::DELETE_OPTIONS);
    }
    KINDS.iter().find(|(v, k, _)| *v == api_version && *k == kind).map(|(_, _, m)| *m)
}
