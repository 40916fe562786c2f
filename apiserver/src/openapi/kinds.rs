//! Which k8s-openapi type describes each kind the documents mention, by group, version and kind.

use k8s_openapi::api::{apps, autoscaling, batch, coordination, core, discovery, policy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::{JsonSchema, SchemaGenerator};

/// Adds the schema of `group/version, Kind=kind` (and everything it refers to) to `gen`'s
/// definitions and returns its component name (`io.k8s.api.apps.v1.Deployment`), or `None`
/// for a kind without a schema (`PodExecOptions`, `PodAttachOptions`: query parameters only).
pub(super) fn add_kind(gen: &mut SchemaGenerator, group: &str, version: &str, kind: &str) -> Option<String> {
    let name = match (group, version, kind) {
        ("", "v1", "Pod") => add::<core::v1::Pod>(gen),
        ("", "v1", "Service") => add::<core::v1::Service>(gen),
        ("", "v1", "Endpoints") => add::<core::v1::Endpoints>(gen),
        ("", "v1", "Secret") => add::<core::v1::Secret>(gen),
        ("", "v1", "ConfigMap") => add::<core::v1::ConfigMap>(gen),
        ("", "v1", "Namespace") => add::<core::v1::Namespace>(gen),
        ("", "v1", "Node") => add::<core::v1::Node>(gen),
        ("", "v1", "Event") => add::<core::v1::Event>(gen),
        ("", "v1", "ServiceAccount") => add::<core::v1::ServiceAccount>(gen),
        ("", "v1", "Binding") => add::<core::v1::Binding>(gen),
        ("", "v1", "Status") => add::<meta::Status>(gen),
        ("apps", "v1", "Deployment") => add::<apps::v1::Deployment>(gen),
        ("apps", "v1", "ReplicaSet") => add::<apps::v1::ReplicaSet>(gen),
        ("apps", "v1", "DaemonSet") => add::<apps::v1::DaemonSet>(gen),
        ("batch", "v1", "Job") => add::<batch::v1::Job>(gen),
        ("batch", "v1", "CronJob") => add::<batch::v1::CronJob>(gen),
        ("discovery.k8s.io", "v1", "EndpointSlice") => add::<discovery::v1::EndpointSlice>(gen),
        ("coordination.k8s.io", "v1", "Lease") => add::<coordination::v1::Lease>(gen),
        ("autoscaling", "v1", "Scale") => add::<autoscaling::v1::Scale>(gen),
        ("policy", "v1", "Eviction") => add::<policy::v1::Eviction>(gen),
        _ => return None,
    };
    Some(name)
}

/// Adds the meta types every document uses (`DeleteOptions`, `Patch`, ...).
pub(super) fn add_meta(gen: &mut SchemaGenerator) -> MetaNames {
    MetaNames {
        status: add::<meta::Status>(gen),
        delete_options: add::<meta::DeleteOptions>(gen),
        patch: add::<meta::Patch>(gen),
        list_meta: add::<meta::ListMeta>(gen),
    }
}

/// Component names of the shared meta types.
pub(super) struct MetaNames {
    pub status: String,
    pub delete_options: String,
    pub patch: String,
    pub list_meta: String,
}

fn add<T: JsonSchema>(gen: &mut SchemaGenerator) -> String {
    gen.subschema_for::<T>();
    T::schema_name().into_owned()
}
