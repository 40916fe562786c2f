//! The durable layer under the watch cache.

use bytes::Bytes;

/// One write inside a committed batch.
#[derive(Debug, Clone)]
pub enum BackendWrite {
    Put { key: String, value: Bytes },
    Delete { key: String },
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage backend: {0}")]
    Backend(String),
    #[error("stored object {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
}

/// A durable key-value backend. The cache above it owns revisions and preconditions; the
/// backend only has to make a batch durable atomically and give everything back on start.
pub trait Backend: Send + Sync + 'static {
    /// Every stored object and the revision of the last committed batch.
    fn load(&self) -> Result<(u64, Vec<(String, Bytes)>), StorageError>;
    /// Makes `writes` durable in one atomic transaction that records `revision`.
    /// Returns only after the data is on stable storage.
    fn commit(&self, revision: u64, writes: &[BackendWrite]) -> Result<(), StorageError>;
}
