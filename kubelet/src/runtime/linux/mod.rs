//! The built-in Linux runtime (the real-pods issue), built up in parts; so far the cgroup layer
//! ([`cgroups`]), on both cgroup layouts. The runtime itself is not built yet: the factory still
//! answers `--runtime linux` with a typed error.

pub mod cgroups;
pub mod images;
pub mod layers;
