//! DELETE: graceful deletion (pods on a node), finalizers and the deletion-propagation
//! finalizers (`orphan`, `foregroundDeletion`), preconditions, and delete-collection.

use axum::response::Response;
use serde_json::{json, Value};

use api::{ApiError, ResourceInfo};

use super::body::{self, meta_str};
use super::filter::Filter;
use super::Ctx;
use crate::storage::{Precondition, WriteError, WriteOp, WriteRequest};
use crate::strategy::{self, GcPolicy, Strategy};
use crate::{response, timestamps};

const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Propagation {
    Orphan,
    Background,
    Foreground,
}

pub(super) struct DeleteOptions {
    grace: Option<i64>,
    propagation: Option<Propagation>,
    uid: Option<String>,
    resource_version: Option<String>,
    dry_run: bool,
}

pub(super) fn parse_options(ctx: &Ctx, raw: &[u8]) -> Result<DeleteOptions, ApiError> {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions as Typed;
    let body = body::decode_options(raw, "DeleteOptions")?;
    // Decoding through the typed struct checks every field's type (a number where the uid
    // precondition's string belongs is a 400, not an ignored precondition).
    let typed: Typed =
        serde_json::from_value(body).map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?;
    let grace = match typed.grace_period_seconds {
        Some(g) => Some(g),
        None => ctx.query.i64("gracePeriodSeconds")?,
    };
    let policy = typed.propagation_policy.clone().or_else(|| ctx.query.get("propagationPolicy").map(str::to_string));
    let orphan_dependents = match typed.orphan_dependents {
        Some(b) => Some(b),
        None => ctx.query.get("orphanDependents").map(|_| ctx.query.bool("orphanDependents")).transpose()?,
    };
    if policy.is_some() && orphan_dependents.is_some() {
        return Err(ApiError::invalid(
            "",
            "DeleteOptions",
            "",
            vec![api::Cause::invalid(
                "propagationPolicy",
                "orphanDependents and deletionPropagation cannot be both set",
            )],
        ));
    }
    let propagation = match policy.as_deref() {
        None => orphan_dependents.map(|o| if o { Propagation::Orphan } else { Propagation::Background }),
        Some("Orphan") => Some(Propagation::Orphan),
        Some("Background") => Some(Propagation::Background),
        Some("Foreground") => Some(Propagation::Foreground),
        Some(other) => {
            return Err(ApiError::invalid(
                "",
                "DeleteOptions",
                "",
                vec![api::Cause::new(
                    "FieldValueNotSupported",
                    "propagationPolicy",
                    format!(
                        "Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
                    ),
                )],
            ))
        }
    };
    let mut dry_run = ctx.query.dry_run()?;
    for v in typed.dry_run.iter().flatten() {
        if v != "All" {
            return Err(ApiError::bad_request(format!("Invalid dry run value: {v:?}: valid values are \"All\"")));
        }
        dry_run = true;
    }
    let preconditions = typed.preconditions.unwrap_or_default();
    Ok(DeleteOptions {
        grace,
        propagation,
        uid: preconditions.uid.filter(|u| !u.is_empty()),
        resource_version: preconditions.resource_version.filter(|r| !r.is_empty()),
        dry_run,
    })
}

/// The default propagation when the client names none: the kind's garbage-collection policy
/// (upstream's DefaultGarbageCollectionPolicy).
fn default_propagation(st: &Strategy) -> Propagation {
    match st.gc_policy {
        GcPolicy::OrphanDependents => Propagation::Orphan,
        GcPolicy::DeleteDependents => Propagation::Background,
    }
}

fn finalizers_mut(obj: &mut Value) -> Option<&mut Vec<Value>> {
    let meta = obj.get_mut("metadata").and_then(Value::as_object_mut)?;
    let f = meta.entry("finalizers").or_insert_with(|| json!([]));
    f.as_array_mut()
}

/// Adds or removes the propagation finalizers as the policy says; true when anything changed.
fn set_propagation_finalizers(obj: &mut Value, p: Propagation) -> bool {
    let Some(f) = finalizers_mut(obj) else { return false };
    let before = f.clone();
    let want = match p {
        Propagation::Orphan => Some(ORPHAN),
        Propagation::Foreground => Some(FOREGROUND),
        Propagation::Background => None,
    };
    f.retain(|v| {
        let s = v.as_str().unwrap_or("");
        (s != ORPHAN && s != FOREGROUND) || Some(s) == want
    });
    if let Some(w) = want {
        if !f.iter().any(|v| v.as_str() == Some(w)) {
            f.push(json!(w));
        }
    }
    let changed = *f != before;
    if f.is_empty() {
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("finalizers");
        }
    }
    changed
}

/// The response for an object that is gone: the object itself for the kinds whose strategy says
/// so (pods and services, upstream's ReturnDeletedObject), a success Status otherwise.
fn gone_response(res: &ResourceInfo, st: &Strategy, name: &str, obj_json: bytes::Bytes, v: &Value) -> Response {
    if st.returns_deleted_object {
        return response::json_bytes(200, obj_json);
    }
    let uid = meta_str(v, "uid").unwrap_or("");
    response::json(200, &api::status::success_status(res.group, res.plural, name, uid))
}

pub async fn delete(ctx: &Ctx, raw: &[u8]) -> Result<Response, ApiError> {
    let opts = parse_options(ctx, raw)?;
    let name = ctx.name()?.to_string();
    delete_one(ctx, &name, &opts).await
}

/// Objects the server itself needs (the immortal namespaces) may not be deleted.
fn refuse_immortal(res: &ResourceInfo, st: &Strategy, name: &str) -> Result<(), ApiError> {
    if st.is_immortal(name) {
        return Err(ApiError::forbidden(format!(
            "{} \"{name}\" is forbidden: this namespace may not be deleted",
            res.qualified_plural()
        ))
        .with_details(res.group, res.plural, name));
    }
    Ok(())
}

pub(super) async fn delete_one(ctx: &Ctx, name: &str, opts: &DeleteOptions) -> Result<Response, ApiError> {
    let res = ctx.target.res;
    let st = strategy::of(res);
    refuse_immortal(res, &st, name)?;
    let key = ctx.target.key(name);
    for _ in 0..16 {
        let cur = ctx.state.store.get(&key).ok_or_else(|| ApiError::not_found(res.group, res.plural, name))?;
        let old = cur.value().map_err(|e| ApiError::internal(e.to_string()))?;
        if let Some(uid) = &opts.uid {
            let have = meta_str(&old, "uid").unwrap_or("");
            if have != uid {
                return Err(ApiError::conflict_message(
                    res.group,
                    res.plural,
                    name,
                    format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"),
                ));
            }
        }
        if let Some(rv) = &opts.resource_version {
            if *rv != cur.rev.to_string() {
                return Err(ApiError::conflict_message(res.group, res.plural, name, format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}", cur.rev)));
            }
        }
        let mut new = old.clone();
        let propagation = opts.propagation.unwrap_or_else(|| default_propagation(&st));
        set_propagation_finalizers(&mut new, propagation);
        let grace = st.grace_period(&old, opts.grace);
        let deleting = strategy::is_deleting(&old);
        let keep = grace > 0 || st.has_finalizers(&new);
        if keep {
            if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                let shorter = match meta.get("deletionGracePeriodSeconds").and_then(Value::as_i64) {
                    Some(g) => grace < g,
                    None => true,
                };
                if !deleting || shorter {
                    meta.insert("deletionTimestamp".into(), json!(timestamps::now_plus_rfc3339(grace)));
                    meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
                }
            }
            st.prepare_for_graceful_delete(&mut new);
            if new == old || opts.dry_run {
                let body = serde_json::to_vec(&new).map_err(|e| ApiError::internal(e.to_string()))?;
                return Ok(response::json_bytes(200, body));
            }
            match ctx
                .state
                .store
                .write(WriteRequest {
                    key: key.clone(),
                    op: WriteOp::Put(new),
                    precondition: Precondition::Revision(cur.rev),
                })
                .await
            {
                Ok(c) => {
                    let code = if propagation == Propagation::Foreground { 202 } else { 200 };
                    return Ok(response::json_bytes(code, c.obj.json.clone()));
                }
                Err(WriteError::Conflict) => continue,
                Err(WriteError::NotFound) => return Err(ApiError::not_found(res.group, res.plural, name)),
                Err(e) => return Err(super::storage_error(e)),
            }
        }
        if opts.dry_run {
            return Ok(gone_response(res, &st, name, cur.json.clone(), &old));
        }
        match ctx
            .state
            .store
            .write(WriteRequest {
                key: key.clone(),
                op: WriteOp::Delete,
                precondition: Precondition::Revision(cur.rev),
            })
            .await
        {
            Ok(c) => {
                if st.allocates_service_addresses {
                    super::service_alloc::release_all(&mut ctx.state.alloc(), &old);
                }
                return Ok(gone_response(res, &st, name, c.obj.json.clone(), &old));
            }
            Err(WriteError::Conflict) => continue,
            Err(WriteError::NotFound) => return Err(ApiError::not_found(res.group, res.plural, name)),
            Err(e) => return Err(super::storage_error(e)),
        }
    }
    Err(ApiError::conflict(res.group, res.plural, name))
}

pub async fn delete_collection(ctx: &Ctx, raw: &[u8]) -> Result<Response, ApiError> {
    let opts = parse_options(ctx, raw)?;
    let filter = Filter::from_ctx(ctx)?;
    let keep = |o: &crate::storage::Obj| filter.matches(o);
    let (_, objs, _) = ctx.state.store.list(&ctx.target.prefix(), None, usize::MAX, &keep);
    let res = ctx.target.res;
    for o in objs {
        let Some(name) = o.key.rsplit('/').next() else { continue };
        match delete_one(ctx, name, &opts).await {
            Ok(_) => {}
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(response::json(
        200,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": {"group": res.group, "kind": res.plural}}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propagation_finalizers() {
        let mut o = json!({"metadata":{"finalizers":["a"]}});
        assert!(set_propagation_finalizers(&mut o, Propagation::Foreground));
        assert_eq!(o["metadata"]["finalizers"], json!(["a", "foregroundDeletion"]));
        assert!(set_propagation_finalizers(&mut o, Propagation::Orphan));
        assert_eq!(o["metadata"]["finalizers"], json!(["a", "orphan"]));
        assert!(set_propagation_finalizers(&mut o, Propagation::Background));
        assert_eq!(o["metadata"]["finalizers"], json!(["a"]));
        let mut o = json!({"metadata":{}});
        assert!(!set_propagation_finalizers(&mut o, Propagation::Background));
        assert!(o["metadata"].get("finalizers").is_none());
    }
}
