//! Subresources other than status: `scale` (deployments, replicasets), `pods/binding`,
//! `pods/eviction`, and the kubelet-served ones (`log`, `exec`, `attach`, `portforward`, proxied
//! through `kubelet_proxy`).

use axum::http::Method;
use axum::response::Response;
use serde_json::{json, Value};

use api::selector::LabelSelector;
use api::ApiError;

use super::body::{self, meta_str};

use super::write::{self, Manager, WriteOpts};
use super::Ctx;
use crate::kubelet_proxy::options::{LogOptions, StreamOptions};
use crate::kubelet_proxy::{self, target};
use crate::request::FieldValidation;
use crate::timestamps;

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

/// The `autoscaling/v1` Scale view of a Deployment or ReplicaSet.
fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector")
        .and_then(|s| LabelSelector::from_json(s).ok())
        .map(|s| s.to_string())
        .unwrap_or_default();
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        }
    })
}

fn scale_response(code: u16, stored: &[u8]) -> Result<Response, ApiError> {
    let v: Value = serde_json::from_slice(stored).map_err(internal)?;
    Ok(crate::response::json(code, &scale_of(&v)))
}

pub fn get_scale(ctx: &Ctx) -> Result<Response, ApiError> {
    let res = ctx.target.res;
    let name = ctx.name()?;
    let obj =
        ctx.state.store.get(&ctx.target.key(name)).ok_or_else(|| ApiError::not_found(res.group, res.plural, name))?;
    scale_response(200, &obj.json)
}

fn replicas_of(scale: &Value, name: &str) -> Result<i64, ApiError> {
    let r = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
    match r.as_i64() {
        Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            vec![api::Cause::invalid(
                "spec.replicas",
                format!("Invalid value: {r}: must be greater than or equal to 0"),
            )],
        )),
    }
}

fn set_replicas(obj: &Value, n: i64) -> Value {
    let mut out = obj.clone();
    out["spec"]["replicas"] = json!(n);
    out
}

fn opts(ctx: &Ctx) -> Result<WriteOpts, ApiError> {
    Ok(WriteOpts {
        dry_run: ctx.query.dry_run()?,
        validation: FieldValidation::Ignore,
        manager: Manager::Update(write::field_manager(ctx, false)?),
        duplicates: Vec::new(),
    })
}

pub async fn put_scale(ctx: &Ctx, raw: &[u8]) -> Result<Response, ApiError> {
    let name = ctx.name()?.to_string();
    let scale = body::decode_object(&body::media_type(ctx), raw)?;
    check_type_meta(&scale, "autoscaling/v1", "Scale")?;
    match meta_str(&scale, "name") {
        Some(n) if n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )))
        }
        _ => {}
    }
    let n = replicas_of(&scale, &name)?;
    let user_rv = body::resource_version(&scale)?;
    let (code, w) = write::update_object(ctx, &opts(ctx)?, user_rv, |cur| Ok(set_replicas(cur, n))).await?;
    scale_response(code, &w.json)
}

pub async fn patch_scale(ctx: &Ctx, raw: &[u8]) -> Result<Response, ApiError> {
    let name = ctx.name()?.to_string();
    let ty = write::patch_type(&body::media_type(ctx))?;
    if ty == write::PatchType::Apply {
        return Err(ApiError::unsupported_media_type("application/apply-patch+yaml"));
    }
    write::refuse_force(ctx)?;
    let p = body::parse_json(raw)?;
    let user_rv = if ty == write::PatchType::Json { None } else { body::resource_version(&p)? };
    let (code, w) = write::update_object(ctx, &opts(ctx)?, user_rv, |cur| {
        let patched = write::apply_patch("Scale", ty, &scale_of(cur), &p)?;
        if meta_str(&patched, "name") != Some(name.as_str()) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta_str(&patched, "name").unwrap_or("")
            )));
        }
        let n = replicas_of(&patched, &name)?;
        let mut out = set_replicas(cur, n);
        // The patched Scale's resourceVersion is the write's precondition, as in a PUT.
        if let Some(rv) = patched.pointer("/metadata/resourceVersion") {
            out["metadata"]["resourceVersion"] = rv.clone();
        }
        Ok(out)
    })
    .await?;
    scale_response(code, &w.json)
}

/// `POST pods/{name}/binding`: assigns the pod to a node, once. The Binding is decoded through
/// its type (annotations must be strings) and validated as upstream's ValidatePodBinding, and
/// the bound pod goes through the same admission and commit path as any pod write.
pub async fn bind(ctx: &Ctx, raw: &[u8]) -> Result<Response, ApiError> {
    let name = ctx.name()?.to_string();
    let raw_binding = body::decode_object(&body::media_type(ctx), raw)?;
    check_type_meta(&raw_binding, "v1", "Binding")?;
    let binding: k8s_openapi::api::core::v1::Binding = serde_json::from_value(raw_binding)
        .map_err(|e| ApiError::bad_request(format!("Binding in version \"v1\" cannot be handled as a Binding: {e}")))?;
    if let Some(bn) = binding.metadata.name.as_deref().filter(|n| !n.is_empty()) {
        if bn != name {
            return Err(ApiError::bad_request(format!(
                "the name of the binding ({bn}) does not match the pod ({name})"
            )));
        }
    }
    let mut causes = Vec::new();
    let kind = binding.target.kind.as_deref().unwrap_or("");
    if !kind.is_empty() && kind != "Node" {
        causes.push(api::Cause::new(
            "FieldValueNotSupported",
            "target.kind",
            format!("Unsupported value: {kind:?}: supported values: \"Node\", \"<empty>\""),
        ));
    }
    let node = binding.target.name.clone().unwrap_or_default();
    if node.is_empty() {
        causes.push(api::Cause::required("target.name"));
    } else {
        for problem in api::validation::dns1123_subdomain(&node) {
            causes.push(api::Cause::invalid("target.name", format!("Invalid value: {node:?}: {problem}")));
        }
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid("", "Binding", &name, causes));
    }
    let annotations = binding.metadata.annotations.clone().unwrap_or_default();
    let opts = WriteOpts {
        dry_run: ctx.query.dry_run()?,
        validation: FieldValidation::Ignore,
        manager: Manager::None,
        duplicates: Vec::new(),
    };
    write::update_object(ctx, &opts, None, |cur| {
        let mut pod = cur.clone();
        if crate::strategy::is_deleting(&pod) {
            return Err(ApiError::conflict_message("", "pods/binding", &name, format!("Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is being deleted, cannot be assigned to a host")));
        }
        if let Some(existing) = pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            return Err(ApiError::conflict_message("", "pods/binding", &name, format!("Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is already assigned to node \"{existing}\"")));
        }
        pod["spec"]["nodeName"] = json!(node);
        if !annotations.is_empty() {
            let meta = pod["metadata"].as_object_mut().ok_or_else(|| ApiError::internal("stored pod has no metadata"))?;
            let ann = meta.entry("annotations").or_insert_with(|| json!({}));
            if !ann.is_object() {
                *ann = json!({});
            }
            for (k, v) in &annotations {
                ann[k] = json!(v);
            }
        }
        set_condition(&mut pod, "PodScheduled", "True");
        Ok(pod)
    })
    .await?;
    Ok(crate::response::json(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// A subresource body's apiVersion and kind, when given, must name the subresource's type.
fn check_type_meta(obj: &Value, api_version: &str, kind: &str) -> Result<(), ApiError> {
    for (field, want) in [("apiVersion", api_version), ("kind", kind)] {
        match obj.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() || s == want => {}
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "the body of this request must be a {api_version} {kind}: {field} is {other}"
                )))
            }
        }
    }
    Ok(())
}

fn set_condition(pod: &mut Value, ty: &str, status: &str) {
    let now = timestamps::now_rfc3339();
    let Some(st) = pod.as_object_mut().map(|o| o.entry("status").or_insert_with(|| json!({}))) else { return };
    let Some(so) = st.as_object_mut() else { return };
    let conds = so.entry("conditions").or_insert_with(|| json!([]));
    let Some(list) = conds.as_array_mut() else { return };
    if let Some(c) = list.iter_mut().find(|c| c.get("type").and_then(Value::as_str) == Some(ty)) {
        if c.get("status").and_then(Value::as_str) != Some(status) {
            c["status"] = json!(status);
            c["lastTransitionTime"] = json!(now);
        }
    } else {
        list.push(json!({"type": ty, "status": status, "lastProbeTime": null, "lastTransitionTime": now}));
    }
}

/// `POST pods/{name}/eviction`: deletes the pod (no PodDisruptionBudgets exist to stop it).
pub async fn evict(ctx: &Ctx, raw: &[u8]) -> Result<Response, ApiError> {
    let name = ctx.name()?.to_string();
    let eviction = body::decode_object(&body::media_type(ctx), raw)?;
    let options = eviction.get("deleteOptions").map(|o| o.to_string()).unwrap_or_default();
    let opts = super::delete::parse_options(ctx, options.as_bytes())?;
    super::delete::delete_one(ctx, &name, &opts).await?;
    Ok(crate::response::json(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// The pod a kubelet request is about, from the cache.
fn stored_pod(ctx: &Ctx, name: &str) -> Result<Value, ApiError> {
    let obj = ctx.state.store.get(&ctx.target.key(name)).ok_or_else(|| ApiError::not_found("", "pods", name))?;
    serde_json::from_slice(&obj.json).map_err(internal)
}

/// The kubelet of node `node`, from its Node object.
fn kubelet_of(ctx: &Ctx, node: &str) -> Result<kubelet_proxy::Endpoint, ApiError> {
    let nodes = api::resources::by_plural("", "v1", "nodes").ok_or_else(|| internal("no nodes resource"))?;
    let obj = ctx.state.store.get(&nodes.key(None, node)).ok_or_else(|| ApiError::not_found("", "nodes", node))?;
    let node_obj: Value = serde_json::from_slice(&obj.json).map_err(internal)?;
    target::endpoint_of(&node_obj, node)
}

fn node_name(pod: &Value) -> Option<&str> {
    pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty())
}

/// `GET pods/{name}/log`: the options are validated (400, 422), the container chosen (400), and
/// the kubelet's answer streamed back. A pod on no node yet has an empty log, as upstream.
pub async fn pod_log(ctx: &Ctx) -> Result<Response, ApiError> {
    let name = ctx.name()?;
    let opts = LogOptions::from_query(&ctx.query, name)?;
    let pod = stored_pod(ctx, name)?;
    let container = target::container_of(&pod, name, opts.container.as_deref())?;
    let Some(node) = node_name(&pod) else {
        return Ok(crate::response::bytes(200, "text/plain", Vec::new()));
    };
    let ep = kubelet_of(ctx, node)?;
    let namespace = ctx.target.namespace.as_deref().unwrap_or_default();
    let mut path = format!("/containerLogs/{namespace}/{name}/{container}");
    let query = opts.kubelet_query();
    if !query.is_empty() {
        path = format!("{path}?{query}");
    }
    ctx.state.kubelet.logs(&ep, &path, name).await
}

/// `GET|POST pods/{name}/exec` and `pods/{name}/attach`: the container chosen (400), the pod
/// on a node (400 otherwise), then the client's upgrade request goes to the kubelet and the
/// two connections are joined (see `kubelet_proxy`).
pub async fn pod_stream(ctx: &Ctx, method: &Method) -> Result<Response, ApiError> {
    let name = ctx.name()?;
    let exec = ctx.target.subresource.as_deref() == Some("exec");
    let opts = StreamOptions::from_query(&ctx.query, exec);
    let pod = stored_pod(ctx, name)?;
    let container = target::container_of(&pod, name, opts.container.as_deref())?;
    let node =
        node_name(&pod).ok_or_else(|| ApiError::bad_request(format!("pod {name} does not have a host assigned")))?;
    let ep = kubelet_of(ctx, node)?;
    let namespace = ctx.target.namespace.as_deref().unwrap_or_default();
    let endpoint = if exec { "exec" } else { "attach" };
    let path = format!("/{endpoint}/{namespace}/{name}/{container}?{}", opts.kubelet_query());
    ctx.state.kubelet.upgrade(&ep, method, &path, &ctx.headers, ctx.upgrade.clone()).await
}

/// `GET|POST pods/{name}/portforward`: the pod on a node (400 otherwise), then the client's
/// upgrade (SPDY/3.1, or a WebSocket tunnelling it) goes to the kubelet's `/portForward` and the
/// two connections are joined; the ports travel in the SPDY streams' headers.
pub async fn pod_port_forward(ctx: &Ctx, method: &Method) -> Result<Response, ApiError> {
    let name = ctx.name()?;
    let pod = stored_pod(ctx, name)?;
    let node =
        node_name(&pod).ok_or_else(|| ApiError::bad_request(format!("pod {name} does not have a host assigned")))?;
    let ep = kubelet_of(ctx, node)?;
    let namespace = ctx.target.namespace.as_deref().unwrap_or_default();
    let uid = pod.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default();
    let path = format!("/portForward/{namespace}/{name}/{uid}");
    ctx.state.kubelet.upgrade(&ep, method, &path, &ctx.headers, ctx.upgrade.clone()).await
}
