//! 台账: the ledger of tickets as CSV or XLSX, and its import.
//!
//! One row per ticket: every field, the figures' timestamps and, in
//! `history`, the ticket's events as JSON, so an import rebuilds the same
//! figures. Citizen name and phone are masked unless asked otherwise.
//! Import is idempotent: a row whose `(channel, external_id)` (or, without an
//! external id, whose `ticket_no`) exists is skipped; a bad row is reported
//! by its line number and the rest go on.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, FixedOffset, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use serde_json::{Value, json};

use crate::domain::calendar::city_tz;
use crate::domain::figures::{
    FastRollup, HistoryEvent, Period, Rollup, history_facts, history_reads_payload,
};
use crate::domain::lifecycle::Rules;
use crate::domain::types::{
    Category, Channel, DepartmentCode, EventKind, Resolution, Satisfaction, TicketNo, TicketState,
    Urgency, mask_name, mask_phone,
};
use crate::store::bulk::BulkTicket;
use crate::store::entities::{ticket, ticket_event};
use crate::store::stats::dims_of;
use crate::store::tickets::to_domain;
use crate::store::{Store, StoreError, StoreResult};

/// The ledger's columns, in order.
pub const COLUMNS: &[&str] = &[
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
    "escalation_level",
    "rework_count",
    "return_count",
    "extension_count",
    "final_dispatch",
    "reply_content",
    "reply_resolved",
    "satisfaction",
    "history",
];

/// Which tickets to export: created in `period`, optionally only those a
/// department handles or handled.
#[derive(Debug, Clone)]
pub struct ExportQuery {
    pub period: Period,
    pub department: Option<String>,
    pub unmasked: bool,
}

const PAGE: u64 = 5000;

/// Where the next page starts: after `(created_at, id)`.
pub type Cursor = Option<(DateTime<Utc>, i64)>;

impl ExportQuery {
    /// How many tickets the export will hold.
    pub async fn count(&self, store: &Store) -> StoreResult<u64> {
        let (from, to) = self.period.instants();
        let mut q = ticket::Entity::find()
            .filter(ticket::Column::CreatedAt.gte(from))
            .filter(ticket::Column::CreatedAt.lt(to));
        if let Some(d) = &self.department {
            q = q.filter(scope(d));
        }
        Ok(sea_orm::PaginatorTrait::count(q, &store.db).await?)
    }

    /// The next page of rows (cells in [`COLUMNS`] order) after `cursor`,
    /// and the cursor after it; `None` at the end.
    pub async fn page(
        &self,
        store: &Store,
        cursor: Cursor,
    ) -> StoreResult<Option<(Vec<Vec<String>>, Cursor)>> {
        let (from, to) = self.period.instants();
        let mut q = ticket::Entity::find()
            .filter(ticket::Column::CreatedAt.gte(from))
            .filter(ticket::Column::CreatedAt.lt(to));
        if let Some((at, id)) = cursor {
            // `created_at >= at` on its own lets the index range start at the
            // cursor instead of at `from` on every page.
            q = q.filter(ticket::Column::CreatedAt.gte(at)).filter(
                sea_orm::Condition::any()
                    .add(ticket::Column::CreatedAt.gt(at))
                    .add(
                        sea_orm::Condition::all()
                            .add(ticket::Column::CreatedAt.eq(at))
                            .add(ticket::Column::Id.gt(id)),
                    ),
            );
        }
        if let Some(d) = &self.department {
            q = q.filter(scope(d));
        }
        let tickets = q
            .order_by_asc(ticket::Column::CreatedAt)
            .order_by_asc(ticket::Column::Id)
            .limit(PAGE)
            .all(&store.db)
            .await?;
        let Some(last) = tickets.last() else {
            return Ok(None);
        };
        let next = Some((last.created_at, last.id));
        let ids: Vec<i64> = tickets.iter().map(|t| t.id).collect();
        let (lo, hi) = (
            ids.iter().copied().min().unwrap_or(0),
            ids.iter().copied().max().unwrap_or(0),
        );
        // Ids follow registration order, so a page's ids are usually close
        // together: a range scan is far cheaper than a list of 5,000.
        let which = if hi - lo < 4 * PAGE as i64 {
            ticket_event::Column::TicketId.between(lo, hi)
        } else {
            ticket_event::Column::TicketId.is_in(ids)
        };
        let mut events: HashMap<i64, Vec<ticket_event::Model>> = HashMap::new();
        for e in ticket_event::Entity::find()
            .filter(which)
            .order_by_asc(ticket_event::Column::TicketId)
            .order_by_asc(ticket_event::Column::Id)
            .all(&store.db)
            .await?
        {
            events.entry(e.ticket_id).or_default().push(e);
        }
        // A range may hold other tickets' events; only this page's are used.
        let merged: Vec<i64> = tickets.iter().filter_map(|t| t.merged_into).collect();
        let mut numbers: HashMap<i64, String> = HashMap::new();
        if !merged.is_empty() {
            for (id, no) in ticket::Entity::find()
                .select_only()
                .column(ticket::Column::Id)
                .column(ticket::Column::TicketNo)
                .filter(ticket::Column::Id.is_in(merged))
                .into_tuple::<(i64, String)>()
                .all(&store.db)
                .await?
            {
                numbers.insert(id, no);
            }
        }
        let rows = tickets
            .iter()
            .map(|t| {
                let evs = events.get(&t.id).map(Vec::as_slice).unwrap_or(&[]);
                row(t, evs, &numbers, self.unmasked)
            })
            .collect();
        Ok(Some((rows, next)))
    }
}

/// The export's tickets and their events, both in ticket-id order.
enum Source<'a> {
    /// Any database, through the ORM's row streams.
    Orm {
        tickets: OrmStream<'a, ticket::Model>,
        events: OrmStream<'a, ticket_event::Model>,
    },
    /// PostgreSQL: `COPY … TO STDOUT` on two connections of the pool.
    Copy {
        // The lines borrow the connections, which live in `conns`.
        tickets: crate::store::pgcopy::CopyLines<'a>,
        events: crate::store::pgcopy::CopyLines<'a>,
    },
}

type PgConn = sea_orm::sqlx::pool::PoolConnection<sea_orm::sqlx::Postgres>;

/// Two connections for the COPY streams. They carry session settings of
/// their own, so they are closed after the export, never pooled again.
async fn copy_connections(store: &Store) -> StoreResult<[PgConn; 2]> {
    let pool = store.db.get_postgres_connection_pool();
    let one = || async {
        let mut c = pool.acquire().await.map_err(crate::store::sqlx_error)?;
        c.close_on_drop();
        Ok::<_, StoreError>(c)
    };
    Ok([one().await?, one().await?])
}

type OrmStream<'a, T> =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, sea_orm::DbErr>> + 'a>>;

/// The ids of the export's tickets, as a sub-query.
fn export_ids(q: &ExportQuery) -> sea_orm::sea_query::SelectStatement {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let (from, to) = q.period.instants();
    let mut sub = Query::select();
    sub.column(ticket::Column::Id)
        .from(ticket::Entity)
        .and_where(Expr::col(ticket::Column::CreatedAt).gte(from))
        .and_where(Expr::col(ticket::Column::CreatedAt).lt(to));
    if let Some(d) = &q.department {
        sub.and_where(scope(d));
    }
    sub.to_owned()
}

impl<'a> Source<'a> {
    async fn orm(store: &'a Store, q: &ExportQuery) -> StoreResult<Source<'a>> {
        let tickets = ticket::Entity::find()
            .filter(ticket::Column::Id.in_subquery(export_ids(q)))
            .order_by_asc(ticket::Column::Id)
            .stream(&store.db)
            .await?;
        let events = ticket_event::Entity::find()
            .filter(ticket_event::Column::TicketId.in_subquery(export_ids(q)))
            .order_by_asc(ticket_event::Column::TicketId)
            .order_by_asc(ticket_event::Column::Id)
            .stream(&store.db)
            .await?;
        Ok(Source::Orm {
            tickets: Box::pin(tickets),
            events: Box::pin(events),
        })
    }

    async fn copy(conns: &'a mut [PgConn; 2], q: &ExportQuery) -> StoreResult<Source<'a>> {
        use crate::store::pgcopy::{
            CopyLines, EVENT_COLUMNS, TICKET_COLUMNS, literal, prepare, time_literal,
        };
        let (from, to) = q.period.instants();
        let mut filter = format!(
            "created_at >= {} AND created_at < {}",
            time_literal(from),
            time_literal(to)
        );
        if let Some(d) = &q.department {
            filter.push_str(&format!(
                " AND id IN (SELECT ticket_id FROM ticket_departments WHERE department = {})",
                literal(d)
            ));
        }
        let [a, b] = conns;
        prepare(a).await?;
        prepare(b).await?;
        // How the period's tickets lie among the ids: ids are given at
        // creation, so a period's tickets are mostly one run of ids.
        // `filter` holds only quoted literals (`literal`, `time_literal`).
        let (low, high, count): (Option<i64>, Option<i64>, i64) =
            sea_orm::sqlx::query_as(sea_orm::sqlx::AssertSqlSafe(format!(
                "SELECT min(id), max(id), count(*) FROM tickets WHERE {filter}"
            )))
            .fetch_one(&mut **b)
            .await
            .map_err(crate::store::sqlx_error)?;
        let tickets = CopyLines::open(
            a,
            &format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE {filter} ORDER BY id"),
        )
        .await?;
        let events = match (low, high) {
            // Where they fill at least half of their id range: one ordered
            // walk of the events' (ticket_id, id) index over the range (the
            // merge in `export_csv` skips the events of tickets outside the
            // period). For 1 M tickets out of 10 M: 6 s. The planner, which
            // cannot know the range is dense, would rather scan and sort all
            // 47 M events (23 s); this session is the export's own.
            (Some(low), Some(high)) if count.saturating_mul(2) > high - low => {
                sea_orm::sqlx::raw_sql(
                    "SET enable_seqscan = off; SET enable_bitmapscan = off; \
                     SET max_parallel_workers_per_gather = 0",
                )
                .execute(&mut **b)
                .await
                .map_err(crate::store::sqlx_error)?;
                CopyLines::open(
                    b,
                    &format!(
                        "SELECT {EVENT_COLUMNS} FROM ticket_events \
                         WHERE ticket_id BETWEEN {low} AND {high} ORDER BY ticket_id, id"
                    ),
                )
                .await?
            }
            // Otherwise each ticket's events through the same index, tickets
            // in id order: 12 s for the 1 M above. Written as `ticket_id IN
            // (…)`, the planner hashes the period's ids and scans every
            // event (25 s).
            _ => {
                let outer: Vec<String> = EVENT_COLUMNS
                    .split(", ")
                    .map(|c| format!("e.{c}"))
                    .collect();
                CopyLines::open(
                    b,
                    &format!(
                        "SELECT {} FROM (SELECT id FROM tickets WHERE {filter} ORDER BY id OFFSET 0) t \
                         CROSS JOIN LATERAL (SELECT {EVENT_COLUMNS} FROM ticket_events x \
                         WHERE x.ticket_id = t.id ORDER BY x.id OFFSET 0) e ORDER BY t.id, e.id",
                        outer.join(", ")
                    ),
                )
                .await?
            }
        };
        Ok(Source::Copy { tickets, events })
    }

    async fn next_ticket(&mut self) -> StoreResult<Option<ticket::Model>> {
        use futures_util::TryStreamExt;
        match self {
            Source::Orm { tickets, .. } => Ok(tickets.try_next().await?),
            Source::Copy { tickets, .. } => match tickets.next_line().await? {
                Some(line) => Ok(Some(crate::store::pgcopy::ticket_from_line(line)?)),
                None => Ok(None),
            },
        }
    }

    async fn next_event(&mut self) -> StoreResult<Option<ticket_event::Model>> {
        use futures_util::TryStreamExt;
        match self {
            Source::Orm { events, .. } => Ok(events.try_next().await?),
            Source::Copy { events, .. } => match events.next_line().await? {
                Some(line) => Ok(Some(crate::store::pgcopy::event_from_line(line)?)),
                None => Ok(None),
            },
        }
    }
}

impl ExportQuery {
    /// `id → ticket_no` of every ticket a ticket of the export was merged
    /// into (few: merges are rare).
    async fn merge_targets(&self, store: &Store) -> StoreResult<HashMap<i64, String>> {
        use sea_orm::sea_query::{Expr, ExprTrait, Query};
        let (from, to) = self.period.instants();
        let mut sub = Query::select();
        sub.column(ticket::Column::MergedInto)
            .from(ticket::Entity)
            .and_where(Expr::col(ticket::Column::MergedInto).is_not_null())
            .and_where(Expr::col(ticket::Column::CreatedAt).gte(from))
            .and_where(Expr::col(ticket::Column::CreatedAt).lt(to));
        if let Some(d) = &self.department {
            sub.and_where(scope(d));
        }
        Ok(ticket::Entity::find()
            .select_only()
            .column(ticket::Column::Id)
            .column(ticket::Column::TicketNo)
            .filter(ticket::Column::Id.in_subquery(sub.to_owned()))
            .into_tuple::<(i64, String)>()
            .all(&store.db)
            .await?
            .into_iter()
            .collect())
    }
}

fn scope(department: &str) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    ticket::Column::Id.in_subquery(
        Query::select()
            .column(crate::store::entities::ticket_department::Column::TicketId)
            .from(crate::store::entities::ticket_department::Entity)
            .and_where(
                Expr::col(crate::store::entities::ticket_department::Column::Department)
                    .eq(department),
            )
            .to_owned(),
    )
}

/// One ticket's ledger row, in [`COLUMNS`] order (public for the fuzz target).
pub fn row(
    t: &ticket::Model,
    events: &[ticket_event::Model],
    numbers: &HashMap<i64, String>,
    unmasked: bool,
) -> Vec<String> {
    let mut cells = Vec::with_capacity(COLUMNS.len());
    each_field(
        t,
        events,
        numbers,
        unmasked,
        &mut RowScratch::default(),
        |f| cells.push(String::from_utf8_lossy(f).into_owned()),
    );
    cells
}

/// Buffers [`each_field`] reuses from row to row.
#[derive(Default)]
struct RowScratch {
    history: Vec<u8>,
    cell: Vec<u8>,
}

/// Hands each field of a ticket's ledger row to `field`, in [`COLUMNS`]
/// order, as the UTF-8 bytes of its text: [`row`] for the API's pages and the
/// CSV writer alike, without a `String` per field for the latter.
fn each_field(
    t: &ticket::Model,
    events: &[ticket_event::Model],
    numbers: &HashMap<i64, String>,
    unmasked: bool,
    scratch: &mut RowScratch,
    mut field: impl FnMut(&[u8]),
) {
    let RowScratch { history, cell } = scratch;
    // The events as a JSON array, written straight into one buffer: strings
    // through serde_json's own escaping, no `Value` or `String` per field.
    history.clear();
    let string = |h: &mut Vec<u8>, s: &str| {
        let _ = serde_json::to_writer(&mut *h, s);
    };
    let nullable = |h: &mut Vec<u8>, v: &Option<String>| match v {
        Some(s) => string(h, s),
        None => h.extend_from_slice(b"null"),
    };
    history.push(b'[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            history.push(b',');
        }
        history.extend_from_slice(b"{\"at\":\"");
        write_time(history, e.at);
        history.extend_from_slice(b"\",\"actor\":");
        string(history, &e.actor);
        history.extend_from_slice(b",\"kind\":");
        string(history, &e.kind);
        history.extend_from_slice(b",\"from\":");
        nullable(history, &e.from_state);
        history.extend_from_slice(b",\"to\":");
        nullable(history, &e.to_state);
        history.extend_from_slice(b",\"department\":");
        nullable(history, &e.department);
        // Payloads are written in one canonical form (sorted keys, compact),
        // whichever database and statement stored them.
        history.extend_from_slice(b",\"payload\":");
        if is_canonical_json(e.payload.as_bytes()) {
            history.extend_from_slice(e.payload.as_bytes());
        } else {
            let payload = serde_json::from_str::<Value>(&e.payload).unwrap_or(Value::Null);
            let _ = serde_json::to_writer(&mut *history, &payload);
        }
        history.push(b'}');
    }
    history.push(b']');

    let mut text = |s: &str| field(s.as_bytes());
    text(&t.ticket_no);
    text(&t.query_code);
    text(&t.channel);
    text(t.external_id.as_deref().unwrap_or_default());
    text(&t.category);
    text(&t.urgency);
    text(&t.title);
    text(&t.content);
    match (&t.citizen_name, unmasked) {
        (Some(n), true) => text(n),
        (Some(n), false) => text(&mask_name(n)),
        (None, _) => text(""),
    }
    match (&t.citizen_phone, unmasked) {
        (Some(p), true) => text(p),
        (Some(p), false) => text(&mask_phone(p)),
        (None, _) => text(""),
    }
    text(t.address.as_deref().unwrap_or_default());
    text(t.district.as_deref().unwrap_or_default());
    text(&t.state);
    text(t.resolution.as_deref().unwrap_or_default());
    text(
        t.merged_into
            .and_then(|id| numbers.get(&id))
            .map(String::as_str)
            .unwrap_or_default(),
    );
    text(t.department.as_deref().unwrap_or_default());
    // `["a","b"]` → `a;b`.
    if t.co_departments == "[]" {
        text("");
    } else {
        let co: Vec<String> = serde_json::from_str(&t.co_departments).unwrap_or_default();
        text(&co.join(";"));
    }
    text(&t.created_by);
    let mut time = |v: Option<DateTime<Utc>>| {
        cell.clear();
        if let Some(v) = v {
            write_time(cell, v);
        }
        field(cell);
    };
    time(Some(t.created_at));
    time(Some(t.updated_at));
    time(t.dispatched_at);
    time(t.signed_at);
    time(t.replied_at);
    time(t.closed_at);
    time(t.sign_due_at);
    time(t.reply_due_at);
    let mut number = |n: i64| {
        cell.clear();
        let _ = std::io::Write::write_fmt(cell, format_args!("{n}"));
        field(cell);
    };
    number(t.escalation_level.into());
    number(t.rework_count.into());
    number(t.return_count.into());
    number(t.extension_count.into());
    let boolean = |b: bool| if b { "true" } else { "false" };
    field(boolean(t.final_dispatch).as_bytes());
    field(t.reply_content.as_deref().unwrap_or_default().as_bytes());
    field(t.reply_resolved.map(boolean).unwrap_or_default().as_bytes());
    field(t.satisfaction.as_deref().unwrap_or_default().as_bytes());
    field(history);
}

/// Appends one field of a CSV record (after a comma unless it is the
/// record's first) exactly as the `csv` crate's default writer does: quoted
/// when it holds a comma, a quote, CR or LF, with quotes doubled. The
/// export's rows go through here: the `csv` crate looks at every byte on its
/// own, and a row's history is a kilobyte of JSON.
fn csv_field(out: &mut Vec<u8>, first: bool, field: &[u8]) {
    if !first {
        out.push(b',');
    }
    if memchr::memchr3(b',', b'"', b'\n', field).is_none() && memchr::memchr(b'\r', field).is_none()
    {
        out.extend_from_slice(field);
        return;
    }
    out.push(b'"');
    let mut rest = field;
    while let Some(i) = memchr::memchr(b'"', rest) {
        out.extend_from_slice(&rest[..=i]);
        out.push(b'"');
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// Whether `s` is already the canonical form of its JSON (what serde_json
/// writes for the `Value` it parses: compact, object keys in ascending byte
/// order without repeats), so the export can copy it as it is instead of
/// parsing and writing it again: the events' payloads are stored that way.
/// Conservative: strings with escapes, numbers other than plain integers of
/// up to 18 digits (and `-0`), deep nesting or any whitespace answer `false`,
/// and the caller takes the slow road.
fn is_canonical_json(s: &[u8]) -> bool {
    let mut c = Canonical { s, i: 0 };
    c.value(0) && c.i == s.len()
}

struct Canonical<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Canonical<'a> {
    fn eat(&mut self, b: u8) -> bool {
        let hit = self.s.get(self.i) == Some(&b);
        self.i += usize::from(hit);
        hit
    }

    fn value(&mut self, depth: u32) -> bool {
        if depth > 32 {
            return false;
        }
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                if self.eat(b'}') {
                    return true;
                }
                let mut previous: Option<&[u8]> = None;
                loop {
                    let Some(key) = self.string() else {
                        return false;
                    };
                    if previous.is_some_and(|p| p >= key) {
                        return false;
                    }
                    previous = Some(key);
                    if !self.eat(b':') || !self.value(depth + 1) {
                        return false;
                    }
                    if self.eat(b'}') {
                        return true;
                    }
                    if !self.eat(b',') {
                        return false;
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                if self.eat(b']') {
                    return true;
                }
                loop {
                    if !self.value(depth + 1) {
                        return false;
                    }
                    if self.eat(b']') {
                        return true;
                    }
                    if !self.eat(b',') {
                        return false;
                    }
                }
            }
            Some(b'"') => self.string().is_some(),
            Some(b't') => self.word(b"true"),
            Some(b'f') => self.word(b"false"),
            Some(b'n') => self.word(b"null"),
            Some(b'-' | b'0'..=b'9') => self.integer(),
            _ => false,
        }
    }

    /// A string without escapes or control characters; its bytes.
    fn string(&mut self) -> Option<&'a [u8]> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        while let Some(&c) = self.s.get(self.i) {
            match c {
                b'"' => {
                    self.i += 1;
                    return Some(&self.s[start..self.i - 1]);
                }
                b'\\' | 0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        None
    }

    fn word(&mut self, w: &[u8]) -> bool {
        let hit = self.s[self.i..].starts_with(w);
        self.i += if hit { w.len() } else { 0 };
        hit
    }

    /// `0`, or an optional `-` and 1–18 digits without a leading zero: an
    /// integer serde_json writes back the same (`-0` becomes `-0.0`).
    fn integer(&mut self) -> bool {
        let negative = self.eat(b'-');
        let start = self.i;
        while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        let digits = &self.s[start..self.i];
        match digits {
            [] => false,
            [b'0'] => !negative,
            [b'0', ..] => false,
            _ => digits.len() <= 18,
        }
    }
}

/// Appends `t` in city time as RFC 3339, byte for byte what
/// `t.with_timezone(&city_tz()).to_rfc3339()` writes (sub-second digits in
/// groups of three, as many as needed), without a `String` or the
/// formatting machinery: an export writes about 15 per ticket.
fn write_time(out: &mut Vec<u8>, t: DateTime<Utc>) {
    let offset = city_tz().local_minus_utc();
    let nanos = t.timestamp_subsec_nanos();
    // The city's civil date and time, from the day count (H. Hinnant's
    // `civil_from_days`), without chrono's per-field accessors.
    let local = t.timestamp() + i64::from(offset);
    let (days, second_of_day) = (local.div_euclid(86_400), local.rem_euclid(86_400) as u32);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 || offset % 60 != 0 {
        out.extend_from_slice(t.with_timezone(&city_tz()).to_rfc3339().as_bytes());
        return;
    }
    let two = |out: &mut Vec<u8>, v: u32| {
        out.extend_from_slice(&[b'0' + (v / 10) as u8, b'0' + (v % 10) as u8])
    };
    let y = year as u32;
    two(out, y / 100);
    two(out, y % 100);
    out.push(b'-');
    two(out, month);
    out.push(b'-');
    two(out, day);
    out.push(b'T');
    two(out, second_of_day / 3_600);
    out.push(b':');
    two(out, second_of_day / 60 % 60);
    out.push(b':');
    two(out, second_of_day % 60);
    let (digits, mut frac) = match nanos {
        0 => (0, 0),
        n if n % 1_000_000 == 0 => (3, n / 1_000_000),
        n if n % 1_000 == 0 => (6, n / 1_000),
        n => (9, n),
    };
    if digits > 0 {
        out.push(b'.');
        let at = out.len();
        out.resize(at + digits, b'0');
        for i in (0..digits).rev() {
            out[at + i] = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
    }
    let minutes = offset.unsigned_abs() / 60;
    out.push(if offset < 0 { b'-' } else { b'+' });
    two(out, minutes / 60);
    out.push(b':');
    two(out, minutes % 60);
}

/// Tickets handed to the formatting thread at a time.
const BATCH: usize = 2000;

type Batch = crate::store::sqlite_scan::Batch;

/// Writes the whole export as CSV (with a header row) to `out`, in ticket-id
/// order, calling `progress` with the running row count.
///
/// Two streaming reads, tickets by id and their events by ticket id, are
/// merged as they arrive (no pages, no per-page event look-ups), and the rows
/// are formatted on a second thread while the first reads: the database, the
/// reading and the formatting run side by side, and memory stays flat (a few
/// batches in flight). PostgreSQL streams through `COPY … TO STDOUT`; a
/// SQLite file is read directly on a thread of its own
/// ([`crate::store::sqlite_scan`]); anything else through the ORM.
pub async fn export_csv<W: std::io::Write>(
    store: &Store,
    q: &ExportQuery,
    mut out: W,
    mut progress: impl FnMut(u64),
) -> StoreResult<u64> {
    use std::sync::mpsc;

    let io = |e: std::io::Error| StoreError::Corrupt(format!("writing the export: {e}"));
    let numbers = std::sync::Arc::new(q.merge_targets(store).await?);
    let file = store.sqlite_file().await?;
    // The formatter: batches in, CSV bytes (with their row count) out.
    let (batch_tx, batch_rx) = mpsc::sync_channel::<Batch>(4);
    let (bytes_tx, mut bytes_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Vec<u8>)>();
    let unmasked = q.unmasked;
    let formatter = std::thread::spawn(move || -> Result<(), String> {
        let mut scratch = RowScratch::default();
        for batch in batch_rx {
            let mut bytes = Vec::with_capacity(batch.len() * 2048);
            for (t, evs) in &batch {
                let mut first = true;
                each_field(t, evs, &numbers, unmasked, &mut scratch, |f| {
                    csv_field(&mut bytes, first, f);
                    first = false;
                });
                bytes.push(b'\n');
            }
            if bytes_tx.send((batch.len() as u64, bytes)).is_err() {
                break;
            }
        }
        Ok(())
    });

    let mut header = Vec::new();
    for (i, c) in COLUMNS.iter().enumerate() {
        csv_field(&mut header, i == 0, c.as_bytes());
    }
    header.push(b'\n');
    out.write_all(&header).map_err(io)?;

    let mut n: u64 = 0;
    let mut failed = None;
    let mut write = |out: &mut W, (rows, bytes): (u64, Vec<u8>)| -> StoreResult<()> {
        out.write_all(&bytes).map_err(io)?;
        n += rows;
        progress(n);
        Ok(())
    };
    if let Some(path) = file {
        let (from, to) = q.period.instants();
        let filter = crate::store::sqlite_scan::ScanFilter {
            from,
            to,
            department: q.department.clone(),
        };
        let reader = std::thread::spawn(move || {
            crate::store::sqlite_scan::scan(&path, &filter, BATCH, |b| batch_tx.send(b).is_ok())
        });
        while let Some(chunk) = bytes_rx.recv().await {
            write(&mut out, chunk)?;
        }
        match reader.join() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => failed = Some("the reader panicked".to_owned()),
        }
    } else {
        let mut conns = match store.backend() {
            sea_orm::DbBackend::Postgres => Some(copy_connections(store).await?),
            _ => None,
        };
        let mut source = match &mut conns {
            Some(conns) => Source::copy(conns, q).await?,
            None => Source::orm(store, q).await?,
        };
        let mut batch: Batch = Vec::with_capacity(BATCH);
        let mut next_event: Option<ticket_event::Model> = None;
        while let Some(t) = source.next_ticket().await? {
            let mut evs = Vec::new();
            loop {
                let e = match next_event.take() {
                    Some(e) => e,
                    None => match source.next_event().await? {
                        Some(e) => e,
                        None => break,
                    },
                };
                // Both streams run in ticket-id order; the events' may hold
                // tickets outside the export, which are passed over.
                if e.ticket_id > t.id {
                    next_event = Some(e);
                    break;
                }
                if e.ticket_id == t.id {
                    evs.push(e);
                }
            }
            batch.push((t, evs));
            if batch.len() == BATCH {
                if batch_tx.send(std::mem::take(&mut batch)).is_err() {
                    failed = Some("the formatter stopped".to_owned());
                    break;
                }
                while let Ok(chunk) = bytes_rx.try_recv() {
                    write(&mut out, chunk)?;
                }
            }
        }
        if failed.is_none() && !batch.is_empty() && batch_tx.send(batch).is_err() {
            failed = Some("the formatter stopped".to_owned());
        }
        drop(batch_tx);
        while let Some(chunk) = bytes_rx.recv().await {
            write(&mut out, chunk)?;
        }
        drop(source);
    }
    match formatter.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => failed = failed.or(Some(e)),
        Err(_) => failed = Some("the formatter panicked".to_owned()),
    }
    if let Some(e) = failed {
        return Err(StoreError::Corrupt(format!("writing the export: {e}")));
    }
    out.flush().map_err(io)?;
    Ok(n)
}

/// Writes the whole export as an XLSX workbook at `path` (constant memory:
/// rows go to a temporary file as they come).
pub async fn export_xlsx(
    store: &Store,
    q: &ExportQuery,
    path: &std::path::Path,
    mut progress: impl FnMut(u64),
) -> StoreResult<u64> {
    use rust_xlsxwriter::Workbook;
    let x =
        |e: rust_xlsxwriter::XlsxError| StoreError::Corrupt(format!("writing the workbook: {e}"));
    let mut book = Workbook::new();
    let sheet = book.add_worksheet_with_constant_memory();
    sheet.set_name("台账").map_err(x)?;
    for (c, name) in COLUMNS.iter().enumerate() {
        sheet.write_string(0, c as u16, *name).map_err(x)?;
    }
    let mut cursor = None;
    let mut n: u64 = 0;
    while let Some((rows, next)) = q.page(store, cursor).await? {
        for r in &rows {
            n += 1;
            if n >= 1_048_576 {
                return Err(StoreError::Conflict(
                    "XLSX holds at most 1,048,575 rows; export CSV or a shorter period".into(),
                ));
            }
            for (c, v) in r.iter().enumerate() {
                if !v.is_empty() {
                    // Excel caps a cell at 32,767 characters.
                    let v: String = v.chars().take(32_767).collect();
                    sheet.write_string(n as u32, c as u16, v).map_err(x)?;
                }
            }
        }
        progress(n);
        cursor = next;
    }
    book.save(path).map_err(x)?;
    Ok(n)
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: u64,
    /// Rows whose ticket is already in the database (or earlier in the file).
    pub existing: u64,
    /// `(line, reason)` of each row that was not loaded.
    pub bad: Vec<(u64, String)>,
    /// `(ticket_no, merged_into ticket_no)` whose target was not loaded yet.
    pending_merges: Vec<(String, String)>,
}

impl ImportReport {
    fn absorb(&mut self, part: ImportReport) {
        self.imported += part.imported;
        self.existing += part.existing;
        self.bad.extend(part.bad);
        self.pending_merges.extend(part.pending_merges);
    }
}

/// One parsed, valid row.
struct Parsed {
    line: u64,
    row: ticket::Model,
    events: Vec<ticket_event::Model>,
    /// The events as the figures read them, their payloads kept parsed (a
    /// second parse of every payload was ~5 % of a 1 M import's CPU).
    history: Vec<HistoryEvent>,
    merged_into_no: Option<String>,
}

/// One element of the `history` column as the import reads it: its strings
/// borrowed from the cell where they need no unescaping (a generic
/// `serde_json::Value` per event allocated every key and string, the largest
/// share of the import's parsing CPU).
#[derive(serde::Deserialize)]
struct ImportedEvent<'a> {
    #[serde(default, borrow)]
    at: Option<Text<'a>>,
    #[serde(default, borrow)]
    actor: Option<Text<'a>>,
    #[serde(default, borrow)]
    kind: Option<Text<'a>>,
    #[serde(default, borrow)]
    from: Option<Text<'a>>,
    #[serde(default, borrow)]
    to: Option<Text<'a>>,
    #[serde(default, borrow)]
    department: Option<Text<'a>>,
    #[serde(default, borrow)]
    payload: Option<&'a serde_json::value::RawValue>,
}

/// A JSON string, borrowed when it has no escapes.
struct Text<'a>(std::borrow::Cow<'a, str>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visit)
    }
}

fn parse_time(field: &str, s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::<FixedOffset>::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
        // The export writes city time, which RFC 3339 can hold only with a
        // four-digit year: 9999-12-31T23:00:00-12:00 would not come back.
        .filter(|t| (0..=9999).contains(&t.with_timezone(&city_tz()).year()))
        .ok_or_else(|| format!("`{field}` is not an RFC 3339 time: {s:?}"))
}

fn parse_opt_time(field: &str, s: &str) -> Result<Option<DateTime<Utc>>, String> {
    if s.trim().is_empty() {
        Ok(None)
    } else {
        parse_time(field, s).map(Some)
    }
}

fn parse_enum<T: std::str::FromStr>(field: &str, s: &str) -> Result<String, String> {
    s.trim()
        .parse::<T>()
        .map(|_| s.trim().to_owned())
        .map_err(|_| format!("`{field}` has an unknown value {s:?}"))
}

fn parse_opt_enum<T: std::str::FromStr>(field: &str, s: &str) -> Result<Option<String>, String> {
    if s.trim().is_empty() {
        Ok(None)
    } else {
        parse_enum::<T>(field, s).map(Some)
    }
}

fn parse_int<T: std::str::FromStr>(field: &str, s: &str) -> Result<T, String> {
    s.trim()
        .parse::<T>()
        .map_err(|_| format!("`{field}` is not a whole number: {s:?}"))
}

fn none_if_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// One ledger row as the import reads it (`get` answers a column's cell):
/// the ticket, its events, and the number of the ticket it was merged into.
/// Public for the fuzz target; the import itself calls `parse_row`.
pub fn parse_import_row(
    get: &dyn Fn(&str) -> String,
    departments: &HashSet<String>,
) -> Result<(ticket::Model, Vec<ticket_event::Model>, Option<String>), String> {
    let cells: Vec<String> = COLUMNS.iter().map(|c| get(c)).collect();
    let get = |c: &str| -> &str {
        COLUMNS
            .iter()
            .position(|x| *x == c)
            .map_or("", |i| cells[i].as_str())
    };
    parse_row(0, &get, departments).map(|p| (p.row, p.events, p.merged_into_no))
}

/// One CSV row; `get` gives a column's cell (empty when absent), borrowed
/// from the record: only what the row keeps is copied.
fn parse_row<'r>(
    line: u64,
    get: &dyn Fn(&str) -> &'r str,
    departments: &HashSet<String>,
) -> Result<Parsed, String> {
    let no = get("ticket_no");
    if TicketNo::parse(no.trim()).is_none() {
        return Err(format!("`ticket_no` is not a ticket number: {no:?}"));
    }
    let dept = |field: &str, s: &str| -> Result<Option<String>, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        if !departments.contains(s) {
            return Err(format!("`{field}`: unknown department {s:?}"));
        }
        Ok(Some(s.to_owned()))
    };
    let district = get("district");
    let district = if district.trim().is_empty() {
        None
    } else {
        Some(
            DepartmentCode::parse(district.trim())
                .map_err(|e| format!("`district`: {e}"))?
                .as_str()
                .to_owned(),
        )
    };
    let mut co = Vec::new();
    for d in get("co_departments")
        .split(';')
        .filter(|s| !s.trim().is_empty())
    {
        co.extend(dept("co_departments", d)?);
    }
    let reply_resolved = match get("reply_resolved").trim() {
        "" => None,
        "true" => Some(true),
        "false" => Some(false),
        other => {
            return Err(format!(
                "`reply_resolved` must be true or false, not {other:?}"
            ));
        }
    };
    let final_dispatch = match get("final_dispatch").trim() {
        "" | "false" => false,
        "true" => true,
        other => {
            return Err(format!(
                "`final_dispatch` must be true or false, not {other:?}"
            ));
        }
    };
    let title = get("title");
    let content = get("content");
    if title.trim().is_empty() || content.trim().is_empty() {
        return Err("`title` and `content` must not be empty".into());
    }
    let created_at = parse_time("created_at", get("created_at"))?;
    let row = ticket::Model {
        id: 0,
        ticket_no: no.trim().to_owned(),
        query_code: get("query_code").to_owned(),
        channel: parse_enum::<Channel>("channel", get("channel"))?,
        external_id: none_if_empty(get("external_id").trim()),
        category: parse_enum::<Category>("category", get("category"))?,
        urgency: parse_enum::<Urgency>("urgency", get("urgency"))?,
        title: title.to_owned(),
        content: content.to_owned(),
        citizen_name: none_if_empty(get("citizen_name")),
        citizen_phone: none_if_empty(get("citizen_phone")),
        address: none_if_empty(get("address")),
        district,
        state: parse_enum::<TicketState>("state", get("state"))?,
        resolution: parse_opt_enum::<Resolution>("resolution", get("resolution"))?,
        merged_into: None,
        department: dept("department", get("department"))?,
        co_departments: serde_json::to_string(&co).unwrap_or_else(|_| "[]".into()),
        created_by: get("created_by").to_owned(),
        created_at,
        updated_at: parse_opt_time("updated_at", get("updated_at"))?.unwrap_or(created_at),
        dispatched_at: parse_opt_time("dispatched_at", get("dispatched_at"))?,
        signed_at: parse_opt_time("signed_at", get("signed_at"))?,
        replied_at: parse_opt_time("replied_at", get("replied_at"))?,
        closed_at: parse_opt_time("closed_at", get("closed_at"))?,
        sign_due_at: parse_opt_time("sign_due_at", get("sign_due_at"))?,
        reply_due_at: parse_opt_time("reply_due_at", get("reply_due_at"))?,
        next_check_at: None,
        escalation_level: parse_int::<i16>("escalation_level", get("escalation_level")).and_then(
            |l| {
                (0..=3)
                    .contains(&l)
                    .then_some(l)
                    .ok_or_else(|| "`escalation_level` must be 0–3".to_owned())
            },
        )?,
        rework_count: parse_int("rework_count", get("rework_count"))?,
        return_count: parse_int("return_count", get("return_count"))?,
        extension_count: parse_int("extension_count", get("extension_count"))?,
        final_dispatch,
        reply_content: none_if_empty(get("reply_content")),
        reply_resolved,
        satisfaction: parse_opt_enum::<Satisfaction>("satisfaction", get("satisfaction"))?,
        version: 0,
        possible_duplicate_of: None,
    };
    let history = get("history");
    let history: Vec<ImportedEvent<'_>> = match history.trim() {
        "" => Vec::new(),
        h => serde_json::from_str(h)
            .map_err(|e| format!("`history` is not a JSON array of events: {e}"))?,
    };
    let mut events = Vec::with_capacity(history.len().max(1));
    let mut facts = Vec::with_capacity(history.len().max(1));
    for (i, e) in history.into_iter().enumerate() {
        let text = |t: Option<Text<'_>>| t.map(|t| t.0.into_owned());
        let (kind, event_kind) = e
            .kind
            .and_then(|k| {
                k.0.parse::<EventKind>()
                    .ok()
                    .map(|ek| (k.0.into_owned(), ek))
            })
            .ok_or_else(|| format!("`history`[{i}]: unknown or missing `kind`"))?;
        let at = parse_time(
            &format!("history[{i}].at"),
            e.at.as_ref().map_or("", |t| &t.0),
        )?;
        let state = |k: &str, v: Option<Text<'_>>| -> Result<Option<String>, String> {
            match v {
                None => Ok(None),
                Some(v) => parse_enum::<TicketState>(&format!("history[{i}].{k}"), &v.0).map(Some),
            }
        };
        let department = text(e.department);
        // The payload is stored as serde_json writes it; text already in
        // that form is copied, and only payloads the figures read are parsed.
        let raw = e.payload.map_or("null", |r| r.get());
        let bad_payload = |err: serde_json::Error| format!("`history`[{i}].payload: {err}");
        let (payload, value) = if is_canonical_json(raw.as_bytes()) {
            let value = if history_reads_payload(event_kind) {
                serde_json::from_str(raw).map_err(bad_payload)?
            } else {
                Value::Null
            };
            (raw.to_owned(), value)
        } else {
            let value: Value = serde_json::from_str(raw).map_err(bad_payload)?;
            let text = value.to_string();
            let value = if history_reads_payload(event_kind) {
                value
            } else {
                Value::Null
            };
            (text, value)
        };
        events.push(ticket_event::Model {
            id: 0,
            ticket_id: 0,
            at,
            actor: text(e.actor).unwrap_or_else(|| "import".into()),
            kind,
            from_state: state("from", e.from)?,
            to_state: state("to", e.to)?,
            department: department.clone(),
            payload,
        });
        facts.push(HistoryEvent {
            at,
            kind: event_kind,
            department,
            payload: value,
        });
    }
    if events.is_empty() {
        events.push(ticket_event::Model {
            id: 0,
            ticket_id: 0,
            at: created_at,
            actor: "import".into(),
            kind: EventKind::Created.as_str().into(),
            from_state: None,
            to_state: Some(TicketState::Registered.as_str().into()),
            department: None,
            payload: json!({"ticket_no": row.ticket_no, "imported": true}).to_string(),
        });
        facts.push(HistoryEvent {
            at: created_at,
            kind: EventKind::Created,
            department: None,
            payload: json!({"ticket_no": row.ticket_no, "imported": true}),
        });
    }
    let mut row = row;
    row.version = events.len() as i32 - 1;
    let merged = get("merged_into");
    Ok(Parsed {
        line,
        row,
        events,
        history: facts,
        merged_into_no: none_if_empty(merged.trim()),
    })
}

/// Loads a ledger CSV. Rows are checked one by one; valid rows go in
/// batches, each batch with its figures in one transaction.
/// The second import loader adds to rollup shards from this one up (intake
/// writers use the shards just above 0).
const IMPORT_SHARD: i16 = 100;

/// Rows parsed, checked and loaded at a time (one transaction each).
const IMPORT_BATCH: usize = 20_000;

/// What the parsing thread hands over: valid rows, and what it refused.
struct Chunk {
    parsed: Vec<Parsed>,
    bad: Vec<(u64, String)>,
    existing: u64,
    rows: u64,
}

pub async fn import_csv<R: std::io::Read + Send + 'static>(
    store: &Store,
    rules: &Rules<'_>,
    input: R,
    progress: impl FnMut(u64),
) -> StoreResult<ImportReport> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let bad_header = |e: String| StoreError::Conflict(format!("the CSV header: {e}"));
    let header = reader
        .headers()
        .map_err(|e| bad_header(e.to_string()))?
        .clone();
    let index: HashMap<String, usize, foldhash::fast::RandomState> = header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim().trim_start_matches('\u{feff}').to_owned(), i))
        .collect();
    let missing: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .filter(|c| !index.contains_key(*c))
        .collect();
    if !missing.is_empty() {
        return Err(bad_header(format!(
            "missing columns {}",
            missing.join(", ")
        )));
    }
    let departments: HashSet<String> = store
        .list_departments()
        .await?
        .into_iter()
        .map(|d| d.code)
        .collect();

    // Into a database without tickets, nothing can exist already but what
    // this file loads (which the parser remembers), and the secondary
    // indexes are built once at the end instead of row by row.
    let empty = ticket::Entity::find().one(&store.db).await?.is_none();
    let indexes = if empty {
        store.drop_secondary_indexes().await?
    } else {
        Vec::new()
    };

    // CSV and JSON parsing on a thread of its own, while this one loads the
    // previous batch.
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(2);
    let parser = std::thread::spawn(move || {
        let mut blocked = std::time::Duration::ZERO;
        // foldhash: SipHash (mostly rehashing as the sets grow) was about 2 %
        // of a 1 M import's profile.
        let mut seen: HashSet<String, foldhash::fast::RandomState> = HashSet::default();
        let mut numbers: HashSet<String, foldhash::fast::RandomState> = HashSet::default();
        let mut record = csv::StringRecord::new();
        let mut chunk = Chunk {
            parsed: Vec::with_capacity(IMPORT_BATCH),
            bad: Vec::new(),
            existing: 0,
            rows: 0,
        };
        loop {
            let line = reader.position().line() + 1;
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    chunk.bad.push((line, format!("unreadable CSV: {e}")));
                    continue;
                }
            }
            chunk.rows += 1;
            let line = record.position().map_or(line, |p| p.line());
            let get = |c: &str| -> &str {
                index
                    .get(c)
                    .and_then(|i| record.get(*i))
                    .unwrap_or_default()
            };
            match parse_row(line, &get, &departments) {
                Ok(p) => {
                    if !seen.insert(identity(&p.row)) {
                        chunk.existing += 1;
                        continue;
                    }
                    if !numbers.insert(p.row.ticket_no.clone()) {
                        chunk.bad.push((
                            line,
                            format!("`ticket_no` {} belongs to another ticket", p.row.ticket_no),
                        ));
                        continue;
                    }
                    chunk.parsed.push(p);
                }
                Err(e) => chunk.bad.push((line, e)),
            }
            if chunk.parsed.len() >= IMPORT_BATCH {
                let full = std::mem::replace(
                    &mut chunk,
                    Chunk {
                        parsed: Vec::with_capacity(IMPORT_BATCH),
                        bad: Vec::new(),
                        existing: 0,
                        rows: 0,
                    },
                );
                let t = std::time::Instant::now();
                if tx.blocking_send(full).is_err() {
                    return blocked;
                }
                blocked += t.elapsed();
            }
        }
        let _ = tx.blocking_send(chunk);
        blocked
    });

    // Two loaders on PostgreSQL, each its own transaction per batch and its
    // own rollup shard, so the server's second core works too; SQLite has a
    // single writer.
    let loaders = if store.backend() == sea_orm::DbBackend::Postgres {
        2
    } else {
        1
    };
    // Into an empty PostgreSQL database, each batch appends its rollup rows
    // to `stats_pending` (counted by figures from its commit on) instead of
    // upserting them, and their sum is added once at the end: for 1 M
    // tickets, 0.24 M rows written once instead of 1.4 M upserts.
    let tags: Vec<i16> = if empty && loaders == 2 {
        store.pending_tags(loaders).await?
    } else {
        Vec::new()
    };
    let total = std::cell::RefCell::new(Rollup::new());
    let report = std::cell::RefCell::new(ImportReport::default());
    let rows = std::cell::Cell::new(0u64);
    let rx = tokio::sync::Mutex::new(rx);
    let progress = std::cell::RefCell::new(progress);
    // `ticket_no → id` of every ticket this import has loaded, so a merge
    // into an earlier row of the file needs no fix-up afterwards.
    let ids_by_number = std::cell::RefCell::new(HashMap::<String, i64>::new());
    // Where the time goes (logged at debug level): loaders waiting for the
    // parser, the parser waiting for loaders, and the index build.
    let waited = std::cell::Cell::new(std::time::Duration::ZERO);
    let started = std::time::Instant::now();
    let loader = |k: usize| {
        let (report, rows, rx, progress, ids_by_number, waited, tags, total) = (
            &report,
            &rows,
            &rx,
            &progress,
            &ids_by_number,
            &waited,
            &tags,
            &total,
        );
        async move {
            loop {
                let t = std::time::Instant::now();
                let next = rx.lock().await.recv().await;
                waited.set(waited.get() + t.elapsed());
                let Some(chunk) = next else {
                    return Ok::<(), StoreError>(());
                };
                rows.set(rows.get() + chunk.rows);
                {
                    let mut r = report.borrow_mut();
                    r.bad.extend(chunk.bad);
                    r.existing += chunk.existing;
                }
                let shard = if k == 0 { 0 } else { IMPORT_SHARD + k as i16 };
                let pending = tags.get(k).map(|tag| (*tag, total));
                let part = load_batch(
                    store,
                    rules,
                    chunk.parsed,
                    !empty,
                    shard,
                    pending,
                    ids_by_number,
                )
                .await?;
                report.borrow_mut().absorb(part);
                (progress.borrow_mut())(rows.get());
            }
        }
    };
    let loaded: StoreResult<()> = if loaders == 2 {
        futures_util::future::try_join(loader(0), loader(1))
            .await
            .map(|_| ())
    } else {
        loader(0).await
    };
    let mut report = report.into_inner();
    let rows = rows.get();
    let mut progress = progress.into_inner();
    let rx = rx.into_inner();
    drop(rx);
    let joined = parser.join();
    let load_time = started.elapsed();
    // The indexes come back whatever happened, and the committed batches'
    // rollups move into `stats_daily` (were that to fail, they stay pending
    // and figures still count them).
    let total = total.into_inner();
    let fold = async {
        if tags.is_empty() {
            Ok(())
        } else {
            store.fold_pending(&total, &tags, 0).await
        }
    };
    let (rebuilt, folded) = futures_util::future::join(store.create_indexes(&indexes), fold).await;
    tracing::debug!(
        load_s = load_time.as_secs_f64(),
        loaders_waited_s = waited.get().as_secs_f64(),
        parser_blocked_s = joined
            .as_ref()
            .map_or(0.0, |d: &std::time::Duration| d.as_secs_f64()),
        index_s = (started.elapsed() - load_time).as_secs_f64(),
        "import timing"
    );
    loaded?;
    rebuilt?;
    folded?;
    if joined.is_err() {
        return Err(StoreError::Corrupt("the CSV parser panicked".into()));
    }
    report.bad.sort_by_key(|(line, _)| *line);
    resolve_pending_merges(store, std::mem::take(&mut report.pending_merges)).await?;
    progress(rows);
    Ok(report)
}

/// Merges into tickets that came later in the file, a chunk per statement.
async fn resolve_pending_merges(store: &Store, pending: Vec<(String, String)>) -> StoreResult<()> {
    let b = store.backend();
    for chunk in pending.chunks(1000) {
        let mut values = Vec::with_capacity(chunk.len() * 2);
        let mut rows = Vec::with_capacity(chunk.len());
        for (i, (no, into)) in chunk.iter().enumerate() {
            rows.push(match b {
                sea_orm::DbBackend::Postgres => format!("(${}, ${})", 2 * i + 1, 2 * i + 2),
                _ => "(?, ?)".to_owned(),
            });
            values.push(sea_orm::Value::from(no.clone()));
            values.push(sea_orm::Value::from(into.clone()));
        }
        let sql = format!(
            "WITH m(no, into_no) AS (VALUES {}) \
             UPDATE tickets SET merged_into = (SELECT t.id FROM tickets t, m \
                 WHERE m.no = tickets.ticket_no AND t.ticket_no = m.into_no) \
             WHERE ticket_no IN (SELECT no FROM m) \
               AND EXISTS (SELECT 1 FROM tickets t, m \
                 WHERE m.no = tickets.ticket_no AND t.ticket_no = m.into_no)",
            rows.join(", ")
        );
        store
            .db
            .execute_raw(Statement::from_sql_and_values(b, sql, values))
            .await?;
    }
    Ok(())
}

/// A row's idempotency key.
fn identity(t: &ticket::Model) -> String {
    match &t.external_id {
        Some(e) => format!("{}\u{1}{e}", t.channel),
        None => format!("\u{2}{}", t.ticket_no),
    }
}

async fn load_batch(
    store: &Store,
    rules: &Rules<'_>,
    batch: Vec<Parsed>,
    check_database: bool,
    shard: i16,
    pending: Option<(i16, &std::cell::RefCell<Rollup>)>,
    ids_by_number: &std::cell::RefCell<HashMap<String, i64>>,
) -> StoreResult<ImportReport> {
    let mut report = ImportReport::default();
    if batch.is_empty() {
        return Ok(report);
    }
    // What exists already: by external id, and by number.
    let mut taken: HashMap<String, ticket::Model> = HashMap::new();
    let mut known: HashSet<String> = HashSet::new();
    if check_database {
        for part in batch.chunks(5000) {
            let numbers: Vec<String> = part.iter().map(|p| p.row.ticket_no.clone()).collect();
            for t in ticket::Entity::find()
                .filter(ticket::Column::TicketNo.is_in(numbers))
                .all(&store.db)
                .await?
            {
                taken.insert(t.ticket_no.clone(), t);
            }
            let pairs: Vec<(String, String)> = part
                .iter()
                .filter_map(|p| Some((p.row.channel.clone(), p.row.external_id.clone()?)))
                .collect();
            known.extend(store.existing_external_ids(&pairs).await?);
        }
    }
    // Merge targets loaded earlier in this import are known by number; the
    // rest are looked up (those in this batch get their ids below).
    let merged_nos: Vec<String> = batch
        .iter()
        .filter_map(|p| p.merged_into_no.clone())
        .filter(|no| !ids_by_number.borrow().contains_key(no))
        .collect();
    let mut merged_ids: HashMap<String, i64> = HashMap::new();
    for part in merged_nos.chunks(5000) {
        for (id, no) in ticket::Entity::find()
            .select_only()
            .column(ticket::Column::Id)
            .column(ticket::Column::TicketNo)
            .filter(ticket::Column::TicketNo.is_in(part.iter().cloned()))
            .into_tuple::<(i64, String)>()
            .all(&store.db)
            .await?
        {
            merged_ids.insert(no, id);
        }
    }

    let mut fresh = Vec::new();
    for p in batch {
        let key = identity(&p.row);
        if known.contains(&key) {
            report.existing += 1;
            continue;
        }
        if let Some(t) = taken.get(&p.row.ticket_no) {
            if identity(t) == key {
                report.existing += 1;
            } else {
                report.bad.push((
                    p.line,
                    format!("`ticket_no` {} belongs to another ticket", p.row.ticket_no),
                ));
            }
            continue;
        }
        fresh.push(p);
    }
    let ids = store.reserve_ticket_ids(fresh.len()).await?;
    ids_by_number.borrow_mut().extend(
        fresh
            .iter()
            .zip(&ids)
            .map(|(p, id)| (p.row.ticket_no.clone(), *id)),
    );
    let mut tickets = Vec::with_capacity(fresh.len());
    let mut rollup = FastRollup::default();
    let mut sequences: HashMap<(String, String), i64> = HashMap::new();
    for (p, id) in fresh.into_iter().zip(ids) {
        let mut row = p.row;
        row.id = id;
        row.merged_into = p.merged_into_no.as_ref().and_then(|no| {
            (merged_ids.get(no).copied()).or_else(|| ids_by_number.borrow().get(no).copied())
        });
        if let (None, Some(no)) = (row.merged_into, &p.merged_into_no) {
            report
                .pending_merges
                .push((row.ticket_no.clone(), no.clone()));
        }
        let mut domain = to_domain(&row)?;
        // An open ticket is watched by the sweeper from its next threshold.
        rules.schedule(&mut domain);
        row.next_check_at = domain.next_check_at;
        let events: Vec<ticket_event::Model> = p
            .events
            .into_iter()
            .map(|mut e| {
                e.ticket_id = id;
                e
            })
            .collect();
        let history = p.history;
        rollup.add(
            &dims_of(&row),
            &history_facts(row.created_at, &domain, &history),
        );
        // Whoever was ever dispatched the ticket may see it.
        let mut departments: Vec<(String, &'static str, DateTime<Utc>)> = Vec::new();
        for e in &history {
            if e.kind != EventKind::Dispatched {
                continue;
            }
            let mut add = |d: String, role: &'static str| {
                if !departments.iter().any(|(x, _, _)| *x == d) {
                    departments.push((d, role, e.at));
                }
            };
            if let Some(d) = e.department.clone() {
                add(d, "lead");
            }
            if let Some(co) = e.payload.get("co_departments").and_then(Value::as_array) {
                for d in co.iter().filter_map(Value::as_str) {
                    add(d.to_owned(), "co");
                }
            }
        }
        if let Some(d) = &row.department
            && !departments.iter().any(|(x, _, _)| x == d)
        {
            departments.push((
                d.clone(),
                "lead",
                row.dispatched_at.unwrap_or(row.created_at),
            ));
        }
        let (day, letter, seq) = (
            &row.ticket_no[..8],
            &row.ticket_no[8..9],
            &row.ticket_no[9..],
        );
        let channel = match letter {
            "H" => Channel::Hotline,
            "M" => Channel::Mailbox,
            "W" => Channel::Wenzheng,
            _ => Channel::Open311,
        };
        let seq: i64 = seq.parse().unwrap_or(0);
        let e = sequences
            .entry((day.to_owned(), channel.as_str().to_owned()))
            .or_insert(0);
        *e = (*e).max(seq);
        tickets.push(BulkTicket {
            row,
            events,
            departments,
        });
    }
    let rollup = rollup.take();
    match pending {
        Some((tag, total)) => {
            store.bulk_insert_pending(&tickets, &rollup, tag).await?;
            // Committed: its figures join the sum the load folds in at the end.
            let mut total = total.borrow_mut();
            for (key, counts) in rollup {
                total.entry(key).or_default().merge(&counts);
            }
        }
        None => store.bulk_insert_sharded(&tickets, &rollup, shard).await?,
    }
    report.imported += tickets.len() as u64;
    // Live numbering continues after imported numbers of the same day; rows
    // in key order, so concurrent loaders never deadlock on them.
    let b = store.backend();
    let mut sequences: Vec<_> = sequences.into_iter().collect();
    sequences.sort();
    for part in sequences.chunks(500) {
        let rows: Vec<String> = part
            .iter()
            .map(|((day, channel), last)| format!("('{day}', '{channel}', {last})"))
            .collect();
        store
            .db
            .execute_raw(Statement::from_string(
                b,
                format!(
                    "INSERT INTO ticket_sequences (day, channel, last) VALUES {} \
                     ON CONFLICT (day, channel) DO UPDATE SET last = CASE WHEN excluded.last > ticket_sequences.last \
                     THEN excluded.last ELSE ticket_sequences.last END",
                    rows.join(", ")
                ),
            ))
            .await?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any JSON value: objects with keys that need escapes or not, floats,
    /// big and small integers, nesting.
    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1000i64..1000).prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-z_]{0,8}".prop_map(Value::from),
            "\\PC{0,6}".prop_map(Value::from),
            "[\\x00-\\x7f]{0,4}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z\"\\\\é ]{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A value whose text the fast path must take: no floats, no strings
    /// that need escapes, integers of at most 18 digits.
    fn plain(v: &Value) -> bool {
        let text_ok = |s: &str| !s.chars().any(|c| c == '"' || c == '\\' || c < ' ');
        match v {
            Value::Null | Value::Bool(_) => true,
            Value::Number(n) => {
                n.as_i64()
                    .is_some_and(|i| i.unsigned_abs() < 1_000_000_000_000_000_000)
                    || n.as_u64().is_some_and(|u| u < 1_000_000_000_000_000_000)
            }
            Value::String(s) => text_ok(s),
            Value::Array(a) => a.iter().all(plain),
            Value::Object(m) => m.iter().all(|(k, v)| text_ok(k) && plain(v)),
        }
    }

    /// serde_json's canonical form of a text, as the export wrote it before
    /// the fast path.
    fn canonical(s: &str) -> String {
        serde_json::from_str::<Value>(s)
            .unwrap_or(Value::Null)
            .to_string()
    }

    #[test]
    fn canonical_payloads_are_recognised_and_others_are_not() {
        for yes in [
            "{}",
            "[]",
            r#"{"a":1,"b":[true,false,null],"c":{"d":"中文"}}"#,
            r#"{"category":"complaint","channel":"hotline","ticket_no":"20261122H000001","urgency":"normal"}"#,
            "0",
            "-12",
            "123456789012345678",
        ] {
            assert!(is_canonical_json(yes.as_bytes()), "{yes}");
            assert_eq!(canonical(yes), yes);
        }
        for no in [
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a": 1}"#,
            r#"{"a":1.5}"#,
            r#"{"a":"x\ny"}"#,
            "-0",
            "01",
            "1e3",
            "1234567890123456789",
            "{",
            "",
            "tru",
            r#"{"a":1}x"#,
        ] {
            assert!(!is_canonical_json(no.as_bytes()), "{no}");
        }
    }

    proptest::proptest! {
        /// Whatever the fast path copies is exactly what parsing and writing
        /// again gives, and every payload without floats or escapes takes it.
        #[test]
        fn the_payload_fast_path_changes_nothing(v in json_value(), noise in "\\PC{0,3}") {
            let text = v.to_string();
            if is_canonical_json(text.as_bytes()) {
                proptest::prop_assert_eq!(canonical(&text), text.clone());
            } else {
                let plain = plain(&v);
                proptest::prop_assert!(!plain, "missed the fast path: {}", text);
            }
            // Arbitrary edits of a canonical text: never copied wrongly.
            for mutated in [format!("{text}{noise}"), format!("{noise}{text}"), text.replacen(',', &noise, 1)] {
                if is_canonical_json(mutated.as_bytes()) {
                    proptest::prop_assert_eq!(canonical(&mutated), mutated.clone());
                }
            }
        }
    }

    proptest::proptest! {
        /// The export's CSV writer and the `csv` crate's write the same bytes
        /// for any record of two or more fields.
        #[test]
        fn records_are_written_as_the_csv_crate_writes_them(
            fields in proptest::collection::vec("[a-z,\"\\r\\n 中\\t]{0,8}", 2..8)
        ) {
            let mut ours = Vec::new();
            for (i, f) in fields.iter().enumerate() {
                csv_field(&mut ours, i == 0, f.as_bytes());
            }
            ours.push(b'\n');
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(&fields).unwrap();
            proptest::prop_assert_eq!(ours, w.into_inner().unwrap());
        }
    }

    /// chrono's RFC 3339 in city time, which the export's writer matches.
    fn time(t: DateTime<Utc>) -> String {
        t.with_timezone(&city_tz()).to_rfc3339()
    }

    proptest::proptest! {
        /// The export's own time writer and chrono's RFC 3339 agree on every
        /// instant: whole seconds, milli-, micro- and nanoseconds, any year
        /// (outside 0–9999 it hands over to chrono).
        #[test]
        fn times_are_written_as_chrono_writes_them(
            secs in -70_000_000_000i64..300_000_000_000i64,
            nanos in 0u32..1_000_000_000,
            rounding in 0usize..4,
        ) {
            let nanos = [nanos, nanos / 1_000 * 1_000, nanos / 1_000_000 * 1_000_000, 0][rounding];
            let t = DateTime::<Utc>::from_timestamp(secs, nanos).unwrap();
            let mut out = Vec::new();
            write_time(&mut out, t);
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), time(t));
        }
    }

    /// A valid registered row, with `cells` in place of some columns.
    fn cells<'a>(cells: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> String + 'a {
        move |c: &str| {
            let default = match c {
                "ticket_no" => "20261122H000001",
                "channel" => "hotline",
                "category" => "complaint",
                "urgency" => "normal",
                "title" => "路灯不亮",
                "content" => "小区门口路灯不亮。",
                "state" => "registered",
                "created_by" => "agent1",
                "created_at" => "2026-11-22T09:00:00+08:00",
                "escalation_level" | "rework_count" | "return_count" | "extension_count" => "0",
                _ => "",
            };
            let cell = cells
                .iter()
                .find(|(k, _)| *k == c)
                .map_or(default, |(_, v)| *v);
            cell.to_owned()
        }
    }

    #[test]
    fn times_the_export_cannot_write_back_are_refused() {
        // Found by fuzzing (fuzz/regressions/csv_import/): these imported, but
        // the export writes them in city time with a year RFC 3339 cannot
        // hold (+10000, -0001), so the exported ledger did not import.
        let none = HashSet::new();
        for t in ["9999-12-31T23:59:59-12:00", "0000-01-01T00:00:00+14:00"] {
            let e = parse_import_row(&cells(&[("created_at", t)]), &none).unwrap_err();
            assert!(e.contains("created_at"), "{t}: {e}");
        }
        // The last instants that do come back, through the export and in again.
        for t in ["9999-12-31T15:59:59Z", "0000-01-01T00:00:00+08:00"] {
            let (ticket, events, _) =
                parse_import_row(&cells(&[("created_at", t)]), &none).unwrap();
            let out = row(&ticket, &events, &HashMap::new(), true);
            let back = |c: &str| out[COLUMNS.iter().position(|x| *x == c).unwrap()].clone();
            let (again, events_again, _) = parse_import_row(&back, &none).unwrap();
            assert_eq!((again, events_again), (ticket, events), "{t}");
        }
    }

    #[test]
    fn history_events_are_read_with_escapes_nulls_and_missing_payloads() {
        let none = HashSet::new();
        let history = r#"[{"at": "2026-11-22T09:00:00+08:00", "actor": "agent\"1\u00e9", "kind": "created", "from": null, "to": "registered", "department": null},
            {"at": "2026-11-22T10:00:00+08:00", "kind": "note", "payload": {"text": "a\nb", "n": 1.5}}]"#;
        let (_, events, _) = parse_import_row(&cells(&[("history", history)]), &none).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].actor, "agent\"1\u{e9}");
        assert_eq!(events[0].payload, "null");
        assert_eq!(events[0].to_state.as_deref(), Some("registered"));
        assert_eq!(events[0].from_state, None);
        assert_eq!(events[1].actor, "import");
        assert_eq!(events[1].payload, r#"{"n":1.5,"text":"a\nb"}"#);
        for (bad, says) in [
            (
                r#"[{"at": "2026-11-22T09:00:00+08:00", "kind": 3}]"#,
                "not a JSON array of events",
            ),
            (
                r#"[{"at": "2026-11-22T09:00:00+08:00", "kind": "nonsense"}]"#,
                "`history`[0]",
            ),
            (r#"[{"at": "2026-11-22T09:00:00+08:00"}]"#, "missing `kind`"),
            (r#"[{"kind": "created"}]"#, "history[0].at"),
            (r#"[7]"#, "not a JSON array of events"),
            (r#"{"kind": "created"}"#, "not a JSON array of events"),
        ] {
            let e = parse_import_row(&cells(&[("history", bad)]), &none).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn payload_floats_come_back_to_the_last_digit() {
        // Found by fuzzing (fuzz/regressions/csv_import/payload_float_last_digit):
        // without serde_json's `float_roundtrip` feature the last of 17
        // digits could come back one off through export and import.
        for text in ["7.1955246095168316e252", "0.30000000000000004", "1e-320"] {
            let v: Value = serde_json::from_str(text).unwrap();
            let again: Value = serde_json::from_str(&v.to_string()).unwrap();
            assert_eq!(v.as_f64(), again.as_f64(), "{text}");
            assert_eq!(v.as_f64(), text.parse::<f64>().ok(), "{text}");
        }
    }
}
