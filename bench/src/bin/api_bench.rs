//! API server benchmark driver: starts its own `skiff server`, measures, prints a report.
//!
//! Usage: `api_bench [--skiff PATH] [--quick]` (see bench/README.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use bench::api::{self, Config, Report};
use bench::server::SkiffServer;

const USAGE: &str =
    "usage: api_bench [--skiff PATH (default target/release/skiff)] [--quick] [--churn-updates N (sampled in 4 steps)]";

fn parse_args() -> Result<Config> {
    let mut skiff = PathBuf::from("target/release/skiff");
    let mut quick = false;
    let mut churn_updates: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--skiff" => skiff = PathBuf::from(args.next().context("--skiff needs a path")?),
            "--quick" => quick = true,
            "--churn-updates" => {
                let n = args.next().context("--churn-updates needs a count")?;
                let n: usize = n.parse().with_context(|| format!("--churn-updates {n:?} is not a count"))?;
                if n == 0 || n > 10_000_000 {
                    bail!("--churn-updates must be between 1 and 10000000");
                }
                churn_updates = Some(n);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let mut cfg = if quick { Config::quick(skiff) } else { Config::full(skiff) };
    if let Some(n) = churn_updates {
        cfg.churn_updates = n;
    }
    Ok(cfg)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("api_bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let cfg = parse_args()?;
    eprintln!("-- starting {} server", cfg.skiff.display());
    let mut server = SkiffServer::start(&cfg.skiff).await.context("start skiff server")?;
    eprintln!("-- server pid {} on 127.0.0.1:{}", server.pid(), server.port);
    let mut report = Report::default();
    let outcome = tokio::select! {
        r = api::run(&cfg, &mut server, &mut report) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    if outcome.is_err() {
        eprintln!("-- server log tail:\n{}", server.log_tail(20));
    }
    let stopped = server.stop().context("stop skiff server");
    print_report(&cfg, &report, &outcome, &stopped);
    drop(server); // removes the temp data dir
    outcome?;
    stopped.map(|_| ())
}

fn print_report(cfg: &Config, report: &Report, outcome: &Result<()>, stopped: &Result<String>) {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!("skiff API benchmark ({} mode), client and server on one machine with {cores} cores", mode(cfg));
    for l in &report.lines {
        println!("{l}");
    }
    println!();
    match stopped {
        Ok(how) => println!("server stopped: {how}"),
        Err(e) => println!("server stop failed: {e:#}"),
    }
    if let Err(e) = outcome {
        println!("RUN FAILED (figures above are partial): {e:#}");
    }
}

fn mode(cfg: &Config) -> &'static str {
    if cfg.quick {
        "quick"
    } else {
        "full"
    }
}
