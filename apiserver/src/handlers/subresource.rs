//! Subresources other than status: `scale` (deployments, replicasets), `pods/binding`,
//! `pods/eviction`, and the kubelet-served ones (`log`, `exec`, `attach`).

use axum::response::Response;
use serde_json::{json, Value};

use api::selector::LabelSelector;
use api::ApiError;

use super::body::{self, meta_str};
use super::write::{self, Manager, WriteOpts};
use super::Ctx;
use crate::request::FieldValidation;
use crate::storage::{Precondition, WriteError, WriteOp, WriteRequest};
use crate::util;

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
    let p = body::parse_json(raw)?;
    let user_rv = if ty == write::PatchType::Json { None } else { body::resource_version(&p)? };
    let (code, w) = write::update_object(ctx, &opts(ctx)?, user_rv, |cur| {
        let patched = write::apply_patch("Scale", ty, &scale_of(cur), &p)?;
        let n = replicas_of(&patched, &name)?;
        Ok(set_replicas(cur, n))
    })
    .await?;
    scale_response(code, &w.json)
}

/// `POST pods/{name}/binding`: assigns the pod to a node, once.
pub async fn bind(ctx: &Ctx, raw: &[u8]) -> Result<Response, ApiError> {
    let name = ctx.name()?.to_string();
    let binding = body::decode_object(&body::media_type(ctx), raw)?;
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("", "Binding", &name, vec![api::Cause::required("target.name")]))?;
    if let Some(bn) = meta_str(&binding, "name") {
        if bn != name {
            return Err(ApiError::bad_request(format!(
                "the name of the binding ({bn}) does not match the pod ({name})"
            )));
        }
    }
    let key = ctx.target.key(&name);
    for _ in 0..16 {
        let cur = ctx.state.store.get(&key).ok_or_else(|| ApiError::not_found("", "pods", &name))?;
        let mut pod = cur.value().map_err(internal)?;
        if crate::strategy::is_deleting(&pod) {
            return Err(ApiError::conflict_message("", "pods/binding", &name, format!("Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is being deleted, cannot be assigned to a host")));
        }
        if let Some(existing) = pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            return Err(ApiError::conflict_message("", "pods/binding", &name, format!("Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is already assigned to node \"{existing}\"")));
        }
        pod["spec"]["nodeName"] = json!(node);
        if let Some(ann) = binding.pointer("/metadata/annotations").and_then(Value::as_object) {
            for (k, v) in ann {
                pod["metadata"]["annotations"][k] = v.clone();
            }
        }
        set_condition(&mut pod, "PodScheduled", "True");
        if ctx.query.dry_run()? {
            break;
        }
        match ctx
            .state
            .store
            .write(WriteRequest {
                key: key.clone(),
                op: WriteOp::Put(pod),
                precondition: Precondition::Revision(cur.rev),
            })
            .await
        {
            Ok(_) => break,
            Err(WriteError::Conflict) => continue,
            Err(WriteError::NotFound) => return Err(ApiError::not_found("", "pods", &name)),
            Err(e) => return Err(internal(e)),
        }
    }
    Ok(crate::response::json(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

fn set_condition(pod: &mut Value, ty: &str, status: &str) {
    let now = util::now_rfc3339();
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

/// Logs, exec and attach are served by the pod's kubelet, reached through the API server.
pub fn no_kubelet(ctx: &Ctx) -> ApiError {
    let name = ctx.target.name.as_deref().unwrap_or("");
    match ctx.state.store.get(&ctx.target.key(name)) {
        None => ApiError::not_found("", "pods", name),
        Some(_) => ApiError::bad_request(format!(
            "pod {name:?} has no running kubelet to serve {}: no node agent is connected to this server",
            ctx.target.subresource.as_deref().unwrap_or("this request")
        )),
    }
}
