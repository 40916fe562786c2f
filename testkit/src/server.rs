//! The one harness that starts a real `skiff server` for tests: a process on a free loopback
//! port with a temp dir of its own (data dir, log), ready once `/readyz` answers 200 on the
//! address its kubeconfig names, killed by its PID when dropped — also when the test panics,
//! in which case the tail of its log is printed.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::eventually::eventually_blocking;
use crate::kubeconfig::{https_client, read_kubeconfig, Creds};

/// How long a server may take to become ready (a first start generates a CA and opens the store).
pub const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The `skiff` binary: `$SKIFF_BIN`, else `debug/skiff` under `$CARGO_TARGET_DIR` or the
/// workspace's `target/`.
pub fn skiff_bin() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = std::env::var_os("SKIFF_BIN").map(PathBuf::from).unwrap_or_else(|| {
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), |t| workspace.join(t));
        target.join("debug").join("skiff")
    });
    assert!(
        path.exists(),
        "no skiff binary at {}: build it first (`cargo build --bin skiff`) or set SKIFF_BIN",
        path.display()
    );
    path
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// How to start a server. By default: [`skiff_bin`], the API server alone (`--disable-agent`,
/// `--disable scheduler,controller-manager`), so only what the test runs itself acts.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    bin: Option<PathBuf>,
    flags: Vec<String>,
    soft_nofile: Option<u64>,
}

impl ServerOptions {
    pub fn new() -> ServerOptions {
        ServerOptions::default()
    }

    /// Runs this binary instead of [`skiff_bin`] (the root package's tests pass
    /// `CARGO_BIN_EXE_skiff`).
    pub fn bin(mut self, path: impl Into<PathBuf>) -> ServerOptions {
        self.bin = Some(path.into());
        self
    }

    /// Extra `skiff server` flags (e.g. `--watch-history-seconds 2`). A `--disable` among them
    /// replaces the default `--disable scheduler,controller-manager`.
    pub fn flags<S: AsRef<str>>(mut self, flags: &[S]) -> ServerOptions {
        self.flags.extend(flags.iter().map(|s| s.as_ref().to_string()));
        self
    }

    /// The soft open-file limit the server process starts with (as under `ulimit -Sn`), its hard
    /// limit unchanged.
    pub fn soft_nofile(mut self, limit: u64) -> ServerOptions {
        self.soft_nofile = Some(limit);
        self
    }

    /// Starts the server and waits (blocking, up to [`READY_TIMEOUT`]) until it is ready.
    pub fn start(self) -> ServerProcess {
        ServerProcess::start_with(self)
    }
}

/// A running `skiff server` in its own temp dir (removed on drop).
pub struct ServerProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    data_dir: PathBuf,
    kubeconfig: PathBuf,
    log: PathBuf,
    port: u16,
    opts: ServerOptions,
    creds: Option<Creds>,
    /// Why the last readiness probe failed, for the failure report.
    last_probe: String,
}

impl ServerProcess {
    /// Starts a server with the default options; see [`ServerOptions::start`].
    pub fn start() -> ServerProcess {
        ServerOptions::new().start()
    }

    fn start_with(opts: ServerOptions) -> ServerProcess {
        let dir = tempfile::Builder::new().prefix("skiff-test-").tempdir().expect("create temp dir");
        let data_dir = dir.path().join("data");
        fs::create_dir_all(&data_dir).expect("create data dir");
        let mut server = ServerProcess {
            child: None,
            kubeconfig: data_dir.join("kubeconfig.yaml"),
            log: dir.path().join("server.log"),
            data_dir,
            dir,
            port: 0,
            opts,
            creds: None,
            last_probe: String::new(),
        };
        // A port picked by `free_port` can be taken by a parallel test before the server binds
        // it: try another port when the process exits during startup.
        let mut exits = Vec::new();
        for _ in 0..3 {
            server.port = free_port();
            match server.spawn_and_wait() {
                Ok(()) => return server,
                Err(e) => exits.push(format!("port {}: {e}", server.port)),
            }
        }
        panic!("skiff server did not start: {}", exits.join("; "));
    }

    /// Spawns the process on `self.port` and waits until it is ready; `Err` when it exits first.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = OpenOptions::new().create(true).append(true).open(&self.log).expect("open the server log");
        let bin = self.opts.bin.clone().unwrap_or_else(skiff_bin);
        let mut cmd = match self.opts.soft_nofile {
            // The shell lowers its soft limit and execs the server (same PID, same limit).
            Some(n) => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("ulimit -Sn {n} && exec \"$0\" \"$@\"")]).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        cmd.arg("server")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--bind-address", "127.0.0.1", "--port", &self.port.to_string(), "--disable-agent"])
            .args(&self.opts.flags);
        if !self.opts.flags.iter().any(|f| f == "--disable" || f.starts_with("--disable=")) {
            cmd.args(["--disable", "scheduler,controller-manager"]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone the log file")))
            .stderr(Stdio::from(log));
        self.creds = None;
        self.child = Some(cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display())));
        let ready = eventually_blocking("the skiff server to answer /readyz", READY_TIMEOUT, || self.probe());
        if ready.is_ok() {
            self.last_probe.clear();
        }
        ready
    }

    /// `Some(Ok)` once ready, `Some(Err)` when the process exited, `None` while starting.
    fn probe(&mut self) -> Option<Result<(), String>> {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(Err(format!("the server exited during startup with {status}")));
            }
        }
        match self.readyz() {
            Ok(()) => Some(Ok(())),
            Err(e) => {
                self.last_probe = e;
                None
            }
        }
    }

    fn readyz(&mut self) -> Result<(), String> {
        if self.creds.is_none() {
            if !self.kubeconfig.exists() {
                return Err("kubeconfig not written yet".into());
            }
            let creds = read_kubeconfig(&self.kubeconfig)?;
            if creds.server != self.url() {
                // Written by a previous start on another port: wait for the rewrite.
                return Err(format!("kubeconfig server is {}, expected {}", creds.server, self.url()));
            }
            self.creds = Some(creds);
        }
        let creds = self.creds.as_ref().expect("read above");
        let url = format!("{}/readyz", creds.server);
        let resp =
            https_client(&creds.ca_pem, Duration::from_secs(2)).get(&url).send().map_err(|e| format!("{url}: {e}"))?;
        match resp.status().as_u16() {
            200 => Ok(()),
            code => Err(format!("{url} answered {code}: {}", resp.text().unwrap_or_default())),
        }
    }

    /// The temp dir owned by this server (removed on drop); tests may put files here.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's `--data-dir` (inside [`ServerProcess::dir`]).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The admin kubeconfig the server writes into its data dir.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The server's stdout and stderr.
    pub fn log(&self) -> &Path {
        &self.log
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The credentials from the kubeconfig (valid while the server runs).
    pub fn creds(&self) -> &Creds {
        self.creds.as_ref().expect("the server is running")
    }

    /// PID of the running server process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the server process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// `kill -9` the server (by its PID) and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM (by PID) and waits up to `timeout` for the server to exit; returns its exit
    /// status. Panics if it does not exit in time (it is then killed on drop).
    #[track_caller]
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.pid().expect("the server is running");
        let sent = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("run kill -TERM");
        assert!(sent.success(), "kill -TERM {pid} failed: {sent}");
        let child = self.child.as_mut().expect("the server is running");
        let status = eventually_blocking(&format!("the server (pid {pid}) to exit after SIGTERM"), timeout, || {
            child.try_wait().expect("wait for the server")
        });
        self.child = None;
        self.creds = None;
        status
    }

    /// Starts the server again on the same data dir and port; panics if it does not come back.
    #[track_caller]
    pub fn restart(&mut self) {
        self.kill();
        // The old listener is gone with the process; binding can still race with TIME_WAIT on
        // some kernels, so allow a few attempts on the same port.
        let mut exits = Vec::new();
        for _ in 0..3 {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(e) => exits.push(e),
            }
        }
        panic!("the server did not come back on port {} after a restart: {}", self.port, exits.join("; "));
    }

    /// The last `n` lines of the server log.
    pub fn log_tail(&self, n: usize) -> String {
        tail_of_file(&self.log, n)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- skiff server log tail ({}) ---\n{}", self.log.display(), self.log_tail(60));
            if !self.last_probe.is_empty() {
                eprintln!("--- last readiness probe: {}", self.last_probe);
            }
        }
    }
}

/// The last `n` lines of a file (reads at most its last 64 KiB).
pub fn tail_of_file(path: &Path, n: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return format!("(no file {})", path.display());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
