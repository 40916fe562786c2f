//! The scheduler: binds pending pods to nodes through `pods/binding`.
//!
//! Not built yet: it arrives with the control-loops issue. The crate exists so the
//! workspace has the shape of DESIGN §1 from the start.
