//! Shared harness for the integration tests: `testkit`'s real `skiff server` process (a temp
//! data dir, a free loopback port, ready on `/readyz`, killed by its PID on drop — also when the
//! test panics, printing the tail of its log), with what these tests drive it with: an HTTPS
//! client that trusts the cluster CA and carries the admin token from the generated kubeconfig,
//! and the real `kubectl` on the PATH with a private HOME and discovery cache.

#![allow(dead_code)]

use std::fs::{self, File};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use testkit::{Creds, ServerOptions, ServerProcess};

/// How long one kubectl invocation may run before the harness kills it.
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(90);

/// The `skiff` binary under test.
pub fn skiff_bin() -> &'static str {
    env!("CARGO_BIN_EXE_skiff")
}

/// Repository root (the root package's manifest dir).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests").join("fixtures").join(name)
}

/// A running `skiff server --disable-agent` (see [`ServerProcess`]: its dir, kubeconfig, log,
/// PID, kill, restart, terminate) with this package's clients.
pub struct Server(ServerProcess);

impl Deref for Server {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.0
    }
}

impl DerefMut for Server {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.0
    }
}

impl Server {
    /// Start a server with default flags and wait until `/readyz` answers 200.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Start a server with extra flags (e.g. `--watch-history-seconds 2`).
    ///
    /// These servers run the API server alone (`--disable scheduler,controller-manager` unless
    /// `extra` has a `--disable`): the tests built on them check API semantics, which control
    /// loops writing status would blur. Tests of the whole control plane use [`lab::Lab`].
    pub fn start_with(extra: &[&str]) -> Server {
        Server(ServerOptions::new().bin(skiff_bin()).flags(extra).start())
    }

    /// Start a server whose soft open-file limit is `soft_nofile` at exec (as under
    /// `ulimit -Sn`), the hard limit unchanged.
    pub fn start_limited(extra: &[&str], soft_nofile: Option<u64>) -> Server {
        let mut opts = ServerOptions::new().bin(skiff_bin()).flags(extra);
        if let Some(n) = soft_nofile {
            opts = opts.soft_nofile(n);
        }
        Server(opts.start())
    }

    /// Admin client (bearer token from the kubeconfig).
    pub fn api(&self) -> Api {
        Api::new(self.creds(), Some(&self.creds().token), Duration::from_secs(30))
    }

    /// Client that sends no credential at all.
    pub fn anonymous_api(&self) -> Api {
        Api::new(self.creds(), None, Duration::from_secs(30))
    }

    /// Client with an arbitrary bearer token.
    pub fn api_with_token(&self, token: &str) -> Api {
        Api::new(self.creds(), Some(token), Duration::from_secs(30))
    }

    /// The real kubectl, pointed at this server, with a fresh HOME and cache dir.
    pub fn kubectl(&self) -> Kubectl {
        Kubectl::new(self.kubeconfig(), self.dir())
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------------------------

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub content_type: String,
    /// Every `Warning` response header.
    pub warnings: Vec<String>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("response ({}, Content-Type {:?}) is not JSON: {e}\n{}", self.status, self.content_type, self.text())
        })
    }

    /// Assert the status code, printing the body otherwise.
    #[track_caller]
    pub fn expect(self, code: u16) -> Resp {
        assert_eq!(self.status, code, "expected HTTP {code}, got {}: {}", self.status, self.text());
        self
    }

    /// Assert an error response: the status code, and a `Status` body with the same code and
    /// the given reason. Returns the Status.
    #[track_caller]
    pub fn expect_status(self, code: u16, reason: &str) -> Value {
        let r = self.expect(code);
        assert!(
            r.content_type.starts_with("application/json"),
            "a Status must be served as application/json, got {:?}: {}",
            r.content_type,
            r.text()
        );
        let s = r.json();
        assert_eq!(s["kind"], "Status", "body is not a Status: {s}");
        assert_eq!(s["apiVersion"], "v1", "Status apiVersion: {s}");
        assert_eq!(s["status"], "Failure", "Status.status: {s}");
        assert_eq!(s["code"], code, "Status.code: {s}");
        assert_eq!(s["reason"], reason, "Status.reason: {s}");
        assert!(s["message"].as_str().is_some_and(|m| !m.is_empty()), "Status without a message: {s}");
        s
    }
}

/// Blocking HTTPS client for one server.
#[derive(Clone)]
pub struct Api {
    client: reqwest::blocking::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    pub fn new(creds: &Creds, token: Option<&str>, timeout: Duration) -> Api {
        let client = testkit::https_client(&creds.ca_pem, timeout);
        Api { client, base: creds.server.trim_end_matches('/').to_string(), token: token.map(str::to_string) }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Build a request; `path` starts with `/`.
    pub fn request(&self, method: &str, path: &str) -> reqwest::blocking::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("HTTP method");
        let mut rb = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        rb
    }

    /// Send and read the whole response, or the transport error.
    pub fn try_send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Resp, String> {
        let mut rb = self.request(method, path);
        if let Some(ct) = content_type {
            rb = rb.header("Content-Type", ct);
        }
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let resp = rb.send().map_err(|e| format!("{method} {path}: {e:?}"))?;
        let status = resp.status().as_u16();
        let content_type =
            resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let warnings = resp
            .headers()
            .get_all("warning")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        let body = resp.bytes().map_err(|e| format!("{method} {path}: reading body: {e:?}"))?.to_vec();
        Ok(Resp { status, content_type, warnings, body })
    }

    pub fn try_get(&self, path: &str) -> Result<Resp, String> {
        self.try_send("GET", path, None, None)
    }

    /// Send; panics on a transport error.
    #[track_caller]
    pub fn send(&self, method: &str, path: &str, content_type: Option<&str>, body: Option<Vec<u8>>) -> Resp {
        self.try_send(method, path, content_type, body).unwrap_or_else(|e| panic!("transport error: {e}"))
    }

    #[track_caller]
    pub fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None, None)
    }

    /// GET that must answer 200; returns the JSON body.
    #[track_caller]
    pub fn get_json(&self, path: &str) -> Value {
        self.get(path).expect(200).json()
    }

    #[track_caller]
    pub fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.send("POST", path, Some("application/json"), Some(serde_json::to_vec(body).unwrap()))
    }

    #[track_caller]
    pub fn put_json(&self, path: &str, body: &Value) -> Resp {
        self.send("PUT", path, Some("application/json"), Some(serde_json::to_vec(body).unwrap()))
    }

    #[track_caller]
    pub fn patch(&self, path: &str, content_type: &str, body: &Value) -> Resp {
        self.send("PATCH", path, Some(content_type), Some(serde_json::to_vec(body).unwrap()))
    }

    #[track_caller]
    pub fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, None, None)
    }

    /// POST that must answer 201; returns the created object.
    #[track_caller]
    pub fn create(&self, collection: &str, body: &Value) -> Value {
        self.post_json(collection, body).expect(201).json()
    }

    /// Names and resourceVersions of a collection, for "nothing changed" checks.
    #[track_caller]
    pub fn snapshot(&self, collection: &str) -> Vec<(String, String)> {
        let list = self.get_json(collection);
        let mut out: Vec<(String, String)> = list["items"]
            .as_array()
            .unwrap_or_else(|| panic!("list without items: {list}"))
            .iter()
            .map(|i| {
                (
                    format!(
                        "{}/{}",
                        i["metadata"]["namespace"].as_str().unwrap_or_default(),
                        i["metadata"]["name"].as_str().unwrap_or_default()
                    ),
                    i["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        out.sort();
        out
    }
}

// ---------------------------------------------------------------------------------------------
// kubectl
// ---------------------------------------------------------------------------------------------

/// Result of one kubectl run.
#[derive(Debug)]
pub struct KOut {
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl KOut {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// The real `kubectl` from the PATH with its own kubeconfig, HOME and discovery cache.
pub struct Kubectl {
    kubeconfig: PathBuf,
    home: PathBuf,
    cache: PathBuf,
    scratch: PathBuf,
    /// Run inside this network namespace (a lab host), not the machine's own.
    netns: Option<String>,
}

impl Kubectl {
    /// A fresh HOME and `--cache-dir` under `dir`.
    pub fn new(kubeconfig: &Path, dir: &Path) -> Kubectl {
        let base = tempfile::Builder::new().prefix("kubectl-").tempdir_in(dir).expect("kubectl temp dir").keep();
        let home = base.join("home");
        let cache = base.join("cache");
        let scratch = base.join("out");
        for d in [&home, &cache, &scratch] {
            fs::create_dir_all(d).expect("create kubectl dirs");
        }
        Kubectl { kubeconfig: kubeconfig.to_path_buf(), home, cache, scratch, netns: None }
    }

    /// Like [`Kubectl::new`], but every run happens inside network namespace `netns`.
    pub fn new_in_netns(kubeconfig: &Path, dir: &Path, netns: &str) -> Kubectl {
        let mut k = Kubectl::new(kubeconfig, dir);
        k.netns = Some(netns.to_string());
        k
    }

    /// A `Command` for kubectl with the isolation flags and environment set.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "kubectl"]);
                c
            }
            None => Command::new("kubectl"),
        };
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .env("HOME", &self.home)
            .env_remove("KUBECONFIG")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env("NO_PROXY", "127.0.0.1")
            .stdin(Stdio::null());
        cmd
    }

    /// Run kubectl to completion (killed after a timeout), capturing output.
    pub fn run(&self, args: &[&str]) -> KOut {
        self.run_with_stdin(args, None)
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> KOut {
        let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let out_path = self.scratch.join(format!("{n}.out"));
        let err_path = self.scratch.join(format!("{n}.err"));
        let in_path = self.scratch.join(format!("{n}.in"));
        let mut cmd = self.command(args);
        cmd.stdout(File::create(&out_path).expect("stdout file")).stderr(File::create(&err_path).expect("stderr file"));
        if let Some(input) = stdin {
            fs::write(&in_path, input).expect("stdin file");
            cmd.stdin(File::open(&in_path).expect("stdin file"));
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run kubectl (is it on the PATH?): {e}"));
        let deadline = Instant::now() + KUBECTL_TIMEOUT;
        let status = loop {
            match child.try_wait().expect("wait for kubectl") {
                Some(s) => break Some(s),
                None if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        let stdout = fs::read_to_string(&out_path).unwrap_or_default();
        let mut stderr = fs::read_to_string(&err_path).unwrap_or_default();
        if status.is_none() {
            stderr.push_str(&format!("\n(killed by the test harness after {KUBECTL_TIMEOUT:?})"));
        }
        let _ = fs::remove_file(&out_path);
        let _ = fs::remove_file(&err_path);
        let _ = fs::remove_file(&in_path);
        KOut { args: args.iter().map(|s| s.to_string()).collect(), code: status.and_then(|s| s.code()), stdout, stderr }
    }

    /// Run and require exit code 0; returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.success(),
            "kubectl {:?} failed ({:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.args,
            out.code,
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    /// Run and require a non-zero exit; returns the output.
    #[track_caller]
    pub fn fails(&self, args: &[&str]) -> KOut {
        let out = self.run(args);
        assert!(
            !out.success(),
            "kubectl {:?} unexpectedly succeeded\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.args,
            out.stdout,
            out.stderr
        );
        out
    }

    /// Run with `-o json` appended and parse stdout.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("kubectl {a:?} printed invalid JSON: {e}\n{out}"))
    }

    /// Start a long-running kubectl (e.g. `get -w`) whose stdout lines arrive on a channel.
    pub fn spawn_lines(&self, args: &[&str]) -> LineStream {
        let err_path = self.scratch.join(format!(
            "stream-{}.err",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped()).stderr(File::create(&err_path).expect("stderr file"));
        let mut child = cmd.spawn().expect("spawn kubectl");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        LineStream { child, rx, err_path, seen: Vec::new() }
    }
}

/// A running kubectl whose stdout is read line by line. Killed (by PID) on drop.
pub struct LineStream {
    child: Child,
    rx: std::sync::mpsc::Receiver<String>,
    err_path: PathBuf,
    /// Every line received so far.
    pub seen: Vec<String>,
}

impl LineStream {
    /// Wait for a line satisfying `pred`; panics with everything seen after `timeout`.
    #[track_caller]
    pub fn wait_for(&mut self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "kubectl stream: no line {what} within {timeout:?}\n--- lines seen ---\n{}\n--- stderr ---\n{}",
                        self.seen.join("\n"),
                        fs::read_to_string(&self.err_path).unwrap_or_default()
                    );
                }
            }
        }
    }
}

impl LineStream {
    /// Everything received (before and during the call) until no line arrives for `quiet`,
    /// joined with newlines.
    pub fn drain(&mut self, quiet: Duration) -> String {
        while let Ok(line) = self.rx.recv_timeout(quiet) {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }
}

impl Drop for LineStream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// small helpers
// ---------------------------------------------------------------------------------------------

/// Decode a base64 field of a Secret's `data`.
pub fn b64(s: &Value) -> String {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(s.as_str().unwrap_or_else(|| panic!("not a string: {s}")))
        .unwrap_or_else(|e| panic!("not base64 ({e}): {s}"));
    String::from_utf8(raw).expect("utf-8 secret value")
}

/// Split a table printed by kubectl into rows of whitespace-separated cells (header first).
pub fn table_rows(out: &str) -> Vec<Vec<String>> {
    out.lines().filter(|l| !l.trim().is_empty()).map(|l| l.split_whitespace().map(str::to_string).collect()).collect()
}

/// Find the row whose column `col` equals `value`.
pub fn find_row<'a>(rows: &'a [Vec<String>], col: usize, value: &str) -> Option<&'a Vec<String>> {
    rows.iter().find(|r| r.get(col).map(String::as_str) == Some(value))
}

/// A minimal valid Pod.
pub fn pod(name: &str, labels: Value) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}
    })
}

/// A ConfigMap.
pub fn configmap(name: &str, labels: Value, data: Value) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": data
    })
}

/// A minimal valid Deployment.
pub fn deployment(name: &str, replicas: i64) -> Value {
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": "busybox:1.36", "command": ["sleep", "3600"]}]}
            }
        }
    })
}

/// A Namespace.
pub fn namespace(name: &str) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

// ---------------------------------------------------------------------------------------------
// watch streams, object helpers (added for the API-semantics tests)
// ---------------------------------------------------------------------------------------------

/// One message from a watch stream.
#[derive(Debug)]
enum WatchMsg {
    Line(String),
    End(Option<String>),
}

/// A watch stream read on a background thread: events (the parsed JSON lines) arrive with the
/// time they were received; the end of the stream is observed too.
pub struct Watch {
    pub path: String,
    pub status: u16,
    pub started: Instant,
    rx: std::sync::mpsc::Receiver<(WatchMsg, Instant)>,
    /// Every event received so far.
    pub events: Vec<Value>,
    /// When the server ended the stream (None while open); the error if it ended with one.
    pub ended: Option<(Instant, Option<String>)>,
}

impl Api {
    /// Open a watch (`path` must contain `watch=true` or be a `watch` URL). The request may stay
    /// open up to `max` before the client gives up. Panics on a transport error or a non-200.
    #[track_caller]
    pub fn watch(&self, path: &str, max: Duration) -> Watch {
        let started = Instant::now();
        let resp = self
            .request("GET", path)
            .timeout(max)
            .send()
            .unwrap_or_else(|e| panic!("watch {path}: transport error: {e:?}"));
        let status = resp.status().as_u16();
        if status != 200 {
            let body = resp.text().unwrap_or_default();
            panic!("watch {path}: expected 200, got {status}: {body}");
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut reader = std::io::BufReader::new(resp);
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) => {
                        let _ = tx.send((WatchMsg::End(None), Instant::now()));
                        break;
                    }
                    Ok(_) => {
                        if line.trim().is_empty() {
                            continue;
                        }
                        if tx.send((WatchMsg::Line(line), Instant::now())).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send((WatchMsg::End(Some(e.to_string())), Instant::now()));
                        break;
                    }
                }
            }
        });
        Watch { path: path.to_string(), status, started, rx, events: Vec::new(), ended: None }
    }
}

impl Watch {
    fn take(&mut self, msg: WatchMsg, at: Instant) -> Option<Value> {
        match msg {
            WatchMsg::Line(l) => {
                let v: Value = serde_json::from_str(&l)
                    .unwrap_or_else(|e| panic!("watch {}: event is not JSON ({e}): {l}", self.path));
                self.events.push(v.clone());
                Some(v)
            }
            WatchMsg::End(err) => {
                self.ended = Some((at, err));
                None
            }
        }
    }

    /// The next event, or None when the stream ended or nothing came within `timeout`.
    pub fn next_event(&mut self, timeout: Duration) -> Option<Value> {
        if self.ended.is_some() {
            return None;
        }
        match self.rx.recv_timeout(timeout) {
            Ok((msg, at)) => self.take(msg, at),
            Err(_) => None,
        }
    }

    /// Wait for an event satisfying `pred` (events before it are kept in `events`).
    #[track_caller]
    pub fn wait_for(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(left) {
                Some(e) if pred(&e) => return e,
                Some(_) => {}
                None => panic!(
                    "watch {}: no event {what} within {timeout:?} (ended: {:?})\n--- events ---\n{}",
                    self.path,
                    self.ended.as_ref().map(|(t, e)| (t.duration_since(self.started), e.clone())),
                    summarize_events(&self.events)
                ),
            }
        }
    }

    /// Read until the server ends the stream; panics if it is still open after `timeout`.
    /// Returns how long after the request the stream ended.
    #[track_caller]
    pub fn wait_end(&mut self, timeout: Duration) -> Duration {
        let deadline = Instant::now() + timeout;
        while self.ended.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "watch {}: still open {:?} after it started\n--- events ---\n{}",
                    self.path,
                    self.started.elapsed(),
                    summarize_events(&self.events)
                );
            }
            if let Ok((msg, at)) = self.rx.recv_timeout(left) {
                self.take(msg, at);
            }
        }
        self.ended.as_ref().unwrap().0.duration_since(self.started)
    }

    /// Read every event arriving within `window` (the stream may stay open).
    pub fn drain_for(&mut self, window: Duration) {
        let deadline = Instant::now() + window;
        while self.ended.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if let Ok((msg, at)) = self.rx.recv_timeout(left) {
                self.take(msg, at);
            }
        }
    }
}

/// `TYPE ns/name rv` per event, for failure messages.
pub fn summarize_events(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "{} {}/{} rv={} {}",
                e["type"].as_str().unwrap_or("?"),
                e["object"]["metadata"]["namespace"].as_str().unwrap_or(""),
                e["object"]["metadata"]["name"].as_str().unwrap_or(""),
                e["object"]["metadata"]["resourceVersion"].as_str().unwrap_or(""),
                if e["type"] == "ERROR" { e["object"].to_string() } else { String::new() }
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `metadata.resourceVersion` of an object (or list) as a number; panics when it is not a
/// numeric string.
#[track_caller]
pub fn rv_of(obj: &Value) -> u64 {
    let rv = obj["metadata"]["resourceVersion"].as_str().unwrap_or_else(|| panic!("no resourceVersion: {obj}"));
    rv.parse().unwrap_or_else(|_| panic!("resourceVersion {rv:?} is not a decimal integer"))
}

/// A Service with one TCP port (ClusterIP unless `extra_spec` says otherwise); `extra_spec` is
/// merged into `spec`.
pub fn service(name: &str, extra_spec: Value) -> Value {
    let mut spec = serde_json::json!({"selector": {"app": name}, "ports": [{"name": "http", "port": 80}]});
    if let (Some(s), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

pub mod lab;
