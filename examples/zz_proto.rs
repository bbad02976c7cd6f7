use async_trait::async_trait;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Transaction, Type};

#[async_trait]
pub trait Dialect: Send + Sync + 'static {
    type DB: Database;
    fn sql(name: &str) -> &'static str;
    async fn begin_write(pool: &Pool<Self::DB>) -> Result<Transaction<'static, Self::DB>, sqlx::Error>;
    fn affected(r: &<Self::DB as Database>::QueryResult) -> u64;
}

pub struct Lite;
#[async_trait]
impl Dialect for Lite {
    type DB = sqlx::Sqlite;
    fn sql(_n: &str) -> &'static str {
        "SELECT ?1"
    }
    async fn begin_write(pool: &Pool<sqlx::Sqlite>) -> Result<Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }
    fn affected(r: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        r.rows_affected()
    }
}
pub struct Pg;
#[async_trait]
impl Dialect for Pg {
    type DB = sqlx::Postgres;
    fn sql(_n: &str) -> &'static str {
        "SELECT $1"
    }
    async fn begin_write(pool: &Pool<sqlx::Postgres>) -> Result<Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        pool.begin().await
    }
    fn affected(r: &sqlx::postgres::PgQueryResult) -> u64 {
        r.rows_affected()
    }
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn get(&self, x: i64, s: &str) -> Result<Vec<(i64, String)>, sqlx::Error>;
    async fn put(&self, x: i64, s: Option<&str>) -> Result<u64, sqlx::Error>;
}

pub struct SqlStore<D: Dialect> {
    pool: Pool<D::DB>,
}

#[async_trait]
impl<D: Dialect> Store for SqlStore<D>
where
    for<'c> &'c mut <D::DB as Database>::Connection: Executor<'c, Database = D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'q> i64: Encode<'q, D::DB> + Decode<'q, D::DB> + Type<D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<&'q str>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> String: Decode<'q, D::DB> + Type<D::DB>,
    usize: ColumnIndex<<D::DB as Database>::Row>,
{
    async fn get(&self, x: i64, s: &str) -> Result<Vec<(i64, String)>, sqlx::Error> {
        let rows = sqlx::query(D::sql("get")).bind(x).bind(s).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1))).collect())
    }
    async fn put(&self, x: i64, s: Option<&str>) -> Result<u64, sqlx::Error> {
        let mut tx = D::begin_write(&self.pool).await?;
        let n = sqlx::query(D::sql("put")).bind(x).bind(s).execute(&mut *tx).await?;
        let n = D::affected(&n);
        let v: Vec<(i64,)> = sqlx::query_as(D::sql("x")).bind(x).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(n + v.len() as u64)
    }
}

fn main() {
    fn is_store<S: Store>() {}
    is_store::<SqlStore<Lite>>();
    is_store::<SqlStore<Pg>>();
    let _: Option<Box<dyn Store>> = None;
}
