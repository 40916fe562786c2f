//! The controllers at scale (foundations issue): 200 hollow nodes carrying 5,000 background pods,
//! then a 1,000-replica Deployment, watched from its creation until it is Available. Its pods
//! must never number more than `replicas + maxSurge` at any watched moment (the over-create this
//! guards against came from a cache lagging the controller's own writes under load) and exactly
//! `replicas` at the end. Runs inside a lab network namespace with the real kubectl.

mod common;

use std::collections::HashSet;
use std::io::BufReader;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::lab::Lab;
use serde_json::Value;
use testkit::eventually_blocking;

const NODES: u32 = 200;
const BACKGROUND: u32 = 5000;
const REPLICAS: usize = 1000;
/// The default maxSurge, 25 % of replicas.
const MAX_SURGE: usize = REPLICAS / 4;

fn deployment(name: &str, replicas: u32) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: c, image: "busybox:1.36", command: ["sleep", "3600"]}}]
"#
    )
}

fn ready_replicas(lab: &Lab, name: &str) -> u64 {
    let out = lab.kubectl(&["get", "deployment", name, "-o", "jsonpath={.status.readyReplicas}"]);
    out.stdout.trim().parse().unwrap_or(0)
}

/// What the watch saw: the pods existing now, and the most that existed at once.
#[derive(Default)]
struct Seen {
    live: HashSet<String>,
    max: usize,
    events: usize,
}

#[test]
fn a_big_deployment_on_a_loaded_cluster_never_has_more_pods_than_replicas_plus_surge() {
    let mut lab = Lab::start(&[]);
    lab.start_agents("node", NODES, &[]);
    eventually_blocking(&format!("{NODES} Ready nodes"), Duration::from_secs(180), || {
        (lab.ready_nodes() >= NODES as usize).then_some(())
    });

    lab.apply(&deployment("background", BACKGROUND));
    eventually_blocking(&format!("{BACKGROUND} background pods ready"), Duration::from_secs(600), || {
        (ready_replicas(&lab, "background") >= u64::from(BACKGROUND)).then_some(())
    });

    // Every pod of the big Deployment from the start: the initial list arrives as ADDED events,
    // so nothing created before the watch is established is missed.
    let mut watch = lab
        .kubectl_handle()
        .command(&["get", "pods", "-l", "app=big", "--watch", "--output-watch-events", "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kubectl watch");
    let stdout = watch.stdout.take().expect("watch stdout");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let events = serde_json::Deserializer::from_reader(BufReader::new(stdout)).into_iter::<Value>();
            for ev in events {
                let Ok(ev) = ev else { break };
                let name = ev.pointer("/object/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
                let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
                s.events += 1;
                match ev["type"].as_str() {
                    Some("ADDED" | "MODIFIED") => {
                        s.live.insert(name);
                    }
                    Some("DELETED") => {
                        s.live.remove(&name);
                    }
                    _ => {}
                }
                s.max = s.max.max(s.live.len());
            }
        })
    };

    lab.apply(&deployment("big", REPLICAS as u32));
    lab.k(&["rollout", "status", "deployment/big", "--timeout=600s"]);
    eventually_blocking("the big Deployment Available with every replica", Duration::from_secs(120), || {
        let d = lab.json(&["get", "deployment", "big"]);
        let available = d.pointer("/status/availableReplicas").and_then(Value::as_u64) == Some(REPLICAS as u64);
        let condition = d
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Available" && c["status"] == "True"));
        (available && condition).then_some(())
    });
    // The watch has caught up when it shows what a fresh list shows.
    let listed = eventually_blocking("the watch to catch up with a list", Duration::from_secs(60), || {
        let pods = lab.json(&["get", "pods", "-l", "app=big"]);
        let names: HashSet<String> = pods["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string))
            .collect();
        let s = seen.lock().unwrap_or_else(|p| p.into_inner());
        (s.live == names).then_some(names)
    });
    let _ = watch.kill();
    let _ = watch.wait();
    let _ = reader.join();

    let s = seen.lock().unwrap_or_else(|p| p.into_inner());
    eprintln!("watched {} events; at most {} pods at once; {} at the end", s.events, s.max, listed.len());
    assert!(
        s.max <= REPLICAS + MAX_SURGE,
        "the Deployment had {} pods at one moment (replicas {REPLICAS} + maxSurge {MAX_SURGE})",
        s.max
    );
    assert_eq!(listed.len(), REPLICAS, "pods of the Deployment at the end");
}
