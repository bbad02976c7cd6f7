//! PostgreSQL: one database shared by several workers.
//!
//! The schema is the SQLite backend's lean one (`migrations/postgres/`). What
//! changes is who else writes:
//!
//! * a unit of work **locks** the instances it loads (`SELECT … FOR UPDATE`, in
//!   id order so that two workers cannot deadlock) and claims due timers with
//!   `FOR UPDATE SKIP LOCKED`: a timer is fired by whichever worker locked its
//!   instance, inside the transaction of the transition it causes, so exactly
//!   once; instances another worker holds are skipped, not waited for;
//! * an instance row is still written fenced by the version it was loaded at
//!   (a new instance inserted by two workers at once: the second gets
//!   [`StoreError::Conflict`] and nothing is written);
//! * effects are leased with `SKIP LOCKED`, their outcomes fenced by the lease.
//!
//! All of it is the SQL store ([`super::sql`]) in PostgreSQL's [`PgDialect`];
//! this module connects (session limits, migrations under the server's
//! advisory lock) and words the server's errors. Bulk writes bind one array
//! per column (`UNNEST`): one statement of one shape per table and unit of
//! work, whatever the number of rows.

mod dialect;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

pub use dialect::PgDialect;

use crate::store::{Fault, SqlStore, StoreError};

/// Whether a `--db` value names a PostgreSQL database rather than a SQLite file.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// How a [`PgStore`] connects, and the limits every session runs under.
///
/// The session limits are set at connection (the startup packet's
/// `options`), so they hold for every statement of the pool, and protect
/// the *other* workers too: a worker that freezes or is cut off mid
/// transaction holds its row locks at most `idle_in_transaction_timeout`,
/// and no one waits for a lock longer than `lock_timeout`.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections in this process's pool (each unit of work holds one).
    pub max_connections: u32,
    /// How long a statement may wait for a connection before the call fails;
    /// also the limit for connecting.
    pub acquire_timeout: Duration,
    /// `application_name`, shown in `pg_stat_activity` (the worker's identity).
    pub application_name: String,
    /// `statement_timeout`: the server cancels a statement running longer.
    pub statement_timeout: Duration,
    /// `lock_timeout`: the server gives up waiting for a row lock after this.
    pub lock_timeout: Duration,
    /// `idle_in_transaction_session_timeout`: the server ends a session that
    /// sits in an open transaction this long (its client froze or vanished),
    /// releasing its locks.
    pub idle_in_transaction_timeout: Duration,
    /// TCP keepalives on the server's side of each connection (idle time
    /// before the first probe; probes every third of it, 3 lost = gone).
    pub keepalive: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
            application_name: "spindown".into(),
            statement_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(10),
            idle_in_transaction_timeout: Duration::from_secs(60),
            keepalive: Duration::from_secs(30),
        }
    }
}

impl PgOptions {
    /// The session settings, as `-c` options of the startup packet.
    fn session(&self) -> Vec<(&'static str, String)> {
        let ms = |d: Duration| format!("{}ms", d.as_millis().max(1));
        let secs = |d: Duration| d.as_secs().max(1).to_string();
        vec![
            ("statement_timeout", ms(self.statement_timeout)),
            ("lock_timeout", ms(self.lock_timeout)),
            ("idle_in_transaction_session_timeout", ms(self.idle_in_transaction_timeout)),
            ("tcp_keepalives_idle", secs(self.keepalive)),
            ("tcp_keepalives_interval", secs(self.keepalive / 3)),
            ("tcp_keepalives_count", "3".into()),
        ]
    }
}

/// A spindown database on a PostgreSQL server: the SQL store in its dialect.
pub type PgStore = SqlStore<PgDialect>;

/// What an operator needs to hear about a PostgreSQL failure, then the server's words.
pub(crate) fn describe(e: &sqlx::Error) -> (String, Option<Fault>) {
    let Some(d) = e.as_database_error() else { return crate::store::describe(e) };
    let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
    let (what, fault) = match code.as_str() {
        "40001" => ("a serialization failure (another transaction changed the same rows)", Some(Fault::Serialization)),
        "40P01" => ("a deadlock with another transaction", Some(Fault::Deadlock)),
        "55P03" => ("a lock could not be taken within lock_timeout", Some(Fault::LockTimeout)),
        "57014" => ("a statement was cancelled (statement_timeout)", Some(Fault::StatementTimeout)),
        "25P03" => {
            ("the server ended a transaction left idle (idle_in_transaction_session_timeout)", Some(Fault::Shutdown))
        }
        "57P01" | "57P02" => {
            ("the server ended the connection (shutdown or pg_terminate_backend)", Some(Fault::Shutdown))
        }
        "57P03" => ("the server is starting up or shutting down", Some(Fault::Shutdown)),
        "53300" => ("the server has too many connections", Some(Fault::TooManyConnections)),
        "53100" => ("the database server's disk is full", None),
        "25006" => ("the database is read-only (a standby, or default_transaction_read_only)", None),
        "42501" => ("permission denied to the database user", None),
        "3D000" => ("the database does not exist", None),
        "28P01" | "28000" => ("the server refused the user or password", None),
        "42P01" | "42703" => ("the schema is not what this spindown expects (a table or column is missing)", None),
        "XX001" | "XX002" => ("the database reports corrupt data", None),
        c if c.starts_with("08") => ("the connection to the server failed", Some(Fault::Connection)),
        _ => return (format!("{} (SQLSTATE {code})", d.message()), None),
    };
    (format!("{what} ({}; SQLSTATE {code})", d.message()), fault)
}

impl SqlStore<PgDialect> {
    /// Connect to `url` (`postgres://USER:PASS@HOST:PORT/DB`) and migrate it.
    /// Several workers may do so at once: migrations take an advisory lock.
    ///
    /// # Errors
    ///
    /// The URL is not valid, the server cannot be reached or refuses the user,
    /// or a migration fails.
    pub async fn open(url: &str, options: &PgOptions) -> Result<PgStore, StoreError> {
        let bad = |message: String| StoreError::Open { path: redact(url), message, fault: None };
        let unreachable =
            |(message, fault): (String, Option<Fault>)| StoreError::Open { path: redact(url), message, fault };
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| bad(format!("not a valid postgres:// URL: {e}")))?
            .application_name(&options.application_name)
            .options(options.session())
            // A slow statement under load is not the operator's news.
            .disable_statement_logging();
        let name = format!(
            "postgres://{}@{}:{}/{}",
            connect.get_username(),
            connect.get_host(),
            connect.get_port(),
            connect.get_database().unwrap_or(connect.get_username())
        );
        // One connection first: an unreachable server or a refused user is
        // reported at once, not after the pool's acquire timeout. It runs the
        // migrations, with no statement timeout (an index on a big table).
        let no_answer = || {
            unreachable((
                format!("no answer from the server within {:?}", options.acquire_timeout),
                Some(Fault::NoAnswer),
            ))
        };
        let mut first = tokio::time::timeout(options.acquire_timeout, connect.connect())
            .await
            .map_err(|_| no_answer())?
            .map_err(|e| unreachable(describe(&e)))?;
        let migrated = async {
            sqlx::query("SET statement_timeout = 0").execute(&mut first).await?;
            sqlx::migrate!("./migrations/postgres").run_direct(&mut first).await?;
            Ok::<(), sqlx::Error>(())
        }
        .await;
        let _ = first.close().await;
        if let Err(e) = migrated {
            return Err(match describe(&e) {
                (message, Some(fault)) => unreachable((message, Some(fault))),
                (message, None) => StoreError::Migrate(message),
            });
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect);
        Ok(SqlStore::new(pool.clone(), pool, PgDialect { name }))
    }

    /// The pool, for the statements of other layers built on this store.
    pub fn pool(&self) -> &PgPool {
        &self.writer
    }
}

/// `url` with its password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

include!(concat!(env!("OUT_DIR"), "/postgres_queries.rs"));

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(redact("postgres://me:secret@db:5432/x"), "postgres://me:***@db:5432/x");
        assert_eq!(redact("postgres://me@db/x"), "postgres://me@db/x");
        assert_eq!(redact("postgres://db/x"), "postgres://db/x");
    }
}
