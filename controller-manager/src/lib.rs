//! The controller-manager: one module per controller, all on the shared informers and the one
//! controller loop of `client-runtime`. Controllers are level-triggered and idempotent: each reconcile reads
//! the object and the caches, derives what should exist, and writes the difference through the API.
//!
//! Each controller module exports `controller(&mut Informers, Arc<Context>) -> BoxFuture<()>`:
//! it registers the shared watches it needs and returns its run loop
//! ([`client_runtime::Controller`], which supplies the work queue and the error policy). [`run`]
//! starts the watches and the loops.

mod context;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod endpointslice;
pub mod garbage_collector;
pub mod job;
pub mod namespace;
pub mod node_ipam;
pub mod node_lifecycle;
pub mod replicaset;
pub mod service_endpoints;
pub mod serviceaccount;
pub mod standalone;

use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use client_runtime::Informers;
pub use context::{Context, Opts};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Client(#[from] api::client::ClientError),
}

type Starter = fn(&mut Informers, Arc<Context>) -> BoxFuture<'static, ()>;

/// Every controller by name (the names of `--controllers`).
fn controllers() -> Vec<(&'static str, Starter)> {
    vec![
        ("replicaset", replicaset::controller as Starter),
        ("deployment", deployment::controller),
        ("job", job::controller),
        ("ttl-after-finished", job::ttl::controller),
        ("cronjob", cronjob::controller),
        ("daemonset", daemonset::controller),
        ("endpoint", endpoints::controller),
        ("endpointslice", endpointslice::controller),
        ("serviceaccount", serviceaccount::controller),
        ("namespace", namespace::controller),
        ("garbagecollector", garbage_collector::controller),
        ("nodelifecycle", node_lifecycle::controller),
        ("nodeipam", node_ipam::controller),
    ]
}

/// Runs the enabled controllers against the API server at `kubeconfig` until `shutdown`.
pub async fn run(opts: Opts, kubeconfig: &Path, shutdown: CancellationToken) -> Result<(), Error> {
    let client = api::client::from_kubeconfig(kubeconfig).await?;
    run_with_client(opts, client, shutdown).await;
    Ok(())
}

pub async fn run_with_client(opts: Opts, client: kube::Client, shutdown: CancellationToken) {
    let mut informers = Informers::new();
    let loops = start(opts, client.clone(), &mut informers);
    informers.start(&client, &shutdown);
    tokio::select! {
        _ = loops => {}
        _ = shutdown.cancelled() => {}
    }
}

/// Registers the enabled controllers on `informers` (shared with other components of the
/// process; the caller starts them) and returns their loops as one future.
pub fn start(opts: Opts, client: kube::Client, informers: &mut Informers) -> BoxFuture<'static, ()> {
    let ctx = Arc::new(Context { client, opts });
    let mut loops = Vec::new();
    for (name, start) in controllers() {
        if ctx.opts.enabled(name) {
            tracing::info!(controller = name, "starting controller");
            loops.push(start(informers, ctx.clone()));
        }
    }
    futures::future::join_all(loops).map(|_| ()).boxed()
}
