//! Scheduler and controller benchmark driver: starts its own `skiff server` and one hollow-node
//! agent, measures, prints a report.
//!
//! Usage: `control_bench [--skiff PATH] [--quick]` (see bench/README.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use bench::control::{self, Cluster, Config, Report};
use bench::server::SkiffServer;

const USAGE: &str = "usage: control_bench [--skiff PATH (default target/release/skiff)] [--quick] [--nodes N]";

fn parse_args() -> Result<Config> {
    let mut skiff = PathBuf::from("target/release/skiff");
    let mut quick = false;
    let mut nodes: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--skiff" => skiff = PathBuf::from(args.next().context("--skiff needs a path")?),
            "--quick" => quick = true,
            "--nodes" => {
                let n = args.next().context("--nodes needs a count")?;
                let n: usize = n.parse().with_context(|| format!("--nodes {n:?} is not a count"))?;
                if n == 0 || n > 1024 {
                    bail!("--nodes must be between 1 and 1024 (one /24 of 10.128.0.0/14 each)");
                }
                nodes = Some(n);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let mut cfg = if quick { Config::quick(skiff) } else { Config::full(skiff) };
    if let Some(n) = nodes {
        cfg.nodes = n;
    }
    if cfg.total_pods > cfg.nodes * 110 {
        bail!("{} pods do not fit on {} nodes of 110 pods", cfg.total_pods, cfg.nodes);
    }
    Ok(cfg)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("control_bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let cfg = parse_args()?;
    eprintln!("-- starting {} server", cfg.skiff.display());
    let server = SkiffServer::start(&cfg.skiff).await.context("start skiff server")?;
    eprintln!("-- server pid {} on 127.0.0.1:{}", server.pid(), server.port);
    // Dropping `cluster` (also on an early return) kills both processes and removes their temp dirs.
    let mut cluster = Cluster { server, agent: None };
    let mut report = Report::default();
    let outcome = tokio::select! {
        r = control::run(&cfg, &mut cluster, &mut report) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    if outcome.is_err() {
        eprintln!("-- server log tail:\n{}", cluster.server.log_tail(20));
        if let Some(a) = &cluster.agent {
            eprintln!("-- agent log tail:\n{}", a.log_tail(20));
        }
    }
    control::log_problems(&cluster, &mut report);
    let agent_stopped = cluster.agent.as_mut().map(|a| a.stop().context("stop skiff agent"));
    let server_stopped = cluster.server.stop().context("stop skiff server");
    print_report(&cfg, &report, &outcome, &agent_stopped, &server_stopped);
    drop(cluster); // removes the temp dirs
    outcome?;
    if let Some(a) = agent_stopped {
        a?;
    }
    server_stopped.map(|_| ())
}

fn print_report(
    cfg: &Config,
    report: &Report,
    outcome: &Result<()>,
    agent: &Option<Result<String>>,
    server: &Result<String>,
) {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mode = if cfg.quick { "quick" } else { "full" };
    println!(
        "skiff scheduler/controller benchmark ({mode} mode): {} hollow nodes, up to {} pods; \
         server, agent and client on one machine with {cores} cores",
        cfg.nodes, cfg.total_pods
    );
    for l in &report.lines {
        println!("{l}");
    }
    println!();
    if report.problems.is_empty() {
        println!("no problems seen");
    } else {
        println!("[problems]");
        for p in &report.problems {
            println!("!! {p}");
        }
    }
    println!();
    match agent {
        Some(Ok(how)) => println!("agent stopped: {how}"),
        Some(Err(e)) => println!("agent stop failed: {e:#}"),
        None => {}
    }
    match server {
        Ok(how) => println!("server stopped: {how}"),
        Err(e) => println!("server stop failed: {e:#}"),
    }
    if let Err(e) = outcome {
        println!("RUN FAILED (figures above are partial): {e:#}");
    }
}
