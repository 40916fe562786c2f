//! Checks the documents against what kubectl reads from them.

use serde_json::Value;

use super::*;

fn doc(o: &OpenApi, group: &str, version: &str) -> Value {
    let (bytes, _) = o.group_version(&gv_path(group, version)).expect("document of a served group-version");
    serde_json::from_slice(&bytes).expect("document is JSON")
}

fn gvk_matches(v: &Value, group: &str, version: &str, kind: &str) -> bool {
    v.get("group").and_then(Value::as_str) == Some(group)
        && v.get("version").and_then(Value::as_str) == Some(version)
        && v.get("kind").and_then(Value::as_str) == Some(kind)
}

#[test]
fn every_served_kind_has_a_component_with_its_gvk() {
    let o = OpenApi::new();
    for r in api::RESOURCES {
        let d = doc(&o, r.group, r.version);
        let schemas = d["components"]["schemas"].as_object().expect("schemas");
        for kind in [r.kind.to_string(), format!("{}List", r.kind)] {
            let found = schemas.values().any(|s| {
                s["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|gvks| gvks.iter().any(|g| gvk_matches(g, r.group, r.version, &kind)))
            });
            assert!(found, "no component with GVK {}/{} {kind}", r.group, r.version);
        }
    }
}

#[test]
fn every_patch_operation_takes_field_validation() {
    let o = OpenApi::new();
    for r in api::RESOURCES {
        let d = doc(&o, r.group, r.version);
        let mut patch_ops_of_kind = 0;
        for (path, item) in d["paths"].as_object().expect("paths") {
            let Some(patch) = item.get("patch") else { continue };
            let names: Vec<&str> = patch["parameters"]
                .as_array()
                .expect("patch parameters")
                .iter()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str())
                .collect();
            for required in ["fieldValidation", "fieldManager", "dryRun", "force"] {
                assert!(names.contains(&required), "{path}: patch lacks {required}");
            }
            let content = patch["requestBody"]["content"].as_object().expect("patch body");
            for t in PATCH_TYPES_FOR_TEST {
                assert!(content.contains_key(*t), "{path}: patch lacks {t}");
            }
            if gvk_matches(&patch["x-kubernetes-group-version-kind"], r.group, r.version, r.kind) {
                patch_ops_of_kind += 1;
            }
        }
        assert!(patch_ops_of_kind > 0, "no patch operation for {}", r.kind);
    }
}

const PATCH_TYPES_FOR_TEST: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

fn collect_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => collect_refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_refs(i, out)),
        _ => {}
    }
}

#[test]
fn every_ref_resolves_inside_its_document() {
    let o = OpenApi::new();
    for path in o.docs().by_path.keys() {
        let (bytes, _) = o.group_version(path).expect("listed document");
        let d: Value = serde_json::from_slice(&bytes).expect("JSON");
        let mut refs = Vec::new();
        collect_refs(&d, &mut refs);
        assert!(refs.len() > 10, "{path}: only {} refs", refs.len());
        for r in refs {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{path}: odd ref {r}"));
            assert!(d["components"]["schemas"].get(name).is_some(), "{path}: dangling {r}");
        }
    }
}

#[test]
fn root_lists_every_group_version_with_its_hash() {
    let o = OpenApi::new();
    let root: Value = serde_json::from_slice(&o.root()).expect("JSON");
    for r in api::RESOURCES {
        let path = gv_path(r.group, r.version);
        let url = root["paths"][&path]["serverRelativeURL"].as_str().unwrap_or_else(|| panic!("root lacks {path}"));
        let (_, hash) = o.group_version(&path).expect("document");
        assert_eq!(url, format!("/openapi/v3/{path}?hash={hash}"));
    }
    assert!(o.group_version("apis/nope/v1").is_none());
    assert!(o.group_version("").is_none());
    assert!(o.group_version("/apis/apps/v1").is_some());
}

#[test]
fn list_semantics_name_real_fields_and_reach_the_documents() {
    let o = OpenApi::new();
    let docs: Vec<Value> = o.docs().by_path.values().map(|(b, _)| serde_json::from_slice(b).expect("JSON")).collect();
    for (schema, field) in list_semantics::named_fields() {
        let found = docs.iter().any(|d| d["components"]["schemas"][&schema]["properties"].get(field).is_some());
        assert!(found, "{schema}.{field} is in no document");
    }
    let apps = doc(&o, "apps", "v1");
    let s = &apps["components"]["schemas"];
    let containers = &s["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(
        s["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]["x-kubernetes-patch-strategy"],
        "retainKeys"
    );
    let ports = &s["io.k8s.api.core.v1.Container"]["properties"]["ports"];
    assert_eq!(ports["x-kubernetes-list-map-keys"], serde_json::json!(["containerPort", "protocol"]));
}

#[test]
fn schemas_look_like_upstream() {
    let o = OpenApi::new();
    let apps = doc(&o, "apps", "v1");
    let s = &apps["components"]["schemas"];
    let deployment = &s["io.k8s.api.apps.v1.Deployment"];
    assert!(deployment["description"].as_str().is_some_and(|d| d.contains("declarative updates")));
    assert!(deployment.get("required").is_none(), "metadata is not required upstream");
    assert_eq!(
        deployment["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(s["io.k8s.api.apps.v1.DeploymentSpec"]["required"], serde_json::json!(["selector", "template"]));
    let ios = &s["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(ios["format"], "int-or-string");
    assert_eq!(ios["x-kubernetes-int-or-string"], true);
    let core = doc(&o, "", "v1");
    let q = &core["components"]["schemas"]["io.k8s.apimachinery.pkg.api.resource.Quantity"];
    assert_eq!(q["oneOf"][1]["type"], "number");
    assert_eq!(core["openapi"], "3.0.0");
    let secret_data = &core["components"]["schemas"]["io.k8s.api.core.v1.Secret"]["properties"]["data"];
    assert_eq!(secret_data["additionalProperties"]["format"], "byte");
}

#[test]
fn clones_share_the_built_documents() {
    let a = OpenApi::new();
    let b = a.clone();
    assert_eq!(a.root(), b.root());
    assert!(std::ptr::eq(a.docs(), b.docs()));
}
