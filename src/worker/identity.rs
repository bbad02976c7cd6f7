//! One identity, one process.
//!
//! Two processes under one worker identity would both read every shard its
//! leases name, move checkpoints backwards and run effects twice, and
//! nothing would say so. So a worker refuses to start when:
//!
//! * another process holds the SQLite file's worker lock
//!   (`<db>.worker.lock`, an advisory file lock the kernel drops when its
//!   holder dies, however it dies); or
//! * a live worker under the same identity is registered (its heartbeat is
//!   younger than the lease time-to-live) by another process — checked and
//!   registered in one transaction (on PostgreSQL under an advisory lock),
//!   so two that start at once cannot both pass. A process that holds the
//!   file lock knows a registration it finds is a dead predecessor's.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::store::{Store, StoreError, WorkerInfo};
use crate::time::{Span, Timestamp};

/// Why a worker may not start under its identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "another spindown worker runs on this database: it holds {0} (one worker per SQLite file; stop it first, \
         or use PostgreSQL for several workers)"
    )]
    FileLocked(PathBuf),
    #[error("cannot lock {path}: {why}")]
    Lock { path: PathBuf, why: String },
    #[error(
        "another process runs as worker {id:?} (host {host:?}, pid {pid}, seen {ago:.1}s ago): two processes with one \
         identity would both read every shard — stop it, or start this one with another --worker-id \
         (a worker that died is forgotten once its heartbeat is older than the lease time-to-live)"
    )]
    Taken { id: String, host: String, pid: i64, ago: f64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Take the worker lock at `path` for as long as the returned file lives.
///
/// # Errors
///
/// Another process holds it, or it cannot be created.
pub fn lock_file(path: &Path) -> Result<File, IdentityError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| IdentityError::Lock { path: path.to_path_buf(), why: e.to_string() })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(IdentityError::FileLocked(path.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(IdentityError::Lock { path: path.to_path_buf(), why: e.to_string() })
        }
    }
}

/// Register `worker`, refusing when another live process holds its identity
/// (unless `take_over`: this process holds the file lock, so any other
/// registration is a dead predecessor's).
///
/// # Errors
///
/// [`IdentityError::Taken`], or a store failure.
pub async fn claim(store: &dyn Store, worker: &WorkerInfo, ttl: Span, take_over: bool) -> Result<(), IdentityError> {
    match store.claim_worker(worker, ttl, take_over).await? {
        None => Ok(()),
        Some(other) => Err(IdentityError::Taken {
            id: other.info.id,
            host: other.info.host,
            pid: other.info.pid,
            ago: Timestamp::now().since(other.last_seen).as_micros().max(0) as f64 / 1e6,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_file_is_refused_and_freed_with_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.worker.lock");
        let held = lock_file(&path).unwrap();
        let e = lock_file(&path).unwrap_err();
        assert!(matches!(e, IdentityError::FileLocked(_)), "{e}");
        assert!(e.to_string().contains("one worker per SQLite file"), "{e}");
        drop(held);
        lock_file(&path).expect("free once its holder is gone");
    }
}
