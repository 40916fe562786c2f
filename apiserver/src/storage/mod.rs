//! Storage: a durable [`Backend`] (the embedded redb file today, etcd later) under an in-memory
//! watch cache ([`Store`]) that serves every GET, LIST and WATCH without touching disk.
//!
//! All writes go through one ordered commit path (the writer thread in `writer.rs`): it checks
//! preconditions against the cache, assigns the next cluster-wide revision, makes a whole batch
//! durable in one backend transaction (group commit), and only then applies the batch to the cache
//! and broadcasts its events. A write is acknowledged only once it is on disk.

mod backend;
mod cache;
mod redb_backend;
mod watch;
mod writer;

pub use backend::{Backend, BackendWrite, StorageError};
pub use cache::{Event, EventType, Obj, Store, StoreOptions};
pub use redb_backend::RedbBackend;
pub use watch::{WatchError, Watcher};
pub use writer::{Precondition, WriteError, WriteOp, WriteRequest};
