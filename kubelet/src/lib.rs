//! The kubelet: node registration, pod workers and the built-in Linux runtime.
//!
//! Not built yet: it arrives with the hollow-node and kubelet issues.
