//! Create, update (PUT) and patch (PATCH): every written object goes through the same steps as
//! upstream's registry — decode, prune unknown fields (warn, or 400 with `fieldValidation=Strict`),
//! system metadata, defaulting, validation (422), ClusterIP/NodePort allocation, managedFields —
//! and is then committed with a precondition, so a concurrent writer is never overwritten.

use std::sync::Arc;

use axum::response::Response;
use serde_json::{json, Value};

use api::{ApiError, ResourceInfo};

use super::body::{self, meta_str, set_meta};
use super::service_alloc::ServiceAlloc;
use super::Ctx;
use crate::request::FieldValidation;
use crate::state::AppState;
use crate::storage::{Obj, Precondition, WriteError, WriteOp, WriteRequest};
use crate::{admission, apply, identity, patch, response, strategy, timestamps};

/// Tries of a write that lost a race to a concurrent writer (without a client precondition).
const RETRIES: usize = 16;

/// How the managedFields of a write are kept.
#[derive(Debug, Clone)]
pub enum Manager {
    /// A create/update/patch by this manager (operation Update).
    Update(String),
    /// Server-side apply already computed the managedFields.
    Applied,
    /// Internal writes (bootstrap) record nothing.
    None,
}

pub struct WriteOpts {
    pub dry_run: bool,
    pub validation: FieldValidation,
    pub manager: Manager,
    /// Fields the JSON body named twice (reported like unknown fields).
    pub duplicates: Vec<String>,
}

impl WriteOpts {
    fn from_ctx(ctx: &Ctx) -> Result<WriteOpts, ApiError> {
        Ok(WriteOpts {
            dry_run: ctx.query.dry_run()?,
            validation: FieldValidation::from_query(&ctx.query)?,
            manager: Manager::Update(field_manager(ctx, false)?),
            duplicates: Vec::new(),
        })
    }

    fn with_duplicates_of(mut self, media: &str, raw: &[u8]) -> Self {
        if matches!(media, "" | "application/json") || media.ends_with("+json") {
            self.duplicates = super::duplicates::duplicate_fields(raw);
        }
        self
    }
}

/// `fieldManager`, or the user agent's program name, as upstream; required for apply.
pub fn field_manager(ctx: &Ctx, required: bool) -> Result<String, ApiError> {
    let m = match ctx.query.get("fieldManager") {
        Some(m) => m.to_string(),
        None if required => {
            return Err(ApiError::bad_request(
                "PATCH, application/apply-patch+yaml requires a non-empty fieldManager query parameter",
            ))
        }
        None => ctx
            .header("user-agent")
            .and_then(|ua| ua.split('/').next())
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown")
            .to_string(),
    };
    if m.len() > 128 || m.chars().any(|c| c.is_control()) {
        return Err(ApiError::bad_request(format!(
            "fieldManager must be at most 128 printable characters, got {} characters",
            m.chars().count()
        )));
    }
    Ok(m)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

/// Prunes unknown fields through the typed decoder; 400 on type errors.
fn normalize(
    res: &ResourceInfo,
    obj: Value,
    mode: FieldValidation,
    duplicates: &[String],
) -> Result<(Value, Vec<String>), ApiError> {
    let name = meta_str(&obj, "name").unwrap_or("").to_string();
    match admission::normalize(res.kind, obj) {
        Ok(n) => {
            let unknown: Vec<String> = duplicates
                .iter()
                .map(|f| format!("duplicate field \"{f}\""))
                .chain(n.unknown_fields.iter().map(|f| format!("unknown field \"{f}\"")))
                .collect();
            if unknown.is_empty() || mode == FieldValidation::Ignore {
                return Ok((n.object, Vec::new()));
            }
            if mode == FieldValidation::Strict {
                let mut e = ApiError::bad_request(format!("strict decoding error: {}", unknown.join(", ")));
                e = e.with_details(res.group, res.kind, &name);
                return Err(e);
            }
            Ok((n.object, unknown))
        }
        Err(causes) => {
            let text: Vec<String> = causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
            let mut e = ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: {}",
                res.kind,
                res.version,
                res.kind,
                text.join("; ")
            ));
            e.causes = causes;
            Err(e)
        }
    }
}

fn validate(res: &ResourceInfo, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let causes = admission::validate(res.kind, obj, old);
    if causes.is_empty() {
        return Ok(());
    }
    let name = meta_str(obj, "name").unwrap_or("");
    Err(ApiError::invalid(res.group, res.kind, name, causes))
}

fn with_namespace_check(state: &AppState, res: &ResourceInfo, obj: &Value) -> Result<(), ApiError> {
    if !res.namespaced() {
        return Ok(());
    }
    let ns = meta_str(obj, "namespace").ok_or_else(|| ApiError::bad_request("the object has no namespace"))?;
    let key = format!("/registry/namespaces/{ns}");
    let nsobj = state.store.get(&key).ok_or_else(|| ApiError::not_found("", "namespaces", ns))?;
    let v = nsobj.value().map_err(internal)?;
    if strategy::namespace_is_terminating(&v) {
        return Err(ApiError::forbidden(format!(
            "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            res.plural,
            meta_str(obj, "name").unwrap_or("")
        ))
        .with_details(res.group, res.plural, meta_str(obj, "name").unwrap_or("")));
    }
    Ok(())
}

/// ServiceAccount admission's part on pull secrets: a new Pod without `imagePullSecrets` gets its
/// ServiceAccount's (when it exists and has some), as upstream's admission plugin does.
fn service_account_pull_secrets(state: &AppState, pod: &mut Value) {
    let has_own = pod.pointer("/spec/imagePullSecrets").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    let (Some(ns), Some(sa)) =
        (meta_str(pod, "namespace"), pod.pointer("/spec/serviceAccountName").and_then(Value::as_str))
    else {
        return;
    };
    if has_own || sa.is_empty() {
        return;
    }
    let Some(obj) = state.store.get(&format!("/registry/serviceaccounts/{ns}/{sa}")) else { return };
    let Ok(account) = obj.value() else { return };
    let secrets: Vec<Value> = account
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()))
        .map(|n| json!({ "name": n }))
        .collect();
    if let (false, Some(spec)) = (secrets.is_empty(), pod.get_mut("spec").and_then(Value::as_object_mut)) {
        spec.insert("imagePullSecrets".into(), Value::Array(secrets));
    }
}

/// The outcome of a write: the stored (or, for a dry run, would-be) object.
pub struct Written {
    pub json: bytes::Bytes,
    pub warnings: Vec<String>,
}

fn dry_json(v: &Value) -> Result<bytes::Bytes, ApiError> {
    serde_json::to_vec(v).map(bytes::Bytes::from).map_err(internal)
}

/// Creates an object (namespace and kind already checked against the path).
pub async fn create_object(
    state: &AppState,
    res: &'static ResourceInfo,
    obj: Value,
    opts: &WriteOpts,
) -> Result<Written, ApiError> {
    with_namespace_check(state, res, &obj)?;
    let generate =
        meta_str(&obj, "name").is_none().then(|| meta_str(&obj, "generateName").map(str::to_string)).flatten();
    if meta_str(&obj, "name").is_none() && generate.is_none() {
        return Err(ApiError::invalid(
            res.group,
            res.kind,
            "",
            vec![api::Cause::required("metadata.name").with_message("name or generateName is required")],
        ));
    }
    let (mut obj, warnings) = normalize(res, obj, opts.validation, &opts.duplicates)?;
    let st = strategy::of(res);
    for attempt in 0..8 {
        let mut candidate = obj.clone();
        if let Some(prefix) = &generate {
            set_meta(&mut candidate, "name", json!(format!("{prefix}{}", identity::name_suffix())));
        }
        let name = meta_str(&candidate, "name").unwrap_or("").to_string();
        let uid = identity::new_uid();
        let now = timestamps::now_rfc3339();
        st.prepare_for_create(&mut candidate, &uid, &now);
        admission::apply_defaults(res.kind, &mut candidate, &state.defaults);
        if res.kind == "Pod" && res.group.is_empty() {
            service_account_pull_secrets(state, &mut candidate);
        }
        validate(res, &candidate, None)?;
        let alloc = if st.allocates_service_addresses {
            Some(ServiceAlloc::prepare(&mut state.alloc(), &mut candidate, None)?)
        } else {
            None
        };
        if let Manager::Update(m) = &opts.manager {
            apply::record_update(res.kind, &res.api_version(), None, &mut candidate, m, &now);
        }
        if opts.dry_run {
            if let Some(a) = &alloc {
                a.rollback(&mut state.alloc());
            }
            return Ok(Written { json: dry_json(&candidate)?, warnings });
        }
        let ns = meta_str(&candidate, "namespace").map(str::to_string);
        let key = res.key(ns.as_deref(), &name);
        let result = state
            .store
            .write(WriteRequest { key, op: WriteOp::Put(candidate), precondition: Precondition::MustNotExist })
            .await;
        match result {
            Ok(c) => return Ok(Written { json: c.obj.json.clone(), warnings }),
            Err(e) => {
                if let Some(a) = &alloc {
                    a.rollback(&mut state.alloc());
                }
                match e {
                    WriteError::AlreadyExists if generate.is_some() && attempt < 7 => continue,
                    WriteError::AlreadyExists => return Err(ApiError::already_exists(res.group, res.plural, &name)),
                    other => return Err(super::storage_error(other)),
                }
            }
        }
    }
    obj = Value::Null;
    drop(obj);
    Err(ApiError::internal("could not generate a unique name"))
}

/// Creates an object from inside the server (bootstrap): same checks, no HTTP.
pub async fn internal_create(state: &AppState, res: &'static ResourceInfo, mut obj: Value) -> Result<(), ApiError> {
    body::check_kind(res, &mut obj)?;
    let opts = WriteOpts {
        dry_run: false,
        validation: FieldValidation::Strict,
        manager: Manager::None,
        duplicates: Vec::new(),
    };
    create_object(state, res, obj, &opts).await.map(|_| ())
}

pub async fn create(ctx: &Ctx, raw: &[u8]) -> Result<Response, ApiError> {
    let res = ctx.target.res;
    let media = body::media_type(ctx);
    let mut obj = body::decode_object(&media, raw)?;
    body::check_kind(res, &mut obj)?;
    body::check_namespace(ctx, &mut obj)?;
    let opts = WriteOpts::from_ctx(ctx)?.with_duplicates_of(&media, raw);
    let w = create_object(&ctx.state, res, obj, &opts).await?;
    Ok(response::with_warnings(response::json_bytes(201, w.json), &w.warnings))
}

/// What kind of write an update is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Main,
    Status,
    Finalize,
    /// `pods/binding`: the scheduler's write of `spec.nodeName` and the PodScheduled
    /// condition, which no ordinary update may make.
    Binding,
}

fn part(ctx: &Ctx) -> Part {
    match ctx.target.subresource.as_deref() {
        Some("status") => Part::Status,
        Some("finalize") => Part::Finalize,
        Some("binding") => Part::Binding,
        _ => Part::Main,
    }
}

/// Read-modify-write of one object: `mutate` turns the current object into the desired one;
/// everything else (admission, preconditions, retries on a lost race) happens here.
pub async fn update_object(
    ctx: &Ctx,
    opts: &WriteOpts,
    user_rv: Option<u64>,
    mut mutate: impl FnMut(&Value) -> Result<Value, ApiError>,
) -> Result<(u16, Written), ApiError> {
    let res = ctx.target.res;
    let name = ctx.name()?.to_string();
    let key = ctx.target.key(&name);
    let part = part(ctx);
    let st = strategy::of(res);
    for _ in 0..RETRIES {
        let cur: Arc<Obj> =
            ctx.state.store.get(&key).ok_or_else(|| ApiError::not_found(res.group, res.plural, &name))?;
        if let Some(rv) = user_rv {
            if rv != cur.rev {
                return Err(ApiError::conflict(res.group, res.plural, &name));
            }
        }
        let old = cur.value().map_err(internal)?;
        let candidate = mutate(&old)?;
        check_object_size(&candidate)?;
        check_preconditions(res, &name, &cur, &old, &candidate)?;
        let mut candidate = match candidate.as_object() {
            Some(_) => candidate,
            None => return Err(ApiError::bad_request("the result of the update is not a JSON object")),
        };
        body::check_kind(res, &mut candidate)?;
        let (mut new, warnings) = normalize(res, candidate, opts.validation, &opts.duplicates)?;
        if meta_str(&new, "name") != Some(name.as_str()) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta_str(&new, "name").unwrap_or("")
            )));
        }
        if res.namespaced() && meta_str(&new, "namespace") != ctx.target.namespace.as_deref() {
            return Err(ApiError::bad_request(format!(
                "the namespace of the object ({}) does not match the namespace on the URL ({})",
                meta_str(&new, "namespace").unwrap_or(""),
                ctx.target.namespace.as_deref().unwrap_or("")
            )));
        }
        new = match part {
            Part::Status => strategy::prepare_for_status_update(&new, &old),
            Part::Finalize => strategy::prepare_for_finalize_update(&new, &old),
            Part::Main => {
                st.prepare_for_update(&mut new, &old);
                new
            }
            Part::Binding => {
                let status = new.get("status").cloned();
                st.prepare_for_update(&mut new, &old);
                if let (Some(s), Some(o)) = (status, new.as_object_mut()) {
                    o.insert("status".into(), s);
                }
                new
            }
        };
        admission::apply_defaults(res.kind, &mut new, &ctx.state.defaults);
        // Like upstream (defaulting happens at decode time), generation follows the defaulted
        // spec: dropping a field the server defaults is no change.
        if part == Part::Main {
            st.update_generation(&mut new, &old);
        }
        // The stored resourceVersion is not part of the comparison or of validation.
        set_meta(&mut new, "resourceVersion", json!(cur.rev.to_string()));
        // A binding changes what no pod update may (spec.nodeName): the bound pod is checked
        // as a whole instead.
        validate(res, &new, if part == Part::Binding { None } else { Some(&old) })?;
        let alloc = if st.allocates_service_addresses && part == Part::Main {
            Some(ServiceAlloc::prepare(&mut ctx.state.alloc(), &mut new, Some(&old))?)
        } else {
            None
        };
        let rollback = |alloc: &Option<ServiceAlloc>| {
            if let Some(a) = alloc {
                a.rollback(&mut ctx.state.alloc());
            }
        };
        let now = timestamps::now_rfc3339();
        if let Manager::Update(m) = &opts.manager {
            apply::record_update(res.kind, &res.api_version(), Some(&old), &mut new, m, &now);
        }
        if new == old {
            rollback(&alloc);
            return Ok((200, Written { json: cur.json.clone(), warnings }));
        }
        let finished = strategy::is_deleting(&new) && !st.has_finalizers(&new);
        if opts.dry_run {
            rollback(&alloc);
            return Ok((200, Written { json: dry_json(&new)?, warnings }));
        }
        let op = if finished { WriteOp::Delete } else { WriteOp::Put(new) };
        match ctx
            .state
            .store
            .write(WriteRequest { key: key.clone(), op, precondition: Precondition::Revision(cur.rev) })
            .await
        {
            Ok(c) => {
                if let Some(a) = &alloc {
                    a.commit(&mut ctx.state.alloc());
                }
                if finished && st.allocates_service_addresses {
                    super::service_alloc::release_all(&mut ctx.state.alloc(), &old);
                }
                return Ok((200, Written { json: c.obj.json.clone(), warnings }));
            }
            Err(WriteError::Conflict) if user_rv.is_none() => {
                rollback(&alloc);
                continue;
            }
            Err(WriteError::Conflict) => {
                rollback(&alloc);
                return Err(ApiError::conflict(res.group, res.plural, &name));
            }
            Err(WriteError::NotFound) => {
                rollback(&alloc);
                return Err(ApiError::not_found(res.group, res.plural, &name));
            }
            Err(e) => {
                rollback(&alloc);
                return Err(super::storage_error(e));
            }
        }
    }
    Err(ApiError::conflict(res.group, res.plural, &name))
}

pub async fn update(ctx: &Ctx, raw: &[u8]) -> Result<Response, ApiError> {
    let res = ctx.target.res;
    let media = body::media_type(ctx);
    let mut obj = body::decode_object(&media, raw)?;
    body::check_kind(res, &mut obj)?;
    body::check_namespace(ctx, &mut obj)?;
    let user_rv = body::resource_version(&obj)?;
    let opts = WriteOpts::from_ctx(ctx)?.with_duplicates_of(&media, raw);
    let (code, w) = update_object(ctx, &opts, user_rv, |_| Ok(obj.clone())).await?;
    Ok(response::with_warnings(response::json_bytes(code, w.json), &w.warnings))
}

/// The four patch types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

pub fn patch_type(media: &str) -> Result<PatchType, ApiError> {
    match media {
        "application/json-patch+json" => Ok(PatchType::Json),
        "application/merge-patch+json" => Ok(PatchType::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
        "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchType::Apply),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

pub fn patch_error(e: patch::PatchError) -> ApiError {
    if let patch::PatchError::TooManyOperations { .. } = e {
        return ApiError::too_large(e.to_string());
    }
    ApiError::new(422, "Invalid", format!("the server rejected our request due to an error in our request: {e}"))
}

/// The preconditions a written object carries, whatever wrote it (a PUT body, or the result of
/// any patch type): a `metadata.resourceVersion` other than the stored one, or a
/// `metadata.uid` other than the stored object's, is a 409 and changes nothing.
fn check_preconditions(res: &ResourceInfo, name: &str, cur: &Obj, old: &Value, new: &Value) -> Result<(), ApiError> {
    if let Some(rv) = body::resource_version(new)? {
        if rv != cur.rev {
            return Err(ApiError::conflict(res.group, res.plural, name));
        }
    }
    match (meta_str(new, "uid"), meta_str(old, "uid")) {
        (Some(want), Some(have)) if !want.is_empty() && want != have => Err(ApiError::conflict_message(
            res.group,
            res.plural,
            name,
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: UID in precondition: {want}, UID in object meta: {have}",
                res.qualified_plural()
            ),
        )),
        _ => Ok(()),
    }
}

/// The largest object the server stores, serialized (the request body limit: an object no
/// client could have sent whole is not made by a patch either).
const MAX_OBJECT_BYTES: usize = body::BODY_LIMIT;

/// Refuses a would-be object that is larger or deeper than the store accepts (a patch can
/// build one from a small request).
fn check_object_size(obj: &Value) -> Result<(), ApiError> {
    if patch::json_size_within(obj, MAX_OBJECT_BYTES).is_none() {
        return Err(ApiError::too_large(format!(
            "the resulting object would exceed the limit of {MAX_OBJECT_BYTES} bytes"
        )));
    }
    if !patch::depth_within(obj, patch::MAX_DEPTH) {
        return Err(ApiError::new(
            422,
            "Invalid",
            format!("the resulting object nests deeper than {} levels", patch::MAX_DEPTH),
        ));
    }
    Ok(())
}

/// `force` belongs to server-side apply; upstream's ValidatePatchOptions refuses it (even
/// `false`) on every other patch type.
pub fn refuse_force(ctx: &Ctx) -> Result<(), ApiError> {
    if ctx.query.get("force").is_none() {
        return Ok(());
    }
    Err(ApiError::invalid(
        "meta.k8s.io",
        "PatchOptions",
        "",
        vec![api::Cause::new("FieldValueForbidden", "force", "Forbidden: may not be specified for non-apply patch")],
    ))
}

/// Applies a non-apply patch to `current`.
pub fn apply_patch(kind: &str, ty: PatchType, current: &Value, p: &Value) -> Result<Value, ApiError> {
    match ty {
        PatchType::Json => patch::json_patch(current, p).map_err(patch_error),
        PatchType::Merge => patch::json_merge_patch(current, p).map_err(patch_error),
        PatchType::Strategic => patch::strategic_merge_patch(kind, current, p).map_err(patch_error),
        PatchType::Apply => Err(ApiError::internal("apply patches go through server-side apply")),
    }
}

fn apply_error(e: apply::ApplyError) -> ApiError {
    match e {
        apply::ApplyError::Conflicts(_) => ApiError::new(409, "Conflict", e.to_string()),
        apply::ApplyError::Invalid(m) => ApiError::new(422, "Invalid", m),
    }
}

pub async fn patch(ctx: &Ctx, raw: &[u8]) -> Result<Response, ApiError> {
    let res = ctx.target.res;
    let ty = patch_type(&body::media_type(ctx))?;
    let validation = FieldValidation::from_query(&ctx.query)?;
    let dry_run = ctx.query.dry_run()?;
    if ty == PatchType::Apply {
        return server_side_apply(ctx, raw, validation, dry_run).await;
    }
    refuse_force(ctx)?;
    let p = body::parse_json(raw)?;
    match (ty, &p) {
        (PatchType::Json, Value::Array(_)) => {}
        (PatchType::Json, _) => return Err(ApiError::bad_request("a JSON patch must be a JSON array of operations")),
        (_, Value::Object(_)) => {}
        _ => return Err(ApiError::bad_request("a merge patch must be a JSON object")),
    }
    let user_rv = if ty == PatchType::Json { None } else { body::resource_version(&p)? };
    let opts = WriteOpts {
        dry_run,
        validation,
        manager: Manager::Update(field_manager(ctx, false)?),
        duplicates: super::duplicates::duplicate_fields(raw),
    };
    let (code, w) = update_object(ctx, &opts, user_rv, |cur| apply_patch(res.kind, ty, cur, &p)).await?;
    Ok(response::with_warnings(response::json_bytes(code, w.json), &w.warnings))
}

async fn server_side_apply(
    ctx: &Ctx,
    raw: &[u8],
    validation: FieldValidation,
    dry_run: bool,
) -> Result<Response, ApiError> {
    let res = ctx.target.res;
    let manager = field_manager(ctx, true)?;
    let force = ctx.query.bool("force")?;
    let mut applied = body::parse_yaml(raw)?;
    if !applied.is_object() {
        return Err(ApiError::bad_request("the applied configuration must be an object"));
    }
    body::check_kind(res, &mut applied)?;
    body::check_namespace(ctx, &mut applied)?;
    let name = ctx.name()?.to_string();
    match meta_str(&applied, "name") {
        None => set_meta(&mut applied, "name", json!(name)),
        Some(n) if n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )))
        }
        Some(_) => {}
    }
    let (applied, mut warnings) = normalize(res, applied, validation, &super::duplicates::duplicate_fields(raw))?;
    let av = res.api_version();
    let now = timestamps::now_rfc3339();
    if ctx.state.store.get(&ctx.target.key(&name)).is_none() && ctx.target.subresource.is_none() {
        let obj =
            apply::server_side_apply(res.kind, &av, None, &applied, &manager, force, &now).map_err(apply_error)?;
        let opts = WriteOpts { dry_run, validation, manager: Manager::Applied, duplicates: Vec::new() };
        match create_object(&ctx.state, res, obj, &opts).await {
            Ok(w) => {
                warnings.extend(w.warnings);
                return Ok(response::with_warnings(response::json_bytes(201, w.json), &warnings));
            }
            // Lost a race with another creator: apply onto what they made.
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    let opts = WriteOpts { dry_run, validation, manager: Manager::Applied, duplicates: Vec::new() };
    let (code, w) = update_object(ctx, &opts, None, |cur| {
        apply::server_side_apply(res.kind, &av, Some(cur), &applied, &manager, force, &timestamps::now_rfc3339())
            .map_err(apply_error)
    })
    .await?;
    warnings.extend(w.warnings);
    Ok(response::with_warnings(response::json_bytes(code, w.json), &warnings))
}
