//! Benchmark drivers (see README). These print figures; they are not timed tests.
//!
//! - [`api`]: the API server benchmark behind the `api_bench` binary.
//! - [`server`]: starts and stops a private `skiff server` for a run.
//! - [`client`]: kubeconfig reading and the HTTPS client that trusts the cluster CA.
//! - [`stats`]: percentiles and error tallies.

pub mod api;
pub mod client;
pub mod server;
pub mod stats;
