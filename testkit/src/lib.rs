//! Test support shared by the components' integration tests (a dev-dependency only): a real
//! `skiff server` running just the API server, on a free loopback port in a temp dir, killed by
//! its PID when dropped — also when the test panics while the server is still starting.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use kube::Client;

/// The `skiff` binary: `$SKIFF_BIN` (scripts/test sets it), else the workspace's debug build.
pub fn skiff_bin() -> PathBuf {
    let path = std::env::var_os("SKIFF_BIN").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target").join("debug").join("skiff")
    });
    assert!(
        path.exists(),
        "no skiff binary at {}: build it first (`cargo build --bin skiff`) or set SKIFF_BIN",
        path.display()
    );
    path
}

/// Test logging at `default` level (`RUST_LOG` overrides); safe to call from every test.
pub fn init_tracing(default: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_test_writer()
        .try_init();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Kills the process it holds when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `skiff server` with its scheduler and controller-manager off, so only the component
/// under test acts. `client` carries the admin credential.
pub struct ApiServer {
    process: KillOnDrop,
    dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub client: Client,
}

impl ApiServer {
    /// Starts the server and waits (up to 60 s) until it lists namespaces.
    pub async fn start() -> ApiServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let child = Command::new(skiff_bin())
            .args([
                "server",
                "--bind-address",
                "127.0.0.1",
                "--disable-agent",
                "--disable",
                "scheduler,controller-manager",
            ])
            .arg("--port")
            .arg(free_port().to_string())
            .arg("--data-dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start skiff server");
        let process = KillOnDrop(child);
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if kubeconfig.exists() {
                if let Ok(client) = api::client::from_kubeconfig(&kubeconfig).await {
                    if Api::<Namespace>::all(client.clone()).list(&ListParams::default()).await.is_ok() {
                        return ApiServer { process, dir, kubeconfig, client };
                    }
                }
            }
            assert!(Instant::now() < deadline, "the API server did not answer within 60 s (log: {})", log_path(&dir));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server's data directory (a temp dir removed on drop); tests may put files here.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> u32 {
        self.process.0.id()
    }
}

fn log_path(dir: &tempfile::TempDir) -> String {
    dir.path().join("server.log").display().to_string()
}
