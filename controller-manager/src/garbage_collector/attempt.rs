//! The collector's reconcile of one graph node (upstream `attemptToDeleteItem`,
//! `processDeletingDependentsItem` and `attemptToOrphanWorker`).

use std::sync::Arc;

use client_runtime::Action;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::core::DynamicObject;
use kube::Api;
use serde_json::json;

use super::decide::{decide, Decision, OwnerState};
use super::graph::{Item, FOREGROUND, ORPHAN};
use super::{Error, Gc};

pub async fn reconcile(item: Arc<Item>, gc: Arc<Gc>) -> Result<Action, Error> {
    {
        if item.deleting() {
            if item.has_finalizer(ORPHAN) {
                orphan_dependents(&gc, &item).await?;
                remove_finalizer(&gc, &item, ORPHAN).await?;
            } else if item.has_finalizer(FOREGROUND) {
                let blocking = gc.dependents(item.uid()).into_iter().filter(|d| d.blocks(item.uid())).count();
                if blocking == 0 {
                    remove_finalizer(&gc, &item, FOREGROUND).await?;
                } else {
                    tracing::debug!(blocking, "waiting for dependents to be deleted");
                }
            }
            return Ok(Action::await_change());
        }
        if !item.owners().is_empty() {
            attempt_to_delete(&gc, &item).await?;
        }
        Ok(Action::await_change())
    }
}

fn api(gc: &Gc, item: &Item) -> Api<DynamicObject> {
    let ar = item.kind.api_resource();
    match item.namespace() {
        Some(ns) => Api::namespaced_with(gc.client.clone(), ns, &ar),
        None => Api::all_with(gc.client.clone(), &ar),
    }
}

async fn attempt_to_delete(gc: &Gc, item: &Item) -> Result<(), Error> {
    let mut states = Vec::new();
    for r in item.owners() {
        let state = match gc.cached(&r.uid) {
            Some(owner) if owner.deleting_dependents() => OwnerState::Waiting,
            Some(_) => OwnerState::Solid,
            None => gc.owners.live(r, item.namespace()).await?,
        };
        states.push((r.uid.clone(), state));
    }
    let dependents = gc.dependents(item.uid());
    match decide(item, &states, &dependents) {
        Decision::Keep => Ok(()),
        Decision::FixReferences { dangling, unblock } => {
            if !dangling.is_empty() {
                let refs: Vec<_> = dangling.iter().map(|u| json!({"$patch": "delete", "uid": u})).collect();
                patch_refs(gc, item, refs, "remove dangling owner references").await?;
            }
            if !unblock.is_empty() {
                unblock_refs(gc, item, |uid| unblock.iter().any(|u| u == uid)).await?;
            }
            Ok(())
        }
        Decision::Delete { policy, unblock_first } => {
            if unblock_first {
                unblock_refs(gc, item, |_| true).await?;
            }
            delete(gc, item, policy).await
        }
    }
}

async fn delete(gc: &Gc, item: &Item, policy: PropagationPolicy) -> Result<(), Error> {
    let dp = DeleteParams {
        propagation_policy: Some(policy.clone()),
        preconditions: Some(Preconditions { uid: Some(item.uid().to_string()), resource_version: None }),
        ..Default::default()
    };
    match api(gc, item).delete(&item.name, &dp).await {
        Ok(_) => {
            tracing::info!(policy = ?policy, "deleting object whose owners are gone");
            Ok(())
        }
        // Gone already, or replaced by a new object of the same name.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(source) => Err(Error::Api { action: "delete", object: item.describe(), source }),
    }
}

/// Sets `blockOwnerDeletion: false` on the references whose uid `pick` selects.
async fn unblock_refs(gc: &Gc, item: &Item, pick: impl Fn(&str) -> bool) -> Result<(), Error> {
    let refs: Vec<_> = item
        .owners()
        .iter()
        .filter(|r| pick(&r.uid) && r.block_owner_deletion == Some(true))
        .map(|r| json!({"apiVersion": r.api_version, "kind": r.kind, "name": r.name, "uid": r.uid, "blockOwnerDeletion": false}))
        .collect();
    if refs.is_empty() {
        return Ok(());
    }
    patch_refs(gc, item, refs, "unblock owner references").await
}

/// A strategic-merge patch of `metadata.ownerReferences` (a list keyed by uid).
async fn patch_refs(gc: &Gc, item: &Item, refs: Vec<serde_json::Value>, what: &'static str) -> Result<(), Error> {
    let patch = json!({"metadata": {"ownerReferences": refs}});
    match api(gc, item).patch(&item.name, &PatchParams::default(), &Patch::Strategic(&patch)).await {
        Ok(_) => {
            tracing::info!(action = what, "updated owner references");
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(source) => Err(Error::Api { action: what, object: item.describe(), source }),
    }
}

/// Removes the reference to `owner` from every dependent.
async fn orphan_dependents(gc: &Gc, owner: &Item) -> Result<(), Error> {
    for dep in gc.dependents(owner.uid()) {
        if dep.owners().iter().any(|r| r.uid == owner.uid()) {
            let refs = vec![json!({"$patch": "delete", "uid": owner.uid()})];
            patch_refs(gc, &dep, refs, "orphan dependent").await?;
        }
    }
    Ok(())
}

/// Removes finalizer `f` from the live object (if it is still the same object).
async fn remove_finalizer(gc: &Gc, item: &Item, f: &str) -> Result<(), Error> {
    let api = api(gc, item);
    let err = |action, source| Error::Api { action, object: item.describe(), source };
    let Some(live) = api.get_opt(&item.name).await.map_err(|e| err("get", e))? else { return Ok(()) };
    if live.metadata.uid.as_deref() != Some(item.uid()) {
        return Ok(());
    }
    let finalizers = live.metadata.finalizers.clone().unwrap_or_default();
    if !finalizers.iter().any(|x| x == f) {
        return Ok(());
    }
    let kept: Vec<_> = finalizers.into_iter().filter(|x| x != f).collect();
    let patch = json!({"metadata": {"finalizers": kept, "resourceVersion": live.metadata.resource_version}});
    match api.patch(&item.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => {
            tracing::info!(finalizer = f, "removed finalizer");
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(err("remove finalizer", e)),
    }
}
