//! Shared API vocabulary for every skiff component: the Kubernetes types (re-exported from
//! k8s-openapi at the 1.33 API level), the registry of served resources, label and field
//! selectors, resource quantities, IPv4/IPv6 CIDRs, and the `Status` error shape.
//!
//! This crate depends on nothing else in the workspace.

pub mod cidr;
pub mod duration;
pub mod owner;
pub mod quantity;
pub mod resources;
pub mod selector;
pub mod status;
pub mod validation;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
pub mod events;
#[cfg(feature = "client")]
pub mod process;

pub use k8s_openapi;
pub use resources::{ResourceInfo, Scope, RESOURCES};
pub use status::{ApiError, Cause};

/// The Kubernetes minor version whose API skiff serves (see DESIGN §2).
pub const KUBE_MINOR: &str = "33";
/// The full version string reported by `/version`.
pub const KUBE_GIT_VERSION: &str = "v1.33.0-skiff";
