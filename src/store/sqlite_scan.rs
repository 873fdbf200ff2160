//! The 台账 export's reader on SQLite: the period's tickets and their events,
//! read straight from the database file through rusqlite on the caller's
//! thread, in batches.
//!
//! Why not the pool: sqlx runs each SQLite connection on a worker thread and
//! hands every row to the async side through a channel, one wake-up per row.
//! An export of 1,000,000 tickets reads 6.7 million rows, and those wake-ups
//! were most of its time.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Row};

use super::entities::{ticket, ticket_event};
use super::pgcopy::{EVENT_COLUMNS, TICKET_COLUMNS};
use super::{StoreError, StoreResult};

/// Which tickets: created in `[from, to)`, and in `department`'s scope when
/// one is given.
#[derive(Clone, Debug)]
pub struct ScanFilter {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub department: Option<String>,
}

/// A batch of tickets, each with its events in id order.
pub type Batch = Vec<(ticket::Model, Vec<ticket_event::Model>)>;

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Corrupt(format!("reading the SQLite file: {e}"))
}

/// Reads every ticket of `filter` in id order with its events and hands
/// them to `send` `batch` tickets at a time, stopping early when `send`
/// returns false. Both statements read one snapshot (one read transaction),
/// so a ticket written meanwhile is either whole or absent.
pub fn scan(
    path: &Path,
    filter: &ScanFilter,
    batch: usize,
    mut send: impl FnMut(Batch) -> bool,
) -> StoreResult<u64> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(db)?;
    conn.execute_batch("PRAGMA query_only = 1; BEGIN")
        .map_err(db)?;
    let mut cond = "created_at >= ?1 AND created_at < ?2".to_owned();
    if filter.department.is_some() {
        cond.push_str(
            " AND id IN (SELECT ticket_id FROM ticket_departments WHERE department = ?3)",
        );
    }
    let mut tickets = conn
        .prepare(&format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE {cond} ORDER BY id"
        ))
        .map_err(db)?;
    let mut events = conn
        .prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM ticket_events WHERE ticket_id IN \
             (SELECT id FROM tickets WHERE {cond}) ORDER BY ticket_id, id"
        ))
        .map_err(db)?;
    // Bound exactly as sqlx binds a `DateTime<Utc>`, so the text
    // comparison matches the pool's.
    let bound = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, false);
    let (from, to) = (bound(filter.from), bound(filter.to));
    let mut params: Vec<&dyn rusqlite::ToSql> = vec![&from, &to];
    if let Some(d) = &filter.department {
        params.push(d);
    }
    let mut trows = tickets.query(params.as_slice()).map_err(db)?;
    let mut erows = events.query(params.as_slice()).map_err(db)?;

    let mut n = 0u64;
    let mut out: Batch = Vec::with_capacity(batch);
    let mut pending: Option<ticket_event::Model> = None;
    while let Some(r) = trows.next().map_err(db)? {
        let t = ticket_from_row(r)?;
        let mut evs = Vec::new();
        loop {
            let e = match pending.take() {
                Some(e) => e,
                None => match erows.next().map_err(db)? {
                    Some(r) => event_from_row(r)?,
                    None => break,
                },
            };
            // Both statements run in ticket-id order over the same tickets.
            if e.ticket_id > t.id {
                pending = Some(e);
                break;
            }
            if e.ticket_id == t.id {
                evs.push(e);
            }
        }
        out.push((t, evs));
        n += 1;
        if out.len() == batch && !send(std::mem::replace(&mut out, Vec::with_capacity(batch))) {
            return Ok(n);
        }
    }
    if !out.is_empty() {
        send(out);
    }
    Ok(n)
}

fn corrupt(what: &str, i: usize) -> StoreError {
    StoreError::Corrupt(format!("SQLite row: column {i} is not a valid {what}"))
}

fn text(r: &Row<'_>, i: usize) -> StoreResult<Option<String>> {
    match r.get_ref(i).map_err(db)? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(b) => std::str::from_utf8(b)
            .map(|s| Some(s.to_owned()))
            .map_err(|_| corrupt("UTF-8 text", i)),
        ValueRef::Integer(v) => Ok(Some(v.to_string())),
        _ => Err(corrupt("text", i)),
    }
}

fn int(r: &Row<'_>, i: usize) -> StoreResult<Option<i64>> {
    match r.get_ref(i).map_err(db)? {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(v) => Ok(Some(v)),
        _ => Err(corrupt("integer", i)),
    }
}

fn boolean(r: &Row<'_>, i: usize) -> StoreResult<Option<bool>> {
    Ok(int(r, i)?.map(|v| v != 0))
}

fn time(r: &Row<'_>, i: usize) -> StoreResult<Option<DateTime<Utc>>> {
    match r.get_ref(i).map_err(db)? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(b) => parse_time(b)
            .map(Some)
            .ok_or_else(|| corrupt("timestamp", i)),
        // As sqlx reads them: whole seconds since the epoch.
        ValueRef::Integer(v) => Utc
            .timestamp_opt(v, 0)
            .single()
            .map(Some)
            .ok_or_else(|| corrupt("timestamp", i)),
        _ => Err(corrupt("timestamp", i)),
    }
}

fn required<T>(v: Option<T>, what: &str) -> StoreResult<T> {
    v.ok_or_else(|| StoreError::Corrupt(format!("SQLite row: {what} is NULL")))
}

/// A stored timestamp. sqlx writes `2026-03-05T01:12:33.123456+00:00`
/// (fraction only when there is one), which the fast path reads; anything
/// else goes through the formats sqlx itself accepts.
pub fn parse_time(b: &[u8]) -> Option<DateTime<Utc>> {
    fast_time(b).or_else(|| slow_time(std::str::from_utf8(b).ok()?))
}

fn fast_time(b: &[u8]) -> Option<DateTime<Utc>> {
    let body = b.strip_suffix(b"+00:00")?;
    if body.len() < 19 || body[4] != b'-' || body[7] != b'-' || body[10] != b'T' {
        return None;
    }
    if body[13] != b':' || body[16] != b':' {
        return None;
    }
    let num = |s: &[u8]| -> Option<u32> {
        s.iter().try_fold(0u32, |v, &c| {
            c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0'))
        })
    };
    let nanos = match &body[19..] {
        [] => 0,
        [b'.', frac @ ..] if !frac.is_empty() && frac.len() <= 9 => {
            num(frac)? * 10u32.pow(9 - frac.len() as u32)
        }
        _ => return None,
    };
    NaiveDate::from_ymd_opt(
        num(&body[0..4])? as i32,
        num(&body[5..7])?,
        num(&body[8..10])?,
    )?
    .and_hms_nano_opt(
        num(&body[11..13])?,
        num(&body[14..16])?,
        num(&body[17..19])?,
        nanos,
    )
    .map(|t| t.and_utc())
}

fn slow_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    const FORMATS: [&str; 12] = [
        "%F %T%.f",
        "%F %R",
        "%F %RZ",
        "%F %R%:z",
        "%F %T%.fZ",
        "%F %T%.f%:z",
        "%FT%R",
        "%FT%RZ",
        "%FT%R%:z",
        "%FT%T%.f",
        "%FT%T%.fZ",
        "%FT%T%.f%:z",
    ];
    FORMATS.iter().find_map(|f| {
        DateTime::parse_from_str(s, f)
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                NaiveDateTime::parse_from_str(s, f)
                    .ok()
                    .map(|t| t.and_utc())
            })
    })
}

/// A ticket row in [`TICKET_COLUMNS`] order.
fn ticket_from_row(r: &Row<'_>) -> StoreResult<ticket::Model> {
    let mut i = 0;
    let mut col = || {
        i += 1;
        i - 1
    };
    Ok(ticket::Model {
        id: required(int(r, col())?, "id")?,
        ticket_no: required(text(r, col())?, "ticket_no")?,
        query_code: required(text(r, col())?, "query_code")?,
        channel: required(text(r, col())?, "channel")?,
        external_id: text(r, col())?,
        category: required(text(r, col())?, "category")?,
        urgency: required(text(r, col())?, "urgency")?,
        title: required(text(r, col())?, "title")?,
        content: required(text(r, col())?, "content")?,
        citizen_name: text(r, col())?,
        citizen_phone: text(r, col())?,
        address: text(r, col())?,
        district: text(r, col())?,
        state: required(text(r, col())?, "state")?,
        resolution: text(r, col())?,
        merged_into: int(r, col())?,
        department: text(r, col())?,
        co_departments: required(text(r, col())?, "co_departments")?,
        created_by: required(text(r, col())?, "created_by")?,
        created_at: required(time(r, col())?, "created_at")?,
        updated_at: required(time(r, col())?, "updated_at")?,
        dispatched_at: time(r, col())?,
        signed_at: time(r, col())?,
        replied_at: time(r, col())?,
        closed_at: time(r, col())?,
        sign_due_at: time(r, col())?,
        reply_due_at: time(r, col())?,
        next_check_at: time(r, col())?,
        escalation_level: required(int(r, col())?, "escalation_level")? as i16,
        rework_count: required(int(r, col())?, "rework_count")? as i32,
        return_count: required(int(r, col())?, "return_count")? as i32,
        extension_count: required(int(r, col())?, "extension_count")? as i32,
        final_dispatch: required(boolean(r, col())?, "final_dispatch")?,
        reply_content: text(r, col())?,
        reply_resolved: boolean(r, col())?,
        satisfaction: text(r, col())?,
        version: required(int(r, col())?, "version")? as i32,
        possible_duplicate_of: None,
    })
}

/// An event row in [`EVENT_COLUMNS`] order.
fn event_from_row(r: &Row<'_>) -> StoreResult<ticket_event::Model> {
    Ok(ticket_event::Model {
        id: required(int(r, 0)?, "id")?,
        ticket_id: required(int(r, 1)?, "ticket_id")?,
        at: required(time(r, 2)?, "at")?,
        actor: required(text(r, 3)?, "actor")?,
        kind: required(text(r, 4)?, "kind")?,
        from_state: text(r, 5)?,
        to_state: text(r, 6)?,
        department: text(r, 7)?,
        payload: required(text(r, 8)?, "payload")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_as_sqlx_writes_them() {
        let t = Utc.with_ymd_and_hms(2026, 3, 5, 1, 12, 33).unwrap();
        for t in [
            t,
            t + chrono::Duration::microseconds(123_456),
            t + chrono::Duration::nanoseconds(7),
            t + chrono::Duration::milliseconds(120),
        ] {
            let s = t.to_rfc3339_opts(SecondsFormat::AutoSi, false);
            assert_eq!(fast_time(s.as_bytes()), Some(t), "{s}");
            assert_eq!(parse_time(s.as_bytes()), Some(t), "{s}");
        }
    }

    #[test]
    fn other_stored_forms_fall_back_to_sqlx_formats() {
        let t = Utc.with_ymd_and_hms(2026, 3, 5, 1, 12, 33).unwrap();
        for s in [
            "2026-03-05 01:12:33",
            "2026-03-05T09:12:33+08:00",
            "2026-03-05T01:12:33Z",
            "2026-03-05 09:12:33.000+08:00",
        ] {
            assert_eq!(fast_time(s.as_bytes()), None, "{s}");
            assert_eq!(parse_time(s.as_bytes()), Some(t), "{s}");
        }
        for s in [
            "",
            "2026-13-05T01:12:33+00:00",
            "2026-03-05T01:12:33.+00:00",
            "x",
        ] {
            assert_eq!(parse_time(s.as_bytes()), None, "{s}");
        }
    }
}
