//! Pruning: decode through the k8s-openapi type of the kind and re-encode. Unknown fields are dropped
//! (their paths reported, upstream-style: `spec.template.spec.containers[0].foo`), timestamps come out
//! in whole seconds UTC, explicit nulls vanish. A decode error is pinned to the offending field by
//! bisection (remove children until the error goes away), so the cause carries a path.
//!
//! Quantities written as JSON numbers (`cpu: 1`, `memory: 128974848`, `cpu: 0.5`) are accepted: the
//! 0.29 `Quantity` deserializer takes numbers as well as strings, so no pre-pass is needed (the tests
//! pin this down).

use super::errs;
use api::k8s_openapi::api::{apps, batch, coordination, core, discovery};
use api::Cause;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// The result of [`normalize`](super::normalize).
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The pruned object.
    pub object: Value,
    /// Paths of the fields that were dropped, e.g. `spec.replicass`.
    pub unknown_fields: Vec<String>,
}

fn render(p: &serde_ignored::Path<'_>, out: &mut String) {
    use serde_ignored::Path;
    match p {
        Path::Root => {}
        Path::Seq { parent, index } => {
            render(parent, out);
            out.push_str(&format!("[{index}]"));
        }
        Path::Map { parent, key } => {
            render(parent, out);
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(key);
        }
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => render(parent, out),
    }
}

fn run<T: DeserializeOwned + Serialize>(v: &Value, unknown: &mut Vec<String>) -> Result<Value, String> {
    let t: T = serde_ignored::deserialize(v, |p| {
        let mut s = String::new();
        render(&p, &mut s);
        unknown.push(s);
    })
    .map_err(|e| e.to_string())?;
    serde_json::to_value(&t).map_err(|e| e.to_string())
}

/// Decodes and re-encodes `v` as `kind`; `None` for kinds without a typed model.
fn roundtrip(kind: &str, v: &Value, unknown: &mut Vec<String>) -> Option<Result<Value, String>> {
    Some(match kind {
        "Pod" => run::<core::v1::Pod>(v, unknown),
        "Service" => run::<core::v1::Service>(v, unknown),
        "Endpoints" => run::<core::v1::Endpoints>(v, unknown),
        "Secret" => run::<core::v1::Secret>(v, unknown),
        "ConfigMap" => run::<core::v1::ConfigMap>(v, unknown),
        "Namespace" => run::<core::v1::Namespace>(v, unknown),
        "Node" => run::<core::v1::Node>(v, unknown),
        "Event" => run::<core::v1::Event>(v, unknown),
        "ServiceAccount" => run::<core::v1::ServiceAccount>(v, unknown),
        "Deployment" => run::<apps::v1::Deployment>(v, unknown),
        "ReplicaSet" => run::<apps::v1::ReplicaSet>(v, unknown),
        "DaemonSet" => run::<apps::v1::DaemonSet>(v, unknown),
        "Job" => run::<batch::v1::Job>(v, unknown),
        "CronJob" => run::<batch::v1::CronJob>(v, unknown),
        "EndpointSlice" => run::<discovery::v1::EndpointSlice>(v, unknown),
        "Lease" => run::<coordination::v1::Lease>(v, unknown),
        _ => return None,
    })
}

fn decode_error(kind: &str, v: &Value) -> Option<String> {
    match roundtrip(kind, v, &mut Vec::new()) {
        Some(Err(e)) => Some(e),
        _ => None,
    }
}

/// See [`super::normalize`].
pub fn normalize(kind: &str, obj: Value) -> Result<Normalized, Vec<Cause>> {
    let mut unknown = Vec::new();
    match roundtrip(kind, &obj, &mut unknown) {
        None => Ok(Normalized { object: obj, unknown_fields: Vec::new() }),
        Some(Ok(object)) => Ok(Normalized { object, unknown_fields: unknown }),
        Some(Err(msg)) => {
            let path = locate(kind, &obj, &msg);
            Err(vec![errs::type_invalid(&path, &msg)])
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Idx(usize),
}

fn node<'a>(root: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(root, |cur, s| match s {
        Seg::Key(k) => cur.get(k.as_str()),
        Seg::Idx(i) => cur.get(*i),
    })
}

fn node_mut<'a>(root: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(root, |cur, s| match s {
        Seg::Key(k) => cur.get_mut(k.as_str()),
        Seg::Idx(i) => cur.get_mut(*i),
    })
}

fn children(v: &Value) -> Vec<Seg> {
    match v {
        Value::Object(m) => m.keys().map(|k| Seg::Key(k.clone())).collect(),
        Value::Array(a) => (0..a.len()).map(Seg::Idx).collect(),
        _ => Vec::new(),
    }
}

/// A copy of `root` with the given children of the node at `path` removed.
fn without(root: &Value, path: &[Seg], remove: &[Seg]) -> Value {
    let mut copy = root.clone();
    if let Some(n) = node_mut(&mut copy, path) {
        match n {
            Value::Object(m) => {
                for s in remove {
                    if let Seg::Key(k) = s {
                        m.shift_remove(k.as_str());
                    }
                }
            }
            Value::Array(a) => {
                let mut idx: Vec<usize> =
                    remove.iter().filter_map(|s| if let Seg::Idx(i) = s { Some(*i) } else { None }).collect();
                idx.sort_unstable();
                for i in idx.into_iter().rev() {
                    if i < a.len() {
                        a.remove(i);
                    }
                }
            }
            _ => {}
        }
    }
    copy
}

fn render_segs(path: &[Seg]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Idx(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Finds the deepest field whose removal makes the decode error `err` go away. Bisects each level's
/// children, so the number of decodes is about depth × log2(width).
fn locate(kind: &str, root: &Value, err: &str) -> String {
    let mut path: Vec<Seg> = Vec::new();
    // Depth is bounded by the document; the cap is a guard against pathological input.
    for _ in 0..256 {
        let Some(cur) = node(root, &path) else { break };
        let mut cands = children(cur);
        if cands.is_empty() {
            break;
        }
        while cands.len() > 1 {
            let half = cands.len() / 2;
            let (a, b) = cands.split_at(half);
            let changed = decode_error(kind, &without(root, &path, a)).as_deref() != Some(err);
            cands = if changed { a.to_vec() } else { b.to_vec() };
        }
        let Some(c) = cands.pop() else { break };
        if decode_error(kind, &without(root, &path, std::slice::from_ref(&c))).as_deref() == Some(err) {
            break;
        }
        path.push(c);
    }
    render_segs(&path)
}
