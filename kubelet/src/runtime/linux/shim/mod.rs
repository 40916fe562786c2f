//! The hidden `skiff shim` subcommand: the single-threaded helper process that does everything a
//! container needs a fork for (see [`crate::runtime::Runtime`] on where forking work runs).
//!
//! - `skiff shim run DIR` starts the container described by `DIR/spec.json` and supervises it:
//!   the process the kubelet spawns (the *front*) forks a daemon in its own session and waits for
//!   its one-line [`StartReport`] on a pipe, prints it and exits; the daemon joins the pod's
//!   namespaces, forks the container (new pid and mount namespaces), holds it on a pipe until it
//!   is in its cgroups, learns through a close-on-exec pipe whether `execve` worked, writes
//!   `DIR/state.json`, copies the container's stdout/stderr into its log in the CRI format,
//!   waits for it and writes `DIR/exit.json`. The daemon outlives the kubelet, so a restarted
//!   kubelet adopts running containers from these files.
//! - `skiff shim exec DIR -- CMD…` runs a command inside the running container of `DIR`
//!   (its namespaces, root, cgroups, user and environment), with the caller's stdio; it exits
//!   with the command's exit code (128 + signal when killed).
//!
//! Every file carries [`SHIM_VERSION`]; a kubelet adopts what a shim of the same or an older
//! version wrote.

pub mod attach;
mod exec;
mod init;
pub mod logs;
pub mod pause;
mod run;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use init::{ALL_CAPABILITIES, DEFAULT_CAPABILITIES, DEFAULT_PATH};
pub use logs::{cri_line, CriLogWriter};

/// The `PATH` a container gets when neither its image nor its pod sets one.
pub const DEFAULT_PATH_ENV: &str = DEFAULT_PATH;

/// The version of the files the shim and the kubelet exchange. Bump it when they change in a
/// way an older reader cannot take; keep reading the older ones.
pub const SHIM_VERSION: u32 = 1;

pub const SPEC_FILE: &str = "spec.json";
pub const STATE_FILE: &str = "state.json";
pub const EXIT_FILE: &str = "exit.json";

/// A mount into the container's root.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountSpec {
    /// Absolute path inside the container.
    pub destination: String,
    pub kind: MountKind,
    pub readonly: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum MountKind {
    /// A bind mount of a host path (file or directory).
    Bind { source: String, recursive: bool },
    /// A tmpfs with these options (`size=…`, `mode=…`).
    Tmpfs { options: String },
}

/// Who the container's process runs as. `user` is the image's `User` or the pod's runAsUser,
/// resolved inside the container against its `/etc/passwd` and `/etc/group`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserSpec {
    /// `uid`, `name`, `uid:gid`, `name:group` or empty (root).
    pub user: String,
    /// runAsUser / runAsGroup, which win over `user`.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub additional_gids: Vec<u32>,
}

/// Everything the shim needs to start a container: written by the kubelet to `DIR/spec.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShimSpec {
    pub version: u32,
    pub id: String,
    /// Image layer directories, top first (overlayfs `lowerdir`).
    pub lower_dirs: Vec<PathBuf>,
    pub upper_dir: PathBuf,
    pub work_dir: PathBuf,
    /// Where the root is assembled (an empty directory).
    pub rootfs: PathBuf,
    pub readonly_rootfs: bool,
    /// Pinned namespaces of the pod to join (`net`, `uts`, `ipc`); absent: the host's.
    pub net_ns: Option<PathBuf>,
    pub uts_ns: Option<PathBuf>,
    pub ipc_ns: Option<PathBuf>,
    /// Join this pid namespace (a shared process namespace) instead of making a new one.
    pub pid_ns: Option<PathBuf>,
    pub hostname: String,
    /// The process: resolved entrypoint + arguments, environment, working directory.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: UserSpec,
    pub mounts: Vec<MountSpec>,
    /// `cgroup.procs` files to put the container's process in before it runs.
    pub cgroup_procs: Vec<PathBuf>,
    /// The CRI log file.
    pub log_path: Option<PathBuf>,
    pub privileged: bool,
    pub no_new_privs: bool,
    /// Capabilities kept (names without `CAP_`); ignored when privileged.
    pub capabilities: Vec<String>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    pub oom_score_adj: i64,
    /// Namespaced sysctls to set in the container (`net.*` apply to the pod's network namespace).
    pub sysctls: Vec<(String, String)>,
    /// Keep the container's stdin open for attaching clients (`stdin: true`).
    #[serde(default)]
    pub stdin: bool,
    /// Close it when the first client that used it detaches.
    #[serde(default)]
    pub stdin_once: bool,
    /// Give it a terminal as stdin, stdout and stderr.
    #[serde(default)]
    pub tty: bool,
    /// Rotate the log past this many bytes (0: never).
    #[serde(default)]
    pub log_max_size: u64,
    /// Log files kept, the current one included.
    #[serde(default)]
    pub log_max_files: u32,
}

/// What the front process prints on its stdout: the container started, or why not.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StartReport {
    pub ok: bool,
    pub pid: Option<u32>,
    pub shim_pid: Option<u32>,
    pub error: Option<String>,
}

/// `DIR/state.json`, written by the daemon once the container's process runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShimState {
    pub version: u32,
    /// The container's first process (host pid).
    pub pid: u32,
    /// Its start time in clock ticks since boot (`/proc/PID/stat` field 22): tells a reused pid.
    pub pid_start: u64,
    pub shim_pid: u32,
    pub shim_start: u64,
    /// RFC 3339 with nanoseconds.
    pub started_at: String,
}

/// `DIR/exit.json`, written by the daemon when the container's process ended (or never started).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExitRecord {
    pub version: u32,
    pub exit_code: i32,
    /// The signal that ended it, if any (the exit code is then 128 + signal).
    pub signal: Option<i32>,
    pub finished_at: String,
    /// Set when the process never ran (`StartError`, with the reason in `message`).
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// `skiff shim …`: runs in its own single-threaded process; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    match args {
        [cmd, dir] if cmd == "run" => run::run(Path::new(dir)),
        [cmd] if cmd == "pause" => pause::pause(),
        [cmd, rest @ ..] if cmd == "exec" => {
            let mut terminal = exec::Terminal::default();
            let mut rest = rest;
            loop {
                match rest {
                    [flag, tail @ ..] if flag == "--tty" => {
                        terminal.tty = true;
                        rest = tail;
                    }
                    [flag, path, tail @ ..] if flag == "--resize" => {
                        terminal.resize = Some(path.into());
                        rest = tail;
                    }
                    _ => break,
                }
            }
            match rest {
                [dir, sep, command @ ..] if sep == "--" && !command.is_empty() => {
                    exec::exec(Path::new(dir), command, &terminal)
                }
                _ => usage(),
            }
        }
        _ => usage(),
    }
}

fn usage() -> i32 {
    eprintln!(
        "usage: skiff shim run DIR | skiff shim pause | skiff shim exec [--tty] [--resize FIFO] DIR -- COMMAND..."
    );
    2
}

/// Reads a JSON file written by the shim or the kubelet.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> std::io::Result<T> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Writes a JSON file atomically (temp file, fsync, rename).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    use std::io::Write;
    let bytes = serde_json::to_vec(value).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// A process's start time in clock ticks since boot (`/proc/PID/stat` field 22), or None if it
/// does not exist.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: count after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is still the process that started at `start` (and not a zombie).
pub fn process_alive(pid: u32, start: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let Some(close) = stat.rfind(')') else { return false };
    let mut fields = stat[close + 1..].split_whitespace();
    let state = fields.next().unwrap_or("X");
    let started = fields.nth(18).and_then(|s| s.parse::<u64>().ok());
    state != "Z" && state != "X" && started == Some(start)
}

/// Now, as RFC 3339 with nanoseconds (the CRI log format's timestamps).
pub fn now_rfc3339() -> String {
    rfc3339_nanos(jiff::Timestamp::now())
}

/// A timestamp as RFC 3339 in UTC with all nine fraction digits (`2026-12-02T16:30:00.000000001Z`).
pub fn rfc3339_nanos(t: jiff::Timestamp) -> String {
    format!("{}.{:09}Z", t.strftime("%Y-%m-%dT%H:%M:%S"), t.subsec_nanosecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_this_process_is_stable_and_alive() {
        let pid = std::process::id();
        let t = process_start_time(pid).expect("own stat");
        assert_eq!(process_start_time(pid), Some(t));
        assert!(process_alive(pid, t));
        assert!(!process_alive(pid, t + 1), "another start time is another process");
        assert!(!process_alive(u32::MAX - 1, t));
    }

    #[test]
    fn json_files_round_trip_atomically() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join(EXIT_FILE);
        let rec = ExitRecord {
            version: SHIM_VERSION,
            exit_code: 137,
            signal: Some(9),
            finished_at: now_rfc3339(),
            reason: None,
            message: None,
        };
        write_json(&p, &rec).expect("write");
        assert_eq!(read_json::<ExitRecord>(&p).expect("read"), rec);
        assert!(!p.with_extension("tmp").exists());
    }

    #[test]
    fn usage_errors_exit_2() {
        assert_eq!(main(&["bogus".to_string()]), 2);
        assert_eq!(main(&["exec".into(), "/x".into(), "--".into()]), 2);
    }
}
