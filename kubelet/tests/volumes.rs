//! The pod volumes the kubelet makes (`pods::volumes`), in a temporary directory: the atomic
//! writer's layout and updates, payloads (keys, items, modes, optional, downward API formatting,
//! projected sources), subPath resolution, and — as root, in a mount namespace of the test's own
//! thread so nothing reaches the host — the tmpfs volumes and their teardown.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Pod, Volume};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::json;

use kubelet::pods::config::mounts::{mounts, volume_dir};
use kubelet::pods::config::NodeFacts;
use kubelet::pods::volumes::atomic_writer::{self, DATA_DIR};
use kubelet::pods::volumes::payload::payload;
use kubelet::pods::volumes::{
    prepare_sub_paths, set_up, tear_down, FileProjection, Payload, PayloadInput, VolumeObjects,
};
use kubelet::runtime::{Mount, MountPropagation};

const UID: &str = "6f1c2d9e-0000-4000-8000-000000000001";

fn file(data: &str, mode: u32) -> FileProjection {
    FileProjection { data: data.as_bytes().to_vec(), mode }
}

fn mode_of(p: &Path) -> u32 {
    fs::metadata(p).expect("metadata").permissions().mode() & 0o7777
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn link(p: &Path) -> String {
    fs::read_link(p).unwrap_or_else(|e| panic!("readlink {}: {e}", p.display())).to_string_lossy().into_owned()
}

#[test]
fn the_atomic_writer_lays_out_data_symlinks_and_swaps_on_update() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = dir.path();
    let first: Payload = [
        ("a".to_string(), file("1", 0o644)),
        ("d/b".to_string(), file("2", 0o600)),
        ("d/c".to_string(), file("3", 0o400)),
    ]
    .into();
    assert!(atomic_writer::write(t, &first).expect("write"));
    let ts = link(&t.join(DATA_DIR));
    assert!(ts.starts_with("..20") && ts.len() > "..2006_01_02_15_04_05.".len(), "timestamped dir {ts}");
    assert_eq!(mode_of(&t.join(&ts)), 0o755);
    assert_eq!(link(&t.join("a")), "..data/a");
    assert_eq!(link(&t.join("d")), "..data/d");
    assert_eq!(read(&t.join("a")), "1");
    assert_eq!(read(&t.join("d/b")), "2");
    assert_eq!((mode_of(&t.join("a")), mode_of(&t.join("d/b")), mode_of(&t.join("d/c"))), (0o644, 0o600, 0o400));

    // The same payload again: nothing changes.
    assert!(!atomic_writer::write(t, &first).expect("write"));
    assert_eq!(link(&t.join(DATA_DIR)), ts);

    // An update: a new timestamped dir behind `..data`, gone paths removed, the old dir too.
    let second: Payload = [("a".to_string(), file("one", 0o644)), ("e".to_string(), file("new", 0o644))].into();
    assert!(atomic_writer::write(t, &second).expect("write"));
    let ts2 = link(&t.join(DATA_DIR));
    assert_ne!(ts2, ts);
    assert_eq!(read(&t.join("a")), "one");
    assert_eq!(read(&t.join("e")), "new");
    assert!(fs::symlink_metadata(t.join("d")).is_err(), "d removed");
    assert!(!t.join(&ts).exists(), "old dir removed");
    let mut names: Vec<String> =
        fs::read_dir(t).expect("read_dir").flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, [ts2, "..data".to_string(), "a".into(), "e".into()]);
}

#[test]
fn the_atomic_writer_refuses_paths_of_its_own_or_outside() {
    let dir = tempfile::tempdir().expect("tempdir");
    for bad in ["../x", "/abs", "..data", "a/../../b", ""] {
        let p: Payload = [(bad.to_string(), file("x", 0o644))].into();
        assert!(atomic_writer::write(dir.path(), &p).is_err(), "{bad:?} accepted");
    }
    assert!(fs::symlink_metadata(dir.path().join(DATA_DIR)).is_err(), "nothing written");
}

fn pod(spec: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "prod", "uid": UID,
            "labels": {"app": "web", "tier": "front \"end\""}, "annotations": {"note": "a\nb"}},
        "spec": spec,
    }))
    .expect("pod")
}

fn facts() -> NodeFacts {
    let alloc: BTreeMap<String, Quantity> =
        [("cpu".to_string(), Quantity("4".into())), ("memory".to_string(), Quantity("8Gi".into()))].into();
    NodeFacts::new("node-1", "192.0.2.10".parse().expect("ip"), alloc)
}

fn objects() -> VolumeObjects {
    let mut o = VolumeObjects::default();
    let cm: BTreeMap<String, Vec<u8>> =
        [("game".to_string(), b"lives=3".to_vec()), ("bin".to_string(), vec![0, 1, 2])].into();
    o.config_maps.insert("cfg".into(), Ok(Some(cm)));
    o.config_maps.insert("gone".into(), Ok(None));
    o.secrets.insert("creds".into(), Ok(Some([("password".to_string(), b"s3cret".to_vec())].into())));
    o.secrets.insert("nosecret".into(), Ok(None));
    o
}

fn volume(v: serde_json::Value) -> Volume {
    serde_json::from_value(v).expect("volume")
}

fn containers() -> serde_json::Value {
    json!([{"name": "main", "image": "i", "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}}])
}

/// (volume, expected files as (path, data, mode), or the error).
#[test]
fn payloads_follow_upstream() {
    type Want = Result<Vec<(&'static str, Vec<u8>, u32)>, &'static str>;
    let b = |s: &str| s.as_bytes().to_vec();
    let rows: Vec<(serde_json::Value, Want)> = vec![
        // Every key (data and binaryData), defaultMode 0644.
        (
            json!({"name": "v", "configMap": {"name": "cfg"}}),
            Ok(vec![("bin", vec![0, 1, 2], 0o644), ("game", b("lives=3"), 0o644)]),
        ),
        (
            json!({"name": "v", "configMap": {"name": "cfg", "defaultMode": 0o400,
                "items": [{"key": "game", "path": "conf/game.properties"}, {"key": "bin", "path": "b", "mode": 0o600}]}}),
            Ok(vec![("b", vec![0, 1, 2], 0o600), ("conf/game.properties", b("lives=3"), 0o400)]),
        ),
        (
            json!({"name": "v", "configMap": {"name": "cfg", "items": [{"key": "nope", "path": "x"}]}}),
            Err("configmap references non-existent config key: nope"),
        ),
        (
            json!({"name": "v", "configMap": {"name": "cfg", "optional": true, "items": [{"key": "nope", "path": "x"}]}}),
            Ok(vec![]),
        ),
        (json!({"name": "v", "configMap": {"name": "gone"}}), Err("configmaps \"gone\" not found")),
        (json!({"name": "v", "configMap": {"name": "gone", "optional": true}}), Ok(vec![])),
        (
            json!({"name": "v", "secret": {"secretName": "creds", "defaultMode": 0o440}}),
            Ok(vec![("password", b("s3cret"), 0o440)]),
        ),
        (
            json!({"name": "v", "secret": {"secretName": "creds", "items": [{"key": "user", "path": "u"}]}}),
            Err("references non-existent secret key: user"),
        ),
        (json!({"name": "v", "secret": {"secretName": "nosecret"}}), Err("secrets \"nosecret\" not found")),
        (json!({"name": "v", "secret": {"secretName": "nosecret", "optional": true}}), Ok(vec![])),
        // Downward API: metadata fields, labels and annotations as `k="v"` lines, resources.
        (
            json!({"name": "v", "downwardAPI": {"items": [
                {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}, "mode": 0o600},
                {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}},
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
                {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
                {"path": "mem", "resourceFieldRef": {"containerName": "main", "resource": "limits.memory", "divisor": "1Mi"}},
                {"path": "cpu", "resourceFieldRef": {"containerName": "main", "resource": "limits.cpu"}},
                {"path": "cpu_req", "resourceFieldRef": {"containerName": "main", "resource": "requests.cpu", "divisor": "1m"}}]}}),
            Ok(vec![
                ("annotations", b("note=\"a\\nb\""), 0o644),
                ("app", b("web"), 0o644),
                ("cpu", b("4"), 0o644),
                ("cpu_req", b("250"), 0o644),
                ("labels", b("app=\"web\"\ntier=\"front \\\"end\\\"\""), 0o644),
                ("mem", b("64"), 0o644),
                ("name", b("web"), 0o644),
                ("ns", b("prod"), 0o600),
                ("uid", b(UID), 0o644),
            ]),
        ),
        (
            json!({"name": "v", "downwardAPI": {"items": [{"path": "x", "resourceFieldRef": {"containerName": "ghost", "resource": "limits.cpu"}}]}}),
            Err("container ghost not found"),
        ),
        // Projected: the sources together, the projected defaultMode; tokens skipped for now.
        (
            json!({"name": "v", "projected": {"defaultMode": 0o440, "sources": [
                {"configMap": {"name": "cfg", "items": [{"key": "game", "path": "game"}]}},
                {"secret": {"name": "creds", "items": [{"key": "password", "path": "sec/pw", "mode": 0o400}]}},
                {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels['app']"}}]}},
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}}),
            Ok(vec![("game", b("lives=3"), 0o440), ("labels", b("web"), 0o440), ("sec/pw", b("s3cret"), 0o400)]),
        ),
        (
            json!({"name": "v", "projected": {"sources": [{"configMap": {"name": "gone"}}, {"secret": {"name": "nosecret"}}]}}),
            Err("configmaps \"gone\" not found, secrets \"nosecret\" not found"),
        ),
    ];
    let p = pod(json!({"containers": containers()}));
    let node = facts();
    let objects = objects();
    let input = PayloadInput { pod: &p, node: &node, pod_ips: &[], objects: &objects };
    for (i, (v, want)) in rows.into_iter().enumerate() {
        let got = payload(&input, &volume(v)).expect("a volume with files");
        let got = got.map(|files| files.into_iter().map(|(k, f)| (k, f.data, f.mode)).collect::<Vec<_>>());
        match (got, want) {
            (Ok(g), Ok(w)) => {
                let w: Vec<(String, Vec<u8>, u32)> = w.into_iter().map(|(k, d, m)| (k.to_string(), d, m)).collect();
                assert_eq!(g, w, "row {i}");
            }
            (Err(e), Err(w)) => assert_eq!(e, w, "row {i}"),
            (g, w) => panic!("row {i}: got {g:?}, want {w:?}"),
        }
    }
    assert!(payload(&input, &volume(json!({"name": "v", "emptyDir": {}}))).is_none());
}

#[test]
fn mounts_point_into_the_pod_volume_dirs() {
    let p = pod(json!({
        "volumes": [{"name": "scratch", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "logs", "hostPath": {"path": "/var/log"}}, {"name": "pvc", "persistentVolumeClaim": {"claimName": "c"}}],
        "containers": [{"name": "main", "image": "i", "volumeMounts": [
            {"name": "scratch", "mountPath": "/tmp", "subPathExpr": "$(POD)"},
            {"name": "cfg", "mountPath": "/etc/cfg"},
            {"name": "logs", "mountPath": "/logs"},
            {"name": "pvc", "mountPath": "/data"}]}]}));
    let spec = p.spec.as_ref().expect("spec");
    let env = vec![("POD".to_string(), "web".to_string())];
    let root = Path::new("/var/lib/skiff/agent/pods");
    let pods = format!("/var/lib/skiff/agent/pods/{UID}/volumes");
    let m = |c: &str, h: String, ro| Mount {
        container_path: c.into(),
        host_path: h,
        readonly: ro,
        propagation: MountPropagation::Private,
    };
    let got = mounts(&p, &spec.containers[0], &env, Some(root)).expect("mounts");
    assert_eq!(
        got,
        vec![
            m("/tmp", format!("{pods}/kubernetes.io~empty-dir/scratch/web"), false),
            // configMap, secret, downwardAPI and projected volumes are always read-only.
            m("/etc/cfg", format!("{pods}/kubernetes.io~configmap/cfg"), true),
            m("/logs", "/var/log".into(), false),
        ]
    );
    // Without a pods root (hollow nodes) only hostPath volumes are mounted.
    let hollow = mounts(&p, &spec.containers[0], &env, None).expect("mounts");
    assert_eq!(hollow, vec![m("/logs", "/var/log".into(), false)]);
}

#[test]
fn sub_paths_are_made_inside_the_volume_and_may_not_leave_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let p = pod(json!({"volumes": [{"name": "scratch", "emptyDir": {}}], "containers": containers()}));
    let v = &p.spec.as_ref().and_then(|s| s.volumes.as_ref()).expect("volumes")[0];
    let vol = volume_dir(root, UID, v).expect("dir");
    fs::create_dir_all(&vol).expect("mkdir");
    fs::set_permissions(&vol, fs::Permissions::from_mode(0o777)).expect("chmod");
    symlink("/etc", vol.join("evil")).expect("symlink");
    fs::create_dir(vol.join("inside")).expect("mkdir");
    symlink("inside", vol.join("ok-link")).expect("symlink");
    symlink("missing", vol.join("dangling")).expect("symlink");
    let mount = |sub: &str| Mount {
        container_path: "/m".into(),
        host_path: format!("{}/{sub}", vol.display()),
        readonly: false,
        propagation: MountPropagation::Private,
    };
    let mut ms = vec![mount("a/b"), mount("ok-link/x")];
    prepare_sub_paths(root, &p, &mut ms).expect("prepare");
    let canon = vol.canonicalize().expect("canon");
    assert_eq!(PathBuf::from(&ms[0].host_path), canon.join("a/b"));
    assert_eq!(PathBuf::from(&ms[1].host_path), canon.join("inside/x"));
    assert!(vol.join("a/b").is_dir() && vol.join("inside/x").is_dir());
    assert_eq!(mode_of(&vol.join("a/b")), 0o777, "the volume's mode");
    for bad in ["evil", "evil/passwd", "evil/newdir"] {
        let mut ms = vec![mount(bad)];
        let e = prepare_sub_paths(root, &p, &mut ms).expect_err(bad);
        assert!(e.to_string().contains("outside the volume"), "{bad}: {e}");
    }
    // A dangling symlink is not replaced by a directory.
    let mut ms = vec![mount("dangling/x")];
    assert!(prepare_sub_paths(root, &p, &mut ms).is_err());
    assert!(fs::symlink_metadata(vol.join("dangling")).is_ok_and(|m| m.file_type().is_symlink()));
    assert!(!Path::new("/etc/newdir").exists());
}

/// A private mount namespace for the calling thread (tests run on threads of their own).
fn private_mounts() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare mount namespace (needs root)");
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("make / private");
}

fn fs_type(mountinfo: &str, dir: &Path) -> Option<String> {
    let dir = dir.to_string_lossy();
    mountinfo.lines().find(|l| l.split(' ').nth(4) == Some(&*dir)).and_then(|l| {
        let after = l.split(" - ").nth(1)?;
        Some(format!("{} {}", after.split(' ').next()?, after.split(' ').nth(2)?))
    })
}

#[test]
fn volumes_are_set_up_on_disk_and_tmpfs_and_torn_down() {
    private_mounts();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("pods");
    let p = pod(json!({
        "volumes": [
            {"name": "scratch", "emptyDir": {}},
            {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "sec", "secret": {"secretName": "creds"}},
            {"name": "info", "downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
            {"name": "all", "projected": {"sources": [{"secret": {"name": "creds"}}]}},
            {"name": "logs", "hostPath": {"path": "/var/log"}}],
        "containers": containers()}));
    let node = facts();
    let objects = objects();
    let input = PayloadInput { pod: &p, node: &node, pod_ips: &[], objects: &objects };
    set_up(&root, &input).expect("set up");
    // Twice is fine (a restarted kubelet sets up the volumes of the pods it adopts again).
    set_up(&root, &input).expect("set up again");
    let vols = p.spec.as_ref().and_then(|s| s.volumes.clone()).expect("volumes");
    let d = |i: usize| volume_dir(&root, UID, &vols[i]).expect("dir");
    let info = read(Path::new("/proc/thread-self/mountinfo"));
    assert_eq!(mode_of(&d(0)), 0o777);
    assert_eq!(fs_type(&info, &d(0)), None, "emptyDir on disk");
    assert_eq!(fs_type(&info, &d(1)).as_deref(), Some("tmpfs rw,size=8192k"), "{info}");
    assert_eq!(fs_type(&info, &d(2)), None, "configMap on disk");
    for i in [3, 4, 5] {
        assert!(fs_type(&info, &d(i)).is_some_and(|t| t.starts_with("tmpfs ")), "volume {i} on tmpfs");
    }
    assert_eq!(info.lines().filter(|l| l.contains(UID)).count(), 4, "one tmpfs each, not two");
    assert_eq!(read(&d(2).join("game")), "lives=3");
    assert_eq!(read(&d(3).join("password")), "s3cret");
    assert_eq!(read(&d(4).join("name")), "web");
    assert_eq!(read(&d(5).join("password")), "s3cret");
    assert!(volume_dir(&root, UID, &vols[6]).is_none(), "hostPath is not the kubelet's");

    // A missing object fails its volume and says which; the others are still made.
    let missing = pod(json!({"volumes": [{"name": "c", "configMap": {"name": "absent"}}], "containers": containers()}));
    let mut o = VolumeObjects::default();
    o.config_maps.insert("absent".into(), Ok(None));
    let input = PayloadInput { pod: &missing, node: &node, pod_ips: &[], objects: &o };
    let e = set_up(&root, &input).expect_err("missing configmap");
    assert_eq!(e.to_string(), "MountVolume.SetUp failed for volume \"c\" : configmaps \"absent\" not found");

    tear_down(&root, UID).expect("tear down");
    let info = read(Path::new("/proc/thread-self/mountinfo"));
    assert_eq!(info.lines().filter(|l| l.contains(UID)).count(), 0, "{info}");
    assert!(!root.join(UID).exists());
    tear_down(&root, UID).expect("tear down again");
}

#[test]
fn an_fs_group_owns_the_volumes_as_upstream_sets_them() {
    private_mounts();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("pods");
    let p = pod(json!({
        "securityContext": {"fsGroup": 2000},
        "volumes": [
            {"name": "scratch", "emptyDir": {}},
            {"name": "sec", "secret": {"secretName": "creds", "defaultMode": 256}}],
        "containers": containers()}));
    let node = facts();
    let objects = objects();
    let input = PayloadInput { pod: &p, node: &node, pod_ips: &[], objects: &objects };
    set_up(&root, &input).expect("set up");
    let vols = p.spec.as_ref().and_then(|s| s.volumes.clone()).expect("volumes");
    let d = |i: usize| volume_dir(&root, UID, &vols[i]).expect("dir");
    let meta = |p: &Path| fs::metadata(p).expect("metadata");
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta(&d(0)).gid(), mode_of(&d(0))), (2000, 0o2777), "emptyDir: group, setgid");
    let password = d(1).join("password");
    assert_eq!((meta(&password).gid(), mode_of(&password)), (2000, 0o440), "secret file: 0400 | g+r");
    assert_eq!(meta(&d(1)).gid(), 2000);
    assert_eq!(mode_of(&d(1)) & 0o2000, 0o2000, "setgid volume root");
    // The atomic writer's symlinks are group-owned themselves (not followed).
    let link_meta = fs::symlink_metadata(d(1).join("..data")).expect("..data");
    assert_eq!(link_meta.gid(), 2000);
    tear_down(&root, UID).expect("tear down");
}
