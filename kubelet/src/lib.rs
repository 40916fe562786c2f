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
//! - [`pods`]: per-pod workers, status computation, restart policy, pod IPs, the pod → runtime
//!   config translation ([`pods::config`]), adoption of sandboxes at start ([`pods::adopt`]);
//! - [`dispatch`]: the shared informers of Pods and Nodes, routed per node;
//! - [`runtime`]: the runtime interface, the factory that picks one, and the fake runtime;
//! - [`server`]: the kubelet's HTTPS API (container logs, exec and attach over WebSocket) that
//!   the API server's `pods/log`, `pods/exec` and `pods/attach` reach; a single node serves it.
//!
//! Invariants: the kubelet never writes a pod's spec (status and the final delete only); it reads
//! the API through watches and never polls it. The exceptions are one-shot reads: the ConfigMaps
//! and Secrets a container's environment names, read when the container is created, and the list
//! of the node's pods when it finds sandboxes at start.

pub mod dispatch;
pub mod error;
pub mod eviction;
pub mod images_cmd;
pub mod no_verify;
pub mod node;
pub mod opts;
pub mod pods;
pub mod runtime;
pub mod server;
pub mod stats;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use error::Error;
pub use opts::{Opts, RuntimeKind};

use pods::config::{dns, NodeFacts};
use runtime::factory::{RuntimeFactory, RuntimeFor};

/// Registrations in flight at once (1,000 hollow nodes start without a thundering herd).
const REGISTRATION_CONCURRENCY: usize = 32;
/// The host's resolver configuration (for `dnsPolicy: Default` pods and the host search path).
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// Runs this host's node(s) until `shutdown`, each on a runtime made by the [`RuntimeFactory`]
/// for `--runtime` and `data_dir`.
pub async fn run(opts: Opts, kubeconfig: &Path, data_dir: &Path, shutdown: CancellationToken) -> Result<(), Error> {
    let (log_max_size, log_max_files) = opts.log_rotation()?;
    let factory = RuntimeFactory::new(opts.runtime, data_dir, opts.fake_run_for())
        .with_private_registry(opts.private_registry.clone())
        .with_log_rotation(log_max_size, log_max_files);
    run_with_runtimes(opts, kubeconfig, data_dir, shutdown, &|_node: &str| factory.create()).await
}

/// The usage sampler of a single node: cgroups under `--cgroup-root` (Linux runtime), the data
/// dir's containers, pods and logs.
fn stats_sampler(
    opts: &Opts,
    node: &str,
    data_dir: &Path,
    log_root: &Path,
    rt: Arc<dyn runtime::Runtime>,
) -> Arc<stats::Sampler> {
    let linux = opts.runtime == RuntimeKind::Linux;
    let layout = if linux {
        runtime::linux::cgroups::Layout::detect(Path::new(runtime::factory::CGROUP_MOUNT))
            .map_err(|e| tracing::warn!(error = %e, "stats: no cgroupfs; pods are reported without usage"))
            .ok()
    } else {
        None
    };
    let agent = data_dir.join("agent");
    let paths = stats::Paths {
        data_dir: data_dir.to_path_buf(),
        containers: linux.then(|| agent.join("containers")),
        pods_root: linux.then(|| agent.join("pods")),
        log_root: linux.then(|| log_root.to_path_buf()),
    };
    stats::Sampler::new(node, &opts.cgroup_root, layout, rt, paths)
}

/// [`run`] with the runtime of each node (by node name) from `runtimes`: how tests hand a
/// restarted kubelet the runtimes of the previous one.
pub async fn run_with_runtimes(
    opts: Opts,
    kubeconfig: &Path,
    data_dir: &Path,
    shutdown: CancellationToken,
    runtimes: &RuntimeFor<'_>,
) -> Result<(), Error> {
    let mut plan = opts.plan(data_dir)?;
    let mut node_runtimes = Vec::with_capacity(plan.len());
    for cfg in &mut plan {
        let rt = runtimes(&cfg.name)?;
        let v = rt.version();
        cfg.runtime_version = format!("{}://{}", v.name, v.version);
        node_runtimes.push((rt, v.name));
    }
    let host_dns = match std::fs::read_to_string(HOST_RESOLV_CONF) {
        Ok(text) => dns::parse_resolv_conf(&text),
        Err(e) => {
            tracing::warn!(path = HOST_RESOLV_CONF, error = %e, "cannot read the host's resolver configuration");
            Default::default()
        }
    };
    let log_root = data_dir.join("agent").join("logs");
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
    let mut runtime_name = String::new();
    let mut informers = client_runtime::Informers::new();
    // For the Service environment variables of containers.
    let services = informers.store::<k8s_openapi::api::core::v1::Service>();
    for (cfg, (rt, scheme)) in plan.into_iter().zip(node_runtimes) {
        let (pod_tx, pod_rx) = mpsc::unbounded_channel();
        let (node_tx, node_rx) = mpsc::unbounded_channel();
        let (cidr_tx, cidr_rx) = watch::channel(None);
        let span = tracing::info_span!("node", node = %cfg.name);
        let mut facts = NodeFacts::new(cfg.name.clone(), cfg.ip, cfg.allocatable.clone());
        facts.host_dns = host_dns.clone();
        facts.log_root = Some(log_root.clone());
        if opts.runtime == RuntimeKind::Linux {
            facts.pods_root = Some(data_dir.join("agent").join("pods"));
        }
        facts.cgroup_root = format!("/{}", opts.cgroup_root.trim_matches('/'));
        runtime_name.clone_from(&scheme);
        let ctx = Arc::new(pods::NodeCtx {
            facts,
            client: client.clone(),
            runtime: rt.clone(),
            scheme,
            ips: Mutex::new(pods::ip_pool::IpPool::default()),
            cidr: cidr_rx,
            services: services.clone(),
            sync_frequency: opts.sync_frequency,
            // Real nodes write Events about their pods; hollow fleets (scale tests) do not.
            recorder: (opts.runtime == RuntimeKind::Linux)
                .then(|| api::events::Recorder::new(client.clone(), "kubelet").on_host(cfg.name.clone())),
        });
        // Only a single node serves the kubelet API (hollow fleets share one host address), and
        // samples its usage for it and for node-pressure eviction.
        if count == 1 {
            let sampler = stats_sampler(&opts, &cfg.name, data_dir, &log_root, rt.clone());
            tasks.push(tokio::spawn(sampler.clone().run(shutdown.clone()).instrument(span.clone())));
            if let Some(p) = cfg.pressure.as_ref() {
                let ev = eviction::Config::new(
                    p.eviction_hard.clone(),
                    p.eviction_soft.clone(),
                    &opts.eviction_soft_grace_period,
                    opts.eviction_max_pod_grace_period,
                    p.fs_path.clone(),
                )?;
                let manager = eviction::run(
                    ev,
                    cfg.name.clone(),
                    client.clone(),
                    sampler.clone(),
                    pod_tx.clone(),
                    shutdown.clone(),
                );
                tasks.push(tokio::spawn(manager.instrument(span.clone())));
            }
            if opts.kubelet_port != 0 {
                let api = server::start_for_node(
                    &opts,
                    &cfg.name,
                    cfg.ip,
                    kubeconfig,
                    rt.clone(),
                    Some(sampler),
                    shutdown.clone(),
                );
                tasks.extend(api.instrument(span.clone()).await?);
            }
        }
        routes.insert(cfg.name.clone(), dispatch::Route { pods: pod_tx, node: node_tx });
        tasks.push(tokio::spawn(pods::run_manager(ctx, pod_rx, shutdown.clone()).instrument(span.clone())));
        let agent = node::Agent::new(cfg, client.clone(), rt, timing, gate.clone(), cidr_tx);
        tasks.push(tokio::spawn(agent.run(node_rx, shutdown.clone()).instrument(span)));
    }
    let routes = Arc::new(routes);
    tasks.extend(dispatch::subscribe(&mut informers, routes, &pod_fields, &node_fields, &shutdown));
    informers.start(&client, &shutdown);
    tracing::info!(nodes = count, runtime = %runtime_name, "kubelet started");
    shutdown.cancelled().await;
    for t in tasks {
        let _ = t.await;
    }
    tracing::info!("kubelet stopped");
    Ok(())
}
