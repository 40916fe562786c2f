//! `components.schemas` of one group-version document: every schema reachable from its
//! operations, generated from k8s-openapi's `JsonSchema` impls and adjusted to what
//! kube-apiserver publishes (GVK extensions, list semantics, int-or-string, list kinds).

use std::collections::BTreeMap;

use api::ResourceInfo;
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use super::kinds::{self, MetaNames};
use super::list_semantics;

/// The schemas of a document and the component names the operations refer to.
pub(super) struct Components {
    pub schemas: Map<String, Value>,
    /// The component name of each kind (and `<Kind>List`) the document describes.
    pub names: BTreeMap<(String, String, String), String>,
    pub meta: MetaNames,
}

impl Components {
    /// The component name of `group/version, Kind=kind`, if the document has one.
    pub fn name(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.names.get(&(group.to_string(), version.to_string(), kind.to_string())).map(String::as_str)
    }
}

/// The group-versions whose `DeleteOptions` kind upstream lists on the shared schema.
const DELETE_OPTIONS_GVS: &[(&str, &str)] = &[
    ("", "v1"),
    ("apps", "v1"),
    ("batch", "v1"),
    ("coordination.k8s.io", "v1"),
    ("discovery.k8s.io", "v1"),
    ("policy", "v1"),
    ("autoscaling", "v1"),
];

pub(super) fn build(resources: &[&ResourceInfo]) -> Components {
    let mut gen = SchemaSettings::openapi3()
        .with(|s| {
            s.meta_schema = None;
        })
        .into_generator();
    let mut gvks: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    let mut names = BTreeMap::new();
    let mut lists = Vec::new();
    let mut note = |name: String, group: &str, version: &str, kind: &str| {
        let gvk = (group.to_string(), version.to_string(), kind.to_string());
        let entry = gvks.entry(name.clone()).or_default();
        if !entry.contains(&gvk) {
            entry.push(gvk.clone());
        }
        names.insert(gvk, name);
    };
    for r in resources {
        if let Some(name) = kinds::add_kind(&mut gen, r.group, r.version, r.kind) {
            note(name.clone(), r.group, r.version, r.kind);
            let list_kind = format!("{}List", r.kind);
            note(format!("{name}List"), r.group, r.version, &list_kind);
            lists.push((name, list_kind, r.plural));
        }
        for sub in r.subresources {
            if let Some(name) = kinds::add_kind(&mut gen, sub.group, sub.version, sub.kind) {
                note(name, sub.group, sub.version, sub.kind);
            }
        }
    }
    let meta = kinds::add_meta(&mut gen);
    note(meta.status.clone(), "", "v1", "Status");
    for (g, v) in DELETE_OPTIONS_GVS {
        note(meta.delete_options.clone(), g, v, "DeleteOptions");
    }

    let mut schemas = gen.take_definitions(true);
    for (item, list_kind, plural) in &lists {
        let list = list_schema(&schemas, item, list_kind, plural, &meta.list_meta);
        schemas.insert(format!("{item}List"), list);
    }
    for schema in schemas.values_mut() {
        drop_required_metadata(schema);
    }
    int_or_string(&mut schemas);
    list_semantics::annotate(&mut schemas);
    for (name, kinds) in gvks {
        if let Some(Value::Object(schema)) = schemas.get_mut(&name) {
            let list = kinds.into_iter().map(|(g, v, k)| json!({ "group": g, "kind": k, "version": v }));
            schema.insert("x-kubernetes-group-version-kind".into(), Value::Array(list.collect()));
        }
    }
    schemas.sort_keys();
    Components { schemas, names, meta }
}

/// `<Kind>List` as upstream describes it: `apiVersion`, `items` (required), `kind`, `metadata`.
fn list_schema(schemas: &Map<String, Value>, item: &str, list_kind: &str, plural: &str, list_meta: &str) -> Value {
    let item_props = schemas.get(item).and_then(|s| s.get("properties"));
    let prop = |key: &str| item_props.and_then(|p| p.get(key)).cloned().unwrap_or_else(|| json!({"type": "string"}));
    json!({
        "description": format!("{list_kind} is a list of {}.", item.rsplit('.').next().unwrap_or(item)),
        "type": "object",
        "properties": {
            "apiVersion": prop("apiVersion"),
            "items": {
                "description": format!("List of {plural}."),
                "type": "array",
                "items": { "allOf": [{ "$ref": format!("#/components/schemas/{item}") }], "default": {} },
            },
            "kind": prop("kind"),
            "metadata": {
                "allOf": [{ "$ref": format!("#/components/schemas/{list_meta}") }],
                "default": {},
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
        "required": ["items"],
    })
}

/// k8s-openapi lists `metadata` as required on every top-level kind (its field is not an
/// `Option`); upstream does not, and `kubectl explain` would print it as `-required-`.
fn drop_required_metadata(schema: &mut Value) {
    let Some(Value::Array(required)) = schema.get_mut("required") else {
        return;
    };
    required.retain(|r| r != "metadata");
    if required.is_empty() {
        if let Value::Object(obj) = schema {
            obj.remove("required");
        }
    }
}

/// IntOrString and Quantity in kube-apiserver's v3 form (`oneOf` the two JSON types, with
/// `format: int-or-string` on IntOrString), keeping k8s-openapi's `x-kubernetes-int-or-string`.
fn int_or_string(schemas: &mut Map<String, Value>) {
    let forms = [
        ("io.k8s.apimachinery.pkg.util.intstr.IntOrString", Some("int-or-string"), ["integer", "string"]),
        ("io.k8s.apimachinery.pkg.api.resource.Quantity", None, ["string", "number"]),
    ];
    for (name, format, types) in forms {
        if let Some(Value::Object(schema)) = schemas.get_mut(name) {
            if let Some(format) = format {
                schema.insert("format".into(), format.into());
            }
            schema.insert("oneOf".into(), json!([{ "type": types[0] }, { "type": types[1] }]));
            schema.insert("x-kubernetes-int-or-string".into(), true.into());
        }
    }
}
