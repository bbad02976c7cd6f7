//! The backend conformance suite on every backend (see `tests/common/conformance.rs`).

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::conformance::Backend;
use spindown::store::memory::MemoryStore;
use spindown::store::sqlite::{SqliteOptions, SqliteStore};
use spindown::store::Store;
use spindown::BoxFuture;

/// A SQLite file in a temporary directory; a reopen opens the same file.
struct Sqlite {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Sqlite {
    fn new() -> Sqlite {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conformance.db");
        Sqlite { _dir: dir, path }
    }
}

impl Backend for Sqlite {
    fn open(&self) -> BoxFuture<'_, Arc<dyn Store>> {
        Box::pin(async move {
            Arc::new(SqliteStore::open(&self.path, &SqliteOptions::default()).await.unwrap()) as Arc<dyn Store>
        })
    }
}

/// The in-memory store; a reopen is another handle on the same state.
struct Memory(MemoryStore);

impl Backend for Memory {
    fn open(&self) -> BoxFuture<'_, Arc<dyn Store>> {
        Box::pin(async move { Arc::new(self.0.clone()) as Arc<dyn Store> })
    }
}

mod sqlite {
    use super::*;
    conformance_tests!(Sqlite::new());
}

mod memory {
    use super::*;
    conformance_tests!(Memory(MemoryStore::new()));
}
