//! Test harness: a real `skiff server` on a free loopback port in a temp dir (killed on drop),
//! hollow nodes run in-process, and bounded polling.

#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube::Client;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// The `skiff` binary these tests run a server with: `$SKIFF_BIN` (scripts/test sets it), else the
/// workspace's debug build.
fn skiff_bin() -> PathBuf {
    let path = std::env::var_os("SKIFF_BIN").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target").join("debug").join("skiff")
    });
    assert!(
        path.exists(),
        "no skiff binary at {}: build it first (`cargo build --bin skiff`) or set SKIFF_BIN",
        path.display()
    );
    path
}

pub struct Server {
    child: Child,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_test_writer()
        .try_init();
}

/// Starts the API server (no scheduler, controllers or agent) and waits until it answers.
pub async fn start_server() -> (Server, Client) {
    init_tracing();
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
    let child = Command::new(skiff_bin())
        .args(["server", "--bind-address", "127.0.0.1", "--disable-agent", "--disable", "scheduler,controller-manager"])
        .arg("--port")
        .arg(port.to_string())
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start skiff server");
    let kubeconfig = dir.path().join("kubeconfig.yaml");
    let server = Server { child, dir, kubeconfig: kubeconfig.clone() };
    let client = eventually("the API server answers", Duration::from_secs(30), || {
        let kubeconfig = kubeconfig.clone();
        async move {
            if !kubeconfig.exists() {
                return None;
            }
            let client = api::client::from_kubeconfig(&kubeconfig).await.ok()?;
            Api::<Namespace>::all(client.clone()).list(&ListParams::default()).await.ok()?;
            Some(client)
        }
    })
    .await;
    (server, client)
}

/// Runs `kubelet::run` in the background; cancel the token to stop it.
pub fn start_kubelet(opts: kubelet::Opts, server: &Server) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let (kc, dir, token) = (server.kubeconfig.clone(), server.dir.path().to_path_buf(), stop.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = kubelet::run(opts, &kc, &dir, token).await {
            panic!("kubelet::run failed: {e}");
        }
    });
    (stop, task)
}

pub fn hollow(count: u32, pod_cidr: Option<&str>) -> kubelet::Opts {
    kubelet::Opts {
        node_name: Some("hollow".into()),
        runtime: kubelet::RuntimeKind::Fake,
        count,
        pod_cidr: pod_cidr.map(|c| c.parse().expect("cidr")),
        fake_pod_run_seconds: 1.0,
        node_status_update_frequency: Duration::from_secs(1),
        node_lease_duration_seconds: 4,
        ..Default::default()
    }
}

/// Polls `check` until it gives a value, or panics naming `what` after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates an unscheduled pod in `default` from a JSON body and binds it to `node`.
pub async fn create_bound_pod(client: &Client, body: Value, node: &str) -> Pod {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(body).expect("pod json");
    let created = api.create(&PostParams::default(), &pod).await.expect("create pod");
    let name = created.metadata.name.clone().expect("name");
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
    let _: Value = api.create_subresource("binding", &name, &PostParams::default(), &binding).await.expect("bind pod");
    created
}

pub fn pod_json(name: &str, restart_policy: &str, annotations: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"restartPolicy": restart_policy, "containers": [{"name": "main", "image": "busybox:1.36"}]}})
}

pub async fn get_pod(client: &Client, name: &str) -> Option<Pod> {
    Api::<Pod>::namespaced(client.clone(), "default").get_opt(name).await.ok().flatten()
}

pub fn phase(p: &Pod) -> &str {
    p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

pub fn condition<'a>(p: &'a Pod, ty: &str) -> Option<&'a str> {
    p.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == ty).map(|c| c.status.as_str())
}
