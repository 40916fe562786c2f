//! Test harness shared by the controller integration tests: `testkit`'s real `skiff server` (API
//! server only) with the controllers under test running in-process against it. The server is
//! killed on drop (also when a test panics); waits use `testkit::eventually`.

#![allow(dead_code)]

pub mod deploy;

use std::sync::Arc;
use std::time::Duration;

use client_runtime::Informers;
use controller_manager::{Context, Opts};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use tokio_util::sync::CancellationToken;

/// An API server (its own scheduler and controller-manager off) with the controllers under test
/// running in-process; both stop on drop.
pub struct Server {
    api: testkit::ApiServer,
    stop: CancellationToken,
}

impl std::ops::Deref for Server {
    type Target = testkit::ApiServer;
    fn deref(&self) -> &testkit::ApiServer {
        &self.api
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The controller-manager's flag defaults.
pub fn opts() -> Opts {
    Opts {
        cluster_cidr: "10.244.0.0/16".into(),
        node_cidr_mask_size: 24,
        node_monitor_grace_period: Duration::from_secs(50),
        node_monitor_period: Duration::from_secs(5),
        controllers: vec!["*".into()],
    }
}

pub type Starter = fn(&mut Informers, Arc<Context>) -> BoxFuture<'static, ()>;

/// Starts a server and the given controllers with the default flags.
pub async fn start(controllers: &[Starter]) -> Server {
    start_with(opts(), controllers).await
}

/// Starts a server (API server only: its own scheduler and controller-manager are disabled, so
/// only the controllers under test act) and the given controllers against it.
pub async fn start_with(opts: Opts, controllers: &[Starter]) -> Server {
    testkit::init_tracing("warn");
    let api = testkit::ApiServer::start().await;
    let client = api.client.clone();

    let stop = CancellationToken::new();
    let ctx = Arc::new(Context { client: client.clone(), opts });
    let mut inf = Informers::new();
    let loops: Vec<_> = controllers.iter().map(|start| start(&mut inf, ctx.clone())).collect();
    inf.start(&client, &stop);
    let s = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = futures::future::join_all(loops) => {}
            _ = s.cancelled() => {}
        }
    });
    Server { api, stop }
}

/// `n` seconds.
pub const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A typed object from JSON.
pub fn obj<K: serde::de::DeserializeOwned>(v: serde_json::Value) -> K {
    serde_json::from_value(v).expect("test object")
}

pub async fn create_namespace(client: &Client, name: &str) {
    let ns: Namespace = obj(serde_json::json!({"metadata": {"name": name}}));
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("create namespace");
}

/// Plays the kubelet: sets a pod's phase (Running pods also get Ready=True).
pub async fn set_phase(pods: &Api<Pod>, name: &str, phase: &str) -> kube::Result<Pod> {
    let ready = if phase == "Running" { "True" } else { "False" };
    let status = serde_json::json!({"status": {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": ready}],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await
}

/// Pods of the Api's namespace matching a label selector.
pub async fn pods_with(pods: &Api<Pod>, selector: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(selector)).await.map(|l| l.items).unwrap_or_default()
}
