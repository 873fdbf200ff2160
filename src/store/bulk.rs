//! Bulk loading of finished tickets with their events (the generator and the
//! 台账 importer): one transaction per batch that writes the tickets, their
//! events, their department scope and the batch's rollups together.
//! PostgreSQL uses COPY; SQLite multi-row inserts under the write lock.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

use super::entities::{ticket, ticket_event};
use super::{Store, StoreError, StoreResult};
use crate::domain::figures::{Col, Counts, Rollup, RollupKey};

/// A ticket to load: its final row (with its id), its events in order, and
/// the departments that may see it: `(department, "lead" | "co", since)`.
#[derive(Debug, Clone)]
pub struct BulkTicket {
    pub row: ticket::Model,
    pub events: Vec<ticket_event::Model>,
    pub departments: Vec<(String, &'static str, DateTime<Utc>)>,
}

pub const TICKET_COLUMNS: &[&str] = &[
    "id",
    "ticket_no",
    "query_code",
    "channel",
    "external_id",
    "category",
    "urgency",
    "title",
    "content",
    "citizen_name",
    "citizen_phone",
    "address",
    "district",
    "state",
    "resolution",
    "merged_into",
    "department",
    "co_departments",
    "created_by",
    "created_at",
    "updated_at",
    "dispatched_at",
    "signed_at",
    "replied_at",
    "closed_at",
    "sign_due_at",
    "reply_due_at",
    "next_check_at",
    "escalation_level",
    "rework_count",
    "return_count",
    "extension_count",
    "final_dispatch",
    "reply_content",
    "reply_resolved",
    "satisfaction",
    "version",
];

pub(super) const EVENT_COLUMNS: &[&str] = &[
    "ticket_id",
    "at",
    "actor",
    "kind",
    "from_state",
    "to_state",
    "department",
    "payload",
];

const SCOPE_COLUMNS: &[&str] = &["ticket_id", "department", "role", "since", "state"];

/// One typed cell, written as a bound value (SQLite) or in COPY's binary
/// format, which needs each integer at its column's width.
pub(super) enum Cell<'a> {
    /// `bigint`
    Int(i64),
    /// `integer`
    Int4(i32),
    /// `smallint`
    Int2(i16),
    Text(&'a str),
    Bool(bool),
    Time(DateTime<Utc>),
    Null,
}

pub(super) fn opt_text(s: &Option<String>) -> Cell<'_> {
    s.as_deref().map_or(Cell::Null, Cell::Text)
}

fn opt_time(t: Option<DateTime<Utc>>) -> Cell<'static> {
    t.map_or(Cell::Null, Cell::Time)
}

pub(super) fn ticket_cells(t: &ticket::Model) -> [Cell<'_>; 37] {
    [
        Cell::Int(t.id),
        Cell::Text(&t.ticket_no),
        Cell::Text(&t.query_code),
        Cell::Text(&t.channel),
        opt_text(&t.external_id),
        Cell::Text(&t.category),
        Cell::Text(&t.urgency),
        Cell::Text(&t.title),
        Cell::Text(&t.content),
        opt_text(&t.citizen_name),
        opt_text(&t.citizen_phone),
        opt_text(&t.address),
        opt_text(&t.district),
        Cell::Text(&t.state),
        opt_text(&t.resolution),
        t.merged_into.map_or(Cell::Null, Cell::Int),
        opt_text(&t.department),
        Cell::Text(&t.co_departments),
        Cell::Text(&t.created_by),
        Cell::Time(t.created_at),
        Cell::Time(t.updated_at),
        opt_time(t.dispatched_at),
        opt_time(t.signed_at),
        opt_time(t.replied_at),
        opt_time(t.closed_at),
        opt_time(t.sign_due_at),
        opt_time(t.reply_due_at),
        opt_time(t.next_check_at),
        Cell::Int2(t.escalation_level),
        Cell::Int4(t.rework_count),
        Cell::Int4(t.return_count),
        Cell::Int4(t.extension_count),
        Cell::Bool(t.final_dispatch),
        opt_text(&t.reply_content),
        t.reply_resolved.map_or(Cell::Null, Cell::Bool),
        opt_text(&t.satisfaction),
        Cell::Int4(t.version),
    ]
}

pub(super) fn event_cells(e: &ticket_event::Model) -> [Cell<'_>; 8] {
    [
        Cell::Int(e.ticket_id),
        Cell::Time(e.at),
        Cell::Text(&e.actor),
        Cell::Text(&e.kind),
        opt_text(&e.from_state),
        opt_text(&e.to_state),
        opt_text(&e.department),
        Cell::Text(&e.payload),
    ]
}

/// Rows in PostgreSQL's binary COPY format: no text to format here and
/// none to parse in the server (a `timestamptz` from text costs it about a
/// microsecond, and a ticket has ten).
struct BinaryCopy {
    buf: Vec<u8>,
}

/// 2000-01-01T00:00:00Z, PostgreSQL's epoch, in Unix microseconds.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Microseconds since PostgreSQL's epoch, rounded half to even as the
/// server rounds a text timestamp with more digits.
fn pg_micros(t: DateTime<Utc>) -> i64 {
    let nanos = i64::from(t.timestamp_subsec_nanos());
    let (mut micros, rest) = (nanos / 1000, nanos % 1000);
    if rest > 500 || (rest == 500 && micros % 2 == 1) {
        micros += 1;
    }
    t.timestamp() * 1_000_000 + micros - PG_EPOCH_MICROS
}

impl BinaryCopy {
    fn new(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity + 19);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension
        BinaryCopy { buf }
    }

    fn field(&mut self, bytes: &[u8]) {
        self.buf
            .extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(bytes);
    }

    fn row(&mut self, cells: &[Cell<'_>]) {
        self.buf
            .extend_from_slice(&(cells.len() as i16).to_be_bytes());
        for c in cells {
            match c {
                Cell::Int(i) => self.field(&i.to_be_bytes()),
                Cell::Int4(i) => self.field(&i.to_be_bytes()),
                Cell::Int2(i) => self.field(&i.to_be_bytes()),
                Cell::Text(s) => self.field(s.as_bytes()),
                Cell::Bool(b) => self.field(&[u8::from(*b)]),
                Cell::Time(t) => self.field(&pg_micros(*t).to_be_bytes()),
                Cell::Null => self.buf.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
    }
}

/// A rollup row's cells: its key, its shard when given, its counters.
pub(super) fn rollup_cells<'a>(
    cells: &mut Vec<Cell<'a>>,
    (dim, day, dept, value): &'a RollupKey,
    counts: &Counts,
    shard: Option<i16>,
) {
    cells.clear();
    cells.extend([
        Cell::Text(dim.as_str()),
        Cell::Int4(*day),
        Cell::Text(dept),
        Cell::Text(value),
    ]);
    cells.extend(shard.map(Cell::Int2));
    cells.extend(counts.0.iter().map(|v| Cell::Int(*v)));
}

/// Where a PostgreSQL bulk load puts a batch's rollup rows.
#[derive(Clone, Copy)]
enum RollupTarget {
    /// Added into `stats_daily` at this shard.
    Shard(i16),
    /// Appended to `stats_pending` under this tag.
    Pending(i16),
}

/// The rollup tables' columns: key, shard when asked, counters.
fn rollup_columns(shard: bool) -> Vec<&'static str> {
    ["dim", "day", "department", "value"]
        .into_iter()
        .chain(shard.then_some("shard"))
        .chain(Col::ALL.iter().map(|c| c.name()))
        .collect()
}

/// Adds `rollup` into `stats_daily` at `shard`: COPY into a scratch table,
/// then one upsert from it (a VALUES list of thousands of rows costs more to
/// parse than to apply).
async fn upsert_rollup_pg(
    tx: &mut sea_orm::sqlx::Transaction<'_, sea_orm::sqlx::Postgres>,
    rollup: &Rollup,
    shard: i16,
) -> StoreResult<()> {
    let stats: Vec<_> = rollup.iter().filter(|(_, c)| !c.is_zero()).collect();
    if stats.is_empty() {
        return Ok(());
    }
    let cols = rollup_columns(false);
    let exec = |sql: String| sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(sql));
    exec(
        "CREATE TEMPORARY TABLE IF NOT EXISTS stats_load \
          (LIKE stats_daily INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            .to_owned(),
    )
    .execute(&mut **tx)
    .await
    .map_err(sqlx_err)?;
    let mut cells = Vec::with_capacity(cols.len());
    copy(tx, "stats_load", &cols, stats, |out, (key, counts)| {
        rollup_cells(&mut cells, key, counts, None);
        out.row(&cells);
    })
    .await?;
    exec(format!(
        "INSERT INTO stats_daily ({0}, shard) SELECT {0}, {2} FROM stats_load \
         ORDER BY dim, day, department, value{1}",
        cols.join(", "),
        super::stats::add_on_conflict(),
        shard
    ))
    .execute(&mut **tx)
    .await
    .map_err(sqlx_err)?;
    Ok(())
}

fn sqlx_err(e: sea_orm::sqlx::Error) -> StoreError {
    StoreError::Db(sea_orm::DbErr::Custom(format!("bulk load: {e}")))
}

/// Partial indexes a bulk load keeps up to date row by row rather than
/// rebuilding after it: few rows qualify (open, escalated or merged
/// tickets), so keeping them costs little, while each rebuild scans the
/// whole tickets table (about a second per index after 1 M tickets).
const KEPT_DURING_LOAD: &[&str] = &[
    "idx_tickets_next_check",
    "idx_tickets_escalated",
    "idx_tickets_merged_into",
    "idx_tickets_merged_by_creation",
];

impl Store {
    /// Ticket ids for `n` new tickets, taken from the table's own sequence
    /// on PostgreSQL (so live registrations never collide with them), or
    /// after the largest id on SQLite (the caller holds no lock: use the ids
    /// in the next `bulk_insert` only, which takes the write lock and fails
    /// on a collision rather than overwrite).
    pub async fn reserve_ticket_ids(&self, n: usize) -> StoreResult<Vec<i64>> {
        let b = self.backend();
        if n == 0 {
            return Ok(Vec::new());
        }
        if b == DbBackend::Postgres {
            // The sequence's name as a constant of the statement: written as
            // `nextval(pg_get_serial_sequence(…))` the catalogue look-up ran
            // once per id (6 µs each, 5.9 s of a 1 M import; nextval alone
            // costs 0.2 µs).
            let row = self
                .db
                .query_one_raw(Statement::from_string(
                    b,
                    "SELECT quote_literal(pg_get_serial_sequence('tickets', 'id'))".to_owned(),
                ))
                .await?;
            let seq: String = row
                .map(|r| r.try_get_by_index::<Option<String>>(0))
                .transpose()?
                .flatten()
                .ok_or_else(|| StoreError::Corrupt("tickets.id has no sequence".into()))?;
            let rows = self
                .db
                .query_all_raw(Statement::from_string(
                    b,
                    format!("SELECT nextval({seq}::regclass) FROM generate_series(1, {n})"),
                ))
                .await?;
            rows.iter()
                .map(|r| r.try_get_by_index::<i64>(0).map_err(StoreError::from))
                .collect()
        } else {
            let row = self
                .db
                .query_one_raw(Statement::from_string(
                    b,
                    "SELECT COALESCE(MAX(id), 0) FROM tickets".to_owned(),
                ))
                .await?;
            let max: i64 = row.map(|r| r.try_get_by_index(0)).transpose()?.unwrap_or(0);
            Ok((1..=n as i64).map(|i| max + i).collect())
        }
    }

    /// Writes `batch` and adds `rollup` (the batch's figures) in one
    /// transaction: all of it or nothing.
    pub async fn bulk_insert(&self, batch: &[BulkTicket], rollup: &Rollup) -> StoreResult<()> {
        self.bulk_insert_sharded(batch, rollup, 0).await
    }

    /// [`Store::bulk_insert`] adding the rollups to `shard` (PostgreSQL;
    /// SQLite has one writer and uses shard 0): concurrent loaders on
    /// different shards never wait on one another's rollup rows.
    pub async fn bulk_insert_sharded(
        &self,
        batch: &[BulkTicket],
        rollup: &Rollup,
        shard: i16,
    ) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        match self.backend() {
            DbBackend::Postgres => {
                self.bulk_insert_pg(batch, rollup, RollupTarget::Shard(shard))
                    .await
            }
            _ => self.bulk_insert_sqlite(batch, rollup).await,
        }
    }

    /// PostgreSQL: [`Store::bulk_insert`] with the batch's rollup rows
    /// appended to `stats_pending` under `tag` (figures count them there),
    /// for [`Store::fold_pending`] to add into `stats_daily` once at the
    /// load's end.
    pub async fn bulk_insert_pending(
        &self,
        batch: &[BulkTicket],
        rollup: &Rollup,
        tag: i16,
    ) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        if self.backend() != DbBackend::Postgres {
            return Err(StoreError::Corrupt(
                "pending rollups exist on PostgreSQL only".into(),
            ));
        }
        self.bulk_insert_pg(batch, rollup, RollupTarget::Pending(tag))
            .await
    }

    /// Tags for [`Store::bulk_insert_pending`] that no pending row carries:
    /// `n` of them from 1000 (below are the intake writers' live rows, see
    /// [`Store::fold_live_pending`]), above any in use (rows left by a load that stopped
    /// before its end keep counting, and are never taken for this one's).
    pub async fn pending_tags(&self, n: usize) -> StoreResult<Vec<i16>> {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT CAST(COALESCE(MAX(shard), 999) AS INTEGER) FROM stats_pending \
                 WHERE shard >= 1000"
                    .to_owned(),
            ))
            .await?;
        let top: i32 = row
            .map(|r| r.try_get_by_index(0))
            .transpose()?
            .unwrap_or(999);
        (1..=n as i32)
            .map(|i| {
                i16::try_from(top + i)
                    .map_err(|_| StoreError::Conflict("too many unfinished bulk loads".into()))
            })
            .collect()
    }

    /// Adds `total` (the sum of the batches a load appended under `tags`)
    /// into `stats_daily` at `shard` and removes those pending rows, in one
    /// transaction: figures see the rows in one table or the other, never
    /// both or neither.
    pub async fn fold_pending(&self, total: &Rollup, tags: &[i16], shard: i16) -> StoreResult<()> {
        let pool = self.db.get_postgres_connection_pool();
        let mut tx = pool.begin().await.map_err(sqlx_err)?;
        upsert_rollup_pg(&mut tx, total, shard).await?;
        // Readers wait for the commit (moments): TRUNCATE gives the space
        // back at once, where DELETE would leave dead rows every figure
        // scans until a vacuum. Another load's rows are kept.
        sea_orm::sqlx::query("LOCK TABLE stats_pending IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(sqlx_err)?;
        let tags: Vec<i16> = tags.to_vec();
        let others: bool = sea_orm::sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM stats_pending WHERE shard <> ALL($1))",
        )
        .bind(&tags)
        .fetch_one(&mut *tx)
        .await
        .map_err(sqlx_err)?;
        if others {
            sea_orm::sqlx::query("DELETE FROM stats_pending WHERE shard = ANY($1)")
                .bind(&tags)
                .execute(&mut *tx)
                .await
                .map_err(sqlx_err)?;
        } else {
            sea_orm::sqlx::query("TRUNCATE stats_pending")
                .execute(&mut *tx)
                .await
                .map_err(sqlx_err)?;
        }
        tx.commit().await.map_err(sqlx_err)?;
        Ok(())
    }

    async fn bulk_insert_pg(
        &self,
        batch: &[BulkTicket],
        rollup: &Rollup,
        target: RollupTarget,
    ) -> StoreResult<()> {
        let pool = self.db.get_postgres_connection_pool();
        let mut tx = pool.begin().await.map_err(sqlx_err)?;
        copy(&mut tx, "tickets", TICKET_COLUMNS, batch, |out, t| {
            out.row(&ticket_cells(&t.row))
        })
        .await?;
        let events = batch.iter().flat_map(|t| t.events.iter());
        copy(&mut tx, "ticket_events", EVENT_COLUMNS, events, |out, e| {
            out.row(&event_cells(e))
        })
        .await?;
        let scope = batch
            .iter()
            .flat_map(|t| t.departments.iter().map(move |d| (t, d)));
        copy(
            &mut tx,
            "ticket_departments",
            SCOPE_COLUMNS,
            scope,
            |out, (t, (d, role, since))| {
                out.row(&[
                    Cell::Int(t.row.id),
                    Cell::Text(d),
                    Cell::Text(role),
                    Cell::Time(*since),
                    Cell::Text(&t.row.state),
                ])
            },
        )
        .await?;
        match target {
            RollupTarget::Shard(shard) => upsert_rollup_pg(&mut tx, rollup, shard).await?,
            RollupTarget::Pending(tag) => {
                let cols = rollup_columns(true);
                let mut cells = Vec::with_capacity(cols.len());
                let rows = rollup.iter().filter(|(_, c)| !c.is_zero());
                copy(
                    &mut tx,
                    "stats_pending",
                    &cols,
                    rows,
                    |out, (key, counts)| {
                        rollup_cells(&mut cells, key, counts, Some(tag));
                        out.row(&cells);
                    },
                )
                .await?;
            }
        }
        tx.commit().await.map_err(sqlx_err)?;
        Ok(())
    }

    async fn bulk_insert_sqlite(&self, batch: &[BulkTicket], rollup: &Rollup) -> StoreResult<()> {
        // The file directly, under the in-process write lock: no bound value
        // is built, copied and sent to sqlx's worker thread, row by row.
        // (This blocks the task for the batch; the loaders are command-line
        // tools.)
        let file = self.sqlite_file_required().await?;
        let _guard = self.lock_writes().await;
        load_sqlite_file(&file, batch, rollup)
    }
}

impl rusqlite::ToSql for Cell<'_> {
    /// Bound as sqlx binds the same values, so rows read back the same
    /// whichever loader wrote them.
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match self {
            Cell::Int(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            Cell::Int4(i) => ToSqlOutput::Owned(Value::Integer(i64::from(*i))),
            Cell::Int2(i) => ToSqlOutput::Owned(Value::Integer(i64::from(*i))),
            Cell::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Cell::Bool(b) => ToSqlOutput::Owned(Value::Integer(i64::from(*b))),
            Cell::Time(t) => ToSqlOutput::Owned(Value::Text(
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
            )),
            Cell::Null => ToSqlOutput::Owned(Value::Null),
        })
    }
}

/// `INSERT INTO table (cols…) VALUES (?1, …)`, for rusqlite.
pub(super) fn insert_statement(table: &str, cols: &[&str]) -> String {
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        cols.join(", "),
        marks.join(", ")
    )
}

/// Adds one row of [`rollup_cells`] (with its shard) to `stats_daily`, for
/// rusqlite.
pub(super) fn rollup_upsert_sqlite() -> String {
    let cols: Vec<&str> = ["dim", "day", "department", "value", "shard"]
        .into_iter()
        .chain(Col::ALL.iter().map(|c| c.name()))
        .collect();
    format!(
        "{}{}",
        insert_statement("stats_daily", &cols),
        super::stats::add_on_conflict()
    )
}

/// [`Store::bulk_insert`] into a SQLite file through rusqlite: one
/// immediate transaction, one prepared statement per table, a row per
/// execution.
fn load_sqlite_file(
    path: &std::path::Path,
    batch: &[BulkTicket],
    rollup: &Rollup,
) -> StoreResult<()> {
    let db = |e: rusqlite::Error| StoreError::Db(sea_orm::DbErr::Custom(format!("bulk load: {e}")));
    let mut conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(db)?;
    // As the pool's connections: sqlx turns foreign keys on.
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL")
        .map_err(db)?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db)?;
    {
        let mut st = tx
            .prepare(&insert_statement("tickets", TICKET_COLUMNS))
            .map_err(db)?;
        for t in batch {
            st.execute(rusqlite::params_from_iter(ticket_cells(&t.row).iter()))
                .map_err(db)?;
        }
        let mut st = tx
            .prepare(&insert_statement("ticket_events", EVENT_COLUMNS))
            .map_err(db)?;
        for e in batch.iter().flat_map(|t| t.events.iter()) {
            st.execute(rusqlite::params_from_iter(event_cells(e).iter()))
                .map_err(db)?;
        }
        let mut st = tx
            .prepare(&insert_statement("ticket_departments", SCOPE_COLUMNS))
            .map_err(db)?;
        for t in batch {
            for (d, role, since) in &t.departments {
                st.execute(rusqlite::params_from_iter(
                    [
                        Cell::Int(t.row.id),
                        Cell::Text(d),
                        Cell::Text(role),
                        Cell::Time(*since),
                        Cell::Text(&t.row.state),
                    ]
                    .iter(),
                ))
                .map_err(db)?;
            }
        }
        let mut st = tx.prepare(&rollup_upsert_sqlite()).map_err(db)?;
        let mut cells = Vec::new();
        for (key, counts) in rollup.iter().filter(|(_, c)| !c.is_zero()) {
            rollup_cells(&mut cells, key, counts, Some(0));
            st.execute(rusqlite::params_from_iter(cells.iter()))
                .map_err(db)?;
        }
    }
    tx.commit().map_err(db)
}

/// Bytes of COPY data sent at a time: the buffer is reused instead of a
/// batch-sized one being allocated (and faulted in page by page) for every
/// batch, and the server reads rows while the next ones are encoded.
const COPY_CHUNK: usize = 1 << 20;

/// `COPY table (cols) FROM STDIN` in binary, `write` encoding each item as
/// a row; nothing is sent without items.
async fn copy<T>(
    tx: &mut sea_orm::sqlx::Transaction<'_, sea_orm::sqlx::Postgres>,
    table: &str,
    cols: &[&str],
    items: impl IntoIterator<Item = T>,
    mut write: impl FnMut(&mut BinaryCopy, T),
) -> StoreResult<()> {
    let mut items = items.into_iter().peekable();
    if items.peek().is_none() {
        return Ok(());
    }
    let mut c = tx
        .copy_in_raw(&format!(
            "COPY {table} ({}) FROM STDIN WITH (FORMAT binary)",
            cols.join(", ")
        ))
        .await
        .map_err(sqlx_err)?;
    let mut out = BinaryCopy::new(COPY_CHUNK + 64 * 1024);
    for item in items {
        write(&mut out, item);
        if out.buf.len() >= COPY_CHUNK {
            c.send(out.buf.as_slice()).await.map_err(sqlx_err)?;
            out.buf.clear();
        }
    }
    out.buf.extend_from_slice(&(-1i16).to_be_bytes());
    c.send(out.buf.as_slice()).await.map_err(sqlx_err)?;
    c.finish().await.map_err(sqlx_err)?;
    Ok(())
}

impl Store {
    /// The identities (`channel` U+0001 `external_id`) among `pairs` that
    /// exist already.
    pub async fn existing_external_ids(
        &self,
        pairs: &[(String, String)],
    ) -> StoreResult<Vec<String>> {
        let b = self.backend();
        let mut out = Vec::new();
        for chunk in pairs.chunks(5000) {
            let mut rows = Vec::with_capacity(chunk.len());
            let mut values = Vec::with_capacity(chunk.len() * 2);
            for (i, (channel, external)) in chunk.iter().enumerate() {
                rows.push(match b {
                    DbBackend::Postgres => format!("(${}, ${})", 2 * i + 1, 2 * i + 2),
                    _ => "(?, ?)".to_owned(),
                });
                values.push(sea_orm::Value::from(channel.clone()));
                values.push(sea_orm::Value::from(external.clone()));
            }
            let sql = format!(
                "SELECT channel, external_id FROM tickets WHERE (channel, external_id) IN (VALUES {})",
                rows.join(", ")
            );
            for r in self
                .db
                .query_all_raw(Statement::from_sql_and_values(b, sql, values))
                .await?
            {
                let channel: String = r.try_get_by_index(0)?;
                let external: String = r.try_get_by_index(1)?;
                out.push(format!("{channel}\u{1}{external}"));
            }
        }
        Ok(out)
    }

    /// Drops the non-unique indexes of the bulk-loaded tables (but those of
    /// [`KEPT_DURING_LOAD`]) and returns
    /// their definitions, for [`Store::create_indexes`] after the load.
    pub async fn drop_secondary_indexes(&self) -> StoreResult<Vec<(String, String)>> {
        let b = self.backend();
        let sql = if b == DbBackend::Postgres {
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() \
             AND tablename IN ('tickets', 'ticket_events', 'ticket_departments') \
             AND indexdef NOT LIKE 'CREATE UNIQUE%'"
        } else {
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
             AND tbl_name IN ('tickets', 'ticket_events', 'ticket_departments') \
             AND sql NOT LIKE 'CREATE UNIQUE%'"
        };
        let mut indexes = Vec::new();
        for r in self
            .db
            .query_all_raw(Statement::from_string(b, sql.to_owned()))
            .await?
        {
            let name: String = r.try_get_by_index(0)?;
            if !KEPT_DURING_LOAD.contains(&name.as_str()) {
                indexes.push((name, r.try_get_by_index(1)?));
            }
        }
        for (name, _) in &indexes {
            self.db
                .execute_unprepared(&format!("DROP INDEX {name}"))
                .await?;
        }
        Ok(indexes)
    }

    /// Creates indexes from their definitions (see
    /// [`Store::drop_secondary_indexes`]).
    pub async fn create_indexes(&self, indexes: &[(String, String)]) -> StoreResult<()> {
        if self.backend() == DbBackend::Postgres && !indexes.is_empty() {
            // Two builds at a time, each on its own connection, and each with
            // room to sort in memory: with the server's default
            // `maintenance_work_mem` (64 MB) a build over millions of rows
            // sorts on disk. The events' and the scopes' indexes are built
            // and their tables analysed as one job each, largest first, so an
            // ANALYZE overlaps the other connection's builds instead of
            // waiting for them (it cannot run beside a build on its table).
            let on = |sql: &str, table: &str| sql.contains(&format!("{table} USING"));
            let mut jobs: Vec<Vec<String>> = Vec::new();
            for table in ["ticket_events", "ticket_departments"] {
                let mut job: Vec<String> = indexes
                    .iter()
                    .filter(|(_, sql)| on(sql, table))
                    .map(|(_, sql)| sql.clone())
                    .collect();
                if !job.is_empty() {
                    job.push(format!("ANALYZE {table}"));
                    jobs.push(job);
                }
            }
            jobs.extend(
                indexes
                    .iter()
                    .filter(|(_, sql)| !on(sql, "ticket_events") && !on(sql, "ticket_departments"))
                    .map(|(_, sql)| vec![sql.clone()]),
            );
            let queue = std::sync::Mutex::new(jobs.into_iter());
            let builder = || async {
                loop {
                    let next = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                    let Some(job) = next else {
                        return Ok::<(), StoreError>(());
                    };
                    for sql in job {
                        let tx = self.db.begin().await?;
                        tx.execute_unprepared("SET LOCAL maintenance_work_mem = '256MB'")
                            .await?;
                        tx.execute_unprepared(&sql).await?;
                        tx.commit().await?;
                    }
                }
            };
            futures_util::future::try_join(builder(), builder()).await?;
            self.db
                .execute_unprepared("ANALYZE tickets, stats_daily")
                .await?;
            return Ok(());
        }
        if !indexes.is_empty() {
            let file = self.sqlite_file_required().await?;
            // SQLite: a connection of its own, opened now, so it reads the
            // schema as the drops left it (an idle pool connection keeps the
            // schema it last read until its next transaction, and building an
            // index it still lists fails with "index … already exists"),
            // under the write lock. Its cache and sorts are the pool's: on a
            // 1 M import a 256 MB cache made the build slower (16.9 s against
            // 13.2–14.0 s) and a sort helper thread bought nothing.
            let _guard = self.lock_writes().await;
            let db = |e: rusqlite::Error| {
                StoreError::Db(sea_orm::DbErr::Custom(format!("index build: {e}")))
            };
            let conn = rusqlite::Connection::open_with_flags(
                &file,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(db)?;
            conn.busy_timeout(std::time::Duration::from_secs(10))
                .map_err(db)?;
            conn.execute_batch("PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY")
                .map_err(db)?;
            for (_, sql) in indexes {
                conn.execute_batch(sql).map_err(db)?;
            }
            conn.execute_batch("ANALYZE").map_err(db)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_count_microseconds_from_2000_rounding_half_to_even() {
        let t = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 1).unwrap();
        assert_eq!(pg_micros(t), 1_000_000);
        let ns = |n: i64| t + chrono::Duration::nanoseconds(n);
        assert_eq!(pg_micros(ns(1_499)), 1_000_001);
        assert_eq!(pg_micros(ns(1_500)), 1_000_002); // 1.5 µs: up to even
        assert_eq!(pg_micros(ns(2_500)), 1_000_002); // 2.5 µs: down to even
        assert_eq!(pg_micros(ns(2_501)), 1_000_003);
        let before = Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(pg_micros(before), -1_000_000);
    }

    #[test]
    fn binary_copy_frames_rows_and_nulls() {
        let mut c = BinaryCopy::new(0);
        c.row(&[
            Cell::Int2(3),
            Cell::Null,
            Cell::Text("水"),
            Cell::Bool(true),
        ]);
        let b = c.buf;
        assert_eq!(&b[..11], b"PGCOPY\n\xff\r\n\0");
        let body = &b[19..];
        let expect: Vec<u8> = [
            &4i16.to_be_bytes()[..],
            &2i32.to_be_bytes(),
            &3i16.to_be_bytes(),
            &(-1i32).to_be_bytes(),
            &3i32.to_be_bytes(),
            "水".as_bytes(),
            &1i32.to_be_bytes(),
            &[1],
        ]
        .concat();
        assert_eq!(body, expect.as_slice());
    }
}
