//! Node IPAM ("nodeipam"; upstream `pkg/controller/nodeipam/ipam/range_allocator.go`): gives every
//! Node without `spec.podCIDR` a subnet of `--cluster-cidr` (`/--node-cidr-mask-size` each) and
//! sets `spec.podCIDR` and `spec.podCIDRs` once.
//!
//! The set of used subnets is re-derived from the Node cache on every allocation (plus the
//! allocations written but not yet seen in the cache), so a deleted Node's subnet is free again
//! as soon as the Node leaves the cache, and a restart rebuilds the set from the existing Nodes.

mod cidr;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::events::{reference, EventType, Recorder};
use client_runtime::{Action, Controller, Informers, Store};
use futures::future::BoxFuture;
use futures::FutureExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};

pub use cidr::{CidrError, CidrSet};

use crate::Context;

/// When the range is full, look again after this long (a Node deletion frees a subnet but does
/// not trigger the remaining Nodes).
const FULL_RETRY: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("set podCIDR of node {node}: {source}")]
    Patch {
        node: String,
        #[source]
        source: kube::Error,
    },
}

struct Allocator {
    set: CidrSet,
    /// Round-robin start of the next search.
    next: u32,
    /// Subnets written to Nodes whose update the cache has not shown yet, by Node name.
    pending: HashMap<String, String>,
}

struct Ctx {
    client: kube::Client,
    nodes: Store<Node>,
    alloc: Mutex<Allocator>,
    recorder: Recorder,
}

/// The node IPAM controller. Logs and does nothing when `--cluster-cidr` or
/// `--node-cidr-mask-size` is invalid.
pub fn controller(inf: &mut Informers, ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    let set = match CidrSet::new(&ctx.opts.cluster_cidr, ctx.opts.node_cidr_mask_size) {
        Ok(set) => set,
        Err(e) => {
            tracing::error!(error = %e, "node IPAM disabled: bad cluster CIDR");
            return futures::future::ready(()).boxed();
        }
    };
    let nodes = inf.store::<Node>();
    let ipam = Arc::new(Ctx {
        client: ctx.client.clone(),
        nodes: nodes.clone(),
        alloc: Mutex::new(Allocator { set, next: 0, pending: HashMap::new() }),
        recorder: ctx.recorder("node-controller"),
    });
    Controller::new("nodeipam", inf).run(inf, reconcile, ipam)
}

fn node_cidrs(node: &Node) -> Vec<String> {
    let Some(spec) = &node.spec else { return Vec::new() };
    match (&spec.pod_cidrs, &spec.pod_cidr) {
        (Some(list), _) if !list.is_empty() => list.clone(),
        (_, Some(one)) if !one.is_empty() => vec![one.clone()],
        _ => Vec::new(),
    }
}

enum Choice {
    Cidr(String),
    Full,
}

impl Ctx {
    /// Picks a subnet for `name` (the one already written to it, if any) and records it as pending.
    fn choose(&self, name: &str) -> Choice {
        let mut alloc = self.alloc.lock().unwrap_or_else(|p| p.into_inner());
        let nodes = self.nodes.state();
        let present: HashSet<String> = nodes.iter().map(|n| n.name_any()).collect();
        alloc.pending.retain(|n, _| present.contains(n));
        if let Some(cidr) = alloc.pending.get(name) {
            return Choice::Cidr(cidr.clone());
        }
        let mut used = HashSet::new();
        for node in &nodes {
            let mut cidrs = node_cidrs(node);
            if cidrs.is_empty() {
                cidrs.extend(alloc.pending.get(&node.name_any()).cloned());
            }
            for cidr in cidrs {
                used.extend(alloc.set.covered(&cidr));
            }
        }
        let Some(index) = alloc.set.first_free(&used, alloc.next) else { return Choice::Full };
        alloc.next = index.wrapping_add(1) % alloc.set.capacity();
        let cidr = alloc.set.cidr_at(index);
        alloc.pending.insert(name.to_string(), cidr.clone());
        Choice::Cidr(cidr)
    }

    fn forget(&self, name: &str) {
        let mut alloc = self.alloc.lock().unwrap_or_else(|p| p.into_inner());
        alloc.pending.remove(name);
    }
}

async fn reconcile(node: Arc<Node>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let name = node.name_any();
    {
        if !node_cidrs(&node).is_empty() || node.metadata.deletion_timestamp.is_some() {
            ctx.forget(&name);
            return Ok(Action::await_change());
        }
        let cidr = match ctx.choose(&name) {
            Choice::Cidr(cidr) => cidr,
            Choice::Full => {
                tracing::warn!("no pod CIDR left in the cluster range");
                ctx.recorder
                    .record(
                        &reference(node.as_ref()),
                        EventType::Normal,
                        "CIDRNotAvailable",
                        &format!("Node {name} status is now: CIDRNotAvailable"),
                    )
                    .await;
                return Ok(Action::requeue(FULL_RETRY));
            }
        };
        let patch = serde_json::json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
        let api: Api<Node> = Api::all(ctx.client.clone());
        match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => {
                tracing::info!(pod_cidr = %cidr, "assigned pod CIDR");
                Ok(Action::await_change())
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {
                ctx.forget(&name);
                Ok(Action::await_change())
            }
            Err(source) => {
                ctx.forget(&name);
                Err(Error::Patch { node: name.clone(), source })
            }
        }
    }
}
