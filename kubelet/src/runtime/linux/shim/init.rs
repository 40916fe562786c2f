//! What the container's first process does between `fork` and `execve`, inside its new pid and
//! mount namespaces: assemble the root (overlayfs, /proc, /dev, /sys, mounts), `pivot_root`
//! into it, take its user, capabilities and working directory, and exec the entrypoint. Also
//! the parts `skiff shim exec` shares (user, capabilities, the exec itself).
//!
//! This runs in the child of the single-threaded shim, so it may allocate; errors are strings
//! the shim reports through the close-on-exec pipe.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{chdir, execve, pivot_root, setgroups, setresgid, setresuid, Gid, Uid};

use super::{MountKind, ShimSpec, UserSpec};

type Step<T = ()> = Result<T, String>;

fn ctx<E: std::fmt::Display>(what: impl FnOnce() -> String) -> impl FnOnce(E) -> String {
    move |e| format!("{}: {e}", what())
}

/// Sets the container up and execs it; returns only on failure.
pub fn setup_and_exec(spec: &ShimSpec) -> String {
    match setup(spec) {
        Err(e) => e,
        Ok(process) => match exec_process(&process) {
            Err(e) => e,
        },
    }
}

/// Like [`setup_and_exec`], running `before_exec` once the root is in place (where the
/// container's terminal is opened, from its own devpts).
pub fn setup_then_exec(spec: &ShimSpec, before_exec: impl FnOnce() -> Result<(), String>) -> String {
    match setup(spec).and_then(|p| before_exec().map(|()| p)) {
        Err(e) => e,
        Ok(process) => match exec_process(&process) {
            Err(e) => e,
        },
    }
}

/// The process to exec once the root is in place.
pub struct Process {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: UserSpec,
    pub capabilities: Option<Vec<String>>,
    pub no_new_privs: bool,
}

fn setup(spec: &ShimSpec) -> Step<Process> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(ctx(|| "unshare the mount namespace".into()))?;
    // Nothing mounted from here on may reach the host's mount namespace.
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(ctx(|| "make / private".into()))?;
    let root = &spec.rootfs;
    mount_overlay(spec)?;
    mount_proc(root)?;
    mount_dev(root, spec.privileged)?;
    mount_sys(root, spec.privileged)?;
    for m in &spec.mounts {
        let target = inside(root, &m.destination)?;
        match &m.kind {
            MountKind::Bind { source, recursive } => bind(Path::new(source), &target, *recursive, m.readonly)?,
            MountKind::Tmpfs { options } => {
                fs::create_dir_all(&target).map_err(ctx(|| format!("create {}", target.display())))?;
                let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
                if m.readonly {
                    flags |= MsFlags::MS_RDONLY;
                }
                mount(Some("tmpfs"), &target, Some("tmpfs"), flags, Some(options.as_str()))
                    .map_err(ctx(|| format!("mount a tmpfs on {}", m.destination)))?;
            }
        }
    }
    let cwd_inside = inside(root, &spec.cwd)?;
    if !cwd_inside.exists() {
        // As containerd does: a missing working directory is created.
        fs::create_dir_all(&cwd_inside).map_err(ctx(|| format!("create the working directory {}", spec.cwd)))?;
    }
    if spec.readonly_rootfs {
        mount(
            None::<&str>,
            root,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(ctx(|| "make the root read-only".into()))?;
    }
    chdir(root).map_err(ctx(|| format!("chdir {}", root.display())))?;
    pivot_root(".", ".").map_err(ctx(|| "pivot_root".into()))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(ctx(|| "detach the old root".into()))?;
    chdir("/").map_err(ctx(|| "chdir /".into()))?;
    for (key, value) in &spec.sysctls {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        fs::write(&path, value).map_err(ctx(|| format!("set sysctl {key}")))?;
    }
    if !spec.privileged {
        for p in &spec.masked_paths {
            mask(p)?;
        }
        for p in &spec.readonly_paths {
            make_readonly(p)?;
        }
    }
    fs::write("/proc/self/oom_score_adj", spec.oom_score_adj.to_string())
        .map_err(ctx(|| "set oom_score_adj".into()))?;
    Ok(Process {
        args: spec.args.clone(),
        env: spec.env.clone(),
        cwd: spec.cwd.clone(),
        user: spec.user.clone(),
        capabilities: (!spec.privileged).then(|| spec.capabilities.clone()),
        no_new_privs: spec.no_new_privs,
    })
}

/// `root` + an absolute container path (no `..`).
fn inside(root: &Path, path: &str) -> Step<PathBuf> {
    let rel = path.trim_start_matches('/');
    if !path.starts_with('/') || rel.split('/').any(|c| c == "..") {
        return Err(format!("{path:?} is not an absolute path inside the container"));
    }
    Ok(root.join(rel))
}

fn mount_overlay(spec: &ShimSpec) -> Step {
    let lower: Vec<String> = spec.lower_dirs.iter().map(|p| p.display().to_string()).collect();
    if lower.is_empty() {
        return Err("the image has no layers".into());
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        spec.upper_dir.display(),
        spec.work_dir.display()
    );
    mount(Some("overlay"), &spec.rootfs, Some("overlay"), MsFlags::empty(), Some(data.as_str()))
        .map_err(ctx(|| "mount the overlay root".into()))
}

fn mount_proc(root: &Path) -> Step {
    let target = root.join("proc");
    fs::create_dir_all(&target).map_err(ctx(|| "create /proc".into()))?;
    // This process is the new pid namespace's first: its /proc shows only the container.
    mount(
        Some("proc"),
        &target,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(ctx(|| "mount /proc".into()))
}

/// Devices every container gets (bind mounts of the host's nodes, as rootless-safe runtimes do).
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

fn mount_dev(root: &Path, privileged: bool) -> Step {
    let dev = root.join("dev");
    fs::create_dir_all(&dev).map_err(ctx(|| "create /dev".into()))?;
    if privileged {
        return bind(Path::new("/dev"), &dev, true, false);
    }
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )
    .map_err(ctx(|| "mount /dev".into()))?;
    for d in DEVICES {
        let target = dev.join(d);
        fs::write(&target, b"").map_err(ctx(|| format!("create /dev/{d}")))?;
        mount(Some(Path::new("/dev").join(d).as_path()), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(ctx(|| format!("bind /dev/{d}")))?;
    }
    let pts = dev.join("pts");
    fs::create_dir_all(&pts).map_err(ctx(|| "create /dev/pts".into()))?;
    mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )
    .map_err(ctx(|| "mount /dev/pts".into()))?;
    let shm = dev.join("shm");
    fs::create_dir_all(&shm).map_err(ctx(|| "create /dev/shm".into()))?;
    mount(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )
    .map_err(ctx(|| "mount /dev/shm".into()))?;
    let mqueue = dev.join("mqueue");
    fs::create_dir_all(&mqueue).map_err(ctx(|| "create /dev/mqueue".into()))?;
    // Best effort: a kernel without POSIX message queues still runs containers.
    let _ = mount(
        Some("mqueue"),
        &mqueue,
        Some("mqueue"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    );
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ] {
        symlink(to, dev.join(link)).map_err(ctx(|| format!("link /dev/{link}")))?;
    }
    Ok(())
}

fn mount_sys(root: &Path, privileged: bool) -> Step {
    let sys = root.join("sys");
    fs::create_dir_all(&sys).map_err(ctx(|| "create /sys".into()))?;
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if !privileged {
        flags |= MsFlags::MS_RDONLY;
    }
    match mount(Some("sysfs"), &sys, Some("sysfs"), flags, None::<&str>) {
        Ok(()) => Ok(()),
        // Not allowed in this network namespace (e.g. a host-network container): the host's, read-only.
        Err(_) => bind(Path::new("/sys"), &sys, true, !privileged),
    }
}

/// Bind-mounts `source` on `target` (created as a directory or an empty file, like the source).
fn bind(source: &Path, target: &Path, recursive: bool, readonly: bool) -> Step {
    let meta = fs::metadata(source).map_err(ctx(|| format!("mount source {}", source.display())))?;
    if meta.is_dir() {
        fs::create_dir_all(target).map_err(ctx(|| format!("create {}", target.display())))?;
    } else if !target.exists() {
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(ctx(|| format!("create {}", parent.display())))?;
        }
        fs::write(target, b"").map_err(ctx(|| format!("create {}", target.display())))?;
    }
    let mut flags = MsFlags::MS_BIND;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    mount(Some(source), target, None::<&str>, flags, None::<&str>)
        .map_err(ctx(|| format!("bind {} on {}", source.display(), target.display())))?;
    if readonly {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            None::<&str>,
        )
        .map_err(ctx(|| format!("make {} read-only", target.display())))?;
    }
    Ok(())
}

/// Hides a path: /dev/null over a file, an empty read-only tmpfs over a directory.
fn mask(path: &str) -> Step {
    match fs::metadata(path) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, None::<&str>)
            .map_err(ctx(|| format!("mask {path}"))),
        Ok(_) => mount(Some("/dev/null"), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(ctx(|| format!("mask {path}"))),
    }
}

fn make_readonly(path: &str) -> Step {
    if fs::metadata(path).is_err() {
        return Ok(());
    }
    mount(Some(path), path, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .map_err(ctx(|| format!("bind {path}")))?;
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(ctx(|| format!("make {path} read-only")))
}

/// The user, groups and home of `spec`, resolved against the container's /etc/passwd and /etc/group.
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: Option<String>,
}

pub fn resolve_user(spec: &UserSpec) -> Step<Identity> {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = fs::read_to_string("/etc/group").unwrap_or_default();
    resolve_user_in(spec, &passwd, &group)
}

/// [`resolve_user`] over the text of passwd and group files.
pub fn resolve_user_in(spec: &UserSpec, passwd: &str, group: &str) -> Step<Identity> {
    let entries: Vec<Vec<&str>> =
        passwd.lines().map(|l| l.split(':').collect()).filter(|f: &Vec<&str>| f.len() >= 7).collect();
    let groups: Vec<Vec<&str>> =
        group.lines().map(|l| l.split(':').collect()).filter(|f: &Vec<&str>| f.len() >= 4).collect();
    let (user_part, group_part) = match spec.user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec.user.as_str(), None),
    };
    let by_uid = |uid: u32| entries.iter().find(|e| e[2].parse::<u32>().ok() == Some(uid));
    let (mut uid, mut gid, mut home, mut name) = (0u32, 0u32, None, None::<String>);
    if !user_part.is_empty() {
        if let Ok(n) = user_part.parse::<u32>() {
            uid = n;
            if let Some(e) = by_uid(n) {
                gid = e[3].parse().unwrap_or(0);
                home = Some(e[5].to_string());
                name = Some(e[0].to_string());
            }
        } else {
            let e = entries
                .iter()
                .find(|e| e[0] == user_part)
                .ok_or_else(|| format!("unable to find user {user_part}: no matching entries in passwd file"))?;
            uid = e[2].parse().map_err(|_| format!("bad uid for user {user_part} in /etc/passwd"))?;
            gid = e[3].parse().unwrap_or(0);
            home = Some(e[5].to_string());
            name = Some(user_part.to_string());
        }
    } else if let Some(e) = by_uid(0) {
        home = Some(e[5].to_string());
        name = Some(e[0].to_string());
    }
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .iter()
                .find(|e| e[0] == g)
                .and_then(|e| e[2].parse().ok())
                .ok_or_else(|| format!("unable to find group {g}: no matching entries in group file"))?,
        };
    }
    if let Some(u) = spec.uid {
        if u != uid {
            uid = u;
            match by_uid(u) {
                Some(e) => {
                    gid = e[3].parse().unwrap_or(0);
                    home = Some(e[5].to_string());
                    name = Some(e[0].to_string());
                }
                None => {
                    gid = 0;
                    home = None;
                    name = None;
                }
            }
        }
    }
    if let Some(g) = spec.gid {
        gid = g;
    }
    let mut all = vec![gid];
    if let Some(n) = &name {
        for e in &groups {
            if e[3].split(',').any(|m| m == n) {
                if let Ok(g) = e[2].parse::<u32>() {
                    all.push(g);
                }
            }
        }
    }
    all.extend(spec.additional_gids.iter().copied());
    let mut seen = std::collections::BTreeSet::new();
    all.retain(|g| seen.insert(*g));
    Ok(Identity { uid, gid, groups: all, home })
}

/// Capability names in kernel order (`CAP_CHOWN` is 0).
pub const ALL_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The capability set a container gets unless its security context changes it (containerd's
/// default, which Kubernetes users expect).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// The bit mask of named capabilities (unknown names are an error).
pub fn capability_mask(names: &[String]) -> Step<u64> {
    let mut mask = 0u64;
    for n in names {
        let n = n.strip_prefix("CAP_").unwrap_or(n);
        let i = ALL_CAPABILITIES
            .iter()
            .position(|c| c.eq_ignore_ascii_case(n))
            .ok_or_else(|| format!("unknown capability {n:?}"))?;
        mask |= 1 << i;
    }
    Ok(mask)
}

fn last_cap() -> u64 {
    fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(ALL_CAPABILITIES.len() as u64 - 1)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn set_capabilities(mask: u64) -> Step {
    let header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let lo = (mask & 0xffff_ffff) as u32;
    let hi = (mask >> 32) as u32;
    let data = [
        CapData { effective: lo, permitted: lo, inheritable: lo },
        CapData { effective: hi, permitted: hi, inheritable: hi },
    ];
    // SAFETY: capset reads a v3 header and two data structs, both valid for the call.
    let r = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    if r != 0 {
        return Err(format!("capset: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Takes the identity and capabilities of `process` and execs it; returns only on failure.
pub fn exec_process(process: &Process) -> Step<std::convert::Infallible> {
    let id = resolve_user(&process.user)?;
    let mut env = process.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", id.home.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| "/".into())));
    }
    if let Some(keep) = &process.capabilities {
        let mask = capability_mask(keep)?;
        for cap in 0..=last_cap() {
            if mask & (1 << cap) == 0 {
                // SAFETY: prctl with integer arguments.
                let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
                if r != 0 {
                    return Err(format!("drop capability {cap}: {}", std::io::Error::last_os_error()));
                }
            }
        }
    }
    let groups: Vec<Gid> = id.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    setgroups(&groups).map_err(ctx(|| "setgroups".into()))?;
    setresgid(Gid::from_raw(id.gid), Gid::from_raw(id.gid), Gid::from_raw(id.gid)).map_err(ctx(|| "setgid".into()))?;
    setresuid(Uid::from_raw(id.uid), Uid::from_raw(id.uid), Uid::from_raw(id.uid)).map_err(ctx(|| "setuid".into()))?;
    if let Some(keep) = &process.capabilities {
        // A non-root user lost every capability at setuid; root keeps exactly the allowed ones.
        if id.uid == 0 {
            set_capabilities(capability_mask(keep)?)?;
        }
    }
    if process.no_new_privs {
        // SAFETY: prctl with integer arguments.
        let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        if r != 0 {
            return Err(format!("set no_new_privs: {}", std::io::Error::last_os_error()));
        }
    }
    chdir(process.cwd.as_str()).map_err(ctx(|| format!("chdir to the working directory {}", process.cwd)))?;
    let program = process.args.first().ok_or("no command to run: the image has no entrypoint or cmd")?;
    let path = find_program(program, &env)?;
    let to_c = |s: &str| CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"));
    let argv = process.args.iter().map(|a| to_c(a)).collect::<Step<Vec<_>>>()?;
    let envp = env.iter().map(|e| to_c(e)).collect::<Step<Vec<_>>>()?;
    let c_path = to_c(&path)?;
    match execve(&c_path, &argv, &envp) {
        Err(e) => Err(format!("exec {path:?}: {}", e.desc())),
    }
}

/// The executable `program` names: itself when it has a `/`, else the first match in `$PATH`.
fn find_program(program: &str, env: &[String]) -> Step<String> {
    if program.contains('/') {
        return Ok(program.to_string());
    }
    let path = env.iter().rev().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = format!("{}/{program}", dir.trim_end_matches('/'));
        if let Ok(m) = fs::metadata(&candidate) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(format!("exec: {program:?}: executable file not found in $PATH"))
}

/// The PATH a container gets when neither the image nor the pod sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nweb:x:1000:1000::/home/web:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:web\nnogroup:x:65534:\nweb:x:1000:\n";

    fn user(u: &str) -> UserSpec {
        UserSpec { user: u.into(), ..Default::default() }
    }

    #[test]
    fn resolves_users_as_runtimes_do() {
        let r = resolve_user_in(&user(""), PASSWD, GROUP).expect("root");
        assert_eq!((r.uid, r.gid, r.home.as_deref()), (0, 0, Some("/root")));
        let r = resolve_user_in(&user("web"), PASSWD, GROUP).expect("web");
        assert_eq!((r.uid, r.gid, r.groups.clone()), (1000, 1000, vec![1000, 10]));
        let r = resolve_user_in(&user("1000:nogroup"), PASSWD, GROUP).expect("uid:group");
        assert_eq!((r.uid, r.gid), (1000, 65534));
        let r = resolve_user_in(&user("4242"), PASSWD, GROUP).expect("unknown uid is fine");
        assert_eq!((r.uid, r.gid, r.home), (4242, 0, None));
        assert!(resolve_user_in(&user("ghost"), PASSWD, GROUP).is_err());
        // runAsUser / runAsGroup win over the image's user.
        let spec = UserSpec { user: "web".into(), uid: Some(65534), gid: Some(5), additional_gids: vec![7] };
        let r = resolve_user_in(&spec, PASSWD, GROUP).expect("runAs");
        assert_eq!((r.uid, r.gid, r.groups), (65534, 5, vec![5, 7]));
    }

    #[test]
    fn capability_masks() {
        let m = capability_mask(&["CHOWN".into(), "CAP_NET_ADMIN".into(), "bpf".into()]).expect("mask");
        assert_eq!(m, 1 | 1 << 12 | 1 << 39);
        assert!(capability_mask(&["NOPE".into()]).is_err());
        let defaults: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect();
        assert!(capability_mask(&defaults).is_ok());
    }

    #[test]
    fn paths_inside_the_root() {
        assert_eq!(inside(Path::new("/r"), "/etc/hosts").expect("ok"), PathBuf::from("/r/etc/hosts"));
        assert!(inside(Path::new("/r"), "etc").is_err());
        assert!(inside(Path::new("/r"), "/a/../../etc").is_err());
    }
}
