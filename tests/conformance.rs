//! The backend conformance suite on every backend (see `tests/common/conformance.rs`):
//! SQLite files, the in-memory store, and a real PostgreSQL server.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::conformance::Backend;
use spindown::store::memory::MemoryStore;
use spindown::store::postgres::{PgOptions, PgStore};
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

/// A database of its own on the tests' PostgreSQL server; a reopen connects again.
struct Postgres {
    url: String,
}

impl Postgres {
    fn new() -> Postgres {
        Postgres { url: common::postgres::database("conformance") }
    }
}

impl Backend for Postgres {
    fn open(&self) -> BoxFuture<'_, Arc<dyn Store>> {
        Box::pin(
            async move { Arc::new(PgStore::open(&self.url, &PgOptions::default()).await.unwrap()) as Arc<dyn Store> },
        )
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

mod postgres {
    use super::*;
    conformance_tests!(Postgres::new());
}

/// Every fixed statement of the PostgreSQL backend parses and plans against
/// its migrated schema (each table, column, type and function it names exists).
#[tokio::test]
async fn every_postgres_statement_prepares_against_the_schema() {
    use sqlx::Executor;
    let url = common::postgres::database("statements");
    let store = PgStore::open(&url, &PgOptions::default()).await.unwrap();
    let mut conn = store.pool().acquire().await.unwrap();
    for (name, sql) in spindown::store::postgres::QUERIES {
        if let Err(e) = conn.prepare(sql).await {
            panic!("{name}: {e}");
        }
    }
}
