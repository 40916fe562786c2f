//! Server-side printing: `meta.k8s.io/v1` Table responses for `kubectl get`.

use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::Ctx;

/// What each row carries (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

/// Whether the client asked for a Table (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`).
pub fn wants_table(ctx: &Ctx) -> bool {
    ctx.header("accept")
        .map(|a| a.split(',').next().map(|first| first.contains("as=Table")).unwrap_or(false))
        .unwrap_or(false)
}

pub fn include(ctx: &Ctx) -> Include {
    match ctx.query.get("includeObject") {
        Some("None") => Include::None,
        Some("Object") => Include::Object,
        _ => Include::Metadata,
    }
}

pub fn row(kind: &str, obj: &Value, include: Include, now: SystemTime) -> Value {
    let cells = crate::table::row_cells(kind, obj, now);
    let mut row = Map::new();
    row.insert("cells".into(), Value::Array(cells));
    match include {
        Include::None => {}
        Include::Metadata => {
            row.insert(
                "object".into(),
                json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                }),
            );
        }
        Include::Object => {
            row.insert("object".into(), obj.clone());
        }
    }
    Value::Object(row)
}

/// A Table of `rows`; `with_columns` false leaves out the column definitions (watch events after
/// the first, as upstream).
pub fn table(kind: &str, rows: Vec<Value>, metadata: Value, with_columns: bool) -> Value {
    let mut t = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "rows": rows,
    });
    if with_columns {
        t["columnDefinitions"] = Value::Array(crate::table::column_definitions(kind));
    } else {
        t["columnDefinitions"] = Value::Null;
    }
    t
}
