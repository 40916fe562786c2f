//! `paths` of one group-version document: the collection, object and subresource URLs of each
//! served resource with their operations, in kube-apiserver's shape (`x-kubernetes-action`,
//! `x-kubernetes-group-version-kind`, inline query parameters, request and response bodies).

use api::resources::SubresourceInfo;
use api::{ResourceInfo, Scope};
use serde_json::{json, Map, Value};

use super::components::Components;
use super::params;

/// The content types a PATCH accepts, as the real server lists them (less CBOR).
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

pub(super) fn paths(group: &str, version: &str, resources: &[&ResourceInfo], c: &Components) -> Map<String, Value> {
    let mut out = Map::new();
    for r in resources {
        let Some(kind_ref) = c.name(r.group, r.version, r.kind).map(schema_ref) else {
            continue;
        };
        let list_ref = c.name(r.group, r.version, &format!("{}List", r.kind)).map(schema_ref).unwrap_or(Value::Null);
        let ctx = Ctx { r, group, version, c, kind_ref, list_ref };
        ctx.add(&mut out);
    }
    out.sort_keys();
    out
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Everything the operations of one resource need.
struct Ctx<'a> {
    r: &'a ResourceInfo,
    group: &'a str,
    version: &'a str,
    c: &'a Components,
    kind_ref: Value,
    list_ref: Value,
}

impl Ctx<'_> {
    fn prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// `core_v1`, `apps_v1`, `discovery_v1`, ...
    fn tag(&self) -> String {
        format!("{}_{}", self.group_word().to_lowercase(), self.version)
    }

    /// `Core`, `Apps`, `Discovery`, ... as operation ids spell the group.
    fn group_word(&self) -> String {
        let word = if self.group.is_empty() { "core" } else { self.group.split('.').next().unwrap_or(self.group) };
        upper_first(word)
    }

    /// `CoreV1NamespacedPod`, `CoreV1Namespace`: the noun of the operation ids.
    fn noun(&self) -> String {
        let scope = if self.r.scope == Scope::Namespaced { "Namespaced" } else { "" };
        format!("{}{}{}{}", self.group_word(), upper_first(self.version), scope, self.r.kind)
    }

    fn gvk(&self) -> Value {
        gvk(self.r.group, self.r.version, self.r.kind)
    }

    fn add(&self, out: &mut Map<String, Value>) {
        let prefix = self.prefix();
        let namespaced = self.r.scope == Scope::Namespaced;
        let collection = if namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", self.r.plural)
        } else {
            format!("{prefix}/{}", self.r.plural)
        };
        let scope_params: Vec<Value> = if namespaced { vec![params::namespace()] } else { vec![] };

        let mut item_params = vec![params::path("name", &format!("name of the {}", self.r.kind))];
        item_params.extend(scope_params.iter().cloned());
        item_params.push(params::pretty());
        let mut coll_params = scope_params.clone();
        coll_params.push(params::pretty());

        out.insert(collection.clone(), self.collection_item(coll_params));
        out.insert(format!("{collection}/{{name}}"), self.object_item(item_params.clone()));
        if namespaced {
            out.insert(format!("{prefix}/{}", self.r.plural), self.all_namespaces_item());
        }
        for sub in self.r.subresources {
            let mut sub_params = item_params.clone();
            if let Some(Value::Object(name)) = sub_params.first_mut() {
                name.insert("description".into(), format!("name of the {}", sub.kind).into());
            }
            out.insert(format!("{collection}/{{name}}/{}", sub.name), self.subresource_item(sub, sub_params));
        }
    }

    fn collection_item(&self, path_params: Vec<Value>) -> Value {
        let kind = self.r.kind;
        let noun = self.noun();
        let mut delete_params = params::delete();
        delete_params.extend(params::list());
        let mut item = json!({
            "get": self.op("list", &format!("list or watch objects of kind {kind}"), &format!("list{noun}"),
                params::list(), None, responses(&[("200", "OK", &self.list_ref)])),
            "post": self.op("post", &format!("create a {kind}"), &format!("create{noun}"),
                params::write(), Some(body_any(&self.kind_ref)),
                responses(&[("200", "OK", &self.kind_ref), ("201", "Created", &self.kind_ref), ("202", "Accepted", &self.kind_ref)])),
            "parameters": path_params,
        });
        if self.r.supports("deletecollection") {
            item["delete"] = self.op(
                "deletecollection",
                &format!("delete collection of {kind}"),
                &format!("deletecollection{noun}"),
                delete_params,
                Some(self.delete_body()),
                responses(&[("200", "OK", &self.status_ref())]),
            );
        }
        item
    }

    fn object_item(&self, path_params: Vec<Value>) -> Value {
        let kind = self.r.kind;
        let noun = self.noun();
        json!({
            "get": self.op("get", &format!("read the specified {kind}"), &format!("read{noun}"),
                vec![], None, responses(&[("200", "OK", &self.kind_ref)])),
            "put": self.op("put", &format!("replace the specified {kind}"), &format!("replace{noun}"),
                params::write(), Some(body_any(&self.kind_ref)),
                responses(&[("200", "OK", &self.kind_ref), ("201", "Created", &self.kind_ref)])),
            "patch": self.op("patch", &format!("partially update the specified {kind}"), &format!("patch{noun}"),
                params::patch(), Some(self.patch_body()),
                responses(&[("200", "OK", &self.kind_ref), ("201", "Created", &self.kind_ref)])),
            "delete": self.op("delete", &format!("delete a {kind}"), &format!("delete{noun}"),
                params::delete(), Some(self.delete_body()),
                responses(&[("200", "OK", &self.status_ref()), ("202", "Accepted", &self.status_ref())])),
            "parameters": path_params,
        })
    }

    fn all_namespaces_item(&self) -> Value {
        let kind = self.r.kind;
        let id = format!("list{}{}{}ForAllNamespaces", self.group_word(), upper_first(self.version), kind);
        json!({
            "get": self.op("list", &format!("list or watch objects of kind {kind}"), &id,
                params::list(), None, responses(&[("200", "OK", &self.list_ref)])),
            "parameters": [params::pretty()],
        })
    }

    fn subresource_item(&self, sub: &SubresourceInfo, path_params: Vec<Value>) -> Value {
        let kind = self.r.kind;
        let noun = format!("{}{}", self.noun(), upper_first(sub.name));
        let sub_gvk = gvk(sub.group, sub.version, sub.kind);
        let mut item = Map::new();
        match sub.name {
            "log" => {
                let text = json!({ "text/plain": { "schema": { "type": "string" } } });
                let mut op = self.op("get", &format!("read log of the specified {kind}"), &format!("read{noun}"),
                    params::log(), None, json!({ "200": { "description": "OK", "content": text }, "401": { "description": "Unauthorized" } }));
                set_gvk(&mut op, sub_gvk);
                item.insert("get".into(), op);
            }
            "exec" | "attach" | "portforward" => {
                for (method, word) in [("get", "Get"), ("post", "Post")] {
                    let any = json!({ "*/*": { "schema": { "type": "string" } } });
                    let id = format!(
                        "connect{}{}{word}{}{}",
                        self.group_word(),
                        upper_first(self.version),
                        self.noun_without_group(),
                        upper_first(sub.name)
                    );
                    let mut op = self.op("connect", &format!("connect {} requests to {} of {kind}", method.to_uppercase(), sub.name), &id,
                        params::connect_of(sub.name), None,
                        json!({ "200": { "description": "OK", "content": any }, "401": { "description": "Unauthorized" } }));
                    set_gvk(&mut op, sub_gvk.clone());
                    item.insert(method.into(), op);
                }
            }
            _ => {
                let sub_ref = self.c.name(sub.group, sub.version, sub.kind).map(schema_ref).unwrap_or(Value::Null);
                for verb in sub.verbs {
                    let (method, action, description, id, params, body, codes): (_, _, _, _, _, _, &[(&str, &str)]) =
                        match *verb {
                            "get" => (
                                "get",
                                "get",
                                format!("read {} of the specified {kind}", sub.name),
                                format!("read{noun}"),
                                vec![],
                                None,
                                &[("200", "OK")],
                            ),
                            "update" => (
                                "put",
                                "put",
                                format!("replace {} of the specified {kind}", sub.name),
                                format!("replace{noun}"),
                                params::write(),
                                Some(body_any(&sub_ref)),
                                &[("200", "OK"), ("201", "Created")],
                            ),
                            "patch" => (
                                "patch",
                                "patch",
                                format!("partially update {} of the specified {kind}", sub.name),
                                format!("patch{noun}"),
                                params::patch(),
                                Some(self.patch_body()),
                                &[("200", "OK"), ("201", "Created")],
                            ),
                            "create" => (
                                "post",
                                "post",
                                format!("create {} of a {kind}", sub.name),
                                format!("create{noun}"),
                                params::write(),
                                Some(body_any(&sub_ref)),
                                &[("200", "OK"), ("201", "Created"), ("202", "Accepted")],
                            ),
                            _ => continue,
                        };
                    let codes: Vec<(&str, &str, &Value)> = codes.iter().map(|(c, d)| (*c, *d, &sub_ref)).collect();
                    let mut op = self.op(action, &description, &id, params, body, responses(&codes));
                    set_gvk(&mut op, sub_gvk.clone());
                    item.insert(method.into(), op);
                }
            }
        }
        item.insert("parameters".into(), Value::Array(path_params));
        Value::Object(item)
    }

    /// `NamespacedPod` as the connect operation ids spell it (`connectCoreV1GetNamespacedPodExec`).
    fn noun_without_group(&self) -> String {
        let scope = if self.r.scope == Scope::Namespaced { "Namespaced" } else { "" };
        format!("{scope}{}", self.r.kind)
    }

    fn op(
        &self,
        action: &str,
        description: &str,
        id: &str,
        parameters: Vec<Value>,
        body: Option<Value>,
        responses: Value,
    ) -> Value {
        let mut op = Map::new();
        op.insert("description".into(), description.into());
        op.insert("operationId".into(), id.into());
        if !parameters.is_empty() {
            op.insert("parameters".into(), Value::Array(parameters));
        }
        if let Some(body) = body {
            op.insert("requestBody".into(), body);
        }
        op.insert("responses".into(), responses);
        op.insert("tags".into(), json!([self.tag()]));
        op.insert("x-kubernetes-action".into(), action.into());
        op.insert("x-kubernetes-group-version-kind".into(), self.gvk());
        Value::Object(op)
    }

    fn status_ref(&self) -> Value {
        schema_ref(&self.c.meta.status)
    }

    fn delete_body(&self) -> Value {
        json!({ "content": { "*/*": { "schema": schema_ref(&self.c.meta.delete_options) } } })
    }

    fn patch_body(&self) -> Value {
        let patch = schema_ref(&self.c.meta.patch);
        let content: Map<String, Value> =
            PATCH_TYPES.iter().map(|t| (t.to_string(), json!({ "schema": patch }))).collect();
        json!({ "content": content, "required": true })
    }
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

fn set_gvk(op: &mut Value, gvk: Value) {
    if let Value::Object(op) = op {
        op.insert("x-kubernetes-group-version-kind".into(), gvk);
    }
}

fn body_any(schema: &Value) -> Value {
    json!({ "content": { "*/*": { "schema": schema } }, "required": true })
}

/// `{"200": {"description": "OK", "content": {"application/json": {"schema": ...}}}, "401": ...}`.
fn responses(codes: &[(&str, &str, &Value)]) -> Value {
    let mut out = Map::new();
    for (code, description, schema) in codes {
        out.insert(
            code.to_string(),
            json!({
                "content": { "application/json": { "schema": schema } },
                "description": description,
            }),
        );
    }
    out.insert("401".into(), json!({ "description": "Unauthorized" }));
    Value::Object(out)
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
