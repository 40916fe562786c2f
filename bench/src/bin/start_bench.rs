//! The container start path alone, side by side with Debian's `runc` and `crun`: skiff's Linux
//! runtime (create + start of a `sleep` container in an existing pod sandbox, through the shim,
//! with its overlay root over the image layer) against `runc run -d` / `crun run -d` on a bundle
//! whose root is the same busybox. Each round starts one container with each, in turn, and
//! removes them untimed. Prints p50/p90/mean per runtime.
//!
//! The three share the conditions: the node's network namespace (no network namespace of their
//! own; skiff's pod network is made by the sandbox, not per container), new pid, mount, ipc and
//! uts namespaces (skiff's ipc and uts come from the sandbox), cgroups v1. crun reads the v2
//! tree of this hybrid host when it sees one, so the bench runs in a mount namespace of its own
//! with `/sys/fs/cgroup/unified` unmounted (for all three).
//!
//! Then the other half of a pod's start, for comparison: a pod sandbox with its network (new
//! network, uts and ipc namespaces; a veth into the `skiff0` bridge, address and route), made
//! `--rounds` times, then removed.
//!
//! Usage (as root, inside a network namespace you made, from the repository root):
//! `ip netns exec NS target/release/start_bench [--skiff PATH] [--rounds N]` (bench/README.md).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use bench::stats::{describe, summarize};
use kubelet::runtime::linux::images::ImageStore;
use kubelet::runtime::linux::runtime::LinuxRuntime;
use kubelet::runtime::{ContainerConfig, NamespaceMode, PodNetwork, PodSandboxConfig, Runtime, SandboxMetadata};

const USAGE: &str = "usage: start_bench [--skiff PATH (default target/release/skiff)] [--rounds N (default 50)]";
const IMAGE: &str = "localhost/busybox:1.36";
const CGROUP_ROOT: &str = "skiff-start-bench";

struct Config {
    skiff: PathBuf,
    rounds: usize,
}

fn parse_args() -> Result<Config> {
    let mut cfg = Config { skiff: PathBuf::from("target/release/skiff"), rounds: 50 };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--skiff" => cfg.skiff = PathBuf::from(args.next().context("--skiff needs a path")?),
            "--rounds" => {
                let n = args.next().context("--rounds needs a count")?;
                cfg.rounds = n.parse().with_context(|| format!("--rounds {n:?} is not a count"))?;
                if cfg.rounds == 0 || cfg.rounds > 1000 {
                    bail!("--rounds must be between 1 and 1000");
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(cfg)
}

/// A mount namespace of this process's own, without the cgroup v2 tree of a hybrid host.
/// Before any thread starts (unshare(CLONE_NEWNS) needs a single-threaded process).
fn private_mounts() -> Result<()> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).context("unshare a mount namespace (needs root)")?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .context("make / private")?;
    let unified = Path::new("/sys/fs/cgroup/unified");
    if unified.exists() {
        let _ = umount2(unified, MntFlags::MNT_DETACH);
    }
    Ok(())
}

/// A runc/crun bundle: busybox as the root, `sleep 3600`, no network namespace.
fn make_bundle(dir: &Path) -> Result<()> {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(d))?;
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).context("copy /bin/busybox (busybox-static)")?;
    for link in ["sh", "sleep"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(link))?;
    }
    let out =
        Command::new("runc").args(["spec", "--bundle"]).arg(dir).output().context("runc spec (apt install runc)")?;
    if !out.status.success() {
        bail!("runc spec: {}", String::from_utf8_lossy(&out.stderr));
    }
    let path = dir.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["sleep", "3600"]);
    spec["root"]["readonly"] = false.into();
    if let Some(ns) = spec["linux"]["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "network");
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&spec)?)?;
    Ok(())
}

/// `TOOL run -d` of one container in `bundle` (timed), then its removal (untimed).
fn oci_start(tool: &str, bundle: &Path, id: &str) -> Result<Duration> {
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(bundle.join("config.json"))?)?;
    spec["linux"]["cgroupsPath"] = format!("/{CGROUP_ROOT}/{id}").into();
    std::fs::write(bundle.join("config.json"), serde_json::to_vec(&spec)?)?;
    let t0 = Instant::now();
    let status = Command::new(tool)
        .args(["run", "-d", "--bundle"])
        .arg(bundle)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .with_context(|| format!("{tool} run (apt install {tool})"))?;
    let took = t0.elapsed();
    if !status.success() {
        bail!("{tool} run -d {id}: {status}");
    }
    let deleted = Command::new(tool).args(["delete", "-f", id]).stdout(Stdio::null()).status()?;
    if !deleted.success() {
        bail!("{tool} delete -f {id}: {deleted}");
    }
    Ok(took)
}

fn container(n: usize) -> ContainerConfig {
    let mut c = ContainerConfig {
        name: format!("c{n}"),
        image: IMAGE.into(),
        command: vec!["sleep".into(), "3600".into()],
        ..Default::default()
    };
    // A pid namespace of its own, as a pod's container without shareProcessNamespace (and runc's).
    c.linux.security_context.namespace_options.pid = NamespaceMode::Container;
    c
}

async fn skiff_start(rt: &Arc<LinuxRuntime>, sandbox: &str, sb: &PodSandboxConfig, n: usize) -> Result<Duration> {
    let config = container(n);
    let t0 = Instant::now();
    let id = rt.create_container(sandbox, &config, sb).await?;
    rt.start_container(&id).await?;
    let took = t0.elapsed();
    rt.stop_container(&id, Duration::ZERO).await?;
    rt.remove_container(&id).await?;
    Ok(took)
}

async fn run(cfg: &Config) -> Result<()> {
    let skiff =
        std::fs::canonicalize(&cfg.skiff).with_context(|| format!("{} (build it first)", cfg.skiff.display()))?;
    let tmp = tempfile::tempdir().context("temp dir")?;
    let tar = tmp.path().join("busybox.tar");
    let built = Command::new("scripts/busybox-image")
        .arg(&tar)
        .arg(IMAGE)
        .output()
        .context("scripts/busybox-image (run from the repository root)")?;
    if !built.status.success() {
        bail!("scripts/busybox-image: {}", String::from_utf8_lossy(&built.stderr));
    }
    let agent = tmp.path().join("agent");
    ImageStore::open(&agent.join("store"))?.import(&tar)?;
    let rt = LinuxRuntime::open(&agent, Path::new("/sys/fs/cgroup"), &skiff)?;
    let mut sb = PodSandboxConfig {
        metadata: Some(SandboxMetadata {
            name: "bench".into(),
            namespace: "default".into(),
            uid: "start-bench".into(),
            attempt: 0,
        }),
        hostname: "bench".into(),
        ..Default::default()
    };
    sb.linux.cgroup_parent = format!("/{CGROUP_ROOT}/besteffort/podstart-bench");
    sb.linux.security_context.namespace_options.pid = NamespaceMode::Container;
    let sandbox = rt.run_pod_sandbox(&sb).await?;
    let bundle = tmp.path().join("bundle");
    make_bundle(&bundle)?;

    let result = async {
        // Warm-up: skiff unpacks the layer once; everyone's binaries get into the page cache.
        skiff_start(&rt, &sandbox, &sb, 0).await?;
        oci_start("runc", &bundle, "warm-runc")?;
        oci_start("crun", &bundle, "warm-crun")?;
        let (mut ours, mut runc, mut crun) = (Vec::new(), Vec::new(), Vec::new());
        for i in 1..=cfg.rounds {
            ours.push(skiff_start(&rt, &sandbox, &sb, i).await?);
            runc.push(oci_start("runc", &bundle, &format!("runc-{i}"))?);
            crun.push(oci_start("crun", &bundle, &format!("crun-{i}"))?);
        }
        let mean = |v: &[Duration]| v.iter().sum::<Duration>().as_secs_f64() * 1000.0 / v.len() as f64;
        let (m_ours, m_crun) = (mean(&ours), mean(&crun));
        println!("container start, {} rounds (create + start until the process runs):", cfg.rounds);
        println!("  skiff (shim, overlay root): {} mean {:.1} ms", describe(summarize(ours)), m_ours);
        println!("  runc {}: {} mean {:.1} ms", version("runc"), describe(summarize(runc.clone())), mean(&runc));
        println!("  crun {}: {} mean {:.1} ms", version("crun"), describe(summarize(crun)), m_crun);
        println!("  skiff / crun (means): {:.2}", m_ours / m_crun);

        let (mut sandboxes, mut ids) = (Vec::new(), Vec::new());
        for i in 0..cfg.rounds {
            let mut net = sb.clone();
            net.metadata = Some(SandboxMetadata {
                name: format!("net-{i}"),
                namespace: "default".into(),
                uid: format!("net-{i}"),
                attempt: 0,
            });
            let ip = format!("10.244.0.{}", 10 + i % 200).parse()?;
            net.network = Some(PodNetwork { ip, prefix_len: 24, gateway: "10.244.0.1".parse()? });
            let t0 = Instant::now();
            let id = rt.run_pod_sandbox(&net).await?;
            sandboxes.push(t0.elapsed());
            ids.push(id);
        }
        // Removed after all are made: a namespace's teardown in the kernel would slow the next.
        for id in ids {
            rt.stop_pod_sandbox(&id).await?;
            rt.remove_pod_sandbox(&id).await?;
        }
        println!(
            "pod sandbox with its network (namespaces, veth on skiff0, address, route): {}",
            describe(summarize(sandboxes))
        );
        anyhow::Ok(())
    }
    .await;
    let _ = rt.stop_pod_sandbox(&sandbox).await;
    let _ = rt.remove_pod_sandbox(&sandbox).await;
    for h in ["cpu", "cpuacct", "memory", "pids", "freezer", "blkio", "devices", "net_cls", "perf_event", "hugetlb"] {
        let dir = Path::new("/sys/fs/cgroup").join(h).join(CGROUP_ROOT);
        if dir.exists() {
            let _ = Command::new("find").arg(&dir).args(["-depth", "-type", "d", "-exec", "rmdir", "{}", ";"]).status();
        }
    }
    result
}

fn version(tool: &str) -> String {
    Command::new(tool)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(|l| l.split_whitespace().last().unwrap_or("").to_string()))
        .unwrap_or_default()
}

fn main() -> ExitCode {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("start_bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = private_mounts() {
        eprintln!("start_bench: {e:#}");
        return ExitCode::FAILURE;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("start_bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("start_bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
