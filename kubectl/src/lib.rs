//! The project's own CLI (`skiff kubectl`). Tests always use the real `kubectl` on the PATH.
//!
//! Not built yet.
