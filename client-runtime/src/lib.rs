//! The client runtime every skiff component shares (kube-runtime/client-go's role): no component
//! imports another, they all import this.
//!
//! - [`informers`]: one watch per kind (and field/label selection) per process, a shared cache,
//!   and typed change streams (`Applied` with the previous state, `Deleted`) for any number of
//!   consumers; the one cache-sync mechanism.
//! - [`controller`]: the one reconcile loop (work queue, bounded workers, span shape) with
//!   [`policy`], the one error policy (per-object exponential backoff as upstream's workqueue).
//! - [`expectations`]: upstream's `ControllerExpectations`, for controllers that create or delete
//!   children; [`claim`]: adoption and release of children (`ControllerRefManager`); [`pods`]:
//!   the pod predicates (active, terminal, ready, available); [`jobs`]: the Job predicates.
//! - [`leader`]: leader election through a Lease.

pub mod claim;
pub mod controller;
pub mod expectations;
pub mod informers;
pub mod jobs;
pub mod leader;
pub mod pods;
pub mod policy;

pub use controller::Controller;
pub use expectations::Expectations;
pub use informers::{Change, Event, Informers, Kind, Selection, Synced};
pub use kube::runtime::controller::Action;
pub use kube::runtime::reflector::{ObjectRef, Store};
