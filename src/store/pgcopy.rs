//! Reading rows with PostgreSQL's `COPY (SELECT …) TO STDOUT` (text
//! format): the server sends each row as one line of tab-separated text, and
//! the client splits it without the per-column type checks of the extended
//! protocol. Used where whole tables stream out (the 台账 export).

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use sea_orm::sqlx::{self, Postgres, pool::PoolConnection};

use super::entities::{ticket, ticket_event};
use super::{StoreError, StoreResult};

fn copy_err(e: sqlx::Error) -> StoreError {
    StoreError::Db(sea_orm::DbErr::Custom(format!("COPY TO STDOUT: {e}")))
}

fn corrupt(what: &str, field: &[u8]) -> StoreError {
    StoreError::Corrupt(format!(
        "COPY row: bad {what} {:?}",
        String::from_utf8_lossy(field)
    ))
}

/// Session settings the parser relies on: ISO dates, UTC offsets. The
/// export's connections are closed afterwards, never pooled with them.
pub async fn prepare(conn: &mut PoolConnection<Postgres>) -> StoreResult<()> {
    sqlx::raw_sql("SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET jit = off")
        .execute(&mut **conn)
        .await
        .map_err(copy_err)?;
    Ok(())
}

/// The lines of a `COPY … TO STDOUT` stream, one row each.
pub struct CopyLines<'c> {
    stream: BoxStream<'c, Result<actix_web::web::Bytes, sqlx::Error>>,
    buf: Vec<u8>,
    start: usize,
    done: bool,
}

impl<'c> CopyLines<'c> {
    pub async fn open(conn: &'c mut PoolConnection<Postgres>, query: &str) -> StoreResult<Self> {
        let stream = conn
            .copy_out_raw(&format!("COPY ({query}) TO STDOUT"))
            .await
            .map_err(copy_err)?;
        Ok(CopyLines {
            stream,
            buf: Vec::with_capacity(1 << 16),
            start: 0,
            done: false,
        })
    }

    /// The next row without its newline, or `None` at the end.
    pub async fn next_line(&mut self) -> StoreResult<Option<&[u8]>> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start..]) {
                let line = self.start..self.start + i;
                self.start += i + 1;
                return Ok(Some(&self.buf[line]));
            }
            if self.done {
                return if self.start < self.buf.len() {
                    Err(StoreError::Corrupt("COPY stream ended mid-row".into()))
                } else {
                    Ok(None)
                };
            }
            if self.start == self.buf.len() {
                self.buf.clear();
            } else {
                self.buf.drain(..self.start);
            }
            self.start = 0;
            match self.stream.next().await {
                Some(chunk) => self.buf.extend_from_slice(&chunk.map_err(copy_err)?),
                None => self.done = true,
            }
        }
    }
}

/// Splits a row into its raw fields (still escaped). The row is checked to
/// be UTF-8 once, here: the fields are slices of it at ASCII tabs, and
/// escapes only stand for ASCII, so every text field is UTF-8 too.
pub fn fields(line: &[u8]) -> StoreResult<Fields<'_>> {
    let line = std::str::from_utf8(line).map_err(|_| corrupt("text", line))?;
    Ok(Fields {
        line,
        at: 0,
        done: false,
    })
}

/// The fields of a row, found by one walk over its bytes (most are a few
/// bytes long: cheaper than a search per field).
pub struct Fields<'a> {
    line: &'a str,
    at: usize,
    done: bool,
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        let bytes = self.line.as_bytes();
        let start = self.at;
        let mut end = start;
        while end < bytes.len() && bytes[end] != b'\t' {
            end += 1;
        }
        if end == bytes.len() {
            self.done = true;
        } else {
            self.at = end + 1;
        }
        // Tabs are ASCII: both ends are character boundaries.
        self.line.get(start..end)
    }
}

/// A text field: `None` for `\N`, escapes undone.
pub fn text(field: &str) -> StoreResult<Option<String>> {
    if field == "\\N" {
        return Ok(None);
    }
    if !field.contains('\\') {
        return Ok(Some(field.to_owned()));
    }
    let mut out = String::with_capacity(field.len());
    let mut it = field.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some('\\') => out.push('\\'),
            Some(other) => return Err(corrupt("escape", format!("\\{other}").as_bytes())),
            None => return Err(corrupt("escape", field.as_bytes())),
        }
    }
    Ok(Some(out))
}

fn required<T>(v: Option<T>, what: &str) -> StoreResult<T> {
    v.ok_or_else(|| StoreError::Corrupt(format!("COPY row: {what} is NULL")))
}

pub fn int(field: &str) -> StoreResult<Option<i64>> {
    if field == "\\N" {
        return Ok(None);
    }
    field
        .parse()
        .map(Some)
        .map_err(|_| corrupt("integer", field.as_bytes()))
}

pub fn boolean(field: &str) -> StoreResult<Option<bool>> {
    match field {
        "\\N" => Ok(None),
        "t" => Ok(Some(true)),
        "f" => Ok(Some(false)),
        _ => Err(corrupt("boolean", field.as_bytes())),
    }
}

/// A `timestamptz` as PostgreSQL prints it with `DateStyle = ISO` and
/// `TimeZone = UTC`: `2024-03-05 09:12:33.123456+00`.
pub fn time(field: &str) -> StoreResult<Option<DateTime<Utc>>> {
    if field == "\\N" {
        return Ok(None);
    }
    let field = field.as_bytes();
    let bad = || corrupt("timestamp", field);
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = field.get(r)?;
        let mut v = 0u32;
        for &c in s {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    if field.len() < 22 || field[4] != b'-' || field[10] != b' ' || !field.ends_with(b"+00") {
        return Err(bad());
    }
    let (y, mo, d) = (digits(0..4), digits(5..7), digits(8..10));
    let (h, mi, s) = (digits(11..13), digits(14..16), digits(17..19));
    let body = &field[..field.len() - 3];
    let micros = if body.len() > 19 {
        if body[19] != b'.' || body.len() > 26 {
            return Err(bad());
        }
        let frac = digits(20..body.len()).ok_or_else(bad)?;
        frac * 10u32.pow(6 - (body.len() - 20) as u32)
    } else {
        0
    };
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) = (y, mo, d, h, mi, s) else {
        return Err(bad());
    };
    NaiveDate::from_ymd_opt(y as i32, mo, d)
        .and_then(|date| date.and_hms_micro_opt(h, mi, s, micros))
        .map(|t| Some(t.and_utc()))
        .ok_or_else(bad)
}

/// The ticket columns in the order [`ticket_from_line`] reads them.
pub const TICKET_COLUMNS: &str = "id, ticket_no, query_code, channel, external_id, category, \
     urgency, title, content, citizen_name, citizen_phone, address, district, state, resolution, \
     merged_into, department, co_departments, created_by, created_at, updated_at, dispatched_at, \
     signed_at, replied_at, closed_at, sign_due_at, reply_due_at, next_check_at, escalation_level, \
     rework_count, return_count, extension_count, final_dispatch, reply_content, reply_resolved, \
     satisfaction, version";

pub fn ticket_from_line(line: &[u8]) -> StoreResult<ticket::Model> {
    let mut f = fields(line)?;
    let mut next = || {
        f.next()
            .ok_or_else(|| StoreError::Corrupt("COPY row: too few ticket columns".into()))
    };
    Ok(ticket::Model {
        id: required(int(next()?)?, "id")?,
        ticket_no: required(text(next()?)?, "ticket_no")?,
        query_code: required(text(next()?)?, "query_code")?,
        channel: required(text(next()?)?, "channel")?,
        external_id: text(next()?)?,
        category: required(text(next()?)?, "category")?,
        urgency: required(text(next()?)?, "urgency")?,
        title: required(text(next()?)?, "title")?,
        content: required(text(next()?)?, "content")?,
        citizen_name: text(next()?)?,
        citizen_phone: text(next()?)?,
        address: text(next()?)?,
        district: text(next()?)?,
        state: required(text(next()?)?, "state")?,
        resolution: text(next()?)?,
        merged_into: int(next()?)?,
        department: text(next()?)?,
        co_departments: required(text(next()?)?, "co_departments")?,
        created_by: required(text(next()?)?, "created_by")?,
        created_at: required(time(next()?)?, "created_at")?,
        updated_at: required(time(next()?)?, "updated_at")?,
        dispatched_at: time(next()?)?,
        signed_at: time(next()?)?,
        replied_at: time(next()?)?,
        closed_at: time(next()?)?,
        sign_due_at: time(next()?)?,
        reply_due_at: time(next()?)?,
        next_check_at: time(next()?)?,
        escalation_level: required(int(next()?)?, "escalation_level")? as i16,
        rework_count: required(int(next()?)?, "rework_count")? as i32,
        return_count: required(int(next()?)?, "return_count")? as i32,
        extension_count: required(int(next()?)?, "extension_count")? as i32,
        final_dispatch: required(boolean(next()?)?, "final_dispatch")?,
        reply_content: text(next()?)?,
        reply_resolved: boolean(next()?)?,
        satisfaction: text(next()?)?,
        version: required(int(next()?)?, "version")? as i32,
        possible_duplicate_of: None,
    })
}

/// The event columns in the order [`event_from_line`] reads them.
pub const EVENT_COLUMNS: &str =
    "id, ticket_id, at, actor, kind, from_state, to_state, department, payload";

pub fn event_from_line(line: &[u8]) -> StoreResult<ticket_event::Model> {
    let mut f = fields(line)?;
    let mut next = || {
        f.next()
            .ok_or_else(|| StoreError::Corrupt("COPY row: too few event columns".into()))
    };
    Ok(ticket_event::Model {
        id: required(int(next()?)?, "id")?,
        ticket_id: required(int(next()?)?, "ticket_id")?,
        at: required(time(next()?)?, "at")?,
        actor: required(text(next()?)?, "actor")?,
        kind: required(text(next()?)?, "kind")?,
        from_state: text(next()?)?,
        to_state: text(next()?)?,
        department: text(next()?)?,
        payload: required(text(next()?)?, "payload")?,
    })
}

/// A string literal for SQL that cannot take bind parameters (COPY).
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A timestamp literal.
pub fn time_literal(t: DateTime<Utc>) -> String {
    format!("'{}'::timestamptz", t.format("%Y-%m-%d %H:%M:%S%.6f+00"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_parse_with_and_without_fractions() {
        let t = |s: &str| time(s).unwrap().unwrap();
        assert_eq!(
            t("2024-03-05 09:12:33+00"),
            Utc.with_ymd_and_hms(2024, 3, 5, 9, 12, 33).unwrap()
        );
        assert_eq!(
            t("2024-03-05 09:12:33.12+00").timestamp_subsec_micros(),
            120_000
        );
        assert_eq!(
            t("2024-03-05 09:12:33.000007+00").timestamp_subsec_micros(),
            7
        );
        assert_eq!(time("\\N").unwrap(), None);
        for bad in [
            "2024-03-05 09:12:33+08",
            "2024-13-05 09:12:33+00",
            "2024-03-05T09:12:33+00",
            "2024-03-05 09:12:33.1234567+00",
            "garbage",
        ] {
            assert!(time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_fields_undo_copy_escapes() {
        assert_eq!(text(r"a\tb\nc\\d\re").unwrap().unwrap(), "a\tb\nc\\d\re");
        assert_eq!(text("\\N").unwrap(), None);
        assert_eq!(text("中文").unwrap().unwrap(), "中文");
        assert_eq!(text(r"中\t文").unwrap().unwrap(), "中\t文");
        assert!(text(r"bad\q").is_err());
        assert!(fields(b"a\t\xff").is_err());
        fn split(l: &str) -> Vec<&str> {
            fields(l.as_bytes()).unwrap().collect()
        }
        assert_eq!(split("a\t中文\t\t\\N"), ["a", "中文", "", "\\N"]);
        assert_eq!(split(""), [""]);
        assert_eq!(split("\t"), ["", ""]);
    }

    #[test]
    fn literals_are_quoted() {
        assert_eq!(literal("o'neil"), "'o''neil'");
        let t = Utc.with_ymd_and_hms(2024, 3, 5, 9, 12, 33).unwrap();
        assert_eq!(
            time_literal(t),
            "'2024-03-05 09:12:33.000000+00'::timestamptz"
        );
    }
}
