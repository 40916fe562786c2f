//! Real pods on a real node: `skiff server` with its own node (the built-in Linux runtime) in a
//! lab namespace, driven with the real kubectl, checked on the host (processes, cgroups, veths,
//! files). Each test has its own lab namespace, data dir and cgroup root, so they run in parallel.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use common::lab::{cgroup_dirs, cgroup_processes, start_time, Lab, BUSYBOX};
use serde_json::Value;
use testkit::eventually_blocking;

fn pod(name: &str, command: &[&str], restart: &str) -> String {
    let cmd: Vec<String> = command.iter().map(|c| format!("{c:?}")).collect();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{app: {name}}}\nspec:\n  \
         restartPolicy: {restart}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    \
         image: {BUSYBOX}\n    imagePullPolicy: Never\n    command: [{}]\n",
        cmd.join(", ")
    )
}

fn pod_json(lab: &Lab, name: &str) -> Value {
    lab.json(&["get", "pod", name])
}

/// Waits for the pod's phase; a pod that reaches another final phase fails the test at once.
#[track_caller]
fn wait_phase(lab: &Lab, name: &str, phase: &str) -> Value {
    eventually_blocking(&format!("pod {name} {phase}"), Duration::from_secs(60), || {
        let p = pod_json(lab, name);
        let got = p.pointer("/status/phase").and_then(Value::as_str).unwrap_or("").to_string();
        if got != phase && (got == "Failed" || got == "Succeeded") {
            panic!("pod {name} ended {got}, not {phase}: {}\n{}", p["status"], lab.logs());
        }
        (got == phase).then_some(p)
    })
}

/// The state files of the node's containers: (container id, pid, pid start time).
fn container_pids(data_dir: &Path) -> BTreeSet<(String, u64, u64)> {
    let mut out = BTreeSet::new();
    for e in fs::read_dir(data_dir.join("agent").join("containers")).expect("containers dir").flatten() {
        if let Ok(text) = fs::read_to_string(e.path().join("state.json")) {
            let v: Value = serde_json::from_str(&text).expect("state.json");
            let id = e.file_name().to_string_lossy().to_string();
            out.insert((id, v["pid"].as_u64().expect("pid"), v["pid_start"].as_u64().expect("pid_start")));
        }
    }
    out
}

fn entries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn a_real_pod_runs_answers_another_pod_and_leaves_nothing_behind() {
    let lab = Lab::start_with_node(&[]);
    lab.apply(&pod("web", &["httpd", "-f", "-p", "80", "-h", "/var/www"], "Always"));
    let web = wait_phase(&lab, "web", "Running");
    let ip = web.pointer("/status/podIP").and_then(Value::as_str).expect("podIP").to_string();
    assert!(ip.starts_with("10.244."), "pod IP {ip} from the node's podCIDR");
    assert_eq!(web.pointer("/status/hostIP").and_then(Value::as_str), Some(lab.node().ip.as_str()));
    let id = web.pointer("/status/containerStatuses/0/containerID").and_then(Value::as_str).unwrap_or("");
    assert!(id.starts_with("skiff://"), "containerID {id}");

    // Another pod on the node reaches it by pod IP (wget exits non-zero if it cannot).
    lab.apply(&pod("client", &["wget", "-q", "-O", "/dev/null", &format!("http://{ip}/")], "Never"));
    wait_phase(&lab, "client", "Succeeded");

    // Logs and exec through the API server and the node's kubelet.
    lab.apply(&pod(
        "talker",
        &["sh", "-c", "echo one; echo two >&2; sleep 0.5; echo three; exec sleep 3600"],
        "Always",
    ));
    wait_phase(&lab, "talker", "Running");
    let logs = eventually_blocking("talker's three lines", Duration::from_secs(20), || {
        let out = lab.k(&["logs", "talker"]);
        (out.lines().count() == 3).then_some(out)
    });
    // stdout and stderr are separate pipes: their relative order is not kept (as in containerd).
    let mut lines: Vec<&str> = logs.lines().collect();
    assert!(lines.iter().position(|l| *l == "one") < lines.iter().position(|l| *l == "three"), "{logs}");
    lines.sort();
    assert_eq!(lines, ["one", "three", "two"], "both streams in the log");
    assert_eq!(lab.k(&["logs", "talker", "--tail", "1"]), "three\n");
    assert_eq!(lab.k(&["exec", "web", "--", "hostname"]).trim(), "web");
    let ps = lab.k(&["exec", "web", "--", "ps", "-o", "pid,comm"]);
    let procs: Vec<&str> = ps.lines().skip(1).filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert_eq!(procs, ["httpd", "ps"], "only the container's processes:\n{ps}");
    let exit = lab.kubectl(&["exec", "web", "--", "sh", "-c", "exit 3"]);
    assert_eq!(exit.code, Some(3), "exec exit code: {}", exit.stderr);
    let echoed = lab.kubectl_handle().run_with_stdin(&["exec", "-i", "web", "--", "cat"], Some("through stdin\n"));
    assert_eq!(echoed.stdout, "through stdin\n", "exec -i: {}", echoed.stderr);

    // exec -it: a terminal from the container's devpts, sized as kubectl's own (run under
    // `script` for a terminal of given size; stdin is empty).
    let shell = format!(
        "stty cols 123 rows 45; HOME={} kubectl --kubeconfig {} exec -it web -- sh -c 'tty; stty size'",
        lab.dir().display(),
        lab.dir().join("server").join("kubeconfig.yaml").display()
    );
    let (_, term, err) = lab.exec_in(&["script", "-qec", &shell, "/dev/null"]);
    assert!(term.contains("/dev/pts/0") && term.contains("45 123"), "exec -it: {term:?} {err}");

    // An image that is not on the node, with imagePullPolicy: Never, is not pulled.
    lab.apply(&pod("ghost", &["true"], "Never").replace(BUSYBOX, "localhost/not-here:1"));
    eventually_blocking("ErrImageNeverPull", Duration::from_secs(20), || {
        let p = pod_json(&lab, "ghost");
        let w = p.pointer("/status/containerStatuses/0/state/waiting").cloned().unwrap_or(Value::Null);
        (w["reason"] == "ErrImageNeverPull").then_some(())
    });

    // The node reaches it too, through its address on the bridge.
    let (ok, page, err) = lab.exec_in(&["busybox", "wget", "-q", "-O-", &format!("http://{ip}/")]);
    assert!(ok && page.contains("skiff busybox"), "wget from the node: {page} {err}");

    // Deleting the pods leaves nothing of theirs on the host.
    lab.k(&["delete", "pod", "web", "client", "talker", "ghost", "--wait=true", "--timeout=60s"]);
    let node = lab.node();
    eventually_blocking("the pods' processes, cgroups and files to go", Duration::from_secs(30), || {
        let procs: Vec<u32> = cgroup_dirs(&node.cgroup_root).iter().flat_map(|d| cgroup_processes(d)).collect();
        let agent = node.data_dir.join("agent");
        let left = (
            procs,
            entries(&agent.join("sandboxes")),
            entries(&agent.join("containers")),
            entries(&agent.join("logs")),
        );
        (left.0.is_empty() && left.1.is_empty() && left.2.is_empty() && left.3.is_empty()).then_some(())
    });
    for dir in cgroup_dirs(&node.cgroup_root) {
        for tier in
            entries(&dir).into_iter().filter(|e| ["besteffort", "burstable", "guaranteed"].contains(&e.as_str()))
        {
            let pods: Vec<String> = entries(&dir.join(&tier)).into_iter().filter(|e| e.starts_with("pod")).collect();
            assert!(pods.is_empty(), "pod cgroups left in {}: {pods:?}", dir.join(&tier).display());
        }
    }
    let (_, links, _) = lab.exec_in(&["ip", "-o", "link"]);
    assert!(!links.contains("veth"), "veths left in the lab host:\n{links}");
}

#[test]
fn containers_outlive_a_killed_server_and_are_adopted_on_restart() {
    let mut lab = Lab::start_with_node(&[]);
    let names: Vec<String> = (0..5).map(|i| format!("sleeper-{i}")).collect();
    for n in &names {
        lab.apply(&pod(n, &["sleep", "3600"], "Always"));
    }
    for n in &names {
        wait_phase(&lab, n, "Running");
    }
    // Meanwhile: a crashing container is restarted with back-off, and a container over its
    // memory limit is OOM-killed (exit 137, reason OOMKilled).
    lab.apply(&pod("crasher", &["sh", "-c", "echo crashing; exit 2"], "Always"));
    lab.apply(
        &pod("hog", &["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' x); echo survived"], "Never")
            .replace("    command:", "    resources: {limits: {memory: 32Mi}}\n    command:"),
    );
    let hog = wait_phase(&lab, "hog", "Failed");
    let term = hog.pointer("/status/containerStatuses/0/state/terminated").cloned().unwrap_or(Value::Null);
    assert_eq!((term["reason"].as_str(), term["exitCode"].as_i64()), (Some("OOMKilled"), Some(137)), "{term}");
    eventually_blocking("crasher restarted and backing off", Duration::from_secs(60), || {
        let p = pod_json(&lab, "crasher");
        let cs = p.pointer("/status/containerStatuses/0").cloned().unwrap_or(Value::Null);
        let restarted = cs["restartCount"].as_u64().unwrap_or(0) >= 1;
        let last_exit = cs.pointer("/lastState/terminated/exitCode").and_then(Value::as_i64);
        (restarted
            && last_exit == Some(2)
            && cs.pointer("/state/waiting/reason") == Some(&Value::from("CrashLoopBackOff")))
        .then_some(())
    });
    lab.k(&["delete", "pod", "crasher", "hog", "--wait=true", "--timeout=60s"]);

    let data_dir = lab.node().data_dir.clone();
    let before = container_pids(&data_dir);
    assert_eq!(before.len(), 5, "one container per pod: {before:?}");

    lab.kill_server();
    for (id, pid, start) in &before {
        assert_eq!(start_time(*pid), Some(*start), "container {id} (pid {pid}) died with the server");
    }

    lab.restart_server();
    lab.wait_ready_nodes(1);
    // Adopted: the same containers (same PIDs), none restarted, no duplicates, still Running.
    eventually_blocking("the pods Running again after the restart", Duration::from_secs(60), || {
        let all = names.iter().all(|n| {
            let p = pod_json(&lab, n);
            p.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
                && p.pointer("/status/containerStatuses/0/ready") == Some(&Value::Bool(true))
        });
        all.then_some(())
    });
    for n in &names {
        let p = pod_json(&lab, n);
        assert_eq!(p.pointer("/status/containerStatuses/0/restartCount").and_then(Value::as_u64), Some(0), "{n}");
    }
    let after = container_pids(&data_dir);
    assert_eq!(after, before, "the same containers, no new ones");
    for (id, pid, start) in &after {
        assert_eq!(start_time(*pid), Some(*start), "container {id} (pid {pid}) still running");
    }
}

#[test]
fn volumes_configmap_secret_downward_api_and_memory_empty_dir_are_made_and_removed() {
    // Volumes projected from objects are refreshed every 2 s here (upstream's default is 1 min).
    let lab = Lab::start_with_node(&["--sync-frequency", "2s"]);
    lab.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: vol-cfg}\ndata: {greeting: hello, other: x}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {name: vol-sec}\nstringData: {password: s3cret}\n",
    );
    let spec = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: vols\n  labels: {{app: vols, tier: front}}\nspec:\n  \
         terminationGracePeriodSeconds: 1\n  volumes:\n  \
         - name: cfg\n    configMap: {{name: vol-cfg, items: [{{key: greeting, path: sub/greeting.txt, mode: 384}}]}}\n  \
         - name: sec\n    secret: {{secretName: vol-sec, defaultMode: 256}}\n  \
         - name: info\n    downwardAPI:\n      items:\n      - {{path: name, fieldRef: {{fieldPath: metadata.name}}}}\n      \
         - {{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}\n      \
         - {{path: mem, resourceFieldRef: {{containerName: writer, resource: limits.memory, divisor: 1Mi}}}}\n  \
         - name: shared\n    emptyDir: {{medium: Memory, sizeLimit: 16Mi}}\n  containers:\n  \
         - name: writer\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n    \
         command: [sh, -c, \"echo from-writer > /shared/note; exec sleep 3600\"]\n    \
         resources: {{limits: {{memory: 64Mi}}}}\n    volumeMounts:\n    \
         - {{name: cfg, mountPath: /etc/cfg}}\n    - {{name: sec, mountPath: /etc/sec, readOnly: true}}\n    \
         - {{name: info, mountPath: /etc/info}}\n    - {{name: shared, mountPath: /shared}}\n  \
         - name: reader\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n    command: [sleep, \"3600\"]\n    \
         volumeMounts:\n    - {{name: shared, mountPath: /data}}\n    \
         - {{name: cfg, mountPath: /greeting, subPath: sub/greeting.txt}}\n"
    );
    lab.apply(&spec);
    let p = wait_phase(&lab, "vols", "Running");
    let uid = p.pointer("/metadata/uid").and_then(Value::as_str).expect("uid").to_string();
    let cat = |c: &str, path: &str| lab.k(&["exec", "vols", "-c", c, "--", "cat", path]);
    assert_eq!(cat("writer", "/etc/cfg/sub/greeting.txt"), "hello");
    assert_eq!(lab.k(&["exec", "vols", "-c", "writer", "--", "ls", "/etc/cfg"]).trim(), "sub", "only the item");
    assert_eq!(cat("writer", "/etc/sec/password"), "s3cret");
    assert_eq!(cat("writer", "/etc/info/name"), "vols");
    assert_eq!(cat("writer", "/etc/info/labels"), "app=\"vols\"\ntier=\"front\"");
    assert_eq!(cat("writer", "/etc/info/mem"), "64");
    assert_eq!(cat("reader", "/greeting"), "hello", "subPath through the atomic writer's symlinks");
    let modes = lab.k(&[
        "exec",
        "vols",
        "-c",
        "writer",
        "--",
        "stat",
        "-L",
        "-c",
        "%a",
        "/etc/sec/password",
        "/etc/cfg/sub/greeting.txt",
    ]);
    assert_eq!(modes.split_whitespace().collect::<Vec<_>>(), ["400", "600"], "defaultMode and item mode");
    let layout = lab.k(&["exec", "vols", "-c", "writer", "--", "ls", "-a", "/etc/sec"]);
    assert!(layout.contains("..data") && layout.contains("password"), "atomic writer layout: {layout}");
    let ro = lab.kubectl(&["exec", "vols", "-c", "writer", "--", "touch", "/etc/sec/x"]);
    assert_ne!(ro.code, Some(0), "readOnly secret mount is writable");
    // The Memory emptyDir is one tmpfs, sized, shared by both containers.
    let note = eventually_blocking("the writer's note in the reader", Duration::from_secs(20), || {
        let out = lab.kubectl(&["exec", "vols", "-c", "reader", "--", "cat", "/data/note"]);
        (out.code == Some(0)).then_some(out.stdout)
    });
    assert_eq!(note, "from-writer\n");
    let mounts = cat("reader", "/proc/mounts");
    let data = mounts.lines().find(|l| l.split(' ').nth(1) == Some("/data")).unwrap_or_default().to_string();
    assert!(data.starts_with("tmpfs ") && data.contains("size=16384k"), "/data: {data}\n{mounts}");
    let writer_mounts = cat("writer", "/proc/mounts");
    let secret_line =
        writer_mounts.lines().find(|l| l.split(' ').nth(1) == Some("/etc/sec")).unwrap_or_default().to_string();
    assert!(secret_line.starts_with("tmpfs ") && secret_line.contains("ro"), "/etc/sec: {secret_line}");

    // A changed ConfigMap reaches the mounted volume (not a subPath mount, as upstream).
    lab.k(&["patch", "configmap", "vol-cfg", "-p", r#"{"data":{"greeting":"bonjour"}}"#]);
    eventually_blocking("the updated ConfigMap in the volume", Duration::from_secs(30), || {
        (cat("writer", "/etc/cfg/sub/greeting.txt") == "bonjour").then_some(())
    });
    assert_eq!(cat("reader", "/greeting"), "hello", "a subPath mount keeps what it had");

    // The agent's own mounts: tmpfs for the secret, downward API and emptyDir volumes.
    let mountinfo = |pid: u32| fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    let pod_mounts = |text: &str| text.lines().filter(|l| l.contains(uid.as_str())).count();
    assert_eq!(pod_mounts(&mountinfo(lab.server_pid())), 3, "{}", mountinfo(lab.server_pid()));
    let pod_dir = lab.node().data_dir.join("agent").join("pods").join(&uid);
    assert!(pod_dir.join("volumes").join("kubernetes.io~configmap").join("cfg").join("..data").exists());

    // A missing ConfigMap keeps the containers waiting, saying which; they start once it exists.
    lab.apply(
        &(pod("late", &["sleep", "3600"], "Always")
            .replace("    command:", "    volumeMounts: [{name: c, mountPath: /c}]\n    command:")
            + "  volumes: [{name: c, configMap: {name: late-cfg}}]\n"),
    );
    eventually_blocking("late waiting for its ConfigMap", Duration::from_secs(30), || {
        let p = pod_json(&lab, "late");
        let w = p.pointer("/status/containerStatuses/0/state/waiting").cloned().unwrap_or(Value::Null);
        w["message"].as_str().is_some_and(|m| m.contains("configmaps \"late-cfg\" not found")).then_some(())
    });
    lab.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late-cfg}\ndata: {k: v}\n");
    wait_phase(&lab, "late", "Running");
    assert_eq!(lab.k(&["exec", "late", "--", "cat", "/c/k"]), "v");

    // Deleting the pod unmounts and removes everything its volumes made.
    lab.k(&["delete", "pod", "vols", "late", "--wait=true", "--timeout=60s"]);
    eventually_blocking("the pod's mounts and directory to go", Duration::from_secs(30), || {
        (pod_mounts(&mountinfo(lab.server_pid())) == 0 && !pod_dir.exists()).then_some(())
    });
    assert!(entries(&lab.node().data_dir.join("agent").join("pods")).is_empty(), "pods dir left");
}
