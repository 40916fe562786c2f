//! The scheduler: binds pending pods to nodes through `pods/binding` (DESIGN §4).
//!
//! Its shape follows upstream's `pkg/scheduler`: the shared Pod and Node informers feed a cache
//! of what each node has left ([`cache`]) and a priority queue of pods to place ([`queue`]).
//! One loop ([`scheduler`]) takes a pod, filters the nodes ([`filter`]: Ready, unschedulable,
//! taints, nodeSelector and required node affinity, host ports, resources), scores the rest
//! ([`score`]: least allocated, spreading of one owner's pods, soft taints, preferred affinity),
//! assumes the pod on the best node and binds it in the background ([`bind`]). A pod no node
//! takes gets a `FailedScheduling` event ([`fit_error`]) and waits for the cluster to change.
//!
//! Architecture invariant: the scheduler only reads through the informers and only writes
//! bindings, pod status conditions and events. It depends on `api` and `client-runtime`, never
//! on another component.

pub mod bind;
pub mod cache;
pub mod filter;
pub mod fit_error;
pub mod host_ports;
pub mod node_affinity;
pub mod node_info;
mod opts;
pub mod placement;
pub mod pod_info;
pub mod queue;
pub mod resources;
pub mod scheduler;
pub mod score;
pub mod standalone;
pub mod taints;
pub mod watch;

use std::path::Path;

use tokio_util::sync::CancellationToken;

pub use opts::Opts;

/// What can stop the scheduler from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("scheduler client: {0}")]
    Client(#[from] api::client::ClientError),
}

/// Connects with the credential in `kubeconfig` and schedules until `shutdown`.
pub async fn run(opts: Opts, kubeconfig: &Path, shutdown: CancellationToken) -> Result<(), Error> {
    let client = api::client::from_kubeconfig(kubeconfig).await?;
    run_with_client(opts, client, shutdown).await;
    Ok(())
}

pub use scheduler::start;

/// Schedules with `client` until `shutdown`.
pub async fn run_with_client(opts: Opts, client: kube::Client, shutdown: CancellationToken) {
    scheduler::run(opts, client, shutdown).await;
}
