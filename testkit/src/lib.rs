//! Test support shared by every crate's integration tests (a dev-dependency only):
//!
//! - [`eventually`] / [`eventually_blocking`]: the one way to wait for a condition.
//! - [`ServerProcess`] (blocking) and [`ApiServer`] (async, with a kube client): the one harness
//!   that starts a real `skiff server` — a free loopback port, a temp dir, ready on `/readyz`,
//!   killed by its PID on drop (also when the test panics, printing its log tail).
//! - [`read_kubeconfig`] and [`https_client`]: the admin credential and a client trusting the
//!   cluster CA, for blocking tests.
//! - [`registry`]: Debian's `docker-registry` started for a test, and a pusher of images.

mod api_server;
mod eventually;
mod kubeconfig;
pub mod registry;
mod server;

pub use api_server::ApiServer;
pub use eventually::{eventually, eventually_blocking, POLL_INTERVAL};
pub use kubeconfig::{https_client, install_crypto_provider, read_kubeconfig, Creds};
pub use server::{free_port, skiff_bin, tail_of_file, ServerOptions, ServerProcess, READY_TIMEOUT};

/// Test logging at `default` level (`RUST_LOG` overrides); safe to call from every test.
pub fn init_tracing(default: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_test_writer()
        .try_init();
}
