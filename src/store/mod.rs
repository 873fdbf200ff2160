//! Storage: the connection (SQLite or PostgreSQL), migrations, and the queries
//! the API needs. SQL is the only source of truth.

pub mod bulk;
pub mod dashboard;
pub mod duplicates;
pub mod entities;
pub mod escalations;
pub mod hotspots;
pub mod intake;
pub mod intake_pg;
pub mod intake_sqlite;
pub mod open311;
pub mod outbox;
pub mod pages;
pub mod pg_lanes;
pub mod pgcopy;
pub mod reply_push;
pub mod routing;
pub mod sqlite_scan;
pub mod stats;
pub mod tickets;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::PgPool;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, SqlErr, Statement, TransactionTrait,
};
use tokio::sync::{Mutex, MutexGuard};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// The database could not be reached or is refusing work for now (no
    /// connection, a connection cut by a restart, a full disk, a locked
    /// SQLite file): the request may succeed if retried shortly.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Db(e) if db_unavailable(e))
    }

    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Db(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A raw sqlx error as a store error, kept whole (not flattened to text), so
/// that a lost connection is still told apart as "unavailable" (503).
pub(crate) fn sqlx_error(e: sea_orm::sqlx::Error) -> StoreError {
    StoreError::Db(sea_orm::DbErr::Query(sea_orm::RuntimeErr::SqlxError(
        std::sync::Arc::new(e),
    )))
}

/// A SQLite result code (extended or primary) worth a retry shortly: busy,
/// locked, I/O error, full, cannot open (the primary code is the low byte).
pub(crate) fn sqlite_unavailable(code: i64) -> bool {
    matches!(code & 0xff, 5 | 6 | 10 | 13 | 14)
}

/// See [`StoreError::is_unavailable`].
pub fn db_unavailable(e: &DbErr) -> bool {
    use sea_orm::sqlx::Error as X;
    let sqlx = match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(sea_orm::RuntimeErr::SqlxError(x))
        | DbErr::Query(sea_orm::RuntimeErr::SqlxError(x)) => x,
        _ => return false,
    };
    match sqlx.as_ref() {
        X::Io(_) | X::Tls(_) | X::Protocol(_) | X::PoolTimedOut | X::PoolClosed => true,
        X::WorkerCrashed => true,
        X::Database(d) => {
            let code = d.code().unwrap_or_default();
            // PostgreSQL: 08 connection exception, 53 insufficient
            // resources (disk full, out of memory, too many connections),
            // 57 operator intervention (shutdown, restart), 58 system error.
            // SQLite: see `sqlite_unavailable`.
            if code.len() == 5 && code.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                matches!(&code[..2], "08" | "53" | "57" | "58")
            } else {
                code.parse::<i64>().is_ok_and(sqlite_unavailable)
            }
        }
        _ => false,
    }
}

/// The database handle shared by every request.
#[derive(Clone)]
pub struct Store {
    pub db: DatabaseConnection,
    /// SQLite allows one writer: serialising writers in-process turns
    /// "database is locked" retries into a short queue.
    write_lock: Option<Arc<Mutex<()>>>,
    /// PostgreSQL only: a small pool whose sessions commit asynchronously,
    /// for allocating ticket numbers (see `intake_pg`).
    pub(crate) alloc_db: Option<PgPool>,
    /// PostgreSQL only: the sessions that write registered tickets (see
    /// `intake_pg`).
    intake_db: Option<PgPool>,
    /// PostgreSQL only: the intake writers' own sessions (see `pg_lanes`).
    pg_lanes: Option<Arc<pg_lanes::Lanes>>,
    /// SQLite only: the connection that registers tickets (see
    /// `intake_sqlite`).
    sqlite_writer: Option<Arc<intake_sqlite::SqliteWriter>>,
}

/// A write transaction, holding the SQLite write lock while it lives.
pub struct WriteTx<'a> {
    pub txn: DatabaseTransaction,
    _guard: Option<MutexGuard<'a, ()>>,
}

impl WriteTx<'_> {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }
}

/// The connection options of the intake's PostgreSQL sessions (see
/// `intake_pg`): its session settings, and asynchronous commit for the
/// number-allocation sessions.
fn intake_options(url: &str, asynchronous: bool) -> StoreResult<PgConnectOptions> {
    let mut connect: PgConnectOptions = url
        .parse()
        .map_err(|e| DbErr::Custom(format!("database.url: {e}")))?;
    connect = connect.options(intake_pg::SESSION_OPTIONS);
    if asynchronous {
        connect = connect.options([("synchronous_commit", "off")]);
    }
    Ok(connect)
}

/// A pool of the intake's PostgreSQL sessions, for registrations outside the
/// intake writers (the demo, tests; the writers keep sessions of their own,
/// see `pg_lanes`). A connection is used without the round trip that tests
/// it, unless it has lain idle for a second or more: under load none has,
/// and after an outage the ones the database dropped meanwhile are found dead
/// and replaced before a batch is put on them. (sqlx still tests each one
/// when it comes back to the pool.)
async fn intake_pool(connect: PgConnectOptions) -> StoreResult<PgPool> {
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= pg_lanes::IDLE_CHECK {
                    sea_orm::sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_with(connect)
        .await
        .map_err(|e| StoreError::Db(DbErr::Conn(sea_orm::RuntimeErr::SqlxError(Arc::new(e)))))
}

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`).
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Store> {
        let sqlite = url.starts_with("sqlite:");
        if sqlite && sqlite_path(url).is_none() {
            // Every pooled connection would open a database of its own.
            return Err(StoreError::Db(DbErr::Custom(
                "database.url: SQLite needs a database file, not an in-memory database".into(),
            )));
        }
        if sqlite
            && let Some(path) = sqlite_path(url)
            && let Some(parent) = std::path::Path::new(&path).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", parent.display())))?;
        }
        let mut opt = ConnectOptions::new(url.to_owned());
        opt.max_connections(max_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false);
        // JIT compilation costs more than it saves on the short queries a
        // ticket service runs (it once took half a second per export page).
        opt.map_sqlx_postgres_opts(|o| o.options([("jit", "off")]));
        opt.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .create_if_missing(true)
                // A multi-row INSERT keeps a statement journal to undo itself
                // if a later row fails; in a temporary file that is a write
                // system call per page, in memory it is a copy. A larger page
                // cache (32 MiB, the default is 2) keeps the hot index pages
                // of a busy day from being read back from the OS.
                .pragma("temp_store", "memory")
                .pragma("cache_size", "-32768")
        });
        let db = Database::connect(opt).await?;
        let (alloc_db, intake_db, pg_lanes) = if db.get_database_backend() == DbBackend::Postgres {
            // The intake's sessions (`intake_pg`): generic plans, never a
            // sequential scan. Number allocation commits asynchronously: WAL
            // is flushed in order, so a committed ticket makes its number's
            // allocation durable too, and an allocation lost in a crash was
            // never used.
            let (alloc, intake) = (intake_options(url, true)?, intake_options(url, false)?);
            (
                Some(intake_pool(alloc.clone()).await?),
                Some(intake_pool(intake.clone()).await?),
                Some(Arc::new(pg_lanes::Lanes::new(alloc, intake))),
            )
        } else {
            (None, None, None)
        };
        Ok(Store {
            db,
            write_lock: sqlite.then(|| Arc::new(Mutex::new(()))),
            sqlite_writer: sqlite_path(url)
                .filter(|_| sqlite)
                .map(|p| Arc::new(intake_sqlite::SqliteWriter::new(p.into()))),
            alloc_db,
            intake_db,
            pg_lanes,
        })
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Applies pending migrations. On PostgreSQL an advisory lock keeps
    /// instances that start together from migrating at once.
    pub async fn migrate(&self) -> StoreResult<()> {
        if self.backend() == DbBackend::Postgres {
            let txn = self.db.begin().await?;
            txn.execute_unprepared("SELECT pg_advisory_xact_lock(12345001)")
                .await?;
            Migrator::up(&txn, None).await?;
            txn.commit().await?;
        } else {
            Migrator::up(&self.db, None).await?;
        }
        Ok(())
    }

    /// SQLite: waits for and holds the in-process write lock (`None` on
    /// PostgreSQL).
    pub(crate) async fn lock_writes(&self) -> Option<MutexGuard<'_, ()>> {
        match &self.write_lock {
            Some(l) => Some(l.lock().await),
            None => None,
        }
    }

    pub async fn begin_write(&self) -> Result<WriteTx<'_>, DbErr> {
        let guard = self.lock_writes().await;
        let txn = self.db.begin().await?;
        Ok(WriteTx { txn, _guard: guard })
    }

    pub async fn ping(&self) -> Result<(), DbErr> {
        self.db
            .query_one_raw(Statement::from_string(self.backend(), "SELECT 1"))
            .await
            .map(|_| ())
    }
}

impl Store {
    /// The SQLite database's file (`Store::connect` refuses an in-memory
    /// database), for work done on a connection of its own; an error on
    /// PostgreSQL.
    pub(crate) async fn sqlite_file_required(&self) -> StoreResult<std::path::PathBuf> {
        self.sqlite_file()
            .await?
            .ok_or_else(|| StoreError::Corrupt("not a SQLite database file".into()))
    }

    /// The SQLite database's file, as SQLite itself reports it (`None` on
    /// PostgreSQL and for an in-memory database).
    pub async fn sqlite_file(&self) -> StoreResult<Option<std::path::PathBuf>> {
        if self.backend() != DbBackend::Sqlite {
            return Ok(None);
        }
        let rows = self
            .db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA database_list",
            ))
            .await?;
        for r in rows {
            if r.try_get_by_index::<String>(1)? == "main" {
                let file: String = r.try_get_by_index(2)?;
                return Ok((!file.is_empty()).then(|| file.into()));
            }
        }
        Ok(None)
    }
}

fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| path.to_owned())
}

/// Positional placeholder `n` (1-based) in the backend's dialect.
/// The count a `SELECT COUNT(*) …` row holds (0 without a row).
pub(crate) fn count_of(row: Option<sea_orm::QueryResult>) -> StoreResult<u64> {
    Ok(match row {
        Some(r) => r.try_get_by_index::<i64>(0)?.max(0) as u64,
        None => 0,
    })
}

pub fn ph(backend: DbBackend, n: usize) -> String {
    match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    }
}

/// The current instant at millisecond precision: what is stored is what is
/// shown, on SQLite and PostgreSQL alike.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(3)
}
