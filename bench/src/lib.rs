//! Benchmark drivers (see README).
