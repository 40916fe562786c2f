//! `skiff shim exec DIR -- CMD…`: run a command in a running container (as `kubectl exec` and exec
//! probes do): join its cgroups and namespaces — the mount namespace last, which also makes its
//! root ours — fork (the child enters the container's pid namespace), take the container's user,
//! capabilities, environment and working directory, and exec. Stdio is the caller's; the exit
//! code is the command's, or 128 + the signal that ended it.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use nix::sched::{setns, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

use super::{init, process_alive, read_json, ShimSpec, ShimState, SPEC_FILE, STATE_FILE};

/// Exit code when the command could not be started (as `docker exec`/runc report).
const CANNOT_EXEC: i32 = 126;

pub fn exec(dir: &Path, command: &[String]) -> i32 {
    match prepare(dir) {
        Err(e) => {
            eprintln!("skiff shim exec: {e}");
            CANNOT_EXEC
        }
        Ok(spec) => run(spec, command),
    }
}

fn prepare(dir: &Path) -> Result<ShimSpec, String> {
    let spec: ShimSpec = read_json(&dir.join(SPEC_FILE)).map_err(|e| format!("read the container's spec: {e}"))?;
    let state: ShimState = read_json(&dir.join(STATE_FILE)).map_err(|_| "the container is not running".to_string())?;
    if !process_alive(state.pid, state.pid_start) {
        return Err("the container is not running".into());
    }
    // Open every namespace first: /proc changes meaning once we are in the container's mounts.
    let ns = |name: &str| {
        File::open(format!("/proc/{}/ns/{name}", state.pid))
            .map_err(|e| format!("open the container's {name} namespace: {e}"))
    };
    let opened = [
        (ns("ipc")?, CloneFlags::CLONE_NEWIPC),
        (ns("uts")?, CloneFlags::CLONE_NEWUTS),
        (ns("net")?, CloneFlags::CLONE_NEWNET),
        (ns("pid")?, CloneFlags::CLONE_NEWPID),
        (ns("mnt")?, CloneFlags::CLONE_NEWNS),
    ];
    for procs in &spec.cgroup_procs {
        std::fs::write(procs, std::process::id().to_string())
            .map_err(|e| format!("join the container's cgroup {}: {e}", procs.display()))?;
    }
    for (file, flag) in &opened {
        setns(file.as_fd(), *flag).map_err(|e| format!("join the container's namespace ({flag:?}): {e}"))?;
    }
    Ok(spec)
}

fn run(spec: ShimSpec, command: &[String]) -> i32 {
    // SAFETY: the shim is single-threaded.
    match unsafe { fork() } {
        Err(e) => {
            eprintln!("skiff shim exec: fork: {e}");
            CANNOT_EXEC
        }
        Ok(ForkResult::Child) => {
            let process = init::Process {
                args: command.to_vec(),
                env: spec.env.clone(),
                cwd: spec.cwd.clone(),
                user: spec.user.clone(),
                capabilities: (!spec.privileged).then(|| spec.capabilities.clone()),
                no_new_privs: spec.no_new_privs,
            };
            let Err(e) = init::exec_process(&process);
            eprintln!("{e}");
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(CANNOT_EXEC) }
        }
        Ok(ForkResult::Parent { child }) => loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, code)) => return code,
                Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    eprintln!("skiff shim exec: wait: {e}");
                    return CANNOT_EXEC;
                }
            }
        },
    }
}
