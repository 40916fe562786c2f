//! The scheduler as its own process (`skiff-scheduler --kubeconfig FILE`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "skiff-scheduler", about = "The skiff scheduler, connecting to an API server with a kubeconfig")]
struct Cli {
    /// Kubeconfig with the credential to use.
    #[arg(long)]
    kubeconfig: PathBuf,
    #[command(flatten)]
    opts: crate::Opts,
}

/// Parses the command line and runs until SIGTERM or Ctrl-C.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    api::process::init_tracing("info");
    api::process::run_main("skiff-scheduler", |stop| async move { crate::run(cli.opts, &cli.kubeconfig, stop).await })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
