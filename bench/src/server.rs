//! A private `skiff server --disable-agent` for one benchmark run: a temp data dir, a free port
//! on 127.0.0.1, its log in the temp dir. Stopped by its own PID (SIGTERM, then SIGKILL) by
//! [`SkiffServer::stop`] or, on any early return, when dropped; the temp dir goes with it.

use std::fs::{self, File};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use tempfile::TempDir;

use crate::client::{read_kubeconfig, Api, Creds};

const READY_TIMEOUT: Duration = Duration::from_secs(90);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

pub struct SkiffServer {
    child: Option<Child>,
    pid: u32,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub creds: Creds,
    // Declared last: removed after `Drop::drop` has stopped the process.
    _tmp: TempDir,
}

/// Memory of the server process, from `/proc/<pid>/status`.
#[derive(Clone, Copy, Debug)]
pub struct Rss {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

impl Rss {
    pub fn describe(&self) -> String {
        format!("{:.1} MiB (peak so far {:.1} MiB)", self.rss_kib as f64 / 1024.0, self.hwm_kib as f64 / 1024.0)
    }
}

/// Size of a file: its length and the bytes its allocated blocks take on disk.
#[derive(Clone, Copy, Debug)]
pub struct FileSize {
    pub len: u64,
    pub allocated: u64,
}

impl FileSize {
    pub fn of(path: &Path) -> Result<FileSize> {
        let m = fs::metadata(path).with_context(|| format!("stat {}", path.display()))?;
        Ok(FileSize { len: m.len(), allocated: m.blocks() * 512 })
    }

    pub fn describe(&self) -> String {
        format!("{:.2} MiB (allocated on disk {:.2} MiB)", mib(self.len), mib(self.allocated))
    }
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl SkiffServer {
    /// Start `bin server` and wait until `/readyz` answers 200 (a few tries on a fresh port when
    /// the process exits during startup, e.g. because the port got taken).
    pub async fn start(bin: &Path) -> Result<SkiffServer> {
        Self::start_with(bin, None).await
    }

    /// A server that runs a real node (`node`: its flags, and an image tarball imported first)
    /// instead of `--disable-agent`. Needs root, inside a network namespace of the caller's.
    pub async fn start_with_node(bin: &Path, image: &Path, flags: &[String]) -> Result<SkiffServer> {
        Self::start_with(bin, Some((image, flags))).await
    }

    async fn start_with(bin: &Path, node: Option<(&Path, &[String])>) -> Result<SkiffServer> {
        if !bin.is_file() {
            bail!("skiff binary {} not found (build it with `cargo build --release --bin skiff`)", bin.display());
        }
        let mut last = anyhow!("no attempt");
        for _ in 0..3 {
            match Self::try_start(bin, node).await {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn try_start(bin: &Path, node: Option<(&Path, &[String])>) -> Result<SkiffServer> {
        let tmp = tempfile::Builder::new().prefix("skiff-bench-").tempdir().context("create temp dir")?;
        let data_dir = tmp.path().join("data");
        fs::create_dir_all(&data_dir).context("create data dir")?;
        let log = tmp.path().join("server.log");
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").context("bind an ephemeral port")?;
            l.local_addr().context("local addr")?.port()
        };
        let logf = File::create(&log).context("create server log")?;
        let agent: Vec<String> = match node {
            None => vec!["--disable-agent".into()],
            Some((image, flags)) => {
                let out = Command::new(bin)
                    .args(["images", "import", "--data-dir"])
                    .arg(&data_dir)
                    .arg(image)
                    .output()
                    .context("skiff images import")?;
                if !out.status.success() {
                    bail!("skiff images import: {}", String::from_utf8_lossy(&out.stderr));
                }
                flags.to_vec()
            }
        };
        let child = Command::new(bin)
            .arg("server")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--bind-address", "127.0.0.1", "--port", &port.to_string()])
            .args(&agent)
            .stdin(Stdio::null())
            .stdout(Stdio::from(logf.try_clone().context("dup log fd")?))
            .stderr(Stdio::from(logf))
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        let pid = child.id();
        let placeholder = Creds { server: String::new(), ca_pem: Vec::new(), token: String::new() };
        let mut s = SkiffServer { child: Some(child), pid, port, data_dir, log, creds: placeholder, _tmp: tmp };
        match s.wait_ready().await {
            Ok(()) => Ok(s),
            Err(e) => {
                let tail = s.log_tail(30);
                s.kill();
                Err(e.context(format!("server log tail:\n{tail}")))
            }
        }
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let kubeconfig = self.data_dir.join("kubeconfig.yaml");
        let expected = format!("https://127.0.0.1:{}", self.port);
        let mut last = String::from("kubeconfig not written yet");
        while Instant::now() < deadline {
            self.check_alive()?;
            if kubeconfig.exists() {
                match read_kubeconfig(&kubeconfig) {
                    Ok(c) if c.server == expected => {
                        let api = Api::new(&c, Some(Duration::from_secs(2)))?;
                        match api.get("/readyz").await {
                            Ok(r) if r.status == 200 => {
                                self.creds = c;
                                return Ok(());
                            }
                            Ok(r) => last = format!("/readyz answered {}: {}", r.status, r.message()),
                            Err(e) => last = format!("/readyz: {e}"),
                        }
                    }
                    Ok(c) => last = format!("kubeconfig server is {}, expected {expected}", c.server),
                    Err(e) => last = format!("{e:#}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("server not ready after {READY_TIMEOUT:?}: {last}")
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The embedded store file.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("server").join("store.redb")
    }

    /// Fails when the server process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait().context("wait for server")? {
                self.child = None;
                bail!("skiff server exited with {status}; log tail:\n{}", self.log_tail(30));
            }
            Ok(())
        } else {
            bail!("skiff server is not running")
        }
    }

    /// VmRSS and VmHWM of the server process.
    pub fn rss(&self) -> Result<Rss> {
        rss_of(self.pid)
    }

    /// The last `n` lines of the server's log.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log, n)
    }

    /// Stop the server gracefully (SIGTERM to its PID, SIGKILL after a timeout); returns how it exited.
    pub fn stop(&mut self) -> Result<String> {
        let Some(child) = self.child.take() else {
            return Ok("already exited".to_string());
        };
        crate::server::stop_gracefully(child, self.pid, "server")
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SkiffServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// VmRSS and VmHWM of process `pid`.
pub fn rss_of(pid: u32) -> Result<Rss> {
    let path = format!("/proc/{pid}/status");
    let text = fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    let field = |name: &str| -> Result<u64> {
        let line = text.lines().find(|l| l.starts_with(name)).ok_or_else(|| anyhow!("{name} missing from {path}"))?;
        let kib = line[name.len()..].trim().trim_end_matches("kB").trim();
        kib.parse::<u64>().with_context(|| format!("parse {name} {kib:?}"))
    };
    Ok(Rss { rss_kib: field("VmRSS:")?, hwm_kib: field("VmHWM:")? })
}

/// The last `n` lines of a log file.
fn tail(log: &Path, n: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(log) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A `skiff agent` (a real node, the built-in Linux runtime) beside a `--disable-agent` server,
/// with its own data dir: the kubelet measured apart from the control plane. Needs root, inside a
/// network namespace of the caller's. Stopped by its PID like the server.
pub struct NodeAgent {
    child: Option<Child>,
    pid: u32,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    _tmp: TempDir,
}

impl NodeAgent {
    /// Imports `image` into a new data dir and starts `bin agent` with `flags` against `server`.
    pub fn start(bin: &Path, server: &SkiffServer, image: &Path, flags: &[String]) -> Result<NodeAgent> {
        let tmp = tempfile::Builder::new().prefix("skiff-bench-agent-").tempdir().context("create temp dir")?;
        let data_dir = tmp.path().join("data");
        fs::create_dir_all(&data_dir).context("create data dir")?;
        let out = Command::new(bin)
            .args(["images", "import", "--data-dir"])
            .arg(&data_dir)
            .arg(image)
            .output()
            .context("skiff images import")?;
        if !out.status.success() {
            bail!("skiff images import: {}", String::from_utf8_lossy(&out.stderr));
        }
        let log = tmp.path().join("agent.log");
        let logf = File::create(&log).context("create agent log")?;
        let child = Command::new(bin)
            .arg("agent")
            .arg("--kubeconfig")
            .arg(server.data_dir.join("kubeconfig.yaml"))
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--runtime", "linux"])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::from(logf.try_clone().context("dup log fd")?))
            .stderr(Stdio::from(logf))
            .spawn()
            .with_context(|| format!("spawn {} agent", bin.display()))?;
        let pid = child.id();
        Ok(NodeAgent { child: Some(child), pid, data_dir, log, _tmp: tmp })
    }

    pub fn rss(&self) -> Result<Rss> {
        rss_of(self.pid)
    }

    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log, n)
    }

    /// Fails when the agent process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.as_mut() {
            Some(child) => {
                if let Some(status) = child.try_wait().context("wait for agent")? {
                    self.child = None;
                    bail!("skiff agent exited with {status}; log tail:\n{}", self.log_tail(30));
                }
                Ok(())
            }
            None => bail!("skiff agent is not running"),
        }
    }

    /// SIGTERM, then SIGKILL after a timeout; says how it exited.
    pub fn stop(&mut self) -> Result<String> {
        match self.child.take() {
            Some(child) => stop_gracefully(child, self.pid, "agent"),
            None => Ok("already exited".to_string()),
        }
    }
}

impl Drop for NodeAgent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Stops `child` gracefully: SIGTERM to `pid`, SIGKILL after 15 s; says how it exited. `what`
/// names the process in errors.
pub fn stop_gracefully(mut child: Child, pid: u32, what: &str) -> Result<String> {
    let sent = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while sent && Instant::now() < deadline {
        if let Some(status) = child.try_wait().with_context(|| format!("wait for {what}"))? {
            return Ok(format!("exited after SIGTERM with {status}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().with_context(|| format!("SIGKILL {what}"))?;
    let status = child.wait().with_context(|| format!("reap {what}"))?;
    Ok(format!("killed with SIGKILL ({status})"))
}
