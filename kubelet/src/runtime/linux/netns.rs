//! A pod's shared namespaces (network, UTS, IPC), pinned by bind mounts of their nsfs files
//! under the sandbox's directory, so they live without a process (as `ip netns add` and
//! containerd's pinned namespaces do) and every container of the pod joins them.
//!
//! Creating one needs `unshare`, which this multi-threaded process must not do on a thread that
//! goes on running other work: it happens on a short-lived dedicated thread (unsharing the
//! network, UTS and IPC namespaces affects only the calling thread; nothing forks), which pins
//! the new namespaces and ends. Opening a netlink socket inside a pod's network namespace works
//! the same way ([`in_netns`]).

use std::fs::{self, File};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// The pinned namespace files of one sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNamespaces {
    pub net: Option<PathBuf>,
    pub uts: Option<PathBuf>,
    pub ipc: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[error("{action}: {message}")]
pub struct NsError {
    pub action: String,
    pub message: String,
}

fn ns_err(action: impl Into<String>) -> impl FnOnce(nix::Error) -> NsError {
    let action = action.into();
    move |e| NsError { action, message: e.desc().to_string() }
}

fn io_ns_err(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> NsError {
    let action = action.into();
    move |e| NsError { action, message: e.to_string() }
}

/// Creates the namespaces of a sandbox and pins them in `dir` (`dir/net`, `dir/uts`, `dir/ipc`).
/// `hostname: None` is a host-network pod: it keeps the node's network and UTS namespaces.
pub fn create(dir: &Path, hostname: Option<&str>) -> Result<PodNamespaces, NsError> {
    fs::create_dir_all(dir).map_err(io_ns_err(format!("create {}", dir.display())))?;
    let dir = dir.to_path_buf();
    let hostname = hostname.map(str::to_string);
    std::thread::spawn(move || create_on_this_thread(&dir, hostname.as_deref()))
        .join()
        .unwrap_or_else(|_| Err(NsError { action: "create pod namespaces".into(), message: "thread panicked".into() }))
}

fn create_on_this_thread(dir: &Path, hostname: Option<&str>) -> Result<PodNamespaces, NsError> {
    let own_network = hostname.is_some();
    let mut flags = CloneFlags::CLONE_NEWIPC;
    if own_network {
        flags |= CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS;
    }
    unshare(flags).map_err(ns_err("unshare the pod's namespaces"))?;
    if let Some(h) = hostname {
        nix::unistd::sethostname(h).map_err(ns_err(format!("set the hostname {h}")))?;
    }
    let mut pinned = Vec::new();
    let mut pin = |name: &str| -> Result<PathBuf, NsError> {
        let target = dir.join(name);
        File::create(&target).map_err(io_ns_err(format!("create {}", target.display())))?;
        let source = format!("/proc/thread-self/ns/{name}");
        mount(Some(source.as_str()), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(ns_err(format!("pin the {name} namespace at {}", target.display())))?;
        pinned.push(target.clone());
        Ok(target)
    };
    let result = (|| {
        let ipc = pin("ipc")?;
        let (net, uts) = if own_network { (Some(pin("net")?), Some(pin("uts")?)) } else { (None, None) };
        Ok(PodNamespaces { net, uts, ipc })
    })();
    if result.is_err() {
        for p in &pinned {
            let _ = umount2(p, MntFlags::MNT_DETACH);
            let _ = fs::remove_file(p);
        }
    }
    result
}

/// Unpins whatever namespaces `dir` holds (idempotent); the namespaces end with their last user.
pub fn remove(dir: &Path) -> Result<(), NsError> {
    for name in ["net", "uts", "ipc"] {
        let p = dir.join(name);
        if !p.exists() {
            continue;
        }
        match umount2(&p, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(ns_err(format!("unpin {}", p.display()))(e)),
        }
        fs::remove_file(&p).map_err(io_ns_err(format!("remove {}", p.display())))?;
    }
    Ok(())
}

/// Runs `f` on a dedicated thread inside the network namespace pinned at `netns` (for opening
/// sockets there: a socket keeps the namespace it was made in).
pub fn in_netns<T: Send + 'static>(
    netns: &Path,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, NsError> {
    let file = File::open(netns).map_err(io_ns_err(format!("open {}", netns.display())))?;
    std::thread::spawn(move || {
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(ns_err("enter the pod's network namespace"))?;
        f().map_err(io_ns_err("in the pod's network namespace"))
    })
    .join()
    .unwrap_or_else(|_| {
        Err(NsError { action: "enter the pod's network namespace".into(), message: "thread panicked".into() })
    })
}
