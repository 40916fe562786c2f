//! Benchmark drivers (see README). These print figures; they are not timed tests.
//!
//! - [`api`]: the API server benchmark behind the `api_bench` binary.
//! - [`control`]: the scheduler and controller benchmark behind the `control_bench` binary.
//! - [`hollow`]: starts and stops a hollow-node agent; CPU and memory of processes from `/proc`.
//! - [`server`]: starts and stops a private `skiff server` for a run.
//! - [`client`]: kubeconfig reading and the HTTPS client that trusts the cluster CA.
//! - [`stats`]: percentiles and error tallies.

pub mod api;
pub mod client;
pub mod control;
pub mod hollow;
pub mod server;
pub mod stats;
