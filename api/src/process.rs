//! Process plumbing shared by the component binaries (feature `client`): logging to stderr with
//! `RUST_LOG`, a Tokio runtime, and a cancellation token fired by SIGTERM or Ctrl-C.

use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

/// Logs to stderr at `default` level (`RUST_LOG` overrides), colours only on a terminal.
pub fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// A token cancelled when the process gets SIGTERM or Ctrl-C (call inside a runtime).
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let fire = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        fire.cancel();
    });
    token
}

/// Runs `component` on a multi-threaded runtime until it ends; prints `name: error` and exits
/// non-zero on failure.
pub fn run_main<F, E>(name: &str, component: impl FnOnce(CancellationToken) -> F) -> ExitCode
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(async { component(shutdown_on_signal()).await }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
