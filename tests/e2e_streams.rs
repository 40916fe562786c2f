//! Streams to real pods through the API server and the node's kubelet, with the real kubectl in
//! a lab namespace: `kubectl port-forward` (SPDY inside a WebSocket, and plain SPDY, and the
//! error of a closed port), `kubectl attach` (live output; `-i` to a container that keeps its
//! stdin), `kubectl run -it` (stdin and a terminal), a terminal's log, and `kubectl cp` both ways.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::lab::{Lab, BUSYBOX};
use serde_json::Value;
use testkit::eventually_blocking;

fn pod(name: &str, command: &[&str]) -> String {
    let cmd: Vec<String> = command.iter().map(|c| format!("{c:?}")).collect();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  \
         containers:\n  - name: main\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n    command: [{}]\n",
        cmd.join(", ")
    )
}

#[track_caller]
fn wait_running(lab: &Lab, name: &str) {
    eventually_blocking(&format!("pod {name} Running"), Duration::from_secs(60), || {
        let p = lab.json(&["get", "pod", name]);
        (p.pointer("/status/phase").and_then(Value::as_str) == Some("Running")).then_some(())
    });
}

/// A `kubectl port-forward` running in the lab namespace, killed (by PID) when dropped.
struct PortForward(Child);

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `kubectl port-forward pod/web LOCAL:80` (with `websockets` off: the plain SPDY
/// fallback) and waits for its "Forwarding from" line.
fn port_forward(lab: &Lab, local: u16, websockets: bool) -> PortForward {
    let spec = format!("{local}:80");
    let mut cmd = lab.kubectl_handle().command(&["port-forward", "--address", "127.0.0.1", "pod/web", &spec]);
    cmd.env("KUBECTL_PORT_FORWARD_WEBSOCKETS", if websockets { "true" } else { "false" });
    let errors = std::fs::File::create(lab.dir().join(format!("port-forward-{local}.err"))).expect("stderr file");
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(errors);
    let mut child = cmd.spawn().expect("start kubectl port-forward");
    let stdout = child.stdout.take().expect("stdout");
    let pf = PortForward(child);
    first_line_then_drain(stdout, &format!("Forwarding from 127.0.0.1:{local} -> 80"));
    pf
}

/// Waits for a first line starting with `expected`, then keeps reading the rest on a thread
/// (kubectl dies of SIGPIPE when it writes to a closed pipe: "Handling connection for …").
fn first_line_then_drain(out: impl std::io::Read + Send + 'static, expected: &str) {
    let mut reader = BufReader::new(out);
    let mut first = String::new();
    let _ = reader.read_line(&mut first);
    assert!(first.starts_with(expected), "kubectl said {first:?}, not {expected:?}");
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
}

#[test]
fn port_forward_attach_and_cp_reach_real_pods() {
    let lab = Lab::start_with_node(&[]);
    lab.apply(&pod("web", &["httpd", "-f", "-p", "80", "-h", "/var/www"]));
    lab.apply(&pod("talker", &["sh", "-c", "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.2; done"]));
    wait_running(&lab, "web");
    wait_running(&lab, "talker");

    // port-forward: kubectl's default (SPDY tunnelled in a WebSocket), then plain SPDY; each
    // answers several requests over one session.
    for (local, websockets) in [(18080u16, true), (18081, false)] {
        let _pf = port_forward(&lab, local, websockets);
        for _ in 0..2 {
            let url = format!("http://127.0.0.1:{local}/");
            let (ok, page, err) = lab.exec_in(&["busybox", "wget", "-q", "-O-", &url]);
            let kubectl =
                std::fs::read_to_string(lab.dir().join(format!("port-forward-{local}.err"))).unwrap_or_default();
            assert!(
                ok && page.contains("skiff busybox"),
                "GET through port-forward (ws={websockets}): {page} {err}\nkubectl: {kubectl}\n{}",
                lab.logs()
            );
        }
    }
    // A port nothing listens on: the error comes back on the error stream, and kubectl
    // reports it (and, since 1.31, ends).
    {
        let errors = lab.dir().join("port-forward-81.err");
        let mut cmd = lab.kubectl_handle().command(&["port-forward", "--address", "127.0.0.1", "pod/web", "18082:81"]);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(std::fs::File::create(&errors).expect("stderr file"));
        let mut child = PortForward(cmd.spawn().expect("start kubectl port-forward"));
        first_line_then_drain(child.0.stdout.take().expect("stdout"), "Forwarding from 127.0.0.1:18082 -> 81");
        // (busybox's wget crashes with `-T`: kubectl closes the connection instead.)
        let (ok, _, _) = lab.exec_in(&["busybox", "wget", "-q", "-O-", "http://127.0.0.1:18082/"]);
        assert!(!ok, "nothing listens on port 81");
        let said = eventually_blocking("kubectl to report the refusal", Duration::from_secs(10), || {
            let text = std::fs::read_to_string(&errors).unwrap_or_default();
            text.contains("error forwarding port 81").then_some(text)
        });
        assert!(said.to_lowercase().contains("connection refused"), "the pod's answer: {said}");
        let _ = child.0.kill();
    }

    // attach: the container's output as it comes.
    let mut cmd = lab.kubectl_handle().command(&["attach", "talker", "-c", "main"]);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut attach = PortForward(cmd.spawn().expect("start kubectl attach"));
    let mut lines = BufReader::new(attach.0.stdout.take().expect("stdout")).lines();
    let first: u64 = lines
        .next()
        .and_then(Result::ok)
        .and_then(|l| l.strip_prefix("line ").and_then(|n| n.parse().ok()))
        .expect("a first line from attach");
    let next: u64 = lines
        .next()
        .and_then(Result::ok)
        .and_then(|l| l.strip_prefix("line ").and_then(|n| n.parse().ok()))
        .expect("a second line from attach");
    assert_eq!(next, first + 1, "attach streams the lines live");
    drop(lines);
    drop(attach);

    // attach -i to a container that keeps its stdin (stdinOnce: closed when kubectl's ends, so
    // the container's `read` loop ends and so does the session).
    lab.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: reader\nspec:\n  restartPolicy: Never\n  \
         terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {BUSYBOX}\n    \
         imagePullPolicy: Never\n    stdin: true\n    stdinOnce: true\n    \
         command: [\"sh\", \"-c\", \"while read l; do echo got $l; done; echo stdin closed\"]\n"
    ));
    wait_running(&lab, "reader");
    let out = lab.kubectl_handle().run_with_stdin(&["attach", "-i", "reader", "-c", "main"], Some("hello\nworld\n"));
    assert!(
        out.stdout.contains("got hello\ngot world\nstdin closed"),
        "attach -i: {} {}\n{}",
        out.stdout,
        out.stderr,
        lab.logs()
    );

    // kubectl run -it: stdin and a terminal (kubectl under `script`, fed a command line).
    let shell = format!(
        "echo 'echo hi-$((6*7)); exit' | HOME={} timeout 60 script -qec \
         'kubectl --kubeconfig {} run shell -it --image={BUSYBOX} --image-pull-policy=Never --restart=Never -- sh' /dev/null",
        lab.dir().display(),
        lab.dir().join("server").join("kubeconfig.yaml").display()
    );
    let (_, term, err) = lab.exec_in(&["sh", "-c", &shell]);
    assert!(term.contains("hi-42"), "run -it: {term:?} {err}");

    // A terminal's output is logged in the CRI format like any other.
    lab.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ttylog\nspec:\n  terminationGracePeriodSeconds: 1\n  \
         containers:\n  - name: main\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n    stdin: true\n    \
         tty: true\n    command: [\"sh\", \"-c\", \"echo tty-line; tty; exec sleep 3600\"]\n"
    ));
    wait_running(&lab, "ttylog");
    let log = eventually_blocking("the terminal's line in the log", Duration::from_secs(20), || {
        let log = lab.k(&["logs", "ttylog"]);
        log.contains("tty-line").then_some(log)
    });
    // The terminal is the container's own, from its devpts (the first one there).
    assert!(log.contains("/dev/pts/0"), "tty inside the container: {log:?}");

    // cp in and out (exec + tar), compared byte for byte.
    let local = lab.dir().join("payload.bin");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(&local, &data).expect("write payload");
    let local_s = local.display().to_string();
    lab.k(&["cp", &local_s, "web:/tmp/payload.bin", "-c", "main"]);
    let sum = lab.k(&["exec", "web", "--", "md5sum", "/tmp/payload.bin"]);
    let back = lab.dir().join("back.bin");
    lab.k(&["cp", "web:/tmp/payload.bin", &back.display().to_string(), "-c", "main"]);
    assert_eq!(std::fs::read(&back).expect("read back"), data, "cp out gives back what cp in put ({sum})");
}
