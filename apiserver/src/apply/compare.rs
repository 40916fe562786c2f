//! Which fields a write added, modified and removed (upstream's `TypedValue.Compare`).
//!
//! Leaves (scalars, atomic lists, empty objects and lists) are added, removed or modified;
//! objects and list items are only added or removed. Inputs are stripped of untracked fields.

use super::fieldset::{FieldSet, PathElement};
use super::schema::{name_items, Scope};
use crate::patch::merge_keys::ListType;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Object fields a typed upstream object always has, even empty (non-pointer structs and
/// non-`omitempty` lists): adding them does not make the writer own them.
const IMPLICIT: &[&str] =
    &["metadata", "spec", "status", "template", "strategy", "updateStrategy", "jobTemplate", "containers"];

/// The differences between two versions of an object.
#[derive(Debug, Default)]
pub struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

impl Comparison {
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

/// Compares `old` with `new` (both whole objects).
pub fn compare(scope: &Scope<'_>, old: &Value, new: &Value) -> Comparison {
    let mut walker = Walker { scope, out: Comparison::default() };
    let empty = Map::new();
    let old_map = old.as_object().unwrap_or(&empty);
    let new_map = new.as_object().unwrap_or(&empty);
    walker.fields(Some(old_map), Some(new_map), &mut Vec::new(), &mut Vec::new());
    walker.out
}

#[derive(PartialEq)]
enum Shape {
    Absent,
    Object { empty: bool },
    List { empty: bool },
    Leaf,
}

struct Walker<'s> {
    scope: &'s Scope<'s>,
    out: Comparison,
}

impl Walker<'_> {
    fn shape(&self, value: Option<&Value>, names: &[&str]) -> Shape {
        match value {
            None => Shape::Absent,
            Some(Value::Object(_)) if self.scope.atomic_object(names) => Shape::Leaf,
            Some(Value::Object(map)) => Shape::Object { empty: map.is_empty() },
            Some(Value::Array(items)) if self.scope.list_type(names) != ListType::Atomic => {
                Shape::List { empty: items.is_empty() }
            }
            Some(_) => Shape::Leaf,
        }
    }

    fn walk<'a>(
        &mut self,
        old: Option<&'a Value>,
        new: Option<&'a Value>,
        names: &mut Vec<&'a str>,
        path: &mut Vec<PathElement>,
    ) {
        let (so, sn) = (self.shape(old, names), self.shape(new, names));
        let empty_or_absent =
            |s: &Shape| matches!(s, Shape::Absent | Shape::Object { empty: true } | Shape::List { empty: true });
        let both_empty = empty_or_absent(&so) && empty_or_absent(&sn);
        let objects =
            matches!((&so, &sn), (Shape::Object { .. } | Shape::Absent, Shape::Object { .. } | Shape::Absent));
        let lists = matches!((&so, &sn), (Shape::List { .. } | Shape::Absent, Shape::List { .. } | Shape::Absent));
        let leafish = |s: &Shape| matches!(s, Shape::Leaf | Shape::Absent);
        if both_empty || (leafish(&so) && leafish(&sn)) {
            self.leaf(old, new, path);
        } else if objects || lists {
            if old.is_none() {
                let implicit = names.last().is_some_and(|n| IMPLICIT.contains(n));
                if !implicit {
                    self.out.added.insert(path);
                }
            } else if new.is_none() {
                self.out.removed.insert(path);
            }
            self.children(old, new, names, path);
        } else {
            // The field changed shape: the old contents go, the new ones come.
            self.out.modified.insert(path);
            self.children(old, None, names, path);
            self.children(None, new, names, path);
        }
    }

    fn leaf(&mut self, old: Option<&Value>, new: Option<&Value>, path: &[PathElement]) {
        match (old, new) {
            (None, Some(_)) => self.out.added.insert(path),
            (Some(_), None) => self.out.removed.insert(path),
            (Some(o), Some(n)) if o != n => self.out.modified.insert(path),
            _ => {}
        }
    }

    fn children<'a>(
        &mut self,
        old: Option<&'a Value>,
        new: Option<&'a Value>,
        names: &mut Vec<&'a str>,
        path: &mut Vec<PathElement>,
    ) {
        match (old, new) {
            (Some(Value::Array(o)), Some(Value::Array(n))) => self.items(Some(o), Some(n), names, path),
            (Some(Value::Array(o)), _) => self.items(Some(o), None, names, path),
            (_, Some(Value::Array(n))) => self.items(None, Some(n), names, path),
            _ => self.fields(old.and_then(Value::as_object), new.and_then(Value::as_object), names, path),
        }
    }

    fn fields<'a>(
        &mut self,
        old: Option<&'a Map<String, Value>>,
        new: Option<&'a Map<String, Value>>,
        names: &mut Vec<&'a str>,
        path: &mut Vec<PathElement>,
    ) {
        for (key, o) in old.into_iter().flatten() {
            names.push(key);
            path.push(PathElement::Field(key.clone()));
            self.walk(Some(o), new.and_then(|n| n.get(key)), names, path);
            path.pop();
            names.pop();
        }
        for (key, n) in new.into_iter().flatten() {
            if old.is_some_and(|o| o.contains_key(key)) {
                continue;
            }
            names.push(key);
            path.push(PathElement::Field(key.clone()));
            self.walk(None, Some(n), names, path);
            path.pop();
            names.pop();
        }
    }

    fn items<'a>(
        &mut self,
        old: Option<&'a [Value]>,
        new: Option<&'a [Value]>,
        names: &mut Vec<&'a str>,
        path: &mut Vec<PathElement>,
    ) {
        let list = self.scope.list_type(names);
        let old = old.unwrap_or_default();
        let new = new.unwrap_or_default();
        let old_names = name_items(list, old);
        let new_names = name_items(list, new);
        let new_index: BTreeMap<&PathElement, &Value> =
            new_names.iter().zip(new).filter_map(|(pe, item)| pe.as_ref().map(|pe| (pe, item))).collect();
        let old_seen: BTreeSet<&PathElement> = old_names.iter().flatten().collect();
        for (item, pe) in old.iter().zip(&old_names) {
            let Some(pe) = pe else { continue };
            let counterpart = new_index.get(pe).copied();
            path.push(pe.clone());
            self.item(Some(item), counterpart, list, names, path);
            path.pop();
        }
        for (item, pe) in new.iter().zip(&new_names) {
            let Some(pe) = pe else { continue };
            if old_seen.contains(pe) {
                continue;
            }
            path.push(pe.clone());
            self.item(None, Some(item), list, names, path);
            path.pop();
        }
    }

    /// One list item: keyed items are objects walked field by field; set items are leaves.
    fn item<'a>(
        &mut self,
        old: Option<&'a Value>,
        new: Option<&'a Value>,
        list: ListType,
        names: &mut Vec<&'a str>,
        path: &mut Vec<PathElement>,
    ) {
        let keyed = matches!(list, ListType::Map(_));
        if !keyed {
            self.leaf(old, new, path);
            return;
        }
        if old.is_none() {
            self.out.added.insert(path);
        } else if new.is_none() {
            self.out.removed.insert(path);
        }
        self.fields(old.and_then(Value::as_object), new.and_then(Value::as_object), names, path);
    }
}
