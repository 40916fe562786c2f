//! The Linux runtime's records on disk across versions (the shim protocol carries a version so a
//! newer agent adopts what an older one started): records written by an older version are
//! adopted; records of a newer version are left alone, not misread. Runs on a temp dir laid out
//! like a v1 cgroupfs (nothing is mounted or started).

use std::fs;
use std::path::Path;

use kubelet::runtime::linux::runtime::LinuxRuntime;
use kubelet::runtime::linux::shim::SHIM_VERSION;
use kubelet::runtime::{ContainerFilter, ContainerState, Runtime, SandboxState};
use serde_json::json;

fn sandbox(root: &Path, id: &str, version: u32) {
    let dir = root.join("sandboxes").join(id);
    fs::create_dir_all(&dir).expect("dir");
    let rec = json!({
        "version": version, "id": id, "name": format!("pod-{id}"), "namespace": "default", "uid": format!("uid-{id}"),
        "attempt": 0, "created_at": "2026-12-02T10:00:00Z", "ip": "10.244.0.9", "ready": true,
        "labels": {"io.kubernetes.pod.uid": format!("uid-{id}")}, "cgroup_parent": format!("skiff/besteffort/pod{id}"),
        "own_network": true
    });
    fs::write(dir.join("sandbox.json"), rec.to_string()).expect("write");
}

fn container(root: &Path, id: &str, sandbox: &str, version: u32, exit_code: i32) {
    let dir = root.join("containers").join(id);
    fs::create_dir_all(&dir).expect("dir");
    let meta = json!({
        "version": version, "id": id, "sandbox_id": sandbox, "name": "main", "attempt": 2,
        "image": "localhost/busybox:1.36", "image_ref": "localhost/busybox@sha256:00", "labels": {},
        "created_at": "2026-12-02T10:00:01Z", "log_path": null, "cgroup": format!("skiff/besteffort/pod{sandbox}/{id}")
    });
    fs::write(dir.join("meta.json"), meta.to_string()).expect("write");
    // It ran and ended while no kubelet was there: the exit its shim recorded is kept.
    let state = json!({"version": version, "pid": 999_999_999u32, "pid_start": 1, "shim_pid": 999_999_998u32,
        "shim_start": 1, "started_at": "2026-12-02T10:00:02.000000000Z"});
    fs::write(dir.join("state.json"), state.to_string()).expect("write");
    let exit = json!({"version": version, "exit_code": exit_code, "signal": null,
        "finished_at": "2026-12-02T10:05:00.000000000Z", "reason": null, "message": null});
    fs::write(dir.join("exit.json"), exit.to_string()).expect("write");
}

#[tokio::test]
async fn older_records_are_adopted_and_newer_ones_left_alone() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("agent");
    let cgroupfs = tmp.path().join("cgroup");
    fs::create_dir_all(cgroupfs.join("memory")).expect("v1-shaped cgroupfs");
    let previous = SHIM_VERSION - 1;
    sandbox(&root, "old", previous);
    container(&root, "c-old", "old", previous, 3);
    sandbox(&root, "new", SHIM_VERSION + 1);
    container(&root, "c-new", "new", SHIM_VERSION + 1, 0);

    let rt = LinuxRuntime::open(&root, &cgroupfs, Path::new("/nonexistent/skiff")).expect("open");
    let sandboxes = rt.list_pod_sandboxes().await.expect("list");
    assert_eq!(sandboxes.len(), 1, "{sandboxes:?}");
    assert_eq!(sandboxes[0].id, "old");
    assert_eq!(sandboxes[0].state, SandboxState::Ready);
    assert_eq!(sandboxes[0].metadata.uid, "uid-old");

    let containers = rt.list_containers(&ContainerFilter::default()).await.expect("list");
    assert_eq!(containers.len(), 1, "{containers:?}");
    let c = &containers[0];
    assert_eq!((c.id.as_str(), c.state, c.exit_code, c.restart_count), ("c-old", ContainerState::Exited, Some(3), 2));
    assert_eq!(c.reason.as_deref(), Some("Error"));
    // The newer version's files are untouched.
    assert!(root.join("containers").join("c-new").join("exit.json").exists());
    assert!(root.join("sandboxes").join("new").join("sandbox.json").exists());
}
