//! A unit of work: one write transaction (SQLite: `BEGIN IMMEDIATE`, the one
//! write lock; PostgreSQL: READ COMMITTED, its instances locked from `load`
//! or `due` until it ends). What the engine decided is written with a few
//! statements whatever its size, in the dialect's bulk form, then the stream
//! checkpoint (fenced by the shard lease) and the clocks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Transaction, Type};

use super::{read, Conn, Dialect, Q};
use crate::store::stats::{Phase, Stats};
use crate::store::{Changes, DueKey, HistoryAppend, InstanceWrite, StoreError, StoredInstance, UnitOfWork};
use crate::time::Timestamp;

pub(super) struct SqlUnitOfWork<D: Dialect> {
    tx: Transaction<'static, D::DB>,
    stats: Arc<Stats>,
}

impl<D: Dialect> SqlUnitOfWork<D> {
    pub(super) fn new(tx: Transaction<'static, D::DB>, stats: Arc<Stats>) -> Self {
        SqlUnitOfWork { tx, stats }
    }
}

/// Append the non-empty history chunks; (chunks, entries) appended.
pub(super) async fn insert_history<D: Dialect>(
    conn: &mut Conn<D>,
    appends: &[HistoryAppend],
) -> Result<(usize, usize), StoreError> {
    let appends: Vec<&HistoryAppend> = appends.iter().filter(|h| h.entries > 0).collect();
    if appends.is_empty() {
        return Ok((0, 0));
    }
    D::insert_history(conn, &appends).await?;
    Ok((appends.len(), appends.iter().map(|h| h.entries).sum()))
}

/// Index the written instances' search attributes that changed (one
/// statement per attribute). A stored instance's old values are dropped
/// first (a value may move: an instance's start); `deferred`: leave new
/// instances to [`Store::index_search`](crate::store::Store::index_search)'s one pass.
async fn index_search<D: Dialect>(
    conn: &mut Conn<D>,
    instances: &[InstanceWrite],
    deferred: bool,
) -> Result<(), StoreError>
where
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
{
    let changed: Vec<&InstanceWrite> =
        instances.iter().filter(|w| w.search_changed && !(deferred && w.loaded_version.is_none())).collect();
    let stored: Vec<&str> =
        changed.iter().filter(|w| w.loaded_version.is_some()).map(|w| w.stored.id.as_str()).collect();
    if !stored.is_empty() {
        sqlx::query(D::statement(Q::UnindexSearch)).bind(D::texts(&stored)).execute(&mut *conn).await?;
    }
    let mut by_name: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for w in changed {
        for (name, value) in &w.index.attrs {
            by_name.entry(name).or_default().push((value, w.stored.id.as_str()));
        }
    }
    for (name, pairs) in by_name {
        D::insert_search(conn, name, &pairs).await?;
    }
    Ok(())
}

#[async_trait]
impl<D: Dialect> UnitOfWork for SqlUnitOfWork<D>
where
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'r> i64: Encode<'r, D::DB> + Decode<'r, D::DB> + Type<D::DB>,
    for<'r> Option<i64>: Encode<'r, D::DB>,
    for<'r> bool: Encode<'r, D::DB> + Type<D::DB>,
    for<'r> &'r str: Encode<'r, D::DB> + Type<D::DB>,
    for<'r> Option<&'r str>: Encode<'r, D::DB>,
    for<'r> String: Encode<'r, D::DB> + Decode<'r, D::DB> + Type<D::DB>,
    usize: ColumnIndex<<D::DB as Database>::Row>,
{
    async fn load(&mut self, ids: &[&str]) -> Result<Vec<StoredInstance>, StoreError> {
        let t = Instant::now();
        let r = D::load(&mut self.tx, ids, true).await;
        self.stats.add_time(Phase::Read, t);
        r
    }

    async fn due(&mut self, after: Option<&DueKey>, upto: Timestamp, limit: usize) -> Result<Vec<DueKey>, StoreError> {
        let t = Instant::now();
        let r = read::due::<D>(&mut self.tx, after, upto, limit, true).await;
        self.stats.add_time(Phase::Read, t);
        r
    }

    async fn due_loaded(
        &mut self,
        after: Option<&DueKey>,
        upto: Timestamp,
        limit: usize,
    ) -> Result<(Vec<DueKey>, Vec<StoredInstance>), StoreError> {
        let t = Instant::now();
        let r = read::due_loaded::<D>(&mut self.tx, after, upto, limit, true).await;
        self.stats.add_time(Phase::Read, t);
        r
    }

    async fn commit(mut self: Box<Self>, changes: Changes) -> Result<(), StoreError> {
        let conn: &mut Conn<D> = &mut self.tx;
        let stats = self.stats.clone();

        let t = Instant::now();
        if !changes.instances.is_empty() {
            let written = D::write_instances(conn, &changes.instances).await?;
            if written != changes.instances.len() as u64 {
                let ids: Vec<&str> = changes.instances.iter().map(|w| w.stored.id.as_str()).take(5).collect();
                return Err(StoreError::Conflict(format!("one of {}", ids.join(", "))));
            }
        }
        index_search::<D>(conn, &changes.instances, changes.defer_search).await?;
        stats.add(&stats.instances, changes.instances.len());
        stats.add_time(Phase::WriteInstances, t);

        let t = Instant::now();
        let (chunks, entries) = insert_history::<D>(conn, &changes.history).await?;
        stats.add(&stats.history_chunks, chunks);
        stats.add(&stats.history_entries, entries);
        stats.add_time(Phase::WriteHistory, t);

        let t = Instant::now();
        if !changes.effects.is_empty() {
            D::insert_effects(conn, &changes.effects).await?;
        }
        stats.add(&stats.effects, changes.effects.len());
        stats.add_time(Phase::WriteEffects, t);

        let t = Instant::now();
        if !changes.dead_letters.is_empty() {
            D::insert_dead_letters(conn, &changes.dead_letters).await?;
        }
        stats.add(&stats.dead, changes.dead_letters.len());
        if let Some(c) = &changes.checkpoint {
            if let Some(lease) = &c.lease {
                let held = sqlx::query(D::statement(Q::FenceLease))
                    .bind(c.stream_arn.as_str())
                    .bind(c.shard_id.as_str())
                    .bind(lease.owner.as_str())
                    .bind(lease.epoch)
                    .execute(&mut *conn)
                    .await?;
                if D::affected(&held) == 0 {
                    return Err(StoreError::LeaseLost(c.shard_id.clone()));
                }
            }
            sqlx::query(D::statement(Q::UpsertCheckpoint))
                .bind(c.stream_arn.as_str())
                .bind(c.shard_id.as_str())
                .bind(c.parent_shard_id.as_deref())
                .bind(c.sequence_number.as_deref())
                .bind(c.closed)
                .bind(c.records as i64)
                .bind(c.last_event_at.map(Timestamp::as_micros))
                .bind(c.caught_up)
                .bind(c.at.as_micros())
                .execute(&mut *conn)
                .await?;
        }
        let clocks = changes.clocks;
        if clocks.last_instant.is_some() || clocks.event_clock.is_some() {
            sqlx::query(D::statement(Q::AdvanceClocks))
                .bind(clocks.last_instant.map(Timestamp::as_micros))
                .bind(clocks.event_clock.map(Timestamp::as_micros))
                .execute(&mut *conn)
                .await?;
        }
        stats.add_time(Phase::WriteOther, t);

        crate::failpoint::hit("tx-before-commit");
        let t = Instant::now();
        self.tx.commit().await?;
        stats.add_time(Phase::Commit, t);
        stats.add(&stats.transactions, 1);
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}
