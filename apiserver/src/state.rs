//! The server's shared state, built once at start-up: TLS material, tokens, the store and the
//! allocators. Building it writes no API objects; `run` bootstraps the cluster's objects and
//! writes the admin kubeconfig once the state exists.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::auth::{self, AuthChain, StaticTokens};
use crate::inflight::Inflight;
use crate::ipalloc::Allocators;
use crate::kubelet_proxy::KubeletClient;
use crate::storage::{RedbBackend, Store, StoreOptions};
use crate::{admission, files, openapi, tls, Context, Error, Opts};

/// Fires once the server is ready (store open, bootstrap objects written, cache primed).
#[derive(Clone, Default)]
pub struct ReadySignal(Arc<(AtomicBool, Notify)>);

impl ReadySignal {
    pub fn set(&self) {
        self.0 .0.store(true, Ordering::SeqCst);
        self.0 .1.notify_waiters();
    }
    pub fn is_ready(&self) -> bool {
        self.0 .0.load(Ordering::SeqCst)
    }
    pub async fn wait(&self) {
        loop {
            let notified = self.0 .1.notified();
            if self.is_ready() {
                return;
            }
            notified.await;
        }
    }
}

pub struct AppState {
    pub store: Store,
    pub auth: AuthChain,
    pub openapi: openapi::OpenApi,
    pub ready: ReadySignal,
    pub alloc: Mutex<Allocators>,
    pub defaults: admission::DefaultOptions,
    pub min_request_timeout: Duration,
    /// How long a client may take to send a request body.
    pub request_timeout: Duration,
    pub inflight: Inflight,
    pub tls: Arc<rustls::ServerConfig>,
    /// How `pods/log`, `pods/exec` and `pods/attach` reach the kubelets.
    pub kubelet: KubeletClient,
    /// The kubelets' summaries behind `metrics.k8s.io`.
    pub metrics: crate::metrics::Metrics,
}

pub type State = Arc<AppState>;

/// The admin's credentials made (or loaded) while building the state, for the admin kubeconfig.
pub struct AdminCredentials {
    /// The cluster CA certificate clients trust, PEM.
    pub ca_cert_pem: String,
    /// The admin's bearer token.
    pub token: String,
}

impl AppState {
    /// Builds the state: data directories, the cluster CA and serving certificate, the tokens,
    /// the store (loaded into the watch cache) and the allocators (from the stored Services).
    pub fn build(opts: &Opts, ctx: &Context, ready: ReadySignal) -> Result<(State, AdminCredentials), Error> {
        let server_dir = ctx.data_dir.join("server");
        let tls_dir = server_dir.join("tls");
        files::create_dir(&ctx.data_dir, 0o755)?;
        files::create_dir(&server_dir, 0o700)?;
        files::create_dir(&tls_dir, 0o700)?;

        let ca = tls::ClusterCa::load_or_create(&tls_dir)?;
        let advertise = opts.advertised_address();
        let kubernetes_ip = opts.kubernetes_service_ip();
        let mut ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V4(kubernetes_ip), advertise];
        if !opts.bind_address.is_unspecified() {
            ips.push(opts.bind_address);
        }
        ips.dedup();
        let dns: Vec<String> = [
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (cert, key) = ca.issue("kube-apiserver", &dns, &ips, false)?;
        files::write_atomic(&tls_dir.join("serving.crt"), cert.as_bytes(), 0o644)?;
        files::write_atomic(&tls_dir.join("serving.key"), key.as_bytes(), 0o600)?;
        let tls = tls::server_config(&cert, &key)?;
        let kubelet = KubeletClient::new(&ca)?;

        let admin_token = auth::load_or_create_token(&server_dir.join("admin-token"))?;
        auth::load_or_create_token(&ctx.data_dir.join("token"))?;
        let auth = AuthChain::new(vec![Box::new(StaticTokens::new(vec![(admin_token.clone(), auth::admin_user())]))]);

        let backend = RedbBackend::open(&server_dir.join("store.redb"))?;
        let store = Store::open(
            Box::new(backend),
            StoreOptions {
                history_window: Duration::from_secs(opts.watch_history_seconds),
                history_max_events: opts.watch_history_events.max(1),
            },
        )?;
        let alloc = Allocators::from_store(&store, opts)?;

        let state = Arc::new(AppState {
            store,
            auth,
            openapi: openapi::OpenApi::new(),
            ready,
            alloc: Mutex::new(alloc),
            defaults: admission::DefaultOptions {
                not_ready_toleration_seconds: opts.default_not_ready_toleration_seconds,
                unreachable_toleration_seconds: opts.default_unreachable_toleration_seconds,
            },
            min_request_timeout: Duration::from_secs(opts.min_request_timeout.max(1)),
            request_timeout: opts.request_timeout.max(Duration::from_millis(100)),
            inflight: Inflight::new(opts.max_requests_inflight, opts.max_mutating_requests_inflight),
            tls,
            kubelet,
            metrics: Default::default(),
        });
        Ok((state, AdminCredentials { ca_cert_pem: ca.cert_pem, token: admin_token }))
    }

    pub fn alloc(&self) -> std::sync::MutexGuard<'_, Allocators> {
        self.alloc.lock().unwrap_or_else(|p| p.into_inner())
    }
}
