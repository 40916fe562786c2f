//! The kubelet: node registration and heartbeats, pod workers, and the container runtimes
//! behind a CRI-shaped interface.
//!
//! This version runs hollow nodes (`skiff agent --runtime fake --count N`): N nodes in one
//! process over the in-memory [`runtime::fake`] runtime, sharing one API client, one pod watch
//! and one node watch. The Linux runtime arrives with the kubelet issue.
//!
//! Code map:
//! - [`opts`]: flags and the per-node plan;
//! - [`node`]: registration, Lease and NodeStatus heartbeats, podCIDR;
//! - [`pods`]: per-pod workers, status computation, restart policy, pod IPs;
//! - [`dispatch`]: the shared watches, routed per node;
//! - [`runtime`]: the runtime interface and the fake runtime.
//!
//! Invariants: the kubelet never writes a pod's spec (status and the final delete only); it reads
//! the API through watches and never polls it.

pub mod dispatch;
pub mod error;
pub mod node;
pub mod opts;
pub mod pods;
pub mod runtime;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use error::Error;
pub use opts::{Opts, RuntimeKind};

use runtime::Runtime;

/// Registrations in flight at once (1,000 hollow nodes start without a thundering herd).
const REGISTRATION_CONCURRENCY: usize = 32;

/// Runs this host's node(s) until `shutdown`. `data_dir` is unused by the fake runtime, which
/// keeps nothing on disk.
pub async fn run(opts: Opts, kubeconfig: &Path, data_dir: &Path, shutdown: CancellationToken) -> Result<(), Error> {
    let _ = data_dir;
    let probe = runtime::fake::FakeRuntime::new(opts.fake_run_for()).version();
    let plan = opts.plan(&format!("{}://{}", probe.name, probe.version))?;
    let client = api::client::from_kubeconfig(kubeconfig).await?;
    let timing = node::Timing {
        status_every: opts.node_status_update_frequency,
        lease_every: opts.lease_renew_every(),
        lease_seconds: i32::try_from(opts.node_lease_duration_seconds).unwrap_or(i32::MAX),
    };
    let gate = Arc::new(Semaphore::new(REGISTRATION_CONCURRENCY));
    let (pod_fields, node_fields) = match plan.as_slice() {
        [only] => (format!("spec.nodeName={}", only.name), format!("metadata.name={}", only.name)),
        _ => ("spec.nodeName!=".to_string(), String::new()),
    };
    let count = plan.len();
    let mut routes = HashMap::with_capacity(count);
    let mut tasks = Vec::with_capacity(2 * count + 2);
    for cfg in plan {
        let (pod_tx, pod_rx) = mpsc::unbounded_channel();
        let (node_tx, node_rx) = mpsc::unbounded_channel();
        let (cidr_tx, cidr_rx) = watch::channel(None);
        let rt: Arc<dyn Runtime> = Arc::new(runtime::fake::FakeRuntime::new(opts.fake_run_for()));
        let span = tracing::info_span!("node", node = %cfg.name);
        let ctx = Arc::new(pods::NodeCtx {
            node_name: cfg.name.clone(),
            client: client.clone(),
            runtime: rt,
            scheme: probe.name.clone(),
            host_ip: cfg.ip,
            ips: Mutex::new(pods::ip_pool::IpPool::default()),
            cidr: cidr_rx,
        });
        routes.insert(cfg.name.clone(), dispatch::Route { pods: pod_tx, node: node_tx });
        tasks.push(tokio::spawn(pods::run_manager(ctx, pod_rx, shutdown.clone()).instrument(span.clone())));
        let agent = node::Agent::new(cfg, client.clone(), timing, gate.clone(), cidr_tx);
        tasks.push(tokio::spawn(agent.run(node_rx, shutdown.clone()).instrument(span)));
    }
    let routes = Arc::new(routes);
    tasks.push(dispatch::spawn_pod_watch(client.clone(), routes.clone(), pod_fields, shutdown.clone()));
    tasks.push(dispatch::spawn_node_watch(client, routes, node_fields, shutdown.clone()));
    tracing::info!(nodes = count, runtime = %probe.name, "kubelet started");
    shutdown.cancelled().await;
    for t in tasks {
        let _ = t.await;
    }
    tracing::info!("kubelet stopped");
    Ok(())
}
