//! Resource metrics and node-pressure eviction on a real node: `kubectl top pod|node` through
//! the built-in `metrics.k8s.io` (the kubelet's `/stats/summary` from cgroups), then a pod
//! filling an emptyDir on a node whose data dir is a small tmpfs is evicted by a soft
//! `nodefs.available` threshold (grace 0 s): `Failed`/`Evicted` with upstream's message and a
//! `DisruptionTarget` condition, its containers and cgroup gone, while the pod using no disk
//! keeps running. One lab, one test.

mod common;

use std::path::Path;
use std::time::Duration;

use common::lab::{cgroup_dirs, Lab, BUSYBOX};
use serde_json::Value;
use testkit::eventually_blocking;

fn pod(name: &str, script: &str, volume: bool) -> String {
    let (mounts, volumes) = if volume {
        ("    volumeMounts:\n    - {name: data, mountPath: /data}\n", "  volumes:\n  - {name: data, emptyDir: {}}\n")
    } else {
        ("", "")
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{app: {name}}}\nspec:\n  \
         terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {BUSYBOX}\n    \
         imagePullPolicy: Never\n    command: [\"sh\", \"-c\", {script:?}]\n{mounts}{volumes}"
    )
}

/// Mebibytes in a `kubectl top` memory column (`12Mi`).
fn mebibytes(column: &str) -> Option<u64> {
    column.strip_suffix("Mi")?.parse().ok()
}

#[test]
fn top_shows_usage_and_a_disk_hog_is_evicted() {
    // 256 MiB of data dir; fewer than 120 MiB free is pressure, acted on at once.
    let lab = Lab::start_with_node_on_tmpfs(
        "256m",
        &["--eviction-soft", "nodefs.available<120Mi", "--eviction-soft-grace-period", "nodefs.available=0s"],
    );
    // 8 MiB in the container's /dev/shm (tmpfs, charged to its memory cgroup) keeps its working
    // set above the 1 MiB `kubectl top` rounds to.
    lab.apply(&pod("web", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=8 && exec sleep 3600", false));
    eventually_blocking("web Running", Duration::from_secs(60), || {
        (lab.json(&["get", "pod", "web"]).pointer("/status/phase").and_then(Value::as_str) == Some("Running"))
            .then_some(())
    });

    // `kubectl top` finds the group through discovery and reads it (it needs two CPU samples).
    let row = eventually_blocking("kubectl top pod web", Duration::from_secs(40), || {
        let out = lab.kubectl(&["top", "pod", "web", "--no-headers"]);
        out.success().then(|| out.stdout.clone()).filter(|s| s.starts_with("web"))
    });
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert!(cols.len() == 3 && cols[1].ends_with('m'), "kubectl top pod: {row:?}");
    let mem = mebibytes(cols[2]).unwrap_or_else(|| panic!("memory column of {row:?}"));
    assert!(mem >= 7, "web holds 8 MiB in /dev/shm: {row:?}");
    let node = &lab.node().name;
    let row = eventually_blocking("kubectl top node", Duration::from_secs(30), || {
        let out = lab.kubectl(&["top", "node", "--no-headers"]);
        out.success().then(|| out.stdout.clone()).filter(|s| s.starts_with(node.as_str()))
    });
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert!(cols.len() == 5 && cols[2].ends_with('%') && mebibytes(cols[3]).is_some_and(|m| m > 0), "{row:?}");
    // Label selectors and the API's own shape.
    let raw = |path: &str| -> Value {
        let out = lab.k(&["get", "--raw", path]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{path}: {e}: {out}"))
    };
    let list = raw("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dweb");
    assert_eq!(list["kind"], "PodMetricsList");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    let none = raw("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dnope");
    assert_eq!(none["items"].as_array().map(Vec::len), Some(0), "{none}");

    // 160 MiB into an emptyDir on the 256 MiB data dir crosses the threshold.
    lab.apply(&pod("hog", "dd if=/dev/zero of=/data/fill bs=1M count=160; exec sleep 3600", true));
    let hog = eventually_blocking("hog evicted", Duration::from_secs(60), || {
        let p = lab.json(&["get", "pod", "hog"]);
        (p.pointer("/status/phase").and_then(Value::as_str) == Some("Failed")).then_some(p)
    });
    let status = &hog["status"];
    assert_eq!(status["reason"], "Evicted", "{status}");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("The node was low on resource: ephemeral-storage. Threshold quantity: 120Mi"),
        "{message}"
    );
    assert!(message.contains("Container main was using"), "{message}");
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    let disruption = conditions.iter().find(|c| c["type"] == "DisruptionTarget").expect("DisruptionTarget condition");
    assert_eq!(
        (&disruption["status"], &disruption["reason"]),
        (&Value::from("True"), &Value::from("TerminationByKubelet"))
    );
    let uid = hog.pointer("/metadata/uid").and_then(Value::as_str).expect("uid").to_string();
    // Its containers and its cgroup are gone (the kubelet never restarts them), its volume too;
    // the pod that uses no disk was not touched.
    eventually_blocking("hog's cgroup gone", Duration::from_secs(20), || {
        let gone = cgroup_dirs(&lab.node().cgroup_root)
            .iter()
            .all(|d| !d.join("besteffort").join(format!("pod{uid}")).exists());
        let volume = lab.node().data_dir.join("agent").join("pods").join(&uid);
        (gone && !Path::new(&volume).exists()).then_some(())
    });
    let hog = lab.json(&["get", "pod", "hog"]);
    assert_eq!(hog.pointer("/status/phase").and_then(Value::as_str), Some("Failed"));
    let state = &hog.pointer("/status/containerStatuses/0/state").cloned().unwrap_or(Value::Null);
    assert!(state.get("running").is_none(), "hog's container is not running: {state}");
    assert_eq!(
        lab.json(&["get", "pod", "web"]).pointer("/status/phase").and_then(Value::as_str),
        Some("Running"),
        "web is not evicted"
    );
}
