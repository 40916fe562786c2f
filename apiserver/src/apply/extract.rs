//! The field set an applied configuration claims (upstream's `TypedValue.ToFieldSet`):
//! every scalar, atomic list, empty object or empty list is a leaf, every item of a keyed
//! or set list is a member, and objects are only the paths to their fields.
//!
//! This walk also validates the configuration's lists, so merge can trust it.

use super::fieldset::{path_string, FieldSet, PathElement};
use super::schema::{item_element, ItemError, Scope};
use crate::patch::merge_keys::ListType;
use serde_json::Value;
use std::collections::BTreeSet;

/// The field set of `config` (already stripped of untracked fields), or the message of the
/// first malformed list.
pub fn config_field_set(scope: &Scope<'_>, config: &Value) -> Result<FieldSet, String> {
    let mut out = FieldSet::new();
    let Value::Object(root) = config else {
        return Err("the applied configuration must be an object".to_string());
    };
    let mut walker = Walker { scope, out: &mut out };
    for (key, value) in root {
        let mut names = vec![key.as_str()];
        let mut path = vec![PathElement::Field(key.clone())];
        walker.walk(value, &mut names, &mut path)?;
    }
    Ok(out)
}

struct Walker<'s, 'o> {
    scope: &'s Scope<'s>,
    out: &'o mut FieldSet,
}

impl Walker<'_, '_> {
    fn walk<'a>(
        &mut self,
        value: &'a Value,
        names: &mut Vec<&'a str>,
        path: &mut Vec<PathElement>,
    ) -> Result<(), String> {
        match value {
            Value::Null => Ok(()),
            Value::Object(map) if map.is_empty() || self.scope.atomic_object(names) => {
                self.out.insert(path);
                Ok(())
            }
            Value::Object(map) => {
                for (key, child) in map {
                    names.push(key);
                    path.push(PathElement::Field(key.clone()));
                    let result = self.walk(child, names, path);
                    path.pop();
                    names.pop();
                    result?;
                }
                Ok(())
            }
            Value::Array(items) => {
                let list = self.scope.list_type(names);
                if items.is_empty() || list == ListType::Atomic {
                    self.out.insert(path);
                    return Ok(());
                }
                self.walk_items(list, items, names, path)
            }
            _ => {
                self.out.insert(path);
                Ok(())
            }
        }
    }

    fn walk_items<'a>(
        &mut self,
        list: ListType,
        items: &'a [Value],
        names: &mut Vec<&'a str>,
        path: &mut Vec<PathElement>,
    ) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let pe = item_element(list, item).map_err(|ItemError::MissingKey(key)| {
                format!(
                    "{}[{i}]: associative list with keys has an element that omits key field {key:?} \
                     (and doesn't have default value)",
                    path_string(path)
                )
            })?;
            if !seen.insert(pe.clone()) {
                return Err(format!("{}: duplicate entries for key {pe}", path_string(path)));
            }
            path.push(pe);
            self.out.insert(path);
            let result = match item {
                Value::Object(fields) if matches!(list, ListType::Map(_)) => {
                    let mut result = Ok(());
                    for (key, child) in fields {
                        names.push(key);
                        path.push(PathElement::Field(key.clone()));
                        result = self.walk(child, names, path);
                        path.pop();
                        names.pop();
                        if result.is_err() {
                            break;
                        }
                    }
                    result
                }
                _ => Ok(()),
            };
            path.pop();
            result?;
        }
        Ok(())
    }
}
