//! Due timers in fire order: the engine's paging read, for a unit of work
//! (claiming, where other writers exist) and for committed state.

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::{Conn, Dialect};
use crate::store::rows;
use crate::store::{DueKey, StoreError, StoredInstance};
use crate::time::Timestamp;

/// A due statement with its parameters: the key it reads after (if any), the
/// instant it reads up to, how many.
fn due_query<'q, D: Dialect>(
    sql: &'q str,
    after: Option<&'q DueKey>,
    upto: Timestamp,
    limit: usize,
) -> sqlx::query::Query<'q, D::DB, <D::DB as Database>::Arguments<'q>>
where
    for<'r> i64: Encode<'r, D::DB> + Type<D::DB>,
    for<'r> &'r str: Encode<'r, D::DB> + Type<D::DB>,
{
    let query = sqlx::query(sql);
    let query = match after {
        Some(a) => query.bind(a.due.as_micros()).bind(i64::from(a.rank)).bind(a.id.as_str()),
        None => query,
    };
    query.bind(upto.as_micros()).bind(limit as i64)
}

/// Instances' first pending timers strictly after `after` in fire order, due
/// by `upto`, at most `limit`.
pub(super) async fn due<D: Dialect>(
    conn: &mut Conn<D>,
    after: Option<&DueKey>,
    upto: Timestamp,
    limit: usize,
    claim: bool,
) -> Result<Vec<DueKey>, StoreError>
where
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'r> i64: Encode<'r, D::DB> + Decode<'r, D::DB> + Type<D::DB>,
    for<'r> &'r str: Encode<'r, D::DB> + Type<D::DB>,
    for<'r> String: Decode<'r, D::DB> + Type<D::DB>,
    usize: ColumnIndex<<D::DB as Database>::Row>,
{
    let query = due_query::<D>(D::due_statement(after.is_some(), claim), after, upto, limit);
    let rows = query.fetch_all(&mut *conn).await?;
    rows.iter().map(rows::due_key).collect()
}

/// [`due`] with the instances the keys belong to, in one statement (claimed
/// together where the dialect claims).
pub(super) async fn due_loaded<D: Dialect>(
    conn: &mut Conn<D>,
    after: Option<&DueKey>,
    upto: Timestamp,
    limit: usize,
    claim: bool,
) -> Result<(Vec<DueKey>, Vec<StoredInstance>), StoreError>
where
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'r> i64: Encode<'r, D::DB> + Decode<'r, D::DB> + Type<D::DB>,
    for<'r> &'r str: Encode<'r, D::DB> + Type<D::DB>,
    for<'r> String: Decode<'r, D::DB> + Type<D::DB>,
    for<'r> Option<String>: Decode<'r, D::DB>,
    usize: ColumnIndex<<D::DB as Database>::Row>,
{
    let query = due_query::<D>(D::due_docs_statement(after.is_some(), claim), after, upto, limit);
    if D::DUE_DOCS_IN_ONE_ROW {
        let row = query.fetch_one(&mut *conn).await?;
        let doc: Option<String> = row.try_get(0)?;
        return rows::due_docs(doc.as_deref());
    }
    let rows = query.fetch_all(&mut *conn).await?;
    let mut keys = Vec::with_capacity(rows.len());
    let mut instances = Vec::with_capacity(rows.len());
    for row in &rows {
        keys.push(rows::due_key(row)?);
        let doc: String = row.try_get(3)?;
        instances.push(rows::instance_from_text(&doc)?);
    }
    Ok((keys, instances))
}
