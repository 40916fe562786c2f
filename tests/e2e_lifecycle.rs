//! The lifecycle of real pods beyond start and stop: probes (startup, readiness, liveness, with
//! exec, httpGet, tcpSocket and gRPC checks), sidecars, lifecycle hooks and the termination order,
//! shareProcessNamespace, the logs of finished pods and their rotation,
//! Service environment variables, and the Events the kubelet records. One lab node, real
//! kubectl; the order of what containers did is read from a hostPath file on the host.

mod common;

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::lab::{Lab, BUSYBOX};
use serde_json::Value;
use testkit::eventually_blocking;

fn status_of<'a>(pod: &'a Value, list: &str, name: &str) -> &'a Value {
    pod.pointer(&format!("/status/{list}"))
        .and_then(Value::as_array)
        .and_then(|l| l.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

fn condition(pod: &Value, ty: &str) -> String {
    let conds = pod.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    conds.iter().find(|c| c["type"] == ty).and_then(|c| c["status"].as_str()).unwrap_or("").to_string()
}

/// A gRPC health server (`grpc.health.v1.Health/Check` over HTTP/2 without TLS) listening on
/// `ip` inside the lab namespace `netns` (a thread of this test moved into it), answering SERVING
/// or NOT_SERVING as `serving` says. Returns its port. For a hostNetwork pod's gRPC probe, which
/// the kubelet sends to the pod's IP: the node's.
fn grpc_health_server(netns: &str, ip: &str, serving: Arc<AtomicBool>) -> u16 {
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    let (tx, rx) = std::sync::mpsc::channel();
    let (netns, ip) = (netns.to_string(), ip.to_string());
    std::thread::spawn(move || {
        let ns = fs::File::open(format!("/run/netns/{netns}")).expect("the lab namespace");
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&ns),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns into the lab namespace");
        let listener = std::net::TcpListener::bind((ip.as_str(), 0)).expect("bind in the lab");
        listener.set_nonblocking(true).expect("nonblocking");
        tx.send(listener.local_addr().expect("addr").port()).expect("port");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((stream, _)) = listener.accept().await {
                let serving = serving.clone();
                let svc = hyper::service::service_fn(move |_req: hyper::Request<hyper::body::Incoming>| {
                    let status = if serving.load(Ordering::SeqCst) { 1u8 } else { 2 };
                    async move {
                        let mut trailers = hyper::HeaderMap::new();
                        trailers.insert("grpc-status", hyper::header::HeaderValue::from_static("0"));
                        let frames: Vec<Result<Frame<bytes::Bytes>, std::convert::Infallible>> = vec![
                            Ok(Frame::data(bytes::Bytes::from(vec![0, 0, 0, 0, 2, 0x08, status]))),
                            Ok(Frame::trailers(trailers)),
                        ];
                        hyper::Response::builder()
                            .header("content-type", "application/grpc")
                            .body(StreamBody::new(futures::stream::iter(frames)))
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
    });
    rx.recv().expect("the gRPC server's port")
}

#[test]
fn probes_hooks_sidecars_service_variables_and_events() {
    // Small logs, so that one pod's output rotates them.
    let lab = Lab::start_with_node(&["--container-log-max-size", "2Ki", "--container-log-max-files", "2"]);
    lab.apply(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web-svc}\n\
         spec: {selector: {app: probed}, ports: [{name: http, port: 8080, targetPort: 80}]}\n",
    );
    let svc_ip = lab.k(&["get", "service", "web-svc", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(svc_ip.starts_with("10.96."), "cluster IP {svc_ip}");

    // Started once port 80 accepts (tcpSocket); ready only once /ready exists (httpGet); alive
    // while /tmp/alive exists (exec).
    lab.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: probed, labels: {{app: probed}}}}\nspec:\n  terminationGracePeriodSeconds: 1\n  \
         containers:\n  - name: web\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n    \
         command: [sh, -c, \"mkdir -p /www && touch /tmp/alive && exec httpd -f -p 80 -h /www\"]\n    \
         ports: [{{name: http, containerPort: 80}}]\n    \
         startupProbe: {{tcpSocket: {{port: http}}, periodSeconds: 1}}\n    \
         readinessProbe: {{httpGet: {{path: /ready, port: 80}}, periodSeconds: 1}}\n    \
         livenessProbe: {{exec: {{command: [test, -f, /tmp/alive]}}, periodSeconds: 1, failureThreshold: 2}}\n"
    ));
    let p = eventually_blocking("probed started but not ready", Duration::from_secs(60), || {
        let p = lab.json(&["get", "pod", "probed"]);
        let c = status_of(&p, "containerStatuses", "web");
        (c["started"] == true).then_some(p)
    });
    let web = status_of(&p, "containerStatuses", "web");
    assert_eq!(web["ready"], false, "the readiness probe (404) keeps it unready: {web}");
    assert_eq!(condition(&p, "Ready"), "False");
    assert_eq!(p.pointer("/status/phase").and_then(Value::as_str), Some("Running"));
    // An unready pod is in the Service's EndpointSlice, but not as ready.
    let endpoint_ready = || {
        let list = lab.json(&["get", "endpointslices", "-l", "kubernetes.io/service-name=web-svc"]);
        list.pointer("/items/0/endpoints/0/conditions/ready").and_then(Value::as_bool)
    };
    eventually_blocking("the unready endpoint", Duration::from_secs(20), || endpoint_ready().map(|r| assert!(!r)));

    // The Service variables are in its environment (the `kubernetes` Service's too).
    let env = lab.k(&["exec", "probed", "--", "env"]);
    for want in [
        format!("WEB_SVC_SERVICE_HOST={svc_ip}"),
        "WEB_SVC_SERVICE_PORT=8080".to_string(),
        "WEB_SVC_SERVICE_PORT_HTTP=8080".to_string(),
        format!("WEB_SVC_PORT=tcp://{svc_ip}:8080"),
        "KUBERNETES_SERVICE_PORT=443".to_string(),
    ] {
        assert!(env.lines().any(|l| l == want), "{want} missing from the environment:\n{env}");
    }

    lab.k(&["exec", "probed", "--", "touch", "/www/ready"]);
    eventually_blocking("probed Ready", Duration::from_secs(30), || {
        let p = lab.json(&["get", "pod", "probed"]);
        (condition(&p, "Ready") == "True" && status_of(&p, "containerStatuses", "web")["ready"] == true).then_some(())
    });
    eventually_blocking("the endpoint ready", Duration::from_secs(20), || {
        (endpoint_ready() == Some(true)).then_some(())
    });

    // A failing liveness probe restarts the container (the new one is alive again).
    lab.k(&["exec", "probed", "--", "rm", "/tmp/alive"]);
    let p = eventually_blocking("probed restarted by its liveness probe", Duration::from_secs(40), || {
        let p = lab.json(&["get", "pod", "probed"]);
        let c = status_of(&p, "containerStatuses", "web");
        (c["restartCount"].as_i64().unwrap_or(0) >= 1 && c["state"]["running"].is_object()).then_some(p)
    });
    let last = &status_of(&p, "containerStatuses", "web")["lastState"]["terminated"];
    assert!(last["exitCode"].as_i64().is_some_and(|c| c != 0), "killed, not exited 0: {last}");

    // The Events the kubelet recorded about it, as upstream words them.
    let events = eventually_blocking("the kubelet's events", Duration::from_secs(20), || {
        let list = lab.json(&["get", "events", "--field-selector", "involvedObject.name=probed"]);
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let reasons: Vec<String> = items.iter().filter_map(|e| e["reason"].as_str().map(str::to_string)).collect();
        ["Pulled", "Created", "Started", "Unhealthy", "Killing"]
            .iter()
            .all(|r| reasons.iter().any(|x| x == r))
            .then_some(items)
    });
    let unhealthy: Vec<&Value> = events.iter().filter(|e| e["reason"] == "Unhealthy").collect();
    assert!(
        unhealthy.iter().any(|e| e["message"].as_str().is_some_and(|m| m.starts_with("Liveness probe failed"))),
        "{unhealthy:?}"
    );
    let killing = events.iter().find(|e| e["reason"] == "Killing").expect("Killing");
    assert_eq!(killing["message"], "Container web failed liveness probe, will be restarted");
    assert_eq!(killing["involvedObject"]["fieldPath"], "spec.containers{web}");
    assert_eq!(killing["source"]["component"], "kubelet");
    assert_eq!(killing["source"]["host"], lab.node().name.as_str());

    // Init container, then the sidecar (started once its startup probe passes), then the app
    // container; on deletion the app container's preStop hook and SIGTERM, then the sidecar's.
    let log_dir = lab.dir().join("order");
    fs::create_dir_all(&log_dir).expect("log dir");
    let looping = |name: &str| {
        format!("trap 'echo {name}-stop >> /log/events; exit 0' TERM; while true; do sleep 1 & wait $!; done")
    };
    lab.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: ordered}}\nspec:\n  terminationGracePeriodSeconds: 10\n  \
         volumes: [{{name: log, hostPath: {{path: {dir}, type: Directory}}}}]\n  initContainers:\n  \
         - name: init\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n    \
         command: [sh, -c, \"echo init >> /log/events\"]\n    volumeMounts: [{{name: log, mountPath: /log}}]\n  \
         - name: side\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n    restartPolicy: Always\n    \
         command: [sh, -c, \"echo side-start >> /log/events; touch /tmp/up; {side}\"]\n    \
         startupProbe: {{exec: {{command: [test, -f, /tmp/up]}}, periodSeconds: 1}}\n    \
         volumeMounts: [{{name: log, mountPath: /log}}]\n  containers:\n  \
         - name: main\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n    \
         command: [sh, -c, \"echo main-start >> /log/events; {main}\"]\n    \
         lifecycle: {{preStop: {{exec: {{command: [sh, -c, \"echo main-prestop >> /log/events\"]}}}}}}\n    \
         volumeMounts: [{{name: log, mountPath: /log}}]\n",
        dir = log_dir.display(),
        side = looping("side"),
        main = looping("main"),
    ));
    let p = eventually_blocking("ordered running", Duration::from_secs(60), || {
        let p = lab.json(&["get", "pod", "ordered"]);
        (status_of(&p, "containerStatuses", "main")["state"]["running"].is_object()).then_some(p)
    });
    assert_eq!(condition(&p, "Initialized"), "True");
    let side = status_of(&p, "initContainerStatuses", "side");
    assert!(side["state"]["running"].is_object() && side["started"] == true, "sidecar: {side}");
    assert_eq!(p.pointer("/status/phase").and_then(Value::as_str), Some("Running"));
    // shareProcessNamespace: the pod's containers see each other's processes (and the pod's
    // init as pid 1), in one pid namespace held by a pause process that goes with the pod.
    lab.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: shared}}\nspec:\n  shareProcessNamespace: true\n  \
         terminationGracePeriodSeconds: 1\n  containers:\n  \
         - {{name: a, image: {BUSYBOX}, imagePullPolicy: Never, command: [sleep, \"1001\"]}}\n  \
         - {{name: b, image: {BUSYBOX}, imagePullPolicy: Never, command: [sleep, \"1002\"]}}\n"
    ));
    eventually_blocking("shared running", Duration::from_secs(60), || {
        let p = lab.json(&["get", "pod", "shared"]);
        (p.pointer("/status/phase").and_then(Value::as_str) == Some("Running")).then_some(())
    });
    let ps = lab.k(&["exec", "shared", "-c", "a", "--", "ps", "-o", "pid,args"]);
    assert!(ps.contains("sleep 1001") && ps.contains("sleep 1002"), "one pid namespace:\n{ps}");
    let init = ps.lines().find(|l| l.split_whitespace().next() == Some("1")).unwrap_or_default().to_string();
    assert!(init.contains("shim pause"), "pid 1 is the pod's pause process:\n{ps}");
    let pause_pid = fs::read_dir(lab.node().data_dir.join("agent").join("sandboxes"))
        .expect("sandboxes")
        .flatten()
        .filter_map(|e| fs::read_to_string(e.path().join("sandbox.json")).ok())
        .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
        .find(|v| v["name"] == "shared")
        .and_then(|v| v["pause"][0].as_u64())
        .expect("the shared pod's pause process in its sandbox record");
    assert!(std::path::Path::new(&format!("/proc/{pause_pid}")).exists());
    let alone = lab.k(&["exec", "probed", "--", "ps", "-o", "pid,args"]);
    assert!(!alone.contains("sleep 100"), "a pod without sharing sees only its own:\n{alone}");
    lab.k(&["delete", "pod", "shared", "--wait=true", "--timeout=60s"]);
    // Gone (or a zombie until the host's init reaps it: it is not our child).
    let running = |pid: u64| {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().and_then(|r| r.split_whitespace().next()).unwrap_or("");
        !stat.is_empty() && state != "Z" && state != "X"
    };
    assert!(!running(pause_pid), "the pause process went with the pod");

    lab.k(&["delete", "pod", "ordered", "--wait=true", "--timeout=60s"]);
    let order = fs::read_to_string(log_dir.join("events")).expect("events file");
    assert_eq!(
        order.lines().collect::<Vec<_>>(),
        ["init", "side-start", "main-start", "main-prestop", "main-stop", "side-stop"],
        "what the containers did, in order"
    );

    // A container's log rotates by size: `kubectl logs` shows the current file, and only one
    // rotated file is kept beside it.
    lab.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: chatty}}\nspec:\n  terminationGracePeriodSeconds: 1\n  \
         containers:\n  - name: c\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n    \
         command: [sh, -c, \"i=0; while [ $i -lt 200 ]; do echo line-$i-................................................; \
         i=$((i+1)); done; exec sleep 3600\"]\n"
    ));
    let logs = eventually_blocking("chatty's last line", Duration::from_secs(60), || {
        let out = lab.kubectl(&["logs", "chatty"]);
        (out.code == Some(0) && out.stdout.contains("line-199-")).then_some(out.stdout)
    });
    assert!(!logs.contains("line-0-"), "the first lines rotated away:\n{logs}");
    assert!(logs.len() <= 2048, "{} bytes in the current log", logs.len());
    let logs_root = lab.node().data_dir.join("agent").join("logs");
    let pod_dir = fs::read_dir(&logs_root)
        .expect("logs dir")
        .flatten()
        .find(|e| e.file_name().to_string_lossy().contains("_chatty_"))
        .expect("chatty's log dir")
        .path();
    let mut files: Vec<String> = fs::read_dir(pod_dir.join("c"))
        .expect("container log dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "the current log and one rotated file: {files:?}");
    assert!(files[0] == "0.log" && files[1].starts_with("0.log."), "{files:?}");

    // A finished pod keeps its container's log (and `kubectl logs` works) until it is deleted.
    lab.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: done}}\nspec:\n  restartPolicy: Never\n  containers:\n  \
         - {{name: c, image: {BUSYBOX}, imagePullPolicy: Never, command: [sh, -c, \"echo finished-output\"]}}\n"
    ));
    eventually_blocking("done Succeeded", Duration::from_secs(60), || {
        let p = lab.json(&["get", "pod", "done"]);
        (p.pointer("/status/phase").and_then(Value::as_str) == Some("Succeeded")).then_some(())
    });
    assert_eq!(lab.k(&["logs", "done"]), "finished-output\n");

    // A gRPC readiness probe (grpc.health.v1) through the kubelet: a hostNetwork pod's IP is the
    // node's, where this test serves health answers it can switch.
    let serving = Arc::new(AtomicBool::new(true));
    let port = grpc_health_server(lab.netns(), &lab.node().ip, serving.clone());
    lab.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: grpc}}\nspec:\n  hostNetwork: true\n  \
         terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: {BUSYBOX}\n    \
         imagePullPolicy: Never\n    command: [sleep, \"3600\"]\n    \
         readinessProbe: {{grpc: {{port: {port}}}, periodSeconds: 1, failureThreshold: 1}}\n"
    ));
    let ready = || condition(&lab.json(&["get", "pod", "grpc"]), "Ready");
    eventually_blocking("grpc Ready (SERVING)", Duration::from_secs(60), || (ready() == "True").then_some(()));
    serving.store(false, Ordering::SeqCst);
    eventually_blocking("grpc unready (NOT_SERVING)", Duration::from_secs(30), || (ready() == "False").then_some(()));
    let events = lab.json(&["get", "events", "--field-selector", "involvedObject.name=grpc,reason=Unhealthy"]);
    let said = events["items"][0]["message"].as_str().unwrap_or_default().to_string();
    assert_eq!(said, "Readiness probe failed: service unhealthy (responded with \"NOT_SERVING\")");
}
