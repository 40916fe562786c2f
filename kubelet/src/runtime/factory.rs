//! Which runtime a node runs on: `--runtime linux|fake` (and `--data-dir`) → `Arc<dyn Runtime>`.
//! The one place that names the concrete runtimes; everything else holds `Arc<dyn Runtime>`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::fake::FakeRuntime;
use super::linux::registry::hosts::RegistriesFile;
use super::linux::runtime::LinuxRuntime;
use super::Runtime;

/// The runtimes `--runtime` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeKind {
    /// Real containers: the built-in Linux runtime.
    Linux,
    /// In-memory hollow nodes.
    Fake,
}

impl RuntimeKind {
    /// The flag value (`linux`, `fake`).
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Linux => "linux",
            RuntimeKind::Fake => "fake",
        }
    }
}

impl std::fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FactoryError {
    /// The Linux runtime could not open its state (data dir, cgroupfs, image store).
    #[error("the linux runtime cannot start: {0}")]
    Linux(String),
}

/// Where cgroupfs is mounted.
pub const CGROUP_MOUNT: &str = "/sys/fs/cgroup";
/// The shim is this very binary, run as `skiff shim` (still the right one if the file on disk
/// is replaced by an upgrade meanwhile).
const SELF_EXE: &str = "/proc/self/exe";

/// The runtime of each node, by node name (what [`crate::run_with_runtimes`] takes; tests use it
/// to hand a restarted kubelet the runtimes of the previous one).
pub type RuntimeFor<'a> = dyn Fn(&str) -> Result<Arc<dyn Runtime>, FactoryError> + Sync + 'a;

/// Makes the runtime of each node a process runs, from the flags.
#[derive(Debug, Clone)]
pub struct RuntimeFactory {
    kind: RuntimeKind,
    data_dir: PathBuf,
    fake_run_for: Duration,
    private_registry: Option<PathBuf>,
    /// Container log rotation (Linux runtime): max bytes (0: never), files kept.
    log_rotation: (u64, u32),
}

impl RuntimeFactory {
    /// `data_dir` is `--data-dir` (the Linux runtime keeps its state under `<data-dir>/agent/`;
    /// the fake keeps nothing on disk and ignores it); `fake_run_for` is how long a finite
    /// container of a hollow node runs (`--fake-pod-run-seconds`).
    pub fn new(kind: RuntimeKind, data_dir: &Path, fake_run_for: Duration) -> Self {
        RuntimeFactory {
            kind,
            data_dir: data_dir.to_path_buf(),
            fake_run_for,
            private_registry: None,
            log_rotation: (
                crate::runtime::linux::runtime::DEFAULT_LOG_MAX_SIZE,
                crate::runtime::linux::runtime::DEFAULT_LOG_MAX_FILES,
            ),
        }
    }

    /// `--container-log-max-size` (bytes) and `--container-log-max-files`.
    pub fn with_log_rotation(mut self, max_size: u64, max_files: u32) -> Self {
        self.log_rotation = (max_size, max_files);
        self
    }

    /// The registries config (`--private-registry`); default `<data-dir>/agent/registries.yaml`.
    pub fn with_private_registry(mut self, file: Option<PathBuf>) -> Self {
        self.private_registry = file;
        self
    }

    pub fn kind(&self) -> RuntimeKind {
        self.kind
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A new runtime for one node (each hollow node has its own in-memory runtime).
    pub fn create(&self) -> Result<Arc<dyn Runtime>, FactoryError> {
        match self.kind {
            RuntimeKind::Fake => Ok(Arc::new(FakeRuntime::new(self.fake_run_for))),
            RuntimeKind::Linux => {
                let agent = self.data_dir.join("agent");
                let file = self.private_registry.clone().unwrap_or_else(|| agent.join("registries.yaml"));
                let registries = RegistriesFile::load(&file).map_err(|e| FactoryError::Linux(e.to_string()))?;
                let rt = LinuxRuntime::open_with_registries(
                    &agent,
                    Path::new(CGROUP_MOUNT),
                    Path::new(SELF_EXE),
                    registries,
                )
                .map_err(|e| FactoryError::Linux(e.to_string()))?;
                rt.set_log_rotation(self.log_rotation.0, self.log_rotation.1);
                Ok(rt)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_runtimes_are_one_per_node_and_linux_needs_a_writable_data_dir() {
        let dir = Path::new("/nonexistent/skiff-data");
        let fake = RuntimeFactory::new(RuntimeKind::Fake, dir, Duration::from_secs(1));
        let rt = fake.create().expect("the fake runtime");
        assert_eq!(rt.version().name, "skiff-fake");
        // Each call is a separate node's runtime.
        let other = fake.create().expect("the fake runtime");
        assert!(!Arc::ptr_eq(&rt, &other));

        let file = tempfile::NamedTempFile::new().expect("tmp");
        let linux = RuntimeFactory::new(RuntimeKind::Linux, file.path(), Duration::from_secs(1));
        match linux.create() {
            Err(e @ FactoryError::Linux(_)) => assert!(e.to_string().contains("linux runtime cannot start"), "{e}"),
            Ok(_) => panic!("a data dir that is a file cannot hold the runtime's state"),
        }
    }
}
