//! `skiff shim pause`: the first process of a pod's shared pid namespace
//! (`shareProcessNamespace: true`), as upstream's pause container is. It holds the namespace
//! open for the pod's containers (they join it instead of getting one each) and reaps the
//! processes orphaned in it. It runs detached in a session of its own and reports
//! `{"ok":true,"pid":N,"pid_start":T}` (its pid seen from the node and its start time) on stdout;
//! the runtime ends it with SIGKILL (the only signal an ancestor namespace can force on a
//! namespace's init without a handler) when the sandbox stops.
//!
//! Its command line carries no path: every process of the pod sees it as pid 1.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, pipe2, setsid, ForkResult, Pid};
use serde::{Deserialize, Serialize};

use super::process_start_time;

/// What `skiff shim pause` prints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PauseReport {
    pub ok: bool,
    pub pid: Option<u32>,
    pub pid_start: Option<u64>,
    pub error: Option<String>,
}

fn failed(error: String) -> PauseReport {
    PauseReport { ok: false, pid: None, pid_start: None, error: Some(error) }
}

fn print(report: &PauseReport) {
    let line = serde_json::to_string(report).unwrap_or_else(|_| "{\"ok\":false}".into());
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

pub fn pause() -> i32 {
    let (report_r, report_w) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            print(&failed(format!("pipe: {e}")));
            return 1;
        }
    };
    // SAFETY: the shim is single-threaded.
    match unsafe { fork() } {
        Err(e) => {
            print(&failed(format!("fork: {e}")));
            1
        }
        Ok(ForkResult::Parent { .. }) => {
            drop(report_w);
            let mut text = String::new();
            let _ = File::from(report_r).read_to_string(&mut text);
            let report = serde_json::from_str::<PauseReport>(text.trim())
                .unwrap_or_else(|_| failed("the pause process ended before reporting".into()));
            print(&report);
            i32::from(!report.ok)
        }
        Ok(ForkResult::Child) => {
            drop(report_r);
            std::process::exit(detach(report_w))
        }
    }
}

/// In its own session with /dev/null as stdio, makes the pid namespace and forks its first
/// process; reports it and ends (the namespace's init lives on, reparented).
fn detach(report_w: OwnedFd) -> i32 {
    let _ = setsid();
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(null.as_fd());
        let _ = nix::unistd::dup2_stdout(null.as_fd());
        let _ = nix::unistd::dup2_stderr(null.as_fd());
    }
    let mut report = File::from(report_w);
    let mut send = |r: &PauseReport| {
        let _ = report.write_all(serde_json::to_string(r).unwrap_or_default().as_bytes());
    };
    if let Err(e) = unshare(CloneFlags::CLONE_NEWPID) {
        send(&failed(format!("unshare the pid namespace: {e}")));
        return 1;
    }
    // SAFETY: single-threaded.
    match unsafe { fork() } {
        Err(e) => {
            send(&failed(format!("fork the namespace's init: {e}")));
            1
        }
        Ok(ForkResult::Parent { child }) => {
            let pid = child.as_raw() as u32;
            send(&PauseReport { ok: true, pid: Some(pid), pid_start: process_start_time(pid), error: None });
            0
        }
        Ok(ForkResult::Child) => {
            drop(report);
            reap_forever()
        }
    }
}

/// Pid 1 of the pod: reaps whatever ends in the namespace, sleeping in between (SIGCHLD blocked
/// but for `sigsuspend`, so no exit is missed between a reap and the sleep).
fn reap_forever() -> ! {
    extern "C" fn on_child(_: libc::c_int) {}
    // SAFETY: an empty handler; single-threaded.
    let _ = unsafe { signal(Signal::SIGCHLD, SigHandler::Handler(on_child)) };
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&chld), None);
    loop {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        let _ = SigSet::empty().suspend();
    }
}
