//! `skiff shim run DIR`: start a container and supervise it (see the module docs of [`super`]).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{kill, signal, SigHandler, Signal};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, getpid, pipe2, setsid, ForkResult, Pid};

use super::attach::{self, Attach};
use super::logs::LineBuffer;
use super::{
    init, now_rfc3339, process_start_time, read_json, write_json, CriLogWriter, ExitRecord, ShimSpec, ShimState,
    StartReport, EXIT_FILE, SHIM_VERSION, SPEC_FILE, STATE_FILE,
};

/// How long the logs may keep flowing after the container's first process ended (from
/// processes that escaped its pid namespace's teardown, which should not exist).
const LOG_DRAIN: Duration = Duration::from_secs(2);

fn print_report(report: &StartReport) {
    let line = serde_json::to_string(report).unwrap_or_else(|_| "{\"ok\":false}".into());
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn fail(error: String) -> StartReport {
    StartReport { ok: false, pid: None, shim_pid: None, error: Some(error) }
}

pub fn run(dir: &Path) -> i32 {
    let spec: ShimSpec = match read_json(&dir.join(SPEC_FILE)) {
        Ok(s) => s,
        Err(e) => {
            print_report(&fail(format!("read {}: {e}", dir.join(SPEC_FILE).display())));
            return 1;
        }
    };
    if spec.version > SHIM_VERSION {
        print_report(&fail(format!("spec version {} is newer than this shim's {SHIM_VERSION}", spec.version)));
        return 1;
    }
    let (report_r, report_w) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            print_report(&fail(format!("pipe: {e}")));
            return 1;
        }
    };
    // SAFETY: this process is single-threaded (the shim runs before any runtime or thread starts).
    match unsafe { fork() } {
        Err(e) => {
            print_report(&fail(format!("fork the shim: {e}")));
            1
        }
        Ok(ForkResult::Parent { .. }) => {
            drop(report_w);
            let mut text = String::new();
            let _ = File::from(report_r).read_to_string(&mut text);
            let report = serde_json::from_str::<StartReport>(text.trim())
                .unwrap_or_else(|_| fail(format!("the shim ended before reporting (see {}/shim.log)", dir.display())));
            print_report(&report);
            i32::from(!report.ok)
        }
        Ok(ForkResult::Child) => {
            drop(report_r);
            let code = daemon(dir, &spec, report_w);
            std::process::exit(code);
        }
    }
}

/// The long-lived shim: its own session, stdio on `DIR/shim.log`.
fn daemon(dir: &Path, spec: &ShimSpec, report_w: OwnedFd) -> i32 {
    let _ = setsid();
    // SAFETY: setting signal dispositions to ignore in a single-threaded process.
    unsafe {
        let _ = signal(Signal::SIGPIPE, SigHandler::SigIgn);
        let _ = signal(Signal::SIGHUP, SigHandler::SigIgn);
    }
    if let Ok(log) = OpenOptions::new().create(true).append(true).open(dir.join("shim.log")) {
        let _ = nix::unistd::dup2_stdout(log.as_fd());
        let _ = nix::unistd::dup2_stderr(log.as_fd());
    }
    if let Ok(null) = File::open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(null.as_fd());
    }
    let mut report = File::from(report_w);
    let mut send = |r: &StartReport| {
        let line = serde_json::to_string(r).unwrap_or_default();
        let _ = report.write_all(line.as_bytes());
    };
    match start(dir, spec) {
        Err(error) => {
            eprintln!("{} start {}: {error}", now_rfc3339(), spec.id);
            let record = ExitRecord {
                version: SHIM_VERSION,
                exit_code: 128,
                signal: None,
                finished_at: now_rfc3339(),
                reason: Some("StartError".into()),
                message: Some(error.clone()),
            };
            let _ = write_json(&dir.join(EXIT_FILE), &record);
            send(&fail(error));
            1
        }
        Ok(started) => {
            // The state is on disk before the kubelet hears of the start, so that whatever it
            // reads next shows the container running.
            write_state(dir, spec, &started);
            send(&StartReport {
                ok: true,
                pid: Some(started.pid.as_raw() as u32),
                shim_pid: Some(getpid().as_raw() as u32),
                error: None,
            });
            drop(report);
            supervise(dir, spec, started)
        }
    }
}

struct Started {
    pid: Pid,
    /// The container's output: its stdout pipe (or its terminal), and its stderr pipe (none with
    /// a terminal).
    stdout: OwnedFd,
    stderr: Option<OwnedFd>,
    /// Our end of its stdin (a pipe, or the terminal) when it keeps one.
    stdin: Option<OwnedFd>,
    /// Its terminal, for window sizes.
    terminal: Option<OwnedFd>,
}

fn join_namespaces(spec: &ShimSpec) -> Result<(), String> {
    for (path, flag, what) in [
        (&spec.ipc_ns, CloneFlags::CLONE_NEWIPC, "ipc"),
        (&spec.uts_ns, CloneFlags::CLONE_NEWUTS, "uts"),
        (&spec.net_ns, CloneFlags::CLONE_NEWNET, "network"),
        (&spec.pid_ns, CloneFlags::CLONE_NEWPID, "pid"),
    ] {
        if let Some(p) = path {
            let f = File::open(p).map_err(|e| format!("open the pod's {what} namespace {}: {e}", p.display()))?;
            setns(f.as_fd(), flag).map_err(|e| format!("join the pod's {what} namespace: {e}"))?;
        }
    }
    if spec.pid_ns.is_none() {
        // The container's first process is the first of a new pid namespace.
        unshare(CloneFlags::CLONE_NEWPID).map_err(|e| format!("unshare the pid namespace: {e}"))?;
    }
    Ok(())
}

fn start(_dir: &Path, spec: &ShimSpec) -> Result<Started, String> {
    join_namespaces(spec)?;
    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"));
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (sync_r, sync_w) = pipe()?;
    let (fail_r, fail_w) = pipe()?;
    // With a terminal, its master is ours and its slave is the container's stdio; with stdin
    // alone, a pipe.
    // With a terminal, the container opens it from its own devpts once its root is in place and
    // hands the master to us over this socket (as runc's console socket).
    let console = if spec.tty {
        let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)
            .map_err(|e| format!("socketpair: {e}"))?;
        Some((ours, theirs))
    } else {
        None
    };
    let (stdin_r, stdin_w) =
        if spec.stdin && !spec.tty { pipe().map(|(r, w)| (Some(r), Some(w)))? } else { (None, None) };
    let null = File::open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?;
    // SAFETY: this process is single-threaded.
    match unsafe { fork() }.map_err(|e| format!("fork the container: {e}"))? {
        ForkResult::Child => {
            drop((out_r, err_r, sync_w, fail_r, stdin_w));
            let console = console.map(|(ours, theirs)| {
                drop(ours);
                theirs
            });
            if console.is_none() {
                let _ = nix::unistd::dup2_stdin(stdin_r.as_ref().map_or(null.as_fd(), |r| r.as_fd()));
                let _ = nix::unistd::dup2_stdout(out_w.as_fd());
                let _ = nix::unistd::dup2_stderr(err_w.as_fd());
            }
            drop((out_w, err_w, null, stdin_r));
            // Wait until the shim has put this process in its cgroups.
            let mut go = [0u8; 1];
            let mut sync = File::from(sync_r);
            if !matches!(sync.read(&mut go), Ok(1)) {
                std::process::exit(127);
            }
            let error = match &console {
                Some(sock) => init::setup_then_exec(spec, || terminal_from_inside(sock)),
                None => init::setup_and_exec(spec),
            };
            let _ = File::from(fail_w).write_all(error.as_bytes());
            // SAFETY: _exit ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => {
            drop((out_w, err_w, sync_r, fail_w, null, stdin_r));
            for procs in &spec.cgroup_procs {
                if let Err(e) = std::fs::write(procs, child.as_raw().to_string()) {
                    let _ = kill(child, Signal::SIGKILL);
                    let _ = waitpid(child, None);
                    return Err(format!("put the container in its cgroup {}: {e}", procs.display()));
                }
            }
            let mut sync = File::from(sync_w);
            if let Err(e) = sync.write_all(b"g") {
                let _ = kill(child, Signal::SIGKILL);
                let _ = waitpid(child, None);
                return Err(format!("release the container: {e}"));
            }
            drop(sync);
            let mut error = String::new();
            let _ = File::from(fail_r).read_to_string(&mut error);
            if !error.is_empty() {
                let _ = waitpid(child, None);
                return Err(error);
            }
            match console {
                Some((ours, theirs)) => {
                    drop(theirs);
                    let master = receive_fd(&ours).map_err(|e| format!("receive the container's terminal: {e}"))?;
                    let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| format!("dup the terminal: {e}"));
                    let (stdin, terminal) = (dup(&master)?, dup(&master)?);
                    let stdin = spec.stdin.then_some(stdin);
                    Ok(Started { pid: child, stdout: master, stderr: None, stdin, terminal: Some(terminal) })
                }
                None => Ok(Started { pid: child, stdout: out_r, stderr: Some(err_r), stdin: stdin_w, terminal: None }),
            }
        }
    }
}

/// In the container, its root in place: a terminal from its own devpts becomes its stdio and
/// controlling terminal; the master goes to the shim over `sock`.
fn terminal_from_inside(sock: &OwnedFd) -> Result<(), String> {
    let pty = nix::pty::openpty(None, None).map_err(|e| format!("open a terminal: {e}"))?;
    let fds = [pty.master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [std::io::IoSlice::new(b"t")];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(|e| format!("send the terminal to the shim: {e}"))?;
    drop(pty.master);
    setsid().map_err(|e| format!("setsid: {e}"))?;
    // SAFETY: TIOCSCTTY on the terminal this process just opened; no pointers.
    unsafe { libc::ioctl(pty.slave.as_fd().as_raw_fd(), libc::TIOCSCTTY, 0) };
    for dup in [nix::unistd::dup2_stdin, nix::unistd::dup2_stdout, nix::unistd::dup2_stderr] {
        dup(pty.slave.as_fd()).map_err(|e| format!("make the terminal its stdio: {e}"))?;
    }
    Ok(())
}

/// The one file descriptor sent over `sock` (SCM_RIGHTS).
fn receive_fd(sock: &OwnedFd) -> Result<OwnedFd, String> {
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(|e| e.to_string())?;
    for c in msg.cmsgs().map_err(|e| e.to_string())? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
                return Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
            }
        }
    }
    Err("no descriptor came".into())
}

/// Copies the container's output into its log until it has exited and its streams are closed
/// (or [`LOG_DRAIN`] after the exit); returns its exit code and signal.
fn pump(started: Started, writer: Option<&CriLogWriter>, mut attach: Option<Attach>) -> (i32, Option<i32>) {
    let pidfd = rustix::process::Pid::from_raw(started.pid.as_raw())
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    let mut streams: Vec<(File, LineBuffer)> = vec![(File::from(started.stdout), LineBuffer::new("stdout"))];
    if let Some(e) = started.stderr {
        streams.push((File::from(e), LineBuffer::new("stderr")));
    }
    let mut exit: Option<(i32, Option<i32>)> = None;
    let mut drain_until: Option<Instant> = None;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if exit.is_none() {
            exit = reap(started.pid, pidfd.is_none() && streams.is_empty());
            if exit.is_some() {
                drain_until = Some(Instant::now() + LOG_DRAIN);
            }
        }
        if let Some(code) = exit {
            let late = drain_until.is_some_and(|d| Instant::now() >= d);
            if streams.is_empty() || late {
                for (_, lines) in &mut streams {
                    if let Some(w) = writer {
                        let _ = lines.finish(w);
                    }
                }
                return code;
            }
        }
        let timeout = match (exit, drain_until) {
            (Some(_), Some(d)) => {
                PollTimeout::try_from(d.saturating_duration_since(Instant::now())).unwrap_or(PollTimeout::ZERO)
            }
            // Without a pidfd the exit is noticed by polling waitpid.
            _ if pidfd.is_none() => PollTimeout::from(200u16),
            _ => PollTimeout::NONE,
        };
        let mut fds: Vec<PollFd> = streams.iter().map(|(f, _)| PollFd::new(f.as_fd(), PollFlags::POLLIN)).collect();
        let watch_exit = exit.is_none() && pidfd.is_some();
        if let (true, Some(p)) = (watch_exit, &pidfd) {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        let attach_from = fds.len();
        if let Some(a) = &attach {
            fds.extend(a.fds().into_iter().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                eprintln!("{} poll: {e}", now_rfc3339());
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let all: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        let ready: Vec<bool> = all.iter().take(streams.len()).copied().collect();
        if let Some(a) = attach.as_mut() {
            a.ready(&all[attach_from.min(all.len())..]);
        }
        let mut closed = Vec::new();
        for (i, is_ready) in ready.into_iter().enumerate() {
            if !is_ready {
                continue;
            }
            let (file, lines) = &mut streams[i];
            match file.read(&mut buf) {
                Ok(0) => closed.push(i),
                Ok(n) => {
                    if let Some(a) = attach.as_mut() {
                        a.output(if lines.is_stderr() { attach::STDERR } else { attach::STDOUT }, &buf[..n]);
                    }
                    if let Some(w) = writer {
                        if let Err(e) = lines.feed(w, &buf[..n]) {
                            eprintln!("{} write the log: {e}", now_rfc3339());
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted || e.kind() == std::io::ErrorKind::WouldBlock => {
                }
                Err(_) => closed.push(i),
            }
        }
        for i in closed.into_iter().rev() {
            let (_, mut lines) = streams.remove(i);
            if let Some(w) = writer {
                let _ = lines.finish(w);
            }
        }
    }
}

/// The container's exit, if it has ended (`block`: wait for it).
fn reap(pid: Pid, block: bool) -> Option<(i32, Option<i32>)> {
    let flags = if block { None } else { Some(WaitPidFlag::WNOHANG) };
    loop {
        return match waitpid(pid, flags) {
            Ok(WaitStatus::Exited(_, code)) => Some((code, None)),
            Ok(WaitStatus::Signaled(_, sig, _)) => Some((128 + sig as i32, Some(sig as i32))),
            Ok(WaitStatus::StillAlive) => None,
            Ok(_) => None,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("{} wait for the container: {e}", now_rfc3339());
                Some((255, None))
            }
        };
    }
}

fn write_state(dir: &Path, spec: &ShimSpec, started: &Started) {
    let pid = started.pid.as_raw() as u32;
    let me = getpid().as_raw() as u32;
    let state = ShimState {
        version: SHIM_VERSION,
        pid,
        pid_start: process_start_time(pid).unwrap_or(0),
        shim_pid: me,
        shim_start: process_start_time(me).unwrap_or(0),
        started_at: now_rfc3339(),
    };
    if let Err(e) = write_json(&dir.join(STATE_FILE), &state) {
        eprintln!("{} write the state of {}: {e}", now_rfc3339(), spec.id);
    }
}

fn supervise(dir: &Path, spec: &ShimSpec, started: Started) -> i32 {
    // No threads here: after unsharing the pid namespace for its children, this process cannot
    // make any (clone with CLONE_THREAD fails), so one poll loop serves both streams and the exit.
    let writer = spec.log_path.as_ref().and_then(|p| {
        if let Some(parent) = p.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let rotation = super::logs::Rotation { max_size: spec.log_max_size, max_files: spec.log_max_files };
        match CriLogWriter::open(p, rotation) {
            Ok(w) => Some(w),
            Err(e) => {
                eprintln!("{} open the log {}: {e}", now_rfc3339(), p.display());
                None
            }
        }
    });
    // Attachable when it keeps its stdin or has a terminal: `attach.sock` in its directory
    // (this process's working directory from here on; the full path may not fit a socket name).
    let attach = if spec.stdin || spec.tty {
        let stdin = started.stdin.as_ref().and_then(|f| f.try_clone().ok());
        let terminal = started.terminal.as_ref().and_then(|f| f.try_clone().ok());
        match std::env::set_current_dir(dir).and_then(|()| Attach::listen(stdin, terminal, spec.stdin_once)) {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("{} listen on {}/{}: {e}", now_rfc3339(), dir.display(), attach::SOCKET);
                None
            }
        }
    } else {
        None
    };
    let mut started = started;
    // Only the attach side holds the container's stdin now (so that closing it there is EOF).
    started.stdin = None;
    let (exit_code, signal) = pump(started, writer.as_ref(), attach);
    let _ = std::fs::remove_file(dir.join(attach::SOCKET));
    let finished_at = now_rfc3339();
    let record = ExitRecord { version: SHIM_VERSION, exit_code, signal, finished_at, reason: None, message: None };
    if let Err(e) = write_json(&dir.join(EXIT_FILE), &record) {
        eprintln!("{} write the exit of {}: {e}", now_rfc3339(), spec.id);
        return 1;
    }
    0
}
