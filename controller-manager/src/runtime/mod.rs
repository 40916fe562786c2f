//! What every controller shares: the per-process watch cache ([`informers`]).
//! The reconcile loop itself is kube-runtime's `Controller` (one work queue per controller,
//! level-triggered, never two reconciles of one object at once, rate-limited requeues).

pub mod informers;

pub use informers::Informers;
