//! `kubectl logs` and `kubectl exec` end to end: the real kubectl → the API server's `pods/log`
//! and `pods/exec` → the kubelet API of a hollow node (`--runtime fake --count 1 --node-ip
//! 127.0.0.1 --kubelet-port N`), all in a lab network namespace. The fake runtime's containers
//! log `tick N` at the interval of the pod annotation `skiff.io/fake-log-interval`, and its
//! exec runs `echo`, `cat` and `sh -c 'exit N'` (there is no real container here: the Linux
//! runtime's exec is tested with that runtime).

mod common;

use std::time::Duration;

use common::lab::Lab;
use serde_json::Value;
use testkit::eventually_blocking;

/// Not the default 10250: the API server must find the port in the Node's `daemonEndpoints`.
const KUBELET_PORT: &str = "10350";

const TICKER: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: ticker
  annotations: {skiff.io/fake-log-interval: "300ms"}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: ["sh", "-c", "while true; do echo tick; sleep 1; done"]
"#;

const TWO: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: two}
spec:
  containers:
  - {name: first, image: "busybox:1.36", command: ["sleep", "3600"]}
  - {name: second, image: "busybox:1.36", command: ["sleep", "3600"]}
"#;

/// The number of a `tick N` line (after an optional timestamp).
fn tick(line: &str) -> Option<u64> {
    line.rsplit_once("tick ").and_then(|(_, n)| n.trim().parse().ok())
}

fn start() -> Lab {
    let mut lab = Lab::start(&[]);
    lab.start_agents("node", 1, &["--node-ip", "127.0.0.1", "--kubelet-port", KUBELET_PORT]);
    lab.wait_ready_nodes(1);
    let v = lab.json(&["version"]);
    assert_eq!(v["clientVersion"]["minor"], "33", "the dispatcher must run kubectl 1.33: {v}");
    lab
}

#[test]
fn kubectl_logs_reads_the_kubelet() {
    let lab = start();
    let node = lab.json(&["get", "node", "node-0"]);
    assert_eq!(
        node.pointer("/status/daemonEndpoints/kubeletEndpoint/Port"),
        Some(&Value::from(KUBELET_PORT.parse::<u16>().unwrap_or_default())),
        "the Node advertises the kubelet's port: {}",
        node["status"]
    );
    lab.apply(TICKER);
    lab.k(&["wait", "--for=condition=Ready", "pod/ticker", "--timeout=60s"]);

    // The whole log: the fake's start line, then ticks.
    let all = eventually_blocking("three ticks in the log", Duration::from_secs(30), || {
        let out = lab.kubectl(&["logs", "ticker"]);
        (out.success() && out.stdout.lines().any(|l| tick(l) == Some(3))).then_some(out.stdout)
    });
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.first(), Some(&"skiff-fake: started"), "{all}");
    assert_eq!(lines.get(1..4).map(|l| l.to_vec()), Some(vec!["tick 1", "tick 2", "tick 3"]), "{all}");

    // --tail: the last lines only.
    let tail = lab.k(&["logs", "ticker", "--tail=2"]);
    let tail: Vec<&str> = tail.lines().collect();
    assert_eq!(tail.len(), 2, "{tail:?}");
    assert!(tail.iter().all(|l| tick(l).is_some()), "{tail:?}");
    assert_eq!(tick(tail[1]), tick(tail[0]).map(|n| n + 1), "{tail:?}");

    // --timestamps: RFC 3339 with nine fractional digits, then the line.
    let stamped = lab.k(&["logs", "ticker", "--tail=1", "--timestamps"]);
    let (ts, text) = stamped.trim_end().split_once(' ').unwrap_or_else(|| panic!("no timestamp: {stamped:?}"));
    assert!(ts.len() == 30 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "timestamp {ts:?}");
    assert!(tick(text).is_some(), "{stamped:?}");

    // --limit-bytes cuts the output.
    assert_eq!(lab.k(&["logs", "ticker", "--limit-bytes=5"]), "skiff");

    // -f streams: new ticks keep arriving after the tail.
    let mut follow = lab.kubectl_handle().spawn_lines(&["logs", "-f", "ticker", "--tail=1"]);
    let first = follow.wait_for("a tick", Duration::from_secs(20), |l| tick(l).is_some());
    let n = tick(&first).unwrap_or_default();
    follow.wait_for("a later tick", Duration::from_secs(20), |l| tick(l).is_some_and(|m| m >= n + 3));
    drop(follow);
}

#[test]
fn kubectl_logs_errors_are_upstreams() {
    let lab = start();
    lab.apply(TICKER);
    lab.apply(TWO);
    lab.k(&["wait", "--for=condition=Ready", "pod/ticker", "pod/two", "--timeout=60s"]);

    // kubectl 1.33 checks the container name itself; the API answers the same.
    let bad = lab.kubectl(&["logs", "ticker", "-c", "nope"]);
    assert!(!bad.success(), "{bad:?}");
    assert!(bad.stderr.contains("container nope is not valid for pod ticker"), "{}", bad.stderr);
    let raw =
        |query: &str| lab.kubectl(&["get", "--raw", &format!("/api/v1/namespaces/default/pods/ticker/log?{query}")]);
    let unknown = raw("container=nope");
    assert!(
        unknown.stderr.contains("Error from server (BadRequest): container nope is not valid for pod ticker"),
        "{}",
        unknown.stderr
    );

    let neg = raw("tailLines=-1");
    assert!(!neg.success(), "{neg:?}");
    assert!(
        neg.stderr.contains(
            "PodLogOptions \"ticker\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
        ),
        "{}",
        neg.stderr
    );
    let nan = raw("tailLines=ten");
    assert!(nan.stderr.contains("strconv.ParseInt: parsing \"ten\": invalid syntax"), "{}", nan.stderr);
    let both = raw("sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z");
    assert!(both.stderr.contains("at most one of `sinceTime` or `sinceSeconds` may be specified"), "{}", both.stderr);
    let zero = raw("limitBytes=0");
    assert!(zero.stderr.contains("limitBytes: Invalid value: 0: must be greater than 0"), "{}", zero.stderr);

    // Several containers: the API wants one named (kubectl itself picks the first).
    let several = lab.kubectl(&["get", "--raw", "/api/v1/namespaces/default/pods/two/log"]);
    assert!(
        several.stderr.contains("a container name must be specified for pod two, choose one of: [first second]"),
        "{}",
        several.stderr
    );
    assert_eq!(lab.k(&["logs", "two", "-c", "second"]), "skiff-fake: started\n");
    let defaulted = lab.kubectl(&["logs", "two"]);
    assert!(defaulted.success() && defaulted.stdout == "skiff-fake: started\n", "{defaulted:?}");

    // Before it ran: no previous instance.
    let prev = lab.kubectl(&["logs", "ticker", "--previous"]);
    assert!(
        prev.stderr.contains("previous terminated container \"main\" in pod \"ticker\" not found"),
        "{}",
        prev.stderr
    );
}

#[test]
fn kubectl_exec_runs_in_the_hollow_container() {
    let lab = start();
    lab.apply(TICKER);
    lab.k(&["wait", "--for=condition=Ready", "pod/ticker", "--timeout=60s"]);

    assert_eq!(lab.k(&["exec", "ticker", "--", "echo", "hello", "from", "exec"]), "hello from exec\n");
    let piped = lab.kubectl_handle().run_with_stdin(&["exec", "-i", "ticker", "--", "cat"], Some("through stdin\n"));
    assert!(piped.success(), "{piped:?}");
    assert_eq!(piped.stdout, "through stdin\n");

    let failed = lab.kubectl(&["exec", "ticker", "-c", "main", "--", "sh", "-c", "exit 3"]);
    assert_eq!(failed.code, Some(3), "{failed:?}");
    assert!(failed.stderr.contains("command terminated with exit code 3"), "{}", failed.stderr);

    let bad = lab.kubectl(&["exec", "ticker", "-c", "nope", "--", "echo"]);
    assert!(!bad.success(), "{bad:?}");
    assert!(bad.stderr.contains("container nope is not valid for pod ticker"), "{}", bad.stderr);
}
