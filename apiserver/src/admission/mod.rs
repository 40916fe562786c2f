//! Per-kind admission for every served kind, as kube-apiserver does it:
//!
//! 1. [`normalize`]: decode through the k8s-openapi type (pruning unknown fields, reporting their paths,
//!    normalising timestamps, rejecting wrong JSON types with a field path);
//! 2. [`apply_defaults`]: upstream defaulting plus the defaulting admission plugins;
//! 3. [`validate`]: upstream validation, every cause at once; with `old` on update (immutable fields).
//!
//! [`validate_name`] is the name rule alone, for names taken from request paths.
//!
//! Objects are `serde_json::Value` in Kubernetes JSON form. Nothing here panics on any input.

mod defaults;
mod errs;
mod json;
mod labels;
mod names;
mod normalize;
mod validate;

#[cfg(test)]
mod tests;

pub use defaults::DefaultOptions;
pub use normalize::Normalized;

use api::Cause;
use serde_json::Value;

/// Decodes `obj` through the k8s-openapi type for `kind` and re-serializes it: unknown fields dropped
/// (their paths in `unknown_fields`, e.g. `spec.replicass`, `spec.template.spec.containers[0].foo`;
/// the caller warns, or rejects with `fieldValidation=Strict`), timestamps normalized to whole seconds
/// UTC. A wrong JSON type (string where an int belongs, bad base64 in `Secret.data`, a mismatched
/// `apiVersion`/`kind`...) gives `Err` with one `FieldValueTypeInvalid` cause naming the field.
/// Quantities written as JSON numbers, IntOrString ports and Secret `stringData` are accepted.
/// Kinds without a typed model pass through unchanged.
pub fn normalize(kind: &str, obj: Value) -> Result<Normalized, Vec<Cause>> {
    normalize::normalize(kind, obj)
}

/// Upstream defaulting (`pkg/apis/*/v1/defaults.go` + the generated defaulters) for a create or an
/// update, plus what the create strategy and the defaulting admission plugins fill in
/// (DefaultTolerationSeconds, ServiceAccount, Priority, Job selector generation from `metadata.uid`,
/// which the caller must set before defaulting a new Job). Idempotent.
pub fn apply_defaults(kind: &str, obj: &mut Value, opts: &DefaultOptions) {
    defaults::apply_defaults(kind, obj, opts)
}

/// Validation as upstream (`pkg/apis/*/validation`): every cause. `old` is `Some` on update, adding
/// the immutability rules. Call after [`apply_defaults`]: like upstream, fields that defaulting fills
/// are required here.
pub fn validate(kind: &str, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    validate::validate(kind, obj, old)
}

/// The name rule for `kind` (DNS-1123 subdomain for most kinds, DNS-1123 label for Namespace,
/// DNS-1035 label for Service, ≤ 52 characters for CronJob), as messages (empty when valid).
pub fn validate_name(kind: &str, name: &str) -> Vec<String> {
    names::validate_name(kind, name)
}
