//! The container runtime interface the kubelet drives, shaped after the CRI (`RuntimeService` and
//! `ImageService`): pod sandboxes, containers, images, logs and exec, plus a stream of container
//! events (CRI's `GetContainerEvents`) so pod workers wake when a container changes instead of
//! polling.
//!
//! The trait is async and object-safe (`Arc<dyn Runtime>`): the hollow-node runtime ([`fake`]) and
//! the built-in Linux runtime (a later issue) sit behind it, chosen by [`factory`]. Networking is
//! the kubelet's: it allocates the pod IP from the node's podCIDR and hands it to the sandbox
//! ([`PodNetwork`]), the runtime wires it up. What a runtime applies on Linux (cgroups,
//! namespaces, security context, mounts, DNS) comes in CRI-shaped structs ([`linux_config`]).

pub mod factory;
pub mod fake;
pub mod image_ref;
pub mod linux;
pub mod linux_config;

pub use linux_config::*;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use jiff::Timestamp;

/// Label on a sandbox: the pod's name (as CRI runtimes label them).
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
/// Label on a sandbox: the pod's namespace.
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// Label on a sandbox: the pod's uid.
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
/// Label on a sandbox: the pod's restartPolicy (a runtime may use it to model workloads; the fake does).
pub const LABEL_RESTART_POLICY: &str = "skiff.io/restart-policy";
/// Label on a container: its name in the pod spec.
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Label on a container: `init` for an init container, `app` otherwise.
pub const LABEL_CONTAINER_TYPE: &str = "skiff.io/container-type";

pub type RuntimeResult<T> = Result<T, RuntimeError>;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("image {0} is not present")]
    ImageNotPresent(String),
    #[error("invalid image reference {reference:?}: {message}")]
    InvalidImage { reference: String, message: String },
    #[error("{0} is not supported by this runtime")]
    Unsupported(&'static str),
    #[error("{action} {id}: {message}")]
    Failed { action: &'static str, id: String, message: String },
}

/// Name and version of a runtime, as reported in `nodeInfo.containerRuntimeVersion` (`name://version`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeVersion {
    pub name: String,
    pub version: String,
}

/// Who a sandbox belongs to (CRI `PodSandboxMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxMetadata {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub attempt: u32,
}

/// The pod network the kubelet allocated for a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetwork {
    pub ip: IpAddr,
    pub prefix_len: u8,
    pub gateway: IpAddr,
}

/// What a sandbox is made from (CRI `PodSandboxConfig`).
#[derive(Debug, Clone, Default)]
pub struct PodSandboxConfig {
    pub metadata: Option<SandboxMetadata>,
    /// Empty for `hostNetwork` pods (they keep the node's).
    pub hostname: String,
    /// Where the containers' logs go (`<ns>_<name>_<uid>` under the node's log root).
    pub log_directory: Option<PathBuf>,
    /// The resolv.conf of the pod; None leaves the image's.
    pub dns_config: Option<DnsConfig>,
    /// The app containers' ports, for `hostPort` publishing.
    pub port_mappings: Vec<PortMapping>,
    /// None for `hostNetwork` pods.
    pub network: Option<PodNetwork>,
    pub labels: BTreeMap<String, String>,
    /// The pod's annotations, copied as CRI does.
    pub annotations: BTreeMap<String, String>,
    pub linux: LinuxPodSandboxConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxState {
    Ready,
    NotReady,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSandboxStatus {
    pub id: String,
    pub metadata: SandboxMetadata,
    pub state: SandboxState,
    pub created_at: Timestamp,
    pub ip: Option<IpAddr>,
    pub labels: BTreeMap<String, String>,
}

/// What a container is made from (CRI `ContainerConfig`).
#[derive(Debug, Clone, Default)]
pub struct ContainerConfig {
    pub name: String,
    /// How many times this container was restarted before (CRI `metadata.attempt`).
    pub attempt: u32,
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub working_dir: Option<String>,
    /// Resolved (`valueFrom`, `envFrom`) and expanded (`$(VAR)`), in order; names are unique.
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Relative to the sandbox's log directory.
    pub log_path: Option<PathBuf>,
    pub tty: bool,
    pub stdin: bool,
    /// Close stdin after the first attach ends.
    pub stdin_once: bool,
    pub linux: LinuxContainerConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Unknown,
}

/// A container as the runtime sees it (CRI `ContainerStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    pub id: String,
    pub sandbox_id: String,
    pub name: String,
    /// The attempt this container was created as: how many times its spec container was restarted.
    pub restart_count: u32,
    pub state: ContainerState,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub exit_code: Option<i32>,
    /// Why it exited, when the runtime knows better than the exit code (e.g. `OOMKilled`).
    pub reason: Option<String>,
    pub message: Option<String>,
    /// The image as requested.
    pub image: String,
    /// The resolved image: `name@sha256:<manifest digest>`.
    pub image_ref: String,
    pub labels: BTreeMap<String, String>,
}

/// Which containers [`Runtime::list_containers`] returns.
#[derive(Debug, Clone, Default)]
pub struct ContainerFilter {
    pub sandbox_id: Option<String>,
    pub state: Option<ContainerState>,
}

/// An image in the node's store (CRI `Image`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// `sha256:<config digest>`.
    pub id: String,
    pub repo_tags: Vec<String>,
    /// `name@sha256:<manifest digest>`.
    pub repo_digests: Vec<String>,
    pub size: u64,
}

/// Image GC thresholds, percent of the image filesystem's capacity
/// (`--image-gc-high-threshold` / `--image-gc-low-threshold`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageGcPolicy {
    pub high_percent: u8,
    pub low_percent: u8,
    /// How long an image stays after it is first seen, used or not (upstream's
    /// ImageMinimumGCAge, 2 min).
    pub min_age: Duration,
}

/// What one image GC pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageGcReport {
    /// The references removed.
    pub images: Vec<String>,
    pub blobs: usize,
    pub bytes: u64,
    pub layers: usize,
}

/// Registry credentials for a pull (from imagePullSecrets).
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub username: Option<String>,
    pub password: Option<String>,
    pub identity_token: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub tail_lines: Option<u64>,
    pub limit_bytes: Option<u64>,
    pub since: Option<Timestamp>,
    pub timestamps: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub command: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
}

/// Output of a command run to completion in a container (CRI `ExecSync`, used by exec probes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

/// A streaming exec session (CRI `Exec`), served by the kubelet to `kubectl exec`.
pub struct ExecSession {
    pub stdin: Option<Pin<Box<dyn tokio::io::AsyncWrite + Send>>>,
    pub stdout: Pin<Box<dyn tokio::io::AsyncRead + Send>>,
    /// None with a tty (stderr is merged into stdout).
    pub stderr: Option<Pin<Box<dyn tokio::io::AsyncRead + Send>>>,
    /// Terminal size changes (columns, rows).
    pub resize: Option<tokio::sync::mpsc::Sender<(u16, u16)>>,
    /// The command's exit code.
    pub exit: BoxFuture<'static, RuntimeResult<i32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerEventKind {
    Created,
    Started,
    Stopped,
    Deleted,
}

/// A container changed (CRI `ContainerEventResponse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    pub container_id: String,
    pub sandbox_id: String,
    /// The uid of the pod the sandbox belongs to, so the kubelet can route the event.
    pub pod_uid: String,
    pub kind: ContainerEventKind,
    pub at: Timestamp,
}

/// A CRI-shaped container runtime. Every method is idempotent where the CRI says so (stopping a
/// stopped container or removing a removed sandbox succeeds).
///
/// # Where forking work runs
///
/// The kubelet is a multi-threaded tokio process, and a runtime must never `fork` (nor `clone` a
/// process that does not exec at once) from it: the child of a multi-threaded process has one
/// thread, and every lock the other threads held at that instant (the allocator's, tracing's,
/// tokio's) stays locked forever, so until it execs it may only make async-signal-safe calls. Everything that
/// needs a forked process — creating or joining namespaces (`unshare`, `setns`), mounting the
/// rootfs, `pivot_root`, dropping capabilities, setting `no_new_privs`, and the final `exec` of
/// the container's process — runs in a hidden `skiff shim` subcommand, which the runtime starts
/// by fork+exec of `/proc/self/exe` (`std::process::Command` or `tokio::process::Command`:
/// they exec right after the fork). The shim is single-threaded, does the forking itself,
/// supervises the container, and outlives the kubelet so that a restarted kubelet can adopt the
/// pod (DESIGN §5). A runtime method, in the kubelet's process, only talks to shims (pipes,
/// sockets, state files under the data dir) and reads or writes files (cgroupfs, the image
/// store); it calls none of `fork`, `unshare`, `setns` or `pivot_root` itself.
pub trait Runtime: Send + Sync {
    fn version(&self) -> RuntimeVersion;

    /// Creates and starts a sandbox (the pod's shared namespaces and network); returns its id.
    fn run_pod_sandbox<'a>(&'a self, config: &'a PodSandboxConfig) -> BoxFuture<'a, RuntimeResult<String>>;
    /// Stops every container of the sandbox and tears its network down (idempotent).
    fn stop_pod_sandbox<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<()>>;
    /// Removes a stopped sandbox and its containers (idempotent).
    fn remove_pod_sandbox<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<()>>;
    fn pod_sandbox_status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<PodSandboxStatus>>;
    fn list_pod_sandboxes(&self) -> BoxFuture<'_, RuntimeResult<Vec<PodSandboxStatus>>>;

    /// Creates a container in a sandbox; returns its id.
    fn create_container<'a>(
        &'a self,
        sandbox_id: &'a str,
        config: &'a ContainerConfig,
        sandbox_config: &'a PodSandboxConfig,
    ) -> BoxFuture<'a, RuntimeResult<String>>;
    fn start_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<()>>;
    /// Stops a container: SIGTERM, then SIGKILL after `timeout` (idempotent).
    fn stop_container<'a>(&'a self, id: &'a str, timeout: Duration) -> BoxFuture<'a, RuntimeResult<()>>;
    fn remove_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<()>>;
    fn container_status<'a>(&'a self, id: &'a str) -> BoxFuture<'a, RuntimeResult<ContainerStatus>>;
    fn list_containers<'a>(&'a self, filter: &'a ContainerFilter)
        -> BoxFuture<'a, RuntimeResult<Vec<ContainerStatus>>>;

    /// Pulls an image; returns its reference `name@sha256:<manifest digest>`.
    fn pull_image<'a>(&'a self, image: &'a str, auth: Option<&'a AuthConfig>) -> BoxFuture<'a, RuntimeResult<String>>;
    /// The image if present in the node's store.
    fn image_status<'a>(&'a self, image: &'a str) -> BoxFuture<'a, RuntimeResult<Option<ImageInfo>>>;
    /// Every image in the node's store (CRI `ListImages`), for `status.images`.
    fn list_images(&self) -> BoxFuture<'_, RuntimeResult<Vec<ImageInfo>>>;

    /// Image GC: unused images by the thresholds (all of them with `reclaim_all`, under disk
    /// pressure), then what no image uses. Runtimes without a store have nothing to collect.
    fn collect_images(
        &self,
        _policy: ImageGcPolicy,
        _reclaim_all: bool,
    ) -> BoxFuture<'_, RuntimeResult<ImageGcReport>> {
        Box::pin(futures::future::ready(Ok(ImageGcReport::default())))
    }

    /// A container's log, as raw bytes in the CRI log format.
    fn container_logs<'a>(
        &'a self,
        id: &'a str,
        options: &'a LogOptions,
    ) -> BoxFuture<'a, RuntimeResult<BoxStream<'static, RuntimeResult<Vec<u8>>>>>;
    /// Runs a command to completion in a container.
    fn exec_sync<'a>(
        &'a self,
        id: &'a str,
        command: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, RuntimeResult<ExecOutput>>;
    /// Starts a streaming command in a container.
    fn exec<'a>(&'a self, id: &'a str, request: &'a ExecRequest) -> BoxFuture<'a, RuntimeResult<ExecSession>>;

    /// Attaches to a running container's streams (CRI `Attach`): its output from now on; the
    /// session ends when the container does. Runtimes that cannot attach say `Unsupported`.
    fn attach<'a>(&'a self, id: &'a str, request: &'a ExecRequest) -> BoxFuture<'a, RuntimeResult<ExecSession>> {
        let _ = (id, request);
        Box::pin(async { Err(RuntimeError::Unsupported("attach")) })
    }

    /// A TCP connection to `127.0.0.1:port` in the sandbox's network namespace (CRI
    /// `PortForward`), for `kubectl port-forward`.
    fn port_forward<'a>(
        &'a self,
        sandbox_id: &'a str,
        port: u16,
    ) -> BoxFuture<'a, RuntimeResult<tokio::net::TcpStream>> {
        let _ = (sandbox_id, port);
        Box::pin(async { Err(RuntimeError::Unsupported("port-forward")) })
    }

    /// Container lifecycle events from now on. Events may be dropped under pressure: a consumer
    /// must treat one as "look again", not as the full state.
    fn events(&self) -> BoxStream<'static, ContainerEvent>;
}
