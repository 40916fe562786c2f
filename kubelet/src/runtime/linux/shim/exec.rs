//! `skiff shim exec [--tty --resize FIFO] DIR -- CMD…`: run a command in a running container (as
//! `kubectl exec` and exec probes do): join its cgroups and namespaces — the mount namespace last,
//! which also makes its root ours — fork (the child enters the container's pid namespace), take
//! the container's user, capabilities, environment and working directory, and exec. Without
//! `--tty` stdio is the caller's; with it the command gets a terminal from the container's own
//! devpts, which this process relays to and from its stdin/stdout, applying the `COLS ROWS`
//! lines written to the FIFO as window sizes. The exit code is the command's, or 128 + the
//! signal that ended it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use nix::sched::{setns, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

use super::{init, process_alive, read_json, ShimSpec, ShimState, SPEC_FILE, STATE_FILE};

/// Exit code when the command could not be started (as `docker exec`/runc report).
const CANNOT_EXEC: i32 = 126;

/// How the command's terminal is set up.
#[derive(Debug, Default)]
pub struct Terminal {
    pub tty: bool,
    /// A FIFO of `COLS ROWS` lines (window sizes).
    pub resize: Option<std::path::PathBuf>,
}

pub fn exec(dir: &Path, command: &[String], terminal: &Terminal) -> i32 {
    // Opened before entering the container's mount namespace, where the path does not exist.
    let resize = terminal
        .resize
        .as_ref()
        .and_then(|p| std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(p).ok());
    match prepare(dir) {
        Err(e) => {
            eprintln!("skiff shim exec: {e}");
            CANNOT_EXEC
        }
        Ok(spec) if terminal.tty => match run_with_tty(spec, command, resize) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("skiff shim exec: {e}");
                CANNOT_EXEC
            }
        },
        Ok(spec) => run(spec, command),
    }
}

fn process_of(spec: &ShimSpec, command: &[String]) -> init::Process {
    init::Process {
        args: command.to_vec(),
        env: spec.env.clone(),
        cwd: spec.cwd.clone(),
        user: spec.user.clone(),
        capabilities: (!spec.privileged).then(|| spec.capabilities.clone()),
        no_new_privs: spec.no_new_privs,
    }
}

fn wait_code(child: nix::unistd::Pid) -> i32 {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("skiff shim exec: wait: {e}");
                return CANNOT_EXEC;
            }
        }
    }
}

/// Applies a `COLS ROWS` line to the terminal.
fn set_size(master: &impl AsFd, line: &str) {
    let mut it = line.split_whitespace().map(|n| n.parse::<u16>());
    if let (Some(Ok(cols)), Some(Ok(rows))) = (it.next(), it.next()) {
        let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
        unsafe { libc::ioctl(master.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
}

fn run_with_tty(spec: ShimSpec, command: &[String], resize: Option<File>) -> Result<i32, String> {
    let pty = nix::pty::openpty(None, None).map_err(|e| format!("open a terminal: {e}"))?;
    // SAFETY: the shim is single-threaded.
    let child = match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(pty.master);
            let _ = nix::unistd::setsid();
            // SAFETY: TIOCSCTTY on the terminal this process just got; no pointers.
            unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TIOCSCTTY, 0) };
            let _ = nix::unistd::dup2_stdin(&pty.slave);
            let _ = nix::unistd::dup2_stdout(&pty.slave);
            let _ = nix::unistd::dup2_stderr(&pty.slave);
            drop(pty.slave);
            let Err(e) = init::exec_process(&process_of(&spec, command));
            eprintln!("{e}");
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(CANNOT_EXEC) }
        }
        ForkResult::Parent { child } => child,
    };
    drop(pty.slave);
    let master = File::from(pty.master);
    let mut resize = resize;
    let mut stdin_open = true;
    let mut pending = String::new();
    let mut buf = vec![0u8; 16 * 1024];
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    loop {
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        if let Some(r) = &resize {
            fds.push(PollFd::new(r.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        if ready[0] {
            // EIO once the command (and everything holding the terminal) is gone.
            match (&master).read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if stdout.write_all(&buf[..n]).and_then(|_| stdout.flush()).is_err() {
                        break;
                    }
                }
            }
        }
        let mut i = 1;
        if stdin_open {
            if ready[i] {
                match stdin.lock().read(&mut buf) {
                    Ok(0) | Err(_) => stdin_open = false,
                    Ok(n) => {
                        let _ = (&master).write_all(&buf[..n]);
                    }
                }
            }
            i += 1;
        }
        if let Some(r) = resize.as_mut() {
            if ready.get(i) == Some(&true) {
                match r.read(&mut buf) {
                    Ok(0) => resize = None,
                    Ok(n) => {
                        pending.push_str(&String::from_utf8_lossy(&buf[..n]));
                        while let Some(nl) = pending.find('\n') {
                            let line: String = pending.drain(..=nl).collect();
                            set_size(&master, &line);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => resize = None,
                }
            }
        }
    }
    Ok(wait_code(child))
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
            let Err(e) = init::exec_process(&process_of(&spec, command));
            eprintln!("{e}");
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(CANNOT_EXEC) }
        }
        Ok(ForkResult::Parent { child }) => wait_code(child),
    }
}
