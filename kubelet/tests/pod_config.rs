//! What the runtime is asked to make of a pod, end to end: a container whose ConfigMap does not
//! exist waits with `CreateContainerConfigError` and starts once it does, with its environment
//! resolved (downward API, ConfigMap and Secret keys) and `$(VAR)` expanded; the sandbox gets the
//! cluster DNS and the pod's cgroup.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret};
use kube::api::{Api, PostParams};
use serde_json::json;

use kubelet::runtime::Runtime;
use support::*;
use testkit::eventually;

const WAIT: Duration = Duration::from_secs(30);

fn waiting(p: &Pod) -> Option<(String, String)> {
    let w = p.status.as_ref()?.container_statuses.as_ref()?.first()?.state.as_ref()?.waiting.as_ref()?;
    Some((w.reason.clone().unwrap_or_default(), w.message.clone().unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_wait_for_their_config_and_get_it_resolved() {
    let (server, client) = start_server().await;
    let rt = FakeRuntime::new(Duration::from_secs(1));
    let runtimes = HashMap::from([("hollow-0".to_string(), rt.clone())]);
    let (stop, task) = start_kubelet_with(hollow(1, Some("10.100.0.0/24")), &server, runtimes);
    let nodes: Api<Node> = Api::all(client.clone());
    eventually("hollow-0 Ready", WAIT, || async { nodes.get_opt("hollow-0").await.ok().flatten().filter(node_ready) })
        .await;

    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "creds"}, "data": {"password": "czNjcmV0"}}))
            .expect("secret");
    Api::<Secret>::namespaced(client.clone(), "default").create(&PostParams::default(), &secret).await.expect("secret");
    let mut body = pod_json("configured", "Always", json!({}));
    body["spec"]["containers"][0]["env"] = json!([
        {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "color"}}},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Gi"}}},
        {"name": "GREETING", "value": "$(NAME) in $(COLOR)"}]);
    body["spec"]["containers"][0]["command"] = json!(["echo", "$(GREETING)", "$$(GREETING)"]);
    create_bound_pod(&client, body, "hollow-0").await;

    // No ConfigMap yet: the container cannot be made.
    let p = eventually("CreateContainerConfigError", WAIT, || async {
        get_pod(&client, "configured")
            .await
            .filter(|p| waiting(p).is_some_and(|(r, _)| r == "CreateContainerConfigError"))
    })
    .await;
    assert_eq!(phase(&p), "Pending");
    assert_eq!(waiting(&p).map(|w| w.1), Some("configmap \"cfg\" not found".to_string()));

    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"color": "blue"}})).expect("configmap");
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &cm)
        .await
        .expect("configmap");
    let p = eventually("configured Running", WAIT, || async {
        get_pod(&client, "configured").await.filter(|p| phase(p) == "Running")
    })
    .await;
    let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone()).expect("pod IP");

    let id = container_id(&p, "main").expect("container id");
    let config = rt.container_config(&id).expect("container config");
    let env: HashMap<&str, &str> = config.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(env.get("NAME"), Some(&"configured"));
    assert_eq!(env.get("IP"), Some(&ip.as_str()));
    assert_eq!(env.get("COLOR"), Some(&"blue"));
    assert_eq!(env.get("PASSWORD"), Some(&"s3cret"));
    assert_eq!(env.get("MEM"), Some(&"16"), "no limit: the node's allocatable memory (16Gi)");
    assert_eq!(env.get("GREETING"), Some(&"configured in blue"));
    assert_eq!(config.command, ["echo", "configured in blue", "$(GREETING)"]);

    let sandbox = rt.list_pod_sandboxes().await.expect("sandboxes").into_iter().next().expect("one sandbox");
    let sb = rt.sandbox_config(&sandbox.id).expect("sandbox config");
    let dns = sb.dns_config.expect("dns");
    assert_eq!(dns.servers, ["10.96.0.10"]);
    assert_eq!(&dns.searches[..3], ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"]);
    assert_eq!(dns.options, ["ndots:5"]);
    assert_eq!(sb.hostname, "configured");
    let uid = p.metadata.uid.clone().unwrap_or_default();
    assert_eq!(sb.linux.cgroup_parent, format!("/skiff/besteffort/pod{uid}"));
    assert_eq!(config.linux.resources.oom_score_adj, 1000);

    stop.cancel();
    task.await.expect("kubelet task");
}
