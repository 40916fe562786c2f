//! The controller-manager: one module per controller, all on one shared watch cache.
//!
//! Not built yet: it arrives with the control-loops issue.
