//! The skiff API server: the Kubernetes REST API (1.33) over HTTPS, with watch, backed by an
//! in-memory watch cache in front of a durable store.
//!
//! Entry point: [`run`]: it builds the shared state (`state.rs`), then writes the objects every
//! cluster has (`bootstrap.rs`) and the admin kubeconfig, then serves. Request handling starts in
//! `server.rs` (TLS accept loop), goes through `http.rs` (authentication, routing) to the verb
//! handlers in `handlers/`, which ask `strategy/` for the per-kind rules, read the cache and
//! write through the single commit path of `storage/`.
//!
//! Module dependencies point one way: `run` (here) → `state`, `bootstrap`, `kubeconfig`,
//! `server`; `server` → `http` → `handlers` → `strategy`, `admission`, `storage`, `state`;
//! `bootstrap` → `handlers`, `state`. `state` depends on none of `bootstrap`, `handlers`, `http`
//! or `server`.

pub mod admission;
pub mod apply;
mod auth;
mod bootstrap;
mod discovery;
mod files;
mod handlers;
mod http;
mod identity;
mod inflight;
mod ipalloc;
mod kubeconfig;
mod kubelet_proxy;
mod metrics;
pub mod openapi;
pub mod patch;
pub mod protobuf;
mod request;
mod response;
mod server;
mod state;
pub mod storage;
mod strategy;
pub mod table;
mod timestamps;
mod tls;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use state::ReadySignal;

/// Flags of the API server. `skiff server` flattens these; `--data-dir` is a global flag.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "apiserver")]
pub struct Opts {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// HTTPS port of the API.
    #[arg(long, default_value_t = 6443)]
    pub port: u16,
    /// Address other hosts use to reach this server (defaults to the bind address, or 127.0.0.1).
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,
    /// Range of Service cluster IPs.
    #[arg(long, default_value = "10.96.0.0/12", value_parser = api::cidr::Cidr::parse_sloppy_ipv4)]
    pub service_cidr: api::cidr::Cidr,
    /// Range of Service node ports.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,
    /// How long watch events stay available for watches that resume from a resourceVersion.
    #[arg(long, default_value_t = 300)]
    pub watch_history_seconds: u64,
    /// Most events kept in the watch history, whatever their age.
    #[arg(long, default_value_t = 50_000)]
    pub watch_history_events: usize,
    /// Watches without timeoutSeconds end after a random time in [N, 2N) seconds, as upstream.
    #[arg(long, default_value_t = 1800)]
    pub min_request_timeout: u64,
    /// tolerationSeconds of the not-ready toleration added to every pod.
    #[arg(long, default_value_t = 300)]
    pub default_not_ready_toleration_seconds: i64,
    /// tolerationSeconds of the unreachable toleration added to every pod.
    #[arg(long, default_value_t = 300)]
    pub default_unreachable_toleration_seconds: i64,
    /// Most non-mutating requests served at once (watches and other long-running requests not
    /// counted); beyond it a request gets 429 with Retry-After. 0 means no limit.
    #[arg(long, default_value_t = 400)]
    pub max_requests_inflight: usize,
    /// Most mutating requests (create, update, patch, delete) served at once; 0 means no limit.
    #[arg(long, default_value_t = 200)]
    pub max_mutating_requests_inflight: usize,
    /// How long a client may take to send a request body (a slow body gets 408 and is closed).
    #[arg(long, default_value = "60s", value_parser = api::duration::parse)]
    pub request_timeout: Duration,
    /// How long a client may take to send a request's line and headers once it has started.
    #[arg(long, default_value = "32s", value_parser = api::duration::parse)]
    pub request_header_timeout: Duration,
    /// How long a keep-alive connection may sit idle between requests before it is closed.
    #[arg(long, default_value = "90s", value_parser = api::duration::parse)]
    pub idle_connection_timeout: Duration,
}

impl Opts {
    /// The address other hosts use to reach this server: `--advertise-address`, else the bind
    /// address, else 127.0.0.1 when binding to every address.
    pub(crate) fn advertised_address(&self) -> IpAddr {
        self.advertise_address.unwrap_or(if self.bind_address.is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            self.bind_address
        })
    }

    /// The ClusterIP of the `kubernetes` Service: the first address of the service range.
    pub(crate) fn kubernetes_service_ip(&self) -> Ipv4Addr {
        ipalloc::first_service_ip(&self.service_cidr)
    }

    /// The URL the admin kubeconfig names: the bind address, or loopback when binding to every
    /// address (or to loopback).
    pub(crate) fn local_url(&self) -> String {
        let host = if self.bind_address.is_unspecified() || self.bind_address.is_loopback() {
            "127.0.0.1".to_string()
        } else {
            match self.bind_address {
                IpAddr::V6(v6) => format!("[{v6}]"),
                IpAddr::V4(v4) => v4.to_string(),
            }
        };
        format!("https://{host}:{}", self.port)
    }
}

/// Everything the API server needs besides its own flags.
#[derive(Debug, Clone)]
pub struct Context {
    pub data_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Setup(String),
    #[error("listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    File(#[from] files::FileError),
}

/// Runs the API server until `shutdown` is cancelled. `ready` fires once `/readyz` would answer 200.
pub async fn run(opts: Opts, ctx: Context, ready: ReadySignal, shutdown: CancellationToken) -> Result<(), Error> {
    server::raise_fd_limit();
    let (state, admin) = state::AppState::build(&opts, &ctx, ready)?;
    bootstrap::ensure(&state, opts.kubernetes_service_ip(), opts.advertised_address(), opts.port).await?;
    kubeconfig::write(
        &ctx.data_dir.join("kubeconfig.yaml"),
        &opts.local_url(),
        &admin.ca_cert_pem,
        &admin.token,
        "admin",
    )?;
    let trimmer = {
        let store = state.store.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => store.trim_history(),
                }
            }
        })
    };
    let result = server::serve(state, &opts, shutdown).await;
    trimmer.abort();
    result
}

/// A serving certificate for the kubelet of the server's own node, issued by the cluster CA (the
/// CA the server made under `<data-dir>/server/tls/`): written to `<data-dir>/agent/pki/`
/// (`kubelet.crt`, `kubelet.key` mode 0600) on every start; returns (cert path, key path). Its
/// names are the node's name, `localhost`, 127.0.0.1 and `ips`.
pub fn issue_kubelet_serving_cert(
    data_dir: &std::path::Path,
    node_name: &str,
    ips: &[std::net::IpAddr],
) -> Result<(std::path::PathBuf, std::path::PathBuf), Error> {
    let ca = tls::ClusterCa::load_or_create(&data_dir.join("server").join("tls"))?;
    let mut all_ips = vec![std::net::IpAddr::from([127, 0, 0, 1])];
    all_ips.extend(ips.iter().copied().filter(|ip| !ip.is_loopback()));
    let dns: Vec<String> = [node_name, "localhost"].iter().filter(|n| !n.is_empty()).map(|n| n.to_string()).collect();
    let (cert, key) = ca.issue(&format!("system:node:{node_name}"), &dns, &all_ips, false)?;
    let dir = data_dir.join("agent").join("pki");
    files::create_dir(&dir, 0o700)?;
    let (cert_path, key_path) = (dir.join("kubelet.crt"), dir.join("kubelet.key"));
    files::write_atomic(&key_path, key.as_bytes(), 0o600)?;
    files::write_atomic(&cert_path, cert.as_bytes(), 0o644)?;
    Ok((cert_path, key_path))
}
