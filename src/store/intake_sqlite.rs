//! Ticket registration on a SQLite file: each intake batch is one immediate
//! transaction on a connection of its own (rusqlite, on a blocking thread),
//! under the store's in-process write lock.
//!
//! Why not the pool: through sqlx every statement is a message to the
//! connection's worker thread and a wake-up back, a batch's multi-row
//! statements have a different text for every batch size (each one parsed
//! and planned anew), and any pool connection may be the writer, so the page
//! cache that holds a busy day's index pages is dropped whenever another
//! connection wrote. Here each statement is prepared once per connection and
//! run once per row, the connection keeps its cache, and the values are
//! bound exactly as sqlx binds them (see `bulk::Cell`), so rows read back
//! the same whichever path wrote them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, RuntimeErr};

use super::bulk::{
    Cell, EVENT_COLUMNS, TICKET_COLUMNS, event_cells, insert_statement, opt_text, rollup_cells,
    rollup_upsert_sqlite, ticket_cells,
};
use super::duplicates::{MAX_EARLIER, Repeat, Row as Earlier, lookup_keys, match_earlier};
use super::entities::{ticket, ticket_event};
use super::tickets::{Created, answers, creation_rollup, query_code, registered_model};
use super::{Store, StoreError, StoreResult};
use crate::domain::appeal::NewAppeal;
use crate::domain::calendar::city_tz;
use crate::domain::duplicates::window_start;
use crate::domain::types::{Channel, EventKind, TicketNo, TicketState};

/// The earlier tickets a batch may repeat: by phone or address, within the
/// window, oldest first (the phone and address indexes; see the test
/// `the_repeat_look_up_reads_tickets_only_by_phone_and_address`).
pub const EARLIER_SQLITE: &str = "SELECT ticket_no, citizen_phone, address, category, title, content \
     FROM tickets \
     WHERE (citizen_phone IN (SELECT value FROM json_each(?1)) \
            OR address IN (SELECT value FROM json_each(?2))) \
       AND created_at >= ?3 AND state <> ?4 \
     ORDER BY id LIMIT ?5";

const EXISTING: &str = "SELECT id FROM tickets WHERE channel = ?1 AND external_id = ?2";

const SEQUENCE: &str = "INSERT INTO ticket_sequences (day, channel, last) VALUES (?1, ?2, ?3) \
     ON CONFLICT (day, channel) DO UPDATE SET last = ticket_sequences.last + excluded.last \
     RETURNING last";

/// The SQLite file's intake connection, opened on first use and again after
/// any error.
pub(super) struct SqliteWriter {
    path: PathBuf,
    conn: std::sync::Mutex<Option<Connection>>,
}

/// What a batch did: the tickets it created, by position in the batch, and
/// the ids of the tickets already registered under its external ids.
struct Registered {
    created: HashMap<usize, ticket::Model>,
    existing: HashMap<(Channel, String), i64>,
}

fn sqlite_err(e: rusqlite::Error) -> StoreError {
    // Read as `db_unavailable` reads sqlx's errors.
    let transient = matches!(&e, rusqlite::Error::SqliteFailure(f, _)
        if super::sqlite_unavailable(i64::from(f.extended_code)));
    let msg = format!("intake: {e}");
    StoreError::Db(if transient {
        DbErr::Conn(RuntimeErr::Internal(msg))
    } else {
        DbErr::Custom(msg)
    })
}

impl SqliteWriter {
    pub(super) fn new(path: PathBuf) -> SqliteWriter {
        SqliteWriter {
            path,
            conn: std::sync::Mutex::new(None),
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // As the pool's connections (see `Store::connect`).
        conn.execute_batch(
            "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
             PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768",
        )?;
        Ok(conn)
    }

    /// Runs one batch; the caller holds the write lock.
    fn register(&self, items: &[NewAppeal], now: DateTime<Utc>) -> StoreResult<Registered> {
        let mut slot = self
            .conn
            .lock()
            .map_err(|_| StoreError::Conflict("intake connection poisoned".into()))?;
        if slot.is_none() {
            *slot = Some(self.open().map_err(sqlite_err)?);
        }
        let conn = slot.as_mut().expect("opened above");
        let result = register_on(conn, items, now);
        if result.is_err() {
            // Whatever went wrong, the next batch starts on a new connection.
            *slot = None;
        }
        result
    }
}

fn register_on(
    conn: &mut Connection,
    items: &[NewAppeal],
    now: DateTime<Utc>,
) -> StoreResult<Registered> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;

    // Idempotency: the tickets already registered under the batch's
    // external ids; the first appeal of each new one is a candidate.
    let mut existing: HashMap<(Channel, String), i64> = HashMap::new();
    let mut first_of: HashMap<(Channel, &str), usize> = HashMap::new();
    let mut fresh: Vec<usize> = Vec::with_capacity(items.len());
    {
        let mut st = tx.prepare_cached(EXISTING).map_err(sqlite_err)?;
        for (idx, i) in items.iter().enumerate() {
            let Some(ext) = i.external_id.as_deref() else {
                fresh.push(idx);
                continue;
            };
            if first_of.contains_key(&(i.channel, ext))
                || existing.contains_key(&(i.channel, ext.to_owned()))
            {
                continue;
            }
            let id: Option<i64> = st
                .query_row(params![i.channel.as_str(), ext], |r| r.get(0))
                .optional()
                .map_err(sqlite_err)?;
            match id {
                Some(id) => {
                    existing.insert((i.channel, ext.to_owned()), id);
                }
                None => {
                    first_of.insert((i.channel, ext), idx);
                    fresh.push(idx);
                }
            }
        }
    }
    let fresh_items: Vec<&NewAppeal> = fresh.iter().map(|i| &items[*i]).collect();

    // Possible repeats (重复件).
    let (phones, addresses) = lookup_keys(&fresh_items);
    let mut earlier: Vec<Earlier> = Vec::new();
    if !phones.is_empty() || !addresses.is_empty() {
        let json = |v: &[&str]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let mut st = tx.prepare_cached(EARLIER_SQLITE).map_err(sqlite_err)?;
        let rows = st
            .query_map(
                params![
                    json(&phones),
                    json(&addresses),
                    Cell::Time(window_start(now)),
                    TicketState::Merged.as_str(),
                    MAX_EARLIER as i64,
                ],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .map_err(sqlite_err)?;
        for row in rows {
            earlier.push(row.map_err(sqlite_err)?);
        }
    }
    let repeats = match_earlier(&fresh_items, &earlier);

    // Daily sequence numbers, one upsert per channel.
    let day = now.with_timezone(&city_tz()).date_naive();
    let day_key = day.format("%Y%m%d").to_string();
    let mut per_channel: Vec<(Channel, i64)> = Vec::new();
    for i in &fresh_items {
        match per_channel.iter_mut().find(|(c, _)| *c == i.channel) {
            Some((_, n)) => *n += 1,
            None => per_channel.push((i.channel, 1)),
        }
    }
    let mut next_seq: HashMap<Channel, i64> = HashMap::new();
    {
        let mut st = tx.prepare_cached(SEQUENCE).map_err(sqlite_err)?;
        for (ch, n) in &per_channel {
            let last: i64 = st
                .query_row(params![day_key, ch.as_str(), n], |r| r.get(0))
                .map_err(sqlite_err)?;
            if last > 999_999 {
                return Err(StoreError::Conflict(format!(
                    "the daily sequence for {ch} on {day_key} is exhausted"
                )));
            }
            next_seq.insert(*ch, last - n + 1);
        }
    }

    // The tickets and their `created` events, a row per execution.
    let mut created: HashMap<usize, ticket::Model> = HashMap::with_capacity(fresh.len());
    let mut numbers: Vec<String> = Vec::with_capacity(fresh.len());
    {
        let cols: Vec<&str> = TICKET_COLUMNS[1..]
            .iter()
            .copied()
            .chain(["possible_duplicate_of"])
            .collect();
        let mut tickets = tx
            .prepare_cached(&insert_statement("tickets", &cols))
            .map_err(sqlite_err)?;
        let mut events = tx
            .prepare_cached(&insert_statement("ticket_events", EVENT_COLUMNS))
            .map_err(sqlite_err)?;
        for (k, (idx, i)) in fresh.iter().zip(&fresh_items).enumerate() {
            let seq = next_seq
                .get_mut(&i.channel)
                .ok_or_else(|| StoreError::Corrupt("no sequence for a channel".into()))?;
            let no = TicketNo::new(day, i.channel, *seq as u32)
                .as_str()
                .to_owned();
            *seq += 1;
            let dup = match &repeats[k] {
                Some(Repeat::Stored(n)) => Some(n.clone()),
                Some(Repeat::InBatch(j)) => numbers.get(*j).cloned(),
                None => None,
            };
            numbers.push(no.clone());
            let mut t = registered_model(0, no, query_code(), i, now, dup)?;
            let cells = ticket_cells(&t);
            tickets
                .execute(rusqlite::params_from_iter(
                    cells[1..]
                        .iter()
                        .chain([opt_text(&t.possible_duplicate_of)].iter()),
                ))
                .map_err(sqlite_err)?;
            t.id = tx.last_insert_rowid();
            let event = ticket_event::Model {
                id: 0,
                ticket_id: t.id,
                at: now,
                actor: i.created_by.clone(),
                kind: EventKind::Created.as_str().to_owned(),
                from_state: None,
                to_state: Some(TicketState::Registered.as_str().to_owned()),
                department: None,
                payload: serde_json::json!({
                    "ticket_no": t.ticket_no,
                    "channel": i.channel,
                    "category": i.category,
                    "urgency": i.urgency,
                })
                .to_string(),
            };
            events
                .execute(rusqlite::params_from_iter(event_cells(&event).iter()))
                .map_err(sqlite_err)?;
            created.insert(*idx, t);
        }
    }

    // What the batch adds to the figures (受理量), in the one shard SQLite
    // keeps.
    {
        let rollup = creation_rollup(fresh_items.iter().copied(), now);
        let mut st = tx
            .prepare_cached(&rollup_upsert_sqlite())
            .map_err(sqlite_err)?;
        let mut cells = Vec::new();
        for (key, counts) in rollup.iter().filter(|(_, c)| !c.is_zero()) {
            rollup_cells(&mut cells, key, counts, Some(0));
            st.execute(rusqlite::params_from_iter(cells.iter()))
                .map_err(sqlite_err)?;
        }
    }
    tx.commit().map_err(sqlite_err)?;
    Ok(Registered { created, existing })
}

impl Store {
    /// The SQLite side of [`Store::create_tickets_on`] on a database file:
    /// one batch, all or nothing.
    pub(super) async fn create_batch_sqlite(
        &self,
        writer: &Arc<SqliteWriter>,
        items: &[NewAppeal],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Created>> {
        let Registered { created, existing } = {
            let _guard = self.lock_writes().await;
            let writer = writer.clone();
            let batch = items.to_vec();
            tokio::task::spawn_blocking(move || writer.register(&batch, now))
                .await
                .map_err(|e| StoreError::Conflict(format!("intake thread: {e}")))??
        };
        // Appeals registered before: their tickets as stored.
        let mut stored: HashMap<(Channel, String), ticket::Model> = HashMap::new();
        if !existing.is_empty() {
            let key_of: HashMap<i64, &(Channel, String)> =
                existing.iter().map(|(k, id)| (*id, k)).collect();
            for t in ticket::Entity::find()
                .filter(ticket::Column::Id.is_in(existing.values().copied()))
                .all(&self.db)
                .await?
            {
                if let Some(k) = key_of.get(&t.id) {
                    stored.insert((*k).clone(), t);
                }
            }
        }
        answers(items, &created, &stored)
    }
}
