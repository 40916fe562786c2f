//! The embedded default backend: one redb file in `<data-dir>/server/`.
//!
//! redb was chosen by measurement (see issue 2): under a churn of writes and deletes it kept the
//! file at a few MB where sled grew to gigabytes, and it survived every `kill -9` run. The file
//! holds only current objects (history lives in memory), so it does not grow under steady churn.

use std::path::Path;

use bytes::Bytes;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::backend::{Backend, BackendWrite, StorageError};

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION: &str = "revision";

pub struct RedbBackend {
    db: Database,
}

fn err(e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(e.to_string())
}

impl RedbBackend {
    /// Opens (or creates) the store file at `path`.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let db = Database::builder()
            .set_cache_size(16 << 20)
            .create(path)
            .map_err(|e| StorageError::Backend(format!("open {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(err)?;
        {
            txn.open_table(OBJECTS).map_err(err)?;
            txn.open_table(META).map_err(err)?;
        }
        txn.commit().map_err(err)?;
        Ok(RedbBackend { db })
    }
}

impl Backend for RedbBackend {
    fn load(&self) -> Result<(u64, Vec<(String, Bytes)>), StorageError> {
        let txn = self.db.begin_read().map_err(err)?;
        let meta = txn.open_table(META).map_err(err)?;
        let revision = meta.get(REVISION).map_err(err)?.map(|v| v.value()).unwrap_or(0);
        let objects = txn.open_table(OBJECTS).map_err(err)?;
        let mut out = Vec::new();
        for entry in objects.iter().map_err(err)? {
            let (k, v) = entry.map_err(err)?;
            out.push((k.value().to_string(), Bytes::copy_from_slice(v.value())));
        }
        Ok((revision, out))
    }

    fn commit(&self, revision: u64, writes: &[BackendWrite]) -> Result<(), StorageError> {
        let mut txn = self.db.begin_write().map_err(err)?;
        txn.set_durability(Durability::Immediate).map_err(err)?;
        {
            let mut objects = txn.open_table(OBJECTS).map_err(err)?;
            for w in writes {
                match w {
                    BackendWrite::Put { key, value } => {
                        objects.insert(key.as_str(), value.as_ref()).map_err(err)?;
                    }
                    BackendWrite::Delete { key } => {
                        objects.remove(key.as_str()).map_err(err)?;
                    }
                }
            }
            let mut meta = txn.open_table(META).map_err(err)?;
            meta.insert(REVISION, revision).map_err(err)?;
        }
        txn.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_survive_reopen() -> Result<(), StorageError> {
        let dir = tempfile::tempdir().map_err(err)?;
        let path = dir.path().join("store.redb");
        {
            let b = RedbBackend::open(&path)?;
            b.commit(
                1,
                &[
                    BackendWrite::Put { key: "/registry/a".into(), value: Bytes::from_static(b"{}") },
                    BackendWrite::Put { key: "/registry/b".into(), value: Bytes::from_static(b"{\"x\":1}") },
                ],
            )?;
            b.commit(2, &[BackendWrite::Delete { key: "/registry/a".into() }])?;
        }
        let b = RedbBackend::open(&path)?;
        let (rev, objs) = b.load()?;
        assert_eq!(rev, 2);
        assert_eq!(objs.len(), 1);
        assert_eq!(objs[0].0, "/registry/b");
        assert_eq!(&objs[0].1[..], b"{\"x\":1}");
        Ok(())
    }
}
