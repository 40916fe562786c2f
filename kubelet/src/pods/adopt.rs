//! Sandboxes found in the runtime when a node starts (a restarted kubelet; containers outlive
//! it, DESIGN §5): those of pods that still exist and are bound to this node are handed to the
//! pods' workers, which take them over instead of creating duplicates; the others are stopped
//! and removed, as upstream's kubelet cleans up pods it no longer knows.
//!
//! At start the node lists its sandboxes and, if there are any, lists the pods bound to it once
//! (a single consistent read, not a poll). A sandbox whose pod was not in that list is removed; a
//! NotReady sandbox, or an older duplicate of a pod's sandbox, too. The rest wait for their
//! pod's worker. Those still unclaimed a while later (the pod was deleted in between, or the list
//! failed) are checked again against a fresh list, until none is left.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::Api;

use super::NodeCtx;
use crate::error::Error;
use crate::runtime::{PodSandboxStatus, SandboxState, LABEL_POD_UID};

/// How long unclaimed sandboxes wait before they are checked again.
pub const RECHECK_EVERY: Duration = Duration::from_secs(10);
/// Bound on the start-up list of the node's pods.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// A running sandbox handed to the worker of its pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adopted {
    pub id: String,
    /// The sandbox's pod IP (None for a `hostNetwork` pod's).
    pub ip: Option<IpAddr>,
}

/// Why a sandbox is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Its pod no longer exists (or is no longer bound here).
    PodGone,
    /// Not ready: its network or processes are gone; the worker makes a new one.
    NotReady,
    /// An older sandbox of a pod that has a newer one.
    Duplicate,
    /// Not a pod's (no uid).
    Foreign,
}

impl Removal {
    fn as_str(self) -> &'static str {
        match self {
            Removal::PodGone => "pod no longer exists",
            Removal::NotReady => "sandbox not ready",
            Removal::Duplicate => "older duplicate",
            Removal::Foreign => "not a pod's sandbox",
        }
    }
}

/// What to do with the sandboxes found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sorted {
    /// By pod uid.
    pub adopt: HashMap<String, Adopted>,
    /// Sandbox ids.
    pub remove: Vec<(String, Removal)>,
}

fn uid_of(s: &PodSandboxStatus) -> &str {
    if s.metadata.uid.is_empty() {
        s.labels.get(LABEL_POD_UID).map(String::as_str).unwrap_or_default()
    } else {
        &s.metadata.uid
    }
}

/// Sorts sandboxes into adopted and removed. `live` holds the uids of the pods bound to this node
/// (None when unknown: nothing is removed for want of a pod).
pub fn sort(mut sandboxes: Vec<PodSandboxStatus>, live: Option<&HashSet<String>>) -> Sorted {
    // Newest first, so that the first Ready one of a pod is the one kept.
    sandboxes.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    let mut out = Sorted::default();
    for s in sandboxes {
        let uid = uid_of(&s).to_string();
        let why = if uid.is_empty() {
            Some(Removal::Foreign)
        } else if live.is_some_and(|l| !l.contains(&uid)) {
            Some(Removal::PodGone)
        } else if s.state != SandboxState::Ready {
            Some(Removal::NotReady)
        } else if out.adopt.contains_key(&uid) {
            Some(Removal::Duplicate)
        } else {
            None
        };
        match why {
            Some(why) => out.remove.push((s.id, why)),
            None => {
                out.adopt.insert(uid, Adopted { id: s.id, ip: s.ip });
            }
        }
    }
    out
}

/// The uids of the pods bound to this node, read once.
async fn live_pods(ctx: &NodeCtx) -> Result<HashSet<String>, Error> {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let lp = ListParams::default().fields(&format!("spec.nodeName={}", ctx.facts.name));
    let what = format!("pods on node {}", ctx.facts.name);
    let list = match tokio::time::timeout(LIST_TIMEOUT, api.list(&lp)).await {
        Ok(r) => r.map_err(|e| Error::api("list", what, e))?,
        Err(_) => return Err(Error::Timeout { action: "list", object: what }),
    };
    Ok(list.items.into_iter().filter_map(|p| p.metadata.uid).collect())
}

async fn remove(ctx: &NodeCtx, id: &str, why: Removal) {
    for r in [ctx.runtime.stop_pod_sandbox(id).await, ctx.runtime.remove_pod_sandbox(id).await] {
        if let Err(e) = r {
            tracing::warn!(sandbox = %id, error = %e, "removing a sandbox found at start failed");
            return;
        }
    }
    tracing::info!(sandbox = %id, reason = why.as_str(), "removed a sandbox found at start");
}

/// Lists the runtime's sandboxes at start, removes those no pod of this node needs, reserves the
/// IPs of the rest and returns them by pod uid.
pub async fn at_start(ctx: &NodeCtx) -> HashMap<String, Adopted> {
    let sandboxes = match ctx.runtime.list_pod_sandboxes().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "listing the runtime's sandboxes failed; adopting none");
            return HashMap::new();
        }
    };
    if sandboxes.is_empty() {
        return HashMap::new();
    }
    let live = match live_pods(ctx).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(error = %e, "listing this node's pods failed; sandboxes wait for their pods");
            None
        }
    };
    let Sorted { mut adopt, remove: removals } = sort(sandboxes, live.as_ref());
    for (id, why) in &removals {
        remove(ctx, id, *why).await;
    }
    let mut clash = Vec::new();
    for (uid, a) in &adopt {
        let Some(ip) = a.ip.filter(|ip| *ip != ctx.facts.host_ip) else { continue };
        if !ctx.ips().reserve(uid, ip) {
            clash.push(uid.clone());
        }
    }
    for uid in clash {
        if let Some(a) = adopt.remove(&uid) {
            remove(ctx, &a.id, Removal::Duplicate).await;
        }
    }
    tracing::info!(adopted = adopt.len(), removed = removals.len(), "found sandboxes of a previous run");
    adopt
}

/// Removes the sandboxes in `pending` (unclaimed so far) whose pod is no longer bound here.
pub async fn recheck(ctx: &NodeCtx, pending: &mut HashMap<String, Adopted>) {
    if pending.is_empty() {
        return;
    }
    let live = match live_pods(ctx).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "listing this node's pods failed; checking again later");
            return;
        }
    };
    let gone: Vec<String> = pending.keys().filter(|uid| !live.contains(*uid)).cloned().collect();
    for uid in gone {
        if let Some(a) = pending.remove(&uid) {
            remove(ctx, &a.id, Removal::PodGone).await;
            ctx.ips().release(&uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::SandboxMetadata;
    use jiff::Timestamp;

    fn sandbox(id: &str, uid: &str, ready: bool, age: i64, ip: Option<&str>) -> PodSandboxStatus {
        PodSandboxStatus {
            id: id.into(),
            metadata: SandboxMetadata { name: "p".into(), namespace: "ns".into(), uid: uid.into(), attempt: 0 },
            state: if ready { SandboxState::Ready } else { SandboxState::NotReady },
            created_at: Timestamp::from_second(1_700_000_000 - age).expect("time"),
            ip: ip.map(|i| i.parse().expect("ip")),
            labels: Default::default(),
        }
    }

    #[test]
    fn sorting_table() {
        let live: HashSet<String> = ["u1", "u2", "u3"].map(String::from).into();
        // (sandboxes, live known?, expected adopted (uid, id), expected removed (id, why))
        type Row = (Vec<PodSandboxStatus>, bool, Vec<(&'static str, &'static str)>, Vec<(&'static str, Removal)>);
        let rows: Vec<Row> = vec![
            (vec![], true, vec![], vec![]),
            (vec![sandbox("s1", "u1", true, 5, Some("10.0.0.2"))], true, vec![("u1", "s1")], vec![]),
            (vec![sandbox("s9", "gone", true, 5, None)], true, vec![], vec![("s9", Removal::PodGone)]),
            // The pod list failed: nothing is removed for want of a pod.
            (vec![sandbox("s9", "gone", true, 5, None)], false, vec![("gone", "s9")], vec![]),
            (vec![sandbox("s2", "u2", false, 5, None)], true, vec![], vec![("s2", Removal::NotReady)]),
            (
                vec![sandbox("old", "u3", true, 50, None), sandbox("new", "u3", true, 5, None)],
                true,
                vec![("u3", "new")],
                vec![("old", Removal::Duplicate)],
            ),
            (
                vec![sandbox("newer-dead", "u3", false, 1, None), sandbox("older-live", "u3", true, 9, None)],
                true,
                vec![("u3", "older-live")],
                vec![("newer-dead", Removal::NotReady)],
            ),
            (vec![sandbox("x", "", true, 5, None)], true, vec![], vec![("x", Removal::Foreign)]),
        ];
        for (i, (sandboxes, known, adopt, remove)) in rows.into_iter().enumerate() {
            let got = sort(sandboxes, known.then_some(&live));
            let mut adopted: Vec<(&str, &str)> = got.adopt.iter().map(|(u, a)| (u.as_str(), a.id.as_str())).collect();
            adopted.sort();
            assert_eq!(adopted, adopt, "row {i}");
            let removed: Vec<(&str, Removal)> = got.remove.iter().map(|(id, w)| (id.as_str(), *w)).collect();
            assert_eq!(removed, remove, "row {i}");
        }
        let got = sort(vec![sandbox("s1", "u1", true, 5, Some("10.0.0.2"))], Some(&live));
        assert_eq!(got.adopt.get("u1").and_then(|a| a.ip), Some("10.0.0.2".parse().expect("ip")));
    }
}
