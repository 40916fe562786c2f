//! Test harness: `testkit`'s real `skiff server` (killed on drop) with hollow nodes run
//! in-process; waits use `testkit::eventually`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::Client;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub use kubelet::runtime::factory::FactoryError;
pub use kubelet::runtime::fake::FakeRuntime;
pub use kubelet::runtime::Runtime;
pub use testkit::ApiServer as Server;

/// Starts the API server (no scheduler, controllers or agent) and waits until it answers.
pub async fn start_server() -> (Server, Client) {
    testkit::init_tracing("info");
    let server = Server::start().await;
    let client = server.client.clone();
    (server, client)
}

/// Runs `kubelet::run` in the background; cancel the token to stop it.
pub fn start_kubelet(opts: kubelet::Opts, server: &Server) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let (kc, dir, token) = (server.kubeconfig().to_path_buf(), server.data_dir().to_path_buf(), stop.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = kubelet::run(opts, &kc, &dir, token).await {
            panic!("kubelet::run failed: {e}");
        }
    });
    (stop, task)
}

/// Runs `kubelet::run_with_runtimes` in the background with the given runtime per node name (a
/// node without one fails to start); cancel the token to stop it. Clones of a `FakeRuntime`
/// share its state, so a later kubelet can be handed the runtimes of an earlier one.
pub fn start_kubelet_with(
    opts: kubelet::Opts,
    server: &Server,
    runtimes: HashMap<String, FakeRuntime>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let (kc, dir, token) = (server.kubeconfig().to_path_buf(), server.data_dir().to_path_buf(), stop.clone());
    let task = tokio::spawn(async move {
        let pick = |node: &str| -> Result<Arc<dyn Runtime>, FactoryError> {
            match runtimes.get(node) {
                Some(rt) => Ok(Arc::new(rt.clone())),
                None => Err(FactoryError::Linux(format!("no runtime for node {node}"))),
            }
        };
        if let Err(e) = kubelet::run_with_runtimes(opts, &kc, &dir, token, &pick).await {
            panic!("kubelet::run_with_runtimes failed: {e}");
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

/// The runtime id of a container from its status (`skiff-fake://<id>`).
pub fn container_id(p: &Pod, container: &str) -> Option<String> {
    let statuses = p.status.as_ref()?.container_statuses.as_ref()?;
    let id = statuses.iter().find(|c| c.name == container)?.container_id.as_deref()?;
    id.split_once("://").map(|(_, id)| id.to_string())
}

pub fn condition<'a>(p: &'a Pod, ty: &str) -> Option<&'a str> {
    p.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == ty).map(|c| c.status.as_str())
}

/// Whether the Node reports Ready=True.
pub fn node_ready(n: &k8s_openapi::api::core::v1::Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
