//! Server-side apply and `metadata.managedFields`, over `serde_json::Value`.
//!
//! A port of the semantics of upstream's field manager (k8s.io/apimachinery
//! `util/managedfields`) and structured-merge-diff (`merge/update.go`), with list semantics
//! from [`crate::patch::merge_keys`] instead of OpenAPI schemas:
//!
//! - [`server_side_apply`] merges an applied configuration into the live object, prunes what
//!   the applier stopped applying, detects conflicts with other managers and records the
//!   applier's fields (operation `Apply`).
//! - [`record_update`] records a create/update/patch: the writer takes the fields it changed
//!   from everybody else (operation `Update`).
//!
//! `apiVersion`, `kind`, `metadata.name`/`namespace` and server-owned metadata are never
//! tracked; nor is `status` on the main resource of kinds with a status subresource (or
//! `spec` through `/status`).

mod compare;
mod extract;
mod fieldset;
mod managed_fields;
mod merge;
mod prune;
mod schema;
#[cfg(test)]
mod tests;

use compare::compare;
use fieldset::{path_string, FieldSet};
use managed_fields::{Manager, Operation};
use schema::Scope;
use serde_json::{Map, Value};
use std::fmt;

/// The manager upstream gives the fields of an object applied to for the first time when
/// it has no managedFields.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// Why an apply failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Fields the configuration changes belong to other managers (HTTP 409, reason Conflict;
    /// one `FieldManagerConflict` cause per conflict, see [`Conflict::cause_message`]).
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The configuration is malformed (duplicate list keys, missing keys, wrong kind).
    #[error("{0}")]
    Invalid(String),
}

/// One field the applier would change that another manager owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// The field, as upstream prints it: `.spec.replicas`, `.spec.containers[name="x"].image`.
    pub field: String,
    /// The other manager's operation: "Apply" or "Update".
    pub operation: String,
    /// The apiVersion the other manager wrote with.
    pub api_version: String,
    /// The subresource the other manager wrote through, if any.
    pub subresource: Option<String>,
}

impl Conflict {
    /// The manager as upstream prints it: `"kubectl"` for an applier, `"kubectl" using apps/v1`
    /// (or `"kubectl" with subresource "scale" using apps/v1`) for an updater.
    pub fn manager_description(&self) -> String {
        let mut out = Value::from(self.manager.as_str()).to_string();
        if let Some(sub) = &self.subresource {
            out.push_str(&format!(" with subresource {}", Value::from(sub.as_str())));
        }
        if self.operation == "Update" {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }

    /// The `message` of this conflict's Status cause: `conflict with "kubectl" using apps/v1`.
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.manager_description())
    }
}

/// Upstream's conflict message: `Apply failed with 1 conflict: conflict with "m": .f`, or
/// for several, `Apply failed with N conflicts: conflicts with "m":\n- .f\n- .g`.
fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!("Apply failed with 1 conflict: {}: {}", only.cause_message(), only.field);
    }
    let mut lines: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for conflict in conflicts {
        let who = conflict.manager_description();
        if current.as_deref() != Some(who.as_str()) {
            lines.push(format!("conflicts with {who}:"));
            current = Some(who);
        }
        lines.push(format!("- {}", conflict.field));
    }
    format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
}

/// Server-side apply (PATCH application/apply-patch+yaml). `live` is the stored object (None = create).
/// `applied` is the user's configuration (already parsed to JSON). Returns the merged object with
/// metadata.managedFields updated (operation "Apply", the manager's fieldsV1, apiVersion, time = `now` RFC3339).
/// Conflicts: a field the applier sets to a different value than live, owned by another manager → Err(Conflicts) unless force=true
/// (with force, ownership moves to the applier). Fields this manager owned before but no longer applies are removed from the
/// object unless another manager also owns them.
pub fn server_side_apply(
    kind: &str,
    api_version: &str,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    server_side_apply_subresource(kind, api_version, live, applied, manager, force, None, now)
}

/// [`server_side_apply`] through a subresource (`Some("status")`, `Some("scale")`): the
/// applier's entry carries `subresource`, and `/status` ignores `spec` instead of `status`.
#[allow(clippy::too_many_arguments)]
pub fn server_side_apply_subresource(
    kind: &str,
    api_version: &str,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    subresource: Option<&str>,
    now: &str,
) -> Result<Value, ApplyError> {
    let scope = Scope { kind, subresource };
    check_type(kind, api_version, applied)?;
    let config = schema::without_nulls(&scope.strip(applied, false));
    let config_set = extract::config_field_set(&scope, &scope.strip(&config, true)).map_err(|e| {
        ApplyError::Invalid(format!("failed to create typed patch object ({api_version}, Kind={kind}): {e}"))
    })?;

    let empty = Value::Object(Map::new());
    let live_value = live.unwrap_or(&empty);
    let live_tracked = scope.strip(live_value, true);
    let mut managers = managed_fields::decode(live_value).unwrap_or_default();
    if managers.is_empty() && live.is_some() {
        // Upstream's skipNonAppliedManager: what exists was written "before the first apply".
        let seed = compare(&scope, &empty, &live_tracked);
        let set = seed.added.union(&seed.modified);
        managers.push(Manager {
            manager: BEFORE_FIRST_APPLY.to_string(),
            operation: Operation::Update,
            api_version: api_version.to_string(),
            subresource: subresource.map(str::to_string),
            time: Some(now.to_string()),
            set,
        });
    }

    let merged = merge::merge(&scope, live_value, &config);
    let previous = managers
        .iter()
        .position(|m| m.is(manager, Operation::Apply, api_version, subresource))
        .map(|i| managers.remove(i));
    let last = previous.as_ref().map(|m| m.set.clone()).unwrap_or_default();
    let keep = managers.iter().fold(config_set.clone(), |acc, m| acc.union(&m.set));
    let mut object = prune::prune(&scope, merged, &last, &keep);

    let diff = compare(&scope, &live_tracked, &scope.strip(&object, true));
    let changed = diff.added.union(&diff.modified);
    let conflicts = find_conflicts(&managers, &changed);
    if !force && !conflicts.is_empty() {
        return Err(ApplyError::Conflicts(conflicts));
    }
    for other in &mut managers {
        other.set = other.set.difference(&changed).difference(&diff.removed);
    }
    let time = match previous.and_then(|p| p.time) {
        Some(t) if diff.is_same() => t,
        _ => now.to_string(),
    };
    managers.push(Manager {
        manager: manager.to_string(),
        operation: Operation::Apply,
        api_version: api_version.to_string(),
        subresource: subresource.map(str::to_string),
        time: Some(time),
        set: config_set,
    });
    managed_fields::encode(&mut object, &managers);
    Ok(object)
}

/// Record a non-apply write (create/update/patch) by `manager`: fields that changed between old and new
/// (all set fields for a create) become owned by `manager` with operation "Update" and are removed from other managers' sets
/// (as upstream: an Update takes ownership without conflict).
pub fn record_update(kind: &str, api_version: &str, old: Option<&Value>, new: &mut Value, manager: &str, now: &str) {
    record_update_subresource(kind, api_version, old, new, manager, None, now);
}

/// [`record_update`] through a subresource (`Some("status")`, `Some("scale")`): the entry
/// carries `subresource`, and managedFields in `new` are ignored (upstream takes them from the
/// live object for subresources; on the main resource a request may set them, or clear them
/// with `[]`).
pub fn record_update_subresource(
    kind: &str,
    api_version: &str,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
) {
    if !new.is_object() {
        return;
    }
    let scope = Scope { kind, subresource };
    let empty = Value::Object(Map::new());
    let old_value = old.unwrap_or(&empty);
    let mut managers = if subresource.is_some() {
        managed_fields::decode(old_value).unwrap_or_default()
    } else if managed_fields::is_reset(new) {
        Vec::new()
    } else {
        match managed_fields::decode(new) {
            Some(from_request) if !from_request.is_empty() => from_request,
            _ => managed_fields::decode(old_value).unwrap_or_default(),
        }
    };

    let diff = compare(&scope, &scope.strip(old_value, true), &scope.strip(new, true));
    let changed = diff.added.union(&diff.modified);
    for other in &mut managers {
        other.set = other.set.difference(&changed).difference(&diff.removed);
    }
    let taken = changed.difference(&diff.removed);
    if !taken.is_empty() {
        let mine = managers.iter_mut().find(|m| m.is(manager, Operation::Update, api_version, subresource));
        match mine {
            Some(entry) => {
                entry.set = taken.union(&entry.set);
                entry.time = Some(now.to_string());
            }
            None => managers.push(Manager {
                manager: manager.to_string(),
                operation: Operation::Update,
                api_version: api_version.to_string(),
                subresource: subresource.map(str::to_string),
                time: Some(now.to_string()),
                set: taken,
            }),
        }
    }
    managed_fields::encode(new, &managers);
}

/// Rejects a configuration of another kind or version than the endpoint's, or one that sets
/// managedFields.
fn check_type(kind: &str, api_version: &str, applied: &Value) -> Result<(), ApplyError> {
    let Value::Object(map) = applied else {
        return Err(ApplyError::Invalid("the applied configuration must be an object".to_string()));
    };
    let managed = map.get("metadata").and_then(|m| m.get("managedFields"));
    if managed.is_some_and(|m| !m.is_null()) {
        return Err(ApplyError::Invalid("metadata.managedFields must be nil".to_string()));
    }
    let given = |key: &str| map.get(key).and_then(Value::as_str);
    let kind_ok = given("kind").is_none_or(|k| k == kind);
    let version_ok = given("apiVersion").is_none_or(|v| v == api_version);
    if kind_ok && version_ok {
        return Ok(());
    }
    Err(ApplyError::Invalid(format!(
        "invalid object type: {}, Kind={}",
        given("apiVersion").unwrap_or(api_version),
        given("kind").unwrap_or(kind)
    )))
}

/// Every path of `changed` another manager owns, grouped by manager in name order.
fn find_conflicts(managers: &[Manager], changed: &FieldSet) -> Vec<Conflict> {
    let mut out = Vec::new();
    let mut owners: Vec<&Manager> = managers.iter().collect();
    owners.sort_by(|a, b| {
        (&a.manager, a.operation, &a.api_version, &a.subresource).cmp(&(
            &b.manager,
            b.operation,
            &b.api_version,
            &b.subresource,
        ))
    });
    for owner in owners {
        for path in owner.set.intersection(changed).paths() {
            out.push(Conflict {
                manager: owner.manager.clone(),
                field: path_string(&path),
                operation: owner.operation.as_str().to_string(),
                api_version: owner.api_version.clone(),
                subresource: owner.subresource.clone(),
            });
        }
    }
    out
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.cause_message(), self.field)
    }
}
