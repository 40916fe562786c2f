//! `metadata.managedFields`: decoding entries into managers with field sets, and writing
//! them back in upstream's order.
//!
//! A manager is identified by (manager, operation, subresource) and, for `Update`, its
//! apiVersion too, as upstream's `BuildManagerIdentifier`. Entries upstream could not
//! decode (unknown operation or fieldsType, no apiVersion) are dropped.

use super::fieldset::FieldSet;
use serde_json::{Map, Value};

/// `Apply` or `Update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One manager and what it owns.
#[derive(Debug, Clone, PartialEq)]
pub struct Manager {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub subresource: Option<String>,
    pub time: Option<String>,
    pub set: FieldSet,
}

impl Manager {
    /// Whether `self` is the manager identified by the other arguments.
    pub fn is(&self, manager: &str, operation: Operation, api_version: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
            && (operation == Operation::Apply || self.api_version == api_version)
    }

    /// Whether two entries are the same manager.
    pub fn same_as(&self, other: &Manager) -> bool {
        self.is(&other.manager, other.operation, &other.api_version, other.subresource.as_deref())
    }
}

/// The managers recorded in `object.metadata.managedFields`, or `None` when the field is
/// absent. Later entries replace earlier ones with the same identity.
pub fn decode(object: &Value) -> Option<Vec<Manager>> {
    let entries = object.get("metadata")?.get("managedFields")?.as_array()?;
    let mut out: Vec<Manager> = Vec::new();
    for entry in entries {
        let Some(manager) = decode_entry(entry) else {
            continue;
        };
        out.retain(|m| !m.same_as(&manager));
        out.push(manager);
    }
    Some(out)
}

fn decode_entry(entry: &Value) -> Option<Manager> {
    let text = |key: &str| entry.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
    let operation = match text("operation")? {
        "Apply" => Operation::Apply,
        "Update" => Operation::Update,
        _ => return None,
    };
    if text("fieldsType")? != "FieldsV1" {
        return None;
    }
    Some(Manager {
        manager: text("manager").unwrap_or_default().to_string(),
        operation,
        api_version: text("apiVersion")?.to_string(),
        subresource: text("subresource").map(str::to_string),
        time: text("time").map(str::to_string),
        set: entry.get("fieldsV1").map(FieldSet::from_fields_v1).unwrap_or_default(),
    })
}

/// Whether the request asks to clear managedFields: an empty list, or one empty entry.
pub fn is_reset(object: &Value) -> bool {
    let Some(entries) = object.get("metadata").and_then(|m| m.get("managedFields")).and_then(Value::as_array) else {
        return false;
    };
    match entries.as_slice() {
        [] => true,
        [only] => only.as_object().is_some_and(Map::is_empty),
        _ => false,
    }
}

/// Writes `managers` (empty ones dropped) into `object.metadata.managedFields`, sorted as
/// upstream: by operation, time, manager, apiVersion, subresource. No managers: no field.
pub fn encode(object: &mut Value, managers: &[Manager]) {
    let Value::Object(root) = object else {
        return;
    };
    let meta = root.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(meta) = meta else {
        return;
    };
    let mut kept: Vec<&Manager> = managers.iter().filter(|m| !m.set.is_empty()).collect();
    if kept.is_empty() {
        meta.remove("managedFields");
        return;
    }
    kept.sort_by(|a, b| {
        (a.operation, a.time.as_deref().unwrap_or(""), &a.manager, &a.api_version, &a.subresource).cmp(&(
            b.operation,
            b.time.as_deref().unwrap_or(""),
            &b.manager,
            &b.api_version,
            &b.subresource,
        ))
    });
    let entries = kept.into_iter().map(encode_entry).collect();
    meta.insert("managedFields".to_string(), Value::Array(entries));
}

fn encode_entry(m: &Manager) -> Value {
    let mut entry = Map::new();
    entry.insert("manager".into(), Value::from(m.manager.as_str()));
    entry.insert("operation".into(), Value::from(m.operation.as_str()));
    entry.insert("apiVersion".into(), Value::from(m.api_version.as_str()));
    if let Some(time) = &m.time {
        entry.insert("time".into(), Value::from(time.as_str()));
    }
    entry.insert("fieldsType".into(), Value::from("FieldsV1"));
    entry.insert("fieldsV1".into(), m.set.to_fields_v1());
    if let Some(sub) = &m.subresource {
        entry.insert("subresource".into(), Value::from(sub.as_str()));
    }
    Value::Object(entry)
}
