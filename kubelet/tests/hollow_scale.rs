//! Scale smoke test (ignored by default; run with `--ignored --nocapture`): 1,000 hollow nodes in
//! this one process register and turn Ready, and 1,000 pods bound across them reach Running.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use serde_json::json;

use support::*;

const NODES: u32 = 1000;
const PODS: u32 = 1000;

fn rss_kib() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| l.trim_start_matches("VmRSS:").trim().to_string())
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale smoke test: minutes of CPU"]
async fn thousand_hollow_nodes() {
    let (server, client) = start_server().await;
    let opts = kubelet::Opts {
        node_status_update_frequency: Duration::from_secs(10),
        node_lease_duration_seconds: 40,
        ..hollow(NODES, Some("10.128.0.0/9"))
    };
    let t0 = Instant::now();
    let (stop, task) = start_kubelet(opts, &server);
    let nodes: Api<Node> = Api::all(client.clone());
    eventually("all nodes Ready", Duration::from_secs(300), || async {
        let list = nodes.list(&ListParams::default()).await.ok()?;
        let ready = list
            .items
            .iter()
            .filter(|n| {
                n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        (ready == NODES as usize).then_some(())
    })
    .await;
    eprintln!("{NODES} nodes Ready after {:?}; test process RSS {}", t0.elapsed(), rss_kib());

    let t1 = Instant::now();
    for i in 0..PODS {
        create_bound_pod(&client, pod_json(&format!("p{i}"), "Always", json!({})), &format!("hollow-{}", i % NODES))
            .await;
    }
    eprintln!("{PODS} pods created and bound in {:?}", t1.elapsed());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    eventually("all pods Running", Duration::from_secs(300), || async {
        let list = pods.list(&ListParams::default().fields("status.phase=Running")).await.ok()?;
        (list.items.len() == PODS as usize).then_some(())
    })
    .await;
    eprintln!("{PODS} pods Running {:?} after the first was bound; RSS {}", t1.elapsed(), rss_kib());
    // A quiet period: heartbeats only.
    tokio::time::sleep(Duration::from_secs(20)).await;
    eprintln!("after 20 s of heartbeats: RSS {}", rss_kib());
    stop.cancel();
    task.await.expect("kubelet task");
}
