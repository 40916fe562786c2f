//! Field sets: the trie of paths a manager owns, and its `FieldsV1` wire form.
//!
//! A path is a list of [`PathElement`]s from the object root: `f:<name>` selects a field,
//! `k:{...}` an item of a keyed list, `v:<json>` an item of a set list and `i:<n>` an item
//! by index. A node of the trie is a *member* when the path ending there is owned itself
//! (a leaf, or a list item, written `".": {}` when it also has children).

use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// One step of a field path, as upstream's `fieldpath.PathElement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathElement {
    /// A field of an object (`f:name`).
    Field(String),
    /// The item of a keyed list with these key values, sorted by key name (`k:{...}`).
    Key(Vec<(String, Value)>),
    /// The item of a set list with this value (`v:...`).
    Value(Value),
    /// An item by position (`i:0`); only for items that cannot be named otherwise.
    Index(usize),
}

impl PathElement {
    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `FieldsV1` key of this element: `f:name`, `k:{"name":"x"}`, `v:"x"`, `i:0`.
    pub fn serialize(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let mut map = Map::new();
                for (name, value) in fields {
                    map.insert(name.clone(), value.clone());
                }
                format!("k:{}", Value::Object(map))
            }
            PathElement::Value(value) => format!("v:{value}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` key; `None` for a key of an unknown form.
    pub fn parse(s: &str) -> Option<PathElement> {
        if let Some(name) = s.strip_prefix("f:") {
            return Some(PathElement::Field(name.to_string()));
        }
        if let Some(json) = s.strip_prefix("k:") {
            let Ok(Value::Object(map)) = serde_json::from_str::<Value>(json) else {
                return None;
            };
            let mut fields: Vec<(String, Value)> = map.into_iter().collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            return Some(PathElement::Key(fields));
        }
        if let Some(json) = s.strip_prefix("v:") {
            return serde_json::from_str::<Value>(json).ok().map(PathElement::Value);
        }
        if let Some(index) = s.strip_prefix("i:") {
            return index.parse().ok().map(PathElement::Index);
        }
        None
    }
}

impl fmt::Display for PathElement {
    /// Upstream's human form, used in conflict messages: `.name`, `[name="x"]`, `[="x"]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                f.write_str("[")?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}={value}")?;
                }
                f.write_str("]")
            }
            PathElement::Value(value) => write!(f, "[={value}]"),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

impl Ord for PathElement {
    /// Upstream's order: fields, then keys, then values, then indices; each by content.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b.iter()) {
                    let c = an.cmp(bn).then_with(|| cmp_value(av, bv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => cmp_value(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A total order on JSON values consistent with equality: by type, then by content
/// (numbers numerically).
fn cmp_value(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => {
            let numeric = match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                _ => Ordering::Equal,
            };
            numeric.then_with(|| x.to_string().cmp(&y.to_string()))
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        _ if rank(a) != rank(b) => rank(a).cmp(&rank(b)),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// Writes a path the way upstream prints it in conflicts: `.spec.containers[name="x"].image`.
pub fn path_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// A set of field paths, stored as a trie.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet {
    children: BTreeMap<PathElement, Node>,
}

/// One trie node: whether the path ending here is owned, and the paths below it.
/// Invariant: a node is a member or has a non-empty set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    pub member: bool,
    pub set: FieldSet,
}

impl FieldSet {
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// The node for one child element, if any path goes through it.
    pub fn get(&self, pe: &PathElement) -> Option<&Node> {
        self.children.get(pe)
    }

    /// Adds a path (the empty path is ignored: the root is never a member).
    pub fn insert(&mut self, path: &[PathElement]) {
        if let Some((first, rest)) = path.split_first() {
            let node = self.children.entry(first.clone()).or_default();
            if rest.is_empty() {
                node.member = true;
            } else {
                node.set.insert(rest);
            }
        }
    }

    /// Whether `path` itself is a member.
    #[cfg(test)]
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path.split_first() {
            None => false,
            Some((first, rest)) => match self.children.get(first) {
                None => false,
                Some(node) if rest.is_empty() => node.member,
                Some(node) => node.set.has(rest),
            },
        }
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        for (pe, node) in &other.children {
            match out.children.get_mut(pe) {
                Some(mine) => {
                    mine.member |= node.member;
                    mine.set = mine.set.union(&node.set);
                }
                None => {
                    out.children.insert(pe.clone(), node.clone());
                }
            }
        }
        out
    }

    /// Members of `self` that are not members of `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, node) in &self.children {
            let kept = match other.children.get(pe) {
                None => node.clone(),
                Some(theirs) => Node { member: node.member && !theirs.member, set: node.set.difference(&theirs.set) },
            };
            if kept.member || !kept.set.is_empty() {
                out.children.insert(pe.clone(), kept);
            }
        }
        out
    }

    /// Members of both `self` and `other`.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (pe, node) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let kept = Node { member: node.member && theirs.member, set: node.set.intersection(&theirs.set) };
                if kept.member || !kept.set.is_empty() {
                    out.children.insert(pe.clone(), kept);
                }
            }
        }
        out
    }

    /// Every member path, in upstream's iteration order (a level's members, then its children).
    pub fn paths(&self) -> Vec<Vec<PathElement>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Vec<PathElement>>) {
        for (pe, node) in &self.children {
            if node.member {
                let mut path = prefix.clone();
                path.push(pe.clone());
                out.push(path);
            }
        }
        for (pe, node) in &self.children {
            if !node.set.is_empty() {
                prefix.push(pe.clone());
                node.set.collect_paths(prefix, out);
                prefix.pop();
            }
        }
    }

    /// The `FieldsV1` JSON object of this set.
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        for (pe, node) in &self.children {
            let mut inner = Map::new();
            if node.member && !node.set.is_empty() {
                inner.insert(".".to_string(), Value::Object(Map::new()));
            }
            if let Value::Object(children) = node.set.to_fields_v1() {
                inner.extend(children);
            }
            map.insert(pe.serialize(), Value::Object(inner));
        }
        Value::Object(map)
    }

    /// Reads a `FieldsV1` object. Keys of unknown form are dropped, as upstream does; a
    /// non-object value counts as a leaf.
    pub fn from_fields_v1(value: &Value) -> FieldSet {
        let mut out = FieldSet::new();
        let Value::Object(map) = value else {
            return out;
        };
        for (key, child) in map {
            if key == "." {
                continue;
            }
            let Some(pe) = PathElement::parse(key) else {
                continue;
            };
            let set = FieldSet::from_fields_v1(child);
            let dot = matches!(child, Value::Object(m) if m.contains_key("."));
            let node = Node { member: dot || set.is_empty(), set };
            out.children.insert(pe, node);
        }
        out
    }
}
