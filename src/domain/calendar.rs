//! Working-time calendar of the city (UTC+08:00): public holidays and make-up working days
//! loaded from `config/holidays/YYYY.toml`, office hours, and the deadline arithmetic built on
//! them (working days, working minutes, natural time). Pure code apart from [`Calendar::load_dir`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Days, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc,
    Weekday,
};
use serde::Deserialize;

/// Offset of the city's wall clock from UTC. Asia/Shanghai has had no DST since 1991, so a fixed
/// offset is exact and avoids pulling a time-zone database into the crate.
pub const CITY_OFFSET_SECS: i32 = 8 * 3600;

const CITY_TZ: FixedOffset = match FixedOffset::east_opt(CITY_OFFSET_SECS) {
    Some(tz) => tz,
    None => panic!("CITY_OFFSET_SECS is not a valid UTC offset"),
};

/// The city's time zone; every calendar rule is evaluated on this wall clock.
pub fn city_tz() -> FixedOffset {
    CITY_TZ
}

const NANOS_PER_MINUTE: i128 = 60_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    // The underlying error is part of the message (not a `source`) so that a plain `{}` already
    // tells the operator everything, without a chain-walking logger printing it twice.
    #[error("cannot read holiday calendar {}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("holiday calendar {}: {error}", path.display())]
    InFile {
        path: PathBuf,
        error: Box<CalendarError>,
    },
    #[error("invalid holiday calendar TOML: {0}")]
    Toml(toml::de::Error),
    #[error("`year` = {year}: expected a four-digit year")]
    BadYear { year: i64 },
    #[error("`{field}`: invalid date {value:?}, expected YYYY-MM-DD")]
    BadDate { field: String, value: String },
    #[error("`{field}`: {date} is outside year {year}")]
    OutsideYear {
        field: String,
        date: NaiveDate,
        year: i32,
    },
    #[error("`{field}`: holiday {name:?} ends on {to}, before it starts on {from}")]
    ReversedRange {
        field: String,
        name: String,
        from: NaiveDate,
        to: NaiveDate,
    },
    #[error("`{field}`: make-up working day {date} is a {weekday}, not a Saturday or Sunday")]
    WorkdayNotWeekend {
        field: String,
        date: NaiveDate,
        weekday: &'static str,
    },
    #[error("`workdays`: {date} is also listed in `holidays`")]
    HolidayAndWorkday { date: NaiveDate },
    #[error("holiday calendar {}: file name says {file_year} but `year` = {key_year}", path.display())]
    YearMismatch {
        path: PathBuf,
        file_year: i32,
        key_year: i32,
    },
    #[error("two holiday calendars for year {year}")]
    DuplicateYear { year: i32 },
    #[error("working hours {spec:?}: {reason}")]
    BadHours { spec: String, reason: String },
    #[error("invalid duration {input:?}: {reason}")]
    BadDuration { input: String, reason: String },
}

/// Holidays and make-up working days (调休上班) of one calendar year.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct YearCalendar {
    pub year: i32,
    pub holidays: BTreeSet<NaiveDate>,
    pub workdays: BTreeSet<NaiveDate>,
}

// On-disk shape of `config/holidays/YYYY.toml`. Unknown keys are rejected so that a typo such as
// `workday = [...]` fails loudly instead of silently dropping make-up days.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawYear {
    year: i64,
    // Provenance for humans; not needed for the arithmetic.
    #[serde(default, rename = "source")]
    _source: Option<String>,
    #[serde(default)]
    holidays: Vec<RawHoliday>,
    #[serde(default)]
    workdays: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHoliday {
    name: String,
    from: String,
    to: String,
}

fn parse_date(field: String, value: &str) -> Result<NaiveDate, CalendarError> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|_| CalendarError::BadDate {
        field,
        value: value.to_string(),
    })
}

fn weekday_name(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

impl YearCalendar {
    /// Parses and validates one `YYYY.toml` file's contents.
    pub fn parse_toml(text: &str) -> Result<YearCalendar, CalendarError> {
        let raw: RawYear = toml::from_str(text).map_err(CalendarError::Toml)?;
        // Four digits because files are named `YYYY.toml`; this also keeps every date of the
        // year far from the edges of chrono's range.
        let year = match i32::try_from(raw.year) {
            Ok(y) if (1000..=9999).contains(&y) => y,
            _ => return Err(CalendarError::BadYear { year: raw.year }),
        };
        let in_year = |field: String, date: NaiveDate| {
            if date.year() == year {
                Ok(date)
            } else {
                Err(CalendarError::OutsideYear { field, date, year })
            }
        };

        let mut holidays = BTreeSet::new();
        for (i, h) in raw.holidays.iter().enumerate() {
            let field = |key: &str| format!("holidays[{i}] ({}).{key}", h.name);
            let from = in_year(field("from"), parse_date(field("from"), &h.from)?)?;
            let to = in_year(field("to"), parse_date(field("to"), &h.to)?)?;
            if from > to {
                return Err(CalendarError::ReversedRange {
                    field: format!("holidays[{i}]"),
                    name: h.name.clone(),
                    from,
                    to,
                });
            }
            holidays.extend(from.iter_days().take_while(|d| *d <= to));
        }

        let mut workdays = BTreeSet::new();
        for (i, w) in raw.workdays.iter().enumerate() {
            let field = format!("workdays[{i}]");
            let date = in_year(field.clone(), parse_date(field, w)?)?;
            workdays.insert(date);
        }

        let cal = YearCalendar {
            year,
            holidays,
            workdays,
        };
        cal.check()?;
        Ok(cal)
    }

    // Invariants shared by parsed files and hand-built values passed to `Calendar::new`.
    fn check(&self) -> Result<(), CalendarError> {
        for (field, set) in [("holidays", &self.holidays), ("workdays", &self.workdays)] {
            if let Some(&date) = set.iter().find(|d| d.year() != self.year) {
                return Err(CalendarError::OutsideYear {
                    field: field.to_string(),
                    date,
                    year: self.year,
                });
            }
        }
        // A make-up day only makes sense on a weekend; a weekday "workday" is almost certainly a
        // transcription error in the notice.
        if let Some(&date) = self.workdays.iter().find(|d| !is_weekend(**d)) {
            return Err(CalendarError::WorkdayNotWeekend {
                field: "workdays".to_string(),
                date,
                weekday: weekday_name(date.weekday()),
            });
        }
        if let Some(&date) = self.workdays.intersection(&self.holidays).next() {
            return Err(CalendarError::HolidayAndWorkday { date });
        }
        Ok(())
    }
}

/// One block of office hours within a day, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkInterval {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

fn format_hours(hours: &[WorkInterval]) -> String {
    hours
        .iter()
        .map(|iv| format!("{}-{}", iv.start.format("%H:%M"), iv.end.format("%H:%M")))
        .collect::<Vec<_>>()
        .join(",")
}

// Sorts and checks office hours; the reason is wrapped into `BadHours` by the caller.
fn normalize_hours(hours: &mut [WorkInterval]) -> Result<(), String> {
    if hours.is_empty() {
        return Err("no working intervals".to_string());
    }
    if let Some(iv) = hours.iter().find(|iv| iv.start >= iv.end) {
        return Err(format!(
            "interval {} must end after it starts",
            format_hours(&[*iv])
        ));
    }
    hours.sort_by_key(|iv| iv.start);
    // Touching intervals (12:00-12:00) are fine; overlapping ones would count minutes twice.
    if let Some(w) = hours.windows(2).find(|w| w[0].end > w[1].start) {
        return Err(format!("intervals {} overlap", format_hours(w)));
    }
    Ok(())
}

/// Parses office hours such as `"08:30-12:00,14:00-17:30"` (an en dash `–` is accepted too).
/// The result is sorted, non-empty and free of overlaps.
pub fn parse_hours(spec: &str) -> Result<Vec<WorkInterval>, CalendarError> {
    let bad = |reason: String| CalendarError::BadHours {
        spec: spec.to_string(),
        reason,
    };
    let time = |s: &str| {
        NaiveTime::parse_from_str(s.trim(), "%H:%M")
            .map_err(|_| bad(format!("{:?} is not a HH:MM time", s.trim())))
    };
    let mut hours = Vec::new();
    for part in spec.split(',') {
        let part = part.trim();
        let Some((start, end)) = part.split_once(['-', '–']) else {
            return Err(bad(format!("{part:?} is not of the form HH:MM-HH:MM")));
        };
        hours.push(WorkInterval {
            start: time(start)?,
            end: time(end)?,
        });
    }
    normalize_hours(&mut hours).map_err(bad)?;
    Ok(hours)
}

/// Office hours plus the per-year holiday tables; answers every deadline question.
#[derive(Debug, Clone)]
pub struct Calendar {
    hours: Vec<WorkInterval>,
    years: BTreeMap<i32, YearCalendar>,
    // Cached from `hours`, which `new` guarantees to be non-empty.
    open: NaiveTime,
    close: NaiveTime,
    day_len: TimeDelta,
}

// Wall-clock conversions. They clamp instead of panicking at the far ends of chrono's range,
// where `DateTime::naive_local` would panic; realistic instants are never affected.
fn to_local(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
        .checked_add_signed(TimeDelta::seconds(i64::from(CITY_OFFSET_SECS)))
        .unwrap_or(NaiveDateTime::MAX)
}

fn to_utc(local: NaiveDateTime) -> DateTime<Utc> {
    local
        .checked_sub_signed(TimeDelta::seconds(i64::from(CITY_OFFSET_SECS)))
        .unwrap_or(NaiveDateTime::MIN)
        .and_utc()
}

fn nanos(d: TimeDelta) -> i128 {
    i128::from(d.num_seconds()) * 1_000_000_000 + i128::from(d.subsec_nanos())
}

fn from_nanos(n: i128) -> TimeDelta {
    let secs = i64::try_from(n.div_euclid(1_000_000_000)).unwrap_or(i64::MAX);
    // rem_euclid of a positive divisor lies in 0..1e9, which always fits u32.
    let sub = u32::try_from(n.rem_euclid(1_000_000_000)).unwrap_or(0);
    TimeDelta::new(secs, sub).unwrap_or(TimeDelta::MAX)
}

fn weekday_index(d: NaiveDate) -> u64 {
    u64::from(d.weekday().num_days_from_monday())
}

/// Number of Monday–Friday dates in `[a, b]` (0 if `b < a`), in O(1).
fn weekdays_incl(a: NaiveDate, b: NaiveDate) -> i64 {
    if b < a {
        return 0;
    }
    let days = (b - a).num_days() + 1;
    let start = i64::from(a.weekday().num_days_from_monday());
    let tail = (0..days % 7).filter(|i| (start + i) % 7 < 5).count() as i64;
    days / 7 * 5 + tail
}

/// The `k`-th (k >= 1; 0 acts as 1) Monday–Friday date on or after `start`, in O(1).
fn nth_weekday_from(start: NaiveDate, k: u64) -> Option<NaiveDate> {
    let first = match start.weekday() {
        Weekday::Sat => start.checked_add_days(Days::new(2))?,
        Weekday::Sun => start.checked_add_days(Days::new(1))?,
        _ => start,
    };
    let k = k.saturating_sub(1);
    let (weeks, rest) = (k / 5, k % 5);
    let base = first.checked_add_days(Days::new(weeks.checked_mul(7)?))?;
    // Stepping `rest` weekdays forward crosses one weekend iff it runs past Friday.
    let step = if weekday_index(base) + rest >= 5 {
        rest + 2
    } else {
        rest
    };
    base.checked_add_days(Days::new(step))
}

/// The `k`-th (k >= 1; 0 acts as 1) Monday–Friday date on or before `end`, in O(1).
fn nth_weekday_back(end: NaiveDate, k: u64) -> Option<NaiveDate> {
    let last = match end.weekday() {
        Weekday::Sat => end.checked_sub_days(Days::new(1))?,
        Weekday::Sun => end.checked_sub_days(Days::new(2))?,
        _ => end,
    };
    let k = k.saturating_sub(1);
    let (weeks, rest) = (k / 5, k % 5);
    let base = last.checked_sub_days(Days::new(weeks.checked_mul(7)?))?;
    let step = if weekday_index(base) >= rest {
        rest
    } else {
        rest + 2
    };
    base.checked_sub_days(Days::new(step))
}

impl Calendar {
    /// Builds a calendar; hours are sorted and checked, year tables validated and de-duplicated.
    pub fn new(
        mut hours: Vec<WorkInterval>,
        years: Vec<YearCalendar>,
    ) -> Result<Calendar, CalendarError> {
        normalize_hours(&mut hours).map_err(|reason| CalendarError::BadHours {
            spec: format_hours(&hours),
            reason,
        })?;
        let mut by_year = BTreeMap::new();
        for y in years {
            y.check()?;
            let year = y.year;
            if by_year.insert(year, y).is_some() {
                return Err(CalendarError::DuplicateYear { year });
            }
        }
        let (Some(first), Some(last)) = (hours.first(), hours.last()) else {
            // Unreachable: normalize_hours rejects an empty list.
            return Err(CalendarError::BadHours {
                spec: String::new(),
                reason: "no working intervals".to_string(),
            });
        };
        let (open, close) = (first.start, last.end);
        let day_len = hours
            .iter()
            .fold(TimeDelta::zero(), |acc, iv| acc + (iv.end - iv.start));
        Ok(Calendar {
            hours,
            years: by_year,
            open,
            close,
            day_len,
        })
    }

    /// Loads every `YYYY.toml` in `dir` (other files are ignored). A missing directory is an
    /// error; an empty one yields a Monday–Friday-only calendar.
    pub fn load_dir(dir: &Path, hours: Vec<WorkInterval>) -> Result<Calendar, CalendarError> {
        let io = |path: &Path, error| CalendarError::Io {
            path: path.to_path_buf(),
            error,
        };
        let mut years = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let path = entry.map_err(|e| io(dir, e))?.path();
            let Some(file_year) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".toml"))
                .filter(|stem| stem.len() == 4 && stem.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|stem| stem.parse::<i32>().ok())
            else {
                continue;
            };
            let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
            let cal = YearCalendar::parse_toml(&text).map_err(|e| CalendarError::InFile {
                path: path.clone(),
                error: Box::new(e),
            })?;
            if cal.year != file_year {
                return Err(CalendarError::YearMismatch {
                    path,
                    file_year,
                    key_year: cal.year,
                });
            }
            years.push(cal);
        }
        Calendar::new(hours, years)
    }

    /// Years that have a holiday file, ascending.
    pub fn known_years(&self) -> Vec<i32> {
        self.years.keys().copied().collect()
    }

    pub fn hours(&self) -> &[WorkInterval] {
        &self.hours
    }

    /// With a file for the year: (Mon–Fri and not a holiday) or a make-up day.
    /// Without one: Mon–Fri only (the notice for next year is published late in the year).
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        match self.years.get(&d.year()) {
            Some(y) => y.workdays.contains(&d) || (!is_weekend(d) && !y.holidays.contains(&d)),
            None => !is_weekend(d),
        }
    }

    /// Working minutes in a full working day (420 for 08:30-12:00,14:00-17:30).
    pub fn minutes_per_day(&self) -> i64 {
        self.day_len.num_minutes()
    }

    // The k-th (k >= 1) working day strictly after `d`; None past the end of chrono's range.
    // Years with a file are walked day by day (at most 366 steps each); years without one are
    // skipped in O(1), so even u32::MAX days terminates quickly (by running out of dates).
    fn nth_working_day_after(&self, d: NaiveDate, k: u64) -> Option<NaiveDate> {
        if k == 0 {
            return Some(d);
        }
        let mut remaining = k;
        let mut day = d.succ_opt()?;
        loop {
            let year = day.year();
            if self.years.contains_key(&year) {
                while day.year() == year {
                    if self.is_working_day(day) {
                        remaining -= 1;
                        if remaining == 0 {
                            return Some(day);
                        }
                    }
                    day = day.succ_opt()?;
                }
            } else {
                let year_end = NaiveDate::from_ymd_opt(year, 12, 31)?;
                let available = weekdays_incl(day, year_end) as u64;
                if remaining <= available {
                    return nth_weekday_from(day, remaining);
                }
                remaining -= available;
                day = year_end.succ_opt()?;
            }
        }
    }

    // Mirror image of `nth_working_day_after`: the k-th working day strictly before `d`.
    fn nth_working_day_before(&self, d: NaiveDate, k: u64) -> Option<NaiveDate> {
        if k == 0 {
            return Some(d);
        }
        let mut remaining = k;
        let mut day = d.pred_opt()?;
        loop {
            let year = day.year();
            if self.years.contains_key(&year) {
                while day.year() == year {
                    if self.is_working_day(day) {
                        remaining -= 1;
                        if remaining == 0 {
                            return Some(day);
                        }
                    }
                    day = day.pred_opt()?;
                }
            } else {
                let year_start = NaiveDate::from_ymd_opt(year, 1, 1)?;
                let available = weekdays_incl(year_start, day) as u64;
                if remaining <= available {
                    return nth_weekday_back(day, remaining);
                }
                remaining -= available;
                day = year_start.pred_opt()?;
            }
        }
    }

    // Number of working days in `[a, b]`, year by year like the walkers above.
    fn count_working_days(&self, a: NaiveDate, b: NaiveDate) -> i64 {
        let mut count = 0;
        let mut day = a;
        while day <= b {
            let year = day.year();
            let Some(year_end) = NaiveDate::from_ymd_opt(year, 12, 31) else {
                break;
            };
            let last = year_end.min(b);
            if self.years.contains_key(&year) {
                count += day
                    .iter_days()
                    .take_while(|x| *x <= last)
                    .filter(|x| self.is_working_day(*x))
                    .count() as i64;
            } else {
                count += weekdays_incl(day, last);
            }
            match last.succ_opt() {
                Some(next) => day = next,
                None => break,
            }
        }
        count
    }

    // Working time on day `d` within `[from, to)` of its wall clock (`to = None`: end of day).
    fn worked_on(&self, d: NaiveDate, from: NaiveTime, to: Option<NaiveTime>) -> TimeDelta {
        if !self.is_working_day(d) {
            return TimeDelta::zero();
        }
        self.hours.iter().fold(TimeDelta::zero(), |acc, iv| {
            let start = iv.start.max(from);
            let end = to.map_or(iv.end, |t| iv.end.min(t));
            if end > start {
                acc + (end - start)
            } else {
                acc
            }
        })
    }

    // Splits `rem` (> 0) of working time still to count after/before a day into the number of
    // further working days `k` and the working time `into` (in (0, day_len]) used on the last one.
    fn split_days(&self, rem: TimeDelta) -> (u64, TimeDelta) {
        let (rem, day) = (nanos(rem), nanos(self.day_len));
        let k = (rem + day - 1) / day;
        let into = from_nanos(rem - (k - 1) * day);
        (u64::try_from(k).unwrap_or(u64::MAX), into)
    }

    /// Close of the `n`-th working day after the dispatch day (wall-clock date in the city);
    /// `n = 0` means the close of the dispatch day if it is a working day, else of the next one.
    pub fn add_working_days(&self, from: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        let day = to_local(from).date();
        let target = if n == 0 && self.is_working_day(day) {
            Some(day)
        } else {
            self.nth_working_day_after(day, u64::from(n.max(1)))
        };
        match target {
            Some(d) => to_utc(d.and_time(self.close)),
            None => DateTime::<Utc>::MAX_UTC,
        }
    }

    /// Counts `minutes` of working time forward from `from` (or from the next opening when
    /// `from` is outside working hours). Ending exactly at an interval end yields that end,
    /// not the next opening. Negative values count backwards; results saturate.
    pub fn add_working_minutes(&self, from: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
        if minutes == 0 {
            return from;
        }
        if minutes < 0 {
            return self.sub_working_minutes(from, minutes.saturating_neg());
        }
        let Some(mut rem) = TimeDelta::try_minutes(minutes) else {
            return DateTime::<Utc>::MAX_UTC;
        };
        let local = to_local(from);
        let (day, time) = (local.date(), local.time());
        if self.is_working_day(day) {
            for iv in &self.hours {
                if iv.end <= time {
                    continue;
                }
                let start = iv.start.max(time);
                let available = iv.end - start;
                if rem <= available {
                    return to_utc(day.and_time(start) + rem);
                }
                rem -= available;
            }
        }
        let (k, mut into) = self.split_days(rem);
        let Some(target) = self.nth_working_day_after(day, k) else {
            return DateTime::<Utc>::MAX_UTC;
        };
        for iv in &self.hours {
            let available = iv.end - iv.start;
            if into <= available {
                return to_utc(target.and_time(iv.start) + into);
            }
            into -= available;
        }
        // Unreachable: `into` never exceeds a full day.
        to_utc(target.and_time(self.close))
    }

    /// Working time in `[a, b)` in whole minutes (computed exactly, then floored); 0 if `b <= a`.
    pub fn working_minutes_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
        if b <= a {
            return 0;
        }
        let (la, lb) = (to_local(a), to_local(b));
        let (da, db) = (la.date(), lb.date());
        let total = if da == db {
            nanos(self.worked_on(da, la.time(), Some(lb.time())))
        } else {
            let full_days = match (da.succ_opt(), db.pred_opt()) {
                (Some(first), Some(last)) => self.count_working_days(first, last),
                _ => 0,
            };
            nanos(self.worked_on(da, la.time(), None))
                + i128::from(full_days) * nanos(self.day_len)
                + nanos(self.worked_on(db, NaiveTime::MIN, Some(lb.time())))
        };
        i64::try_from(total / NANOS_PER_MINUTE).unwrap_or(i64::MAX)
    }

    /// Latest `t` such that the working time in `[t, deadline)` is exactly `minutes`. When the
    /// deadline is outside working time the count starts from the previous interval end; when
    /// the count is exhausted at an interval start, that start (not the previous close) is `t`.
    pub fn sub_working_minutes(&self, deadline: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
        if minutes == 0 {
            return deadline;
        }
        if minutes < 0 {
            return self.add_working_minutes(deadline, minutes.saturating_neg());
        }
        let Some(mut rem) = TimeDelta::try_minutes(minutes) else {
            return DateTime::<Utc>::MIN_UTC;
        };
        let local = to_local(deadline);
        let (day, time) = (local.date(), local.time());
        if self.is_working_day(day) {
            for iv in self.hours.iter().rev() {
                if iv.start >= time {
                    continue;
                }
                let end = iv.end.min(time);
                let available = end - iv.start;
                if rem <= available {
                    return to_utc(day.and_time(end) - rem);
                }
                rem -= available;
            }
        }
        let (k, mut into) = self.split_days(rem);
        let Some(target) = self.nth_working_day_before(day, k) else {
            return DateTime::<Utc>::MIN_UTC;
        };
        for iv in self.hours.iter().rev() {
            let available = iv.end - iv.start;
            if into <= available {
                return to_utc(target.and_time(iv.end) - into);
            }
            into -= available;
        }
        // Unreachable: `into` never exceeds a full day.
        to_utc(target.and_time(self.open))
    }

    /// Deadline of a duration started at `from`.
    pub fn due(&self, from: DateTime<Utc>, d: WorkingDuration) -> DateTime<Utc> {
        match d {
            WorkingDuration::Natural { minutes } => TimeDelta::try_minutes(minutes)
                .and_then(|delta| from.checked_add_signed(delta))
                .unwrap_or(if minutes < 0 {
                    DateTime::<Utc>::MIN_UTC
                } else {
                    DateTime::<Utc>::MAX_UTC
                }),
            WorkingDuration::WorkingMinutes(m) => self.add_working_minutes(from, m),
            WorkingDuration::WorkingDays(n) => self.add_working_days(from, n),
        }
    }

    /// The instant from which "time remaining until `deadline` <= `d`" holds, e.g. to raise a
    /// warning. Working days are measured as `n * minutes_per_day` working minutes.
    pub fn before(&self, deadline: DateTime<Utc>, d: WorkingDuration) -> DateTime<Utc> {
        match d {
            WorkingDuration::Natural { minutes } => TimeDelta::try_minutes(minutes)
                .and_then(|delta| deadline.checked_sub_signed(delta))
                .unwrap_or(if minutes < 0 {
                    DateTime::<Utc>::MAX_UTC
                } else {
                    DateTime::<Utc>::MIN_UTC
                }),
            WorkingDuration::WorkingMinutes(m) => self.sub_working_minutes(deadline, m),
            WorkingDuration::WorkingDays(n) => self.sub_working_minutes(
                deadline,
                i64::from(n).saturating_mul(self.minutes_per_day()),
            ),
        }
    }
}

/// A time limit as written in configuration: natural (wall-clock) minutes, working minutes, or
/// working days. Serialized as its canonical string, e.g. `"2 working hours"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum WorkingDuration {
    Natural { minutes: i64 },
    WorkingMinutes(i64),
    WorkingDays(u32),
}

impl FromStr for WorkingDuration {
    type Err = CalendarError;

    /// Accepts `"<n> minute(s)"`, `"<n> hour(s)"`, `"<n> working minute(s)"`,
    /// `"<n> working hour(s)"` and `"<n> working day(s)"`, case-insensitive, with `n > 0`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| CalendarError::BadDuration {
            input: s.to_string(),
            reason,
        };
        const EXPECTED: &str = "expected e.g. \"30 minutes\", \"24 hours\", \"2 working hours\" or \"10 working days\"";
        let lower = s.to_lowercase();
        let words: Vec<&str> = lower.split_whitespace().collect();
        let Some((number, rest)) = words.split_first() else {
            return Err(bad(format!("empty; {EXPECTED}")));
        };
        let value: i64 = number
            .parse()
            .map_err(|_| bad(format!("{number:?} is not a whole number; {EXPECTED}")))?;
        if value <= 0 {
            return Err(bad("must be greater than zero".to_string()));
        }
        let (working, unit) = match rest {
            ["working", unit] => (true, *unit),
            [unit] => (false, *unit),
            _ => return Err(bad(EXPECTED.to_string())),
        };
        let hours = || {
            value
                .checked_mul(60)
                .ok_or_else(|| bad("too large".to_string()))
        };
        match (working, unit) {
            (false, "minute" | "minutes") => Ok(WorkingDuration::Natural { minutes: value }),
            (false, "hour" | "hours") => Ok(WorkingDuration::Natural { minutes: hours()? }),
            // "10 days" is ambiguous in a working-time context; make the author say which.
            (false, "day" | "days") => Err(bad(
                "say \"N working days\" or, for wall-clock time, \"N hours\"".to_string(),
            )),
            (true, "minute" | "minutes") => Ok(WorkingDuration::WorkingMinutes(value)),
            (true, "hour" | "hours") => Ok(WorkingDuration::WorkingMinutes(hours()?)),
            (true, "day" | "days") => u32::try_from(value)
                .map(WorkingDuration::WorkingDays)
                .map_err(|_| bad("too many working days".to_string())),
            _ => Err(bad(format!("unknown unit {unit:?}; {EXPECTED}"))),
        }
    }
}

impl fmt::Display for WorkingDuration {
    /// Canonical form: whole hours are printed as hours, everything else as minutes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: i64| if n == 1 { "" } else { "s" };
        let (working, minutes) = match *self {
            WorkingDuration::Natural { minutes } => ("", minutes),
            WorkingDuration::WorkingMinutes(m) => ("working ", m),
            WorkingDuration::WorkingDays(n) => {
                let n = i64::from(n);
                return write!(f, "{n} working day{}", plural(n));
            }
        };
        if minutes != 0 && minutes % 60 == 0 {
            let h = minutes / 60;
            write!(f, "{h} {working}hour{}", plural(h))
        } else {
            write!(f, "{minutes} {working}minute{}", plural(minutes))
        }
    }
}

impl From<WorkingDuration> for String {
    fn from(d: WorkingDuration) -> String {
        d.to_string()
    }
}

impl TryFrom<String> for WorkingDuration {
    type Error = CalendarError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    /// A city wall-clock instant.
    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        city_tz()
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .expect("valid test instant")
            .with_timezone(&Utc)
    }

    fn holidays_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/holidays")
    }

    fn default_hours() -> Vec<WorkInterval> {
        parse_hours("08:30-12:00,14:00-17:30").expect("default hours parse")
    }

    fn real() -> Calendar {
        Calendar::load_dir(&holidays_dir(), default_hours()).expect("real calendar loads")
    }

    fn time(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("valid test time")
    }

    #[test]
    fn worked_example_five_working_days_over_national_day() {
        let cal = real();
        let due = cal.add_working_days(at(2026, 9, 30, 10, 0), 5);
        assert_eq!(due, at(2026, 10, 13, 17, 30));
        let due = cal.due(at(2026, 9, 30, 10, 0), "5 working days".parse().unwrap());
        assert_eq!(due, at(2026, 10, 13, 17, 30));
    }

    #[test]
    fn working_days_start_after_dispatch_day_even_off_hours_or_holiday() {
        let cal = real();
        // Dispatched on a holiday (Oct 3) or at night: still the next working day counts first.
        assert_eq!(
            cal.add_working_days(at(2026, 10, 3, 10, 0), 1),
            at(2026, 10, 8, 17, 30)
        );
        assert_eq!(
            cal.add_working_days(at(2026, 11, 19, 23, 0), 1),
            at(2026, 11, 20, 17, 30)
        );
        // The local date decides, not the UTC date: 2026-11-19 20:00 UTC is Nov 20 04:00 local.
        let utc_evening = Utc.with_ymd_and_hms(2026, 11, 19, 20, 0, 0).unwrap();
        assert_eq!(
            cal.add_working_days(utc_evening, 1),
            at(2026, 11, 23, 17, 30)
        );
        // n = 0: close of the dispatch day if working, else of the next working day.
        assert_eq!(
            cal.add_working_days(at(2026, 11, 20, 9, 0), 0),
            at(2026, 11, 20, 17, 30)
        );
        assert_eq!(
            cal.add_working_days(at(2026, 11, 21, 9, 0), 0),
            at(2026, 11, 23, 17, 30)
        );
    }

    #[test]
    fn two_working_hours_over_a_weekend() {
        let cal = real();
        let from = at(2026, 11, 20, 16, 30);
        assert_eq!(cal.add_working_minutes(from, 120), at(2026, 11, 23, 9, 30));
        assert_eq!(
            cal.working_minutes_between(from, at(2026, 11, 23, 9, 30)),
            120
        );
        assert_eq!(cal.sub_working_minutes(at(2026, 11, 23, 9, 30), 120), from);
        assert_eq!(cal.add_working_minutes(from, 0), from);
    }

    #[test]
    fn working_minutes_end_at_interval_end_not_next_opening() {
        let cal = real();
        assert_eq!(
            cal.add_working_minutes(at(2026, 11, 20, 11, 0), 60),
            at(2026, 11, 20, 12, 0)
        );
        assert_eq!(
            cal.add_working_minutes(at(2026, 11, 20, 17, 0), 30),
            at(2026, 11, 20, 17, 30)
        );
        // Outside hours the count starts at the next opening.
        assert_eq!(
            cal.add_working_minutes(at(2026, 11, 20, 12, 30), 10),
            at(2026, 11, 20, 14, 10)
        );
        assert_eq!(
            cal.add_working_minutes(at(2026, 11, 20, 6, 0), 420),
            at(2026, 11, 20, 17, 30)
        );
        assert_eq!(
            cal.add_working_minutes(at(2026, 11, 20, 6, 0), 421),
            at(2026, 11, 23, 8, 31)
        );
    }

    #[test]
    fn sub_working_minutes_counts_back_from_previous_interval_end() {
        let cal = real();
        // Deadline during lunch: count back from 12:00.
        assert_eq!(
            cal.sub_working_minutes(at(2026, 11, 20, 13, 0), 30),
            at(2026, 11, 20, 11, 30)
        );
        // Deadline on Monday early morning: back into Friday afternoon.
        assert_eq!(
            cal.sub_working_minutes(at(2026, 11, 23, 7, 0), 60),
            at(2026, 11, 20, 16, 30)
        );
        // Exhausted exactly at an opening: the opening is the latest such instant.
        assert_eq!(
            cal.sub_working_minutes(at(2026, 11, 20, 15, 0), 60),
            at(2026, 11, 20, 14, 0)
        );
        assert_eq!(
            cal.sub_working_minutes(at(2026, 11, 23, 7, 0), 840),
            at(2026, 11, 19, 8, 30)
        );
    }

    #[test]
    fn before_thresholds() {
        let cal = real();
        let deadline = at(2026, 10, 13, 17, 30);
        assert_eq!(
            cal.before(deadline, "24 hours".parse().unwrap()),
            at(2026, 10, 12, 17, 30)
        );
        assert_eq!(
            cal.before(deadline, "2 working hours".parse().unwrap()),
            at(2026, 10, 13, 15, 30)
        );
        // One working day before the close of Oct 13 is its opening.
        assert_eq!(
            cal.before(deadline, "1 working day".parse().unwrap()),
            at(2026, 10, 13, 8, 30)
        );
        // Two working days reach back over Sunday Oct 11 to the make-up Saturday Oct 10.
        assert_eq!(
            cal.before(deadline, "2 working days".parse().unwrap()),
            at(2026, 10, 12, 8, 30)
        );
        assert_eq!(
            cal.before(deadline, "3 working days".parse().unwrap()),
            at(2026, 10, 10, 8, 30)
        );
    }

    #[test]
    fn make_up_days_2026_are_working_days() {
        let cal = real();
        for (m, d, wd) in [
            (1, 4, Weekday::Sun),
            (9, 20, Weekday::Sun),
            (2, 14, Weekday::Sat),
            (2, 28, Weekday::Sat),
            (5, 9, Weekday::Sat),
            (10, 10, Weekday::Sat),
        ] {
            let day = date(2026, m, d);
            assert_eq!(day.weekday(), wd, "{day}");
            assert!(cal.is_working_day(day), "{day} should be a working day");
        }
        // An ordinary weekend stays off.
        assert!(!cal.is_working_day(date(2026, 10, 11)));
    }

    #[test]
    fn spring_festival_2026_is_skipped() {
        let cal = real();
        for day in date(2026, 2, 15).iter_days().take(9) {
            assert!(!cal.is_working_day(day), "{day} is a holiday");
        }
        assert!(cal.is_working_day(date(2026, 2, 24)));
        // Friday Feb 13 + 1 working day = Saturday Feb 14 (make-up), + 2 = Tuesday Feb 24.
        assert_eq!(
            cal.add_working_days(at(2026, 2, 13, 9, 0), 1),
            at(2026, 2, 14, 17, 30)
        );
        assert_eq!(
            cal.add_working_days(at(2026, 2, 13, 9, 0), 2),
            at(2026, 2, 24, 17, 30)
        );
        assert_eq!(
            cal.add_working_minutes(at(2026, 2, 14, 17, 0), 60),
            at(2026, 2, 24, 9, 0)
        );
        assert_eq!(
            cal.working_minutes_between(at(2026, 2, 14, 17, 0), at(2026, 2, 24, 9, 0)),
            60
        );
    }

    #[test]
    fn year_without_file_counts_monday_to_friday() {
        let cal = real();
        assert_eq!(cal.known_years(), vec![2025, 2026]);
        // 2027-01-01 is a Friday: no holiday without a file.
        assert!(cal.is_working_day(date(2027, 1, 1)));
        assert!(!cal.is_working_day(date(2027, 1, 2)));
        assert_eq!(
            cal.add_working_days(at(2026, 12, 31, 10, 0), 1),
            at(2027, 1, 1, 17, 30)
        );
        assert_eq!(
            cal.add_working_days(at(2027, 1, 1, 10, 0), 1),
            at(2027, 1, 4, 17, 30)
        );
        assert_eq!(
            cal.add_working_days(at(2027, 1, 1, 10, 0), 10),
            at(2027, 1, 15, 17, 30)
        );
    }

    #[test]
    fn large_counts_are_fast_and_saturate() {
        let cal = real();
        let from = at(2025, 3, 3, 9, 0);
        let start = std::time::Instant::now();
        let due = cal.add_working_days(from, 10_000);
        // 10,000 working days is roughly 38 years.
        assert!(due > at(2062, 1, 1, 0, 0) && due < at(2066, 1, 1, 0, 0));
        let minutes = 10_000 * cal.minutes_per_day();
        // The dispatch day itself contributes 09:00-17:30 minus lunch = 390 minutes.
        assert_eq!(cal.working_minutes_between(from, due), minutes + 390);
        assert_eq!(cal.sub_working_minutes(due, minutes + 390), from);
        assert_eq!(
            cal.add_working_days(from, u32::MAX),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(
            cal.add_working_minutes(from, i64::MAX),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(
            cal.sub_working_minutes(from, i64::MAX),
            DateTime::<Utc>::MIN_UTC
        );
        assert_eq!(
            cal.add_working_minutes(from, 1_000_000_000_000),
            DateTime::<Utc>::MAX_UTC
        );
        let far = cal.add_working_days(DateTime::<Utc>::MAX_UTC, 3);
        assert_eq!(far, DateTime::<Utc>::MAX_UTC);
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn real_files_match_holidays_md() {
        type MonthDay = (u32, u32);
        let cal = real();
        let expect = |year: i32, ranges: &[(MonthDay, MonthDay)], work: &[MonthDay]| {
            let mut holidays = BTreeSet::new();
            for &((fm, fd), (tm, td)) in ranges {
                let to = date(year, tm, td);
                holidays.extend(date(year, fm, fd).iter_days().take_while(|d| *d <= to));
            }
            YearCalendar {
                year,
                holidays,
                workdays: work.iter().map(|&(m, d)| date(year, m, d)).collect(),
            }
        };
        let y2025 = expect(
            2025,
            &[
                ((1, 1), (1, 1)),
                ((1, 28), (2, 4)),
                ((4, 4), (4, 6)),
                ((5, 1), (5, 5)),
                ((5, 31), (6, 2)),
                ((10, 1), (10, 8)),
            ],
            &[(1, 26), (2, 8), (4, 27), (9, 28), (10, 11)],
        );
        let y2026 = expect(
            2026,
            &[
                ((1, 1), (1, 3)),
                ((2, 15), (2, 23)),
                ((4, 4), (4, 6)),
                ((5, 1), (5, 5)),
                ((6, 19), (6, 21)),
                ((9, 25), (9, 27)),
                ((10, 1), (10, 7)),
            ],
            &[(1, 4), (2, 14), (2, 28), (5, 9), (9, 20), (10, 10)],
        );
        assert_eq!(cal.years.get(&2025), Some(&y2025));
        assert_eq!(cal.years.get(&2026), Some(&y2026));
        assert!(cal.is_working_day(date(2025, 9, 28)));
        assert!(cal.is_working_day(date(2025, 10, 11)));
        assert!(!cal.is_working_day(date(2025, 10, 8)));
        assert_eq!(
            cal.add_working_days(at(2025, 9, 27, 10, 0), 1),
            at(2025, 9, 28, 17, 30)
        );
        assert_eq!(
            cal.add_working_days(at(2025, 9, 30, 10, 0), 3),
            at(2025, 10, 11, 17, 30)
        );
    }

    #[test]
    fn parse_toml_errors_name_the_field() {
        let err = YearCalendar::parse_toml("year = 2026\nworkdays = [\"2026-01-05\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("workdays") && err.contains("Monday"), "{err}");

        let err = YearCalendar::parse_toml(
            "year = 2026\nholidays = [{ name = \"春节\", from = \"2026-02-30\", to = \"2026-02-23\" }]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("holidays[0] (春节).from") && err.contains("2026-02-30"),
            "{err}"
        );

        let err = YearCalendar::parse_toml("year = 2026\nworkdays = [\"2025-09-28\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside year 2026"), "{err}");

        let err = YearCalendar::parse_toml(
            "year = 2026\nholidays = [{ name = \"x\", from = \"2026-02-23\", to = \"2026-02-15\" }]\n",
        )
        .unwrap_err();
        assert!(matches!(err, CalendarError::ReversedRange { .. }), "{err}");

        let err = YearCalendar::parse_toml(
            "year = 2026\nholidays = [{ name = \"x\", from = \"2026-01-04\", to = \"2026-01-04\" }]\nworkdays = [\"2026-01-04\"]\n",
        )
        .unwrap_err();
        assert!(
            matches!(err, CalendarError::HolidayAndWorkday { .. }),
            "{err}"
        );

        let err = YearCalendar::parse_toml("year = 2026\nworkday = []\n").unwrap_err();
        assert!(err.to_string().contains("workday"), "{err}");
        assert!(YearCalendar::parse_toml("year = 26\n").is_err());
    }

    #[test]
    fn load_dir_checks_file_name_against_year() {
        let dir =
            std::env::temp_dir().join(format!("hotline-calendar-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("2027.toml"), "year = 2026\n").unwrap();
        std::fs::write(dir.join("README.md"), "not a calendar").unwrap();
        let err = Calendar::load_dir(&dir, default_hours()).unwrap_err();
        assert!(
            matches!(
                err,
                CalendarError::YearMismatch {
                    file_year: 2027,
                    key_year: 2026,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("2027.toml"), "{err}");

        std::fs::write(dir.join("2027.toml"), "year = 2027\nworkdays = [\"bad\"]\n").unwrap();
        let err = Calendar::load_dir(&dir, default_hours())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("2027.toml") && err.contains("workdays[0]"),
            "{err}"
        );

        std::fs::write(
            dir.join("2027.toml"),
            "year = 2027\nworkdays = [\"2027-01-02\"]\n",
        )
        .unwrap();
        let cal = Calendar::load_dir(&dir, default_hours()).unwrap();
        assert_eq!(cal.known_years(), vec![2027]);
        assert!(cal.is_working_day(date(2027, 1, 2)));
        std::fs::remove_dir_all(&dir).unwrap();

        assert!(matches!(
            Calendar::load_dir(&dir, default_hours()),
            Err(CalendarError::Io { .. })
        ));
    }

    #[test]
    fn calendar_new_rejects_duplicates() {
        let y = YearCalendar {
            year: 2030,
            ..Default::default()
        };
        let err = Calendar::new(default_hours(), vec![y.clone(), y]).unwrap_err();
        assert!(matches!(err, CalendarError::DuplicateYear { year: 2030 }));
        assert!(Calendar::new(Vec::new(), Vec::new()).is_err());
    }

    #[test]
    fn hours_parsing() {
        let hours = default_hours();
        assert_eq!(
            hours,
            vec![
                WorkInterval {
                    start: time(8, 30),
                    end: time(12, 0)
                },
                WorkInterval {
                    start: time(14, 0),
                    end: time(17, 30)
                },
            ]
        );
        assert_eq!(parse_hours(" 14:00 – 17:30 , 08:30–12:00 ").unwrap(), hours);
        let cal = Calendar::new(hours, Vec::new()).unwrap();
        assert_eq!(cal.minutes_per_day(), 420);
        for bad in [
            "",
            "08:30",
            "08:30-12:00,",
            "12:00-08:30",
            "08:00-12:00,11:00-13:00",
            "8h-12h",
        ] {
            assert!(parse_hours(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn duration_parsing_and_display() {
        let cases = [
            (
                "30 minutes",
                WorkingDuration::Natural { minutes: 30 },
                "30 minutes",
            ),
            (
                "24 hours",
                WorkingDuration::Natural { minutes: 1440 },
                "24 hours",
            ),
            ("1 Hour", WorkingDuration::Natural { minutes: 60 }, "1 hour"),
            (
                "2 working hours",
                WorkingDuration::WorkingMinutes(120),
                "2 working hours",
            ),
            (
                "30 working minutes",
                WorkingDuration::WorkingMinutes(30),
                "30 working minutes",
            ),
            (
                "90 Working Minutes",
                WorkingDuration::WorkingMinutes(90),
                "90 working minutes",
            ),
            (
                "10 working days",
                WorkingDuration::WorkingDays(10),
                "10 working days",
            ),
            (
                "  1   WORKING   day ",
                WorkingDuration::WorkingDays(1),
                "1 working day",
            ),
            (
                "1 working minute",
                WorkingDuration::WorkingMinutes(1),
                "1 working minute",
            ),
        ];
        for (input, expected, canonical) in cases {
            let parsed: WorkingDuration = input.parse().unwrap();
            assert_eq!(parsed, expected, "{input}");
            assert_eq!(parsed.to_string(), canonical);
            assert_eq!(canonical.parse::<WorkingDuration>().unwrap(), expected);
        }
        for bad in [
            "",
            "0 minutes",
            "-5 working days",
            "ten minutes",
            "5",
            "5 fortnights",
            "3 days",
            "2.5 hours",
            "5 working",
            "5 extra working days",
        ] {
            let err = bad.parse::<WorkingDuration>().unwrap_err();
            assert!(
                err.to_string().contains("invalid duration"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn duration_serde_is_a_string() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Rule {
            limit: WorkingDuration,
        }
        let rule = Rule {
            limit: WorkingDuration::WorkingMinutes(120),
        };
        let text = toml::to_string(&rule).unwrap();
        assert_eq!(text.trim(), "limit = \"2 working hours\"");
        assert_eq!(toml::from_str::<Rule>(&text).unwrap(), rule);
        assert!(toml::from_str::<Rule>("limit = \"0 hours\"").is_err());
    }

    // Random instants in 2025-2027, including sub-second ones.
    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        let lo = at(2025, 1, 1, 0, 0).timestamp();
        let hi = at(2028, 1, 1, 0, 0).timestamp();
        (lo..hi, prop_oneof![Just(0u32), 0u32..1_000_000_000])
            .prop_map(|(s, ns)| DateTime::from_timestamp(s, ns).expect("in range"))
    }

    fn in_working_time(cal: &Calendar, t: DateTime<Utc>) -> bool {
        let local = to_local(t);
        cal.is_working_day(local.date())
            && cal
                .hours()
                .iter()
                .any(|iv| iv.start <= local.time() && local.time() <= iv.end)
    }

    fn inside_open_interval(cal: &Calendar, t: DateTime<Utc>) -> bool {
        let local = to_local(t);
        cal.is_working_day(local.date())
            && cal
                .hours()
                .iter()
                .any(|iv| iv.start <= local.time() && local.time() < iv.end)
    }

    // A calendar with a gap between known years (2026, then 2029 with invented rules) and
    // touching intervals, to exercise the O(1) skipping against day-by-day reference answers.
    fn gappy() -> Calendar {
        let mut cals = vec![
            YearCalendar::parse_toml(include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/config/holidays/2026.toml"
            )))
            .unwrap(),
        ];
        cals.push(
            YearCalendar::parse_toml(
                "year = 2029\nholidays = [{ name = \"x\", from = \"2029-01-01\", to = \"2029-01-09\" }]\nworkdays = [\"2029-01-13\", \"2029-12-30\"]\n",
            )
            .unwrap(),
        );
        Calendar::new(
            parse_hours("13:00-18:00,09:00-12:00,12:00-12:30").unwrap(),
            cals,
        )
        .unwrap()
    }

    fn brute_nth_after(cal: &Calendar, d: NaiveDate, n: u32) -> NaiveDate {
        let mut day = d;
        let mut left = n;
        while left > 0 {
            day = day.succ_opt().unwrap();
            if cal.is_working_day(day) {
                left -= 1;
            }
        }
        day
    }

    fn brute_nth_before(cal: &Calendar, d: NaiveDate, n: u32) -> NaiveDate {
        let mut day = d;
        let mut left = n;
        while left > 0 {
            day = day.pred_opt().unwrap();
            if cal.is_working_day(day) {
                left -= 1;
            }
        }
        day
    }

    // Minute-by-minute reference for whole-minute starting instants.
    fn brute_add_minutes(cal: &Calendar, from: NaiveDateTime, m: i64) -> NaiveDateTime {
        let mut t = from;
        let mut left = m;
        while left > 0 {
            if cal.is_working_day(t.date())
                && cal
                    .hours()
                    .iter()
                    .any(|iv| iv.start <= t.time() && t.time() < iv.end)
            {
                left -= 1;
            }
            t += TimeDelta::minutes(1);
        }
        t
    }

    fn brute_sub_minutes(cal: &Calendar, deadline: NaiveDateTime, m: i64) -> NaiveDateTime {
        let mut t = deadline;
        let mut left = m;
        while left > 0 {
            t -= TimeDelta::minutes(1);
            if cal.is_working_day(t.date())
                && cal
                    .hours()
                    .iter()
                    .any(|iv| iv.start <= t.time() && t.time() < iv.end)
            {
                left -= 1;
            }
        }
        t
    }

    fn whole_minute_instant() -> impl Strategy<Value = DateTime<Utc>> {
        let lo = at(2025, 12, 1, 0, 0).timestamp() / 60;
        let hi = at(2030, 2, 1, 0, 0).timestamp() / 60;
        (lo..hi).prop_map(|m| DateTime::from_timestamp(m * 60, 0).expect("in range"))
    }

    proptest! {
        #[test]
        fn working_days_deadline_is_a_close_after_the_dispatch_day(from in instant(), n in 1u32..400) {
            let cal = real();
            let due = cal.add_working_days(from, n);
            let local = to_local(due);
            prop_assert!(cal.is_working_day(local.date()));
            prop_assert_eq!(local.time(), time(17, 30));
            prop_assert!(local.date() > to_local(from).date());
            prop_assert_eq!(
                cal.count_working_days(to_local(from).date().succ_opt().unwrap(), local.date()),
                i64::from(n)
            );
        }

        #[test]
        fn working_minutes_deadline_is_in_working_time(from in instant(), m in 0i64..30_000) {
            let cal = real();
            let due = cal.add_working_minutes(from, m);
            if m == 0 {
                prop_assert_eq!(due, from);
            } else {
                prop_assert!(in_working_time(&cal, due), "{} -> {}", from, due);
                prop_assert!(due > from);
            }
        }

        #[test]
        fn between_inverts_add(from in instant(), m in 0i64..30_000) {
            let cal = real();
            prop_assert_eq!(cal.working_minutes_between(from, cal.add_working_minutes(from, m)), m);
        }

        #[test]
        fn before_inverts_due_for_working_minutes(from in instant(), m in 1i64..30_000) {
            let cal = real();
            let d = WorkingDuration::WorkingMinutes(m);
            let back = cal.before(cal.due(from, d), d);
            if inside_open_interval(&cal, from) {
                prop_assert_eq!(back, from);
            } else {
                // Outside hours the count began at the next opening, which is what comes back.
                prop_assert!(back > from);
                prop_assert!(inside_open_interval(&cal, back));
                prop_assert_eq!(cal.working_minutes_between(from, back), 0);
                prop_assert_eq!(cal.add_working_minutes(back, m), cal.due(from, d));
            }
        }

        #[test]
        fn sub_is_latest_instant_with_that_much_work(deadline in instant(), m in 1i64..30_000) {
            let cal = real();
            let t = cal.sub_working_minutes(deadline, m);
            prop_assert_eq!(cal.working_minutes_between(t, deadline), m);
            // One second later there is strictly less working time before the deadline.
            let later = t + TimeDelta::seconds(1);
            prop_assert!(cal.working_minutes_between(later, deadline) < m);
        }

        #[test]
        fn gappy_days_match_day_by_day_reference(from in whole_minute_instant(), n in 0u32..1500) {
            let cal = gappy();
            let d = to_local(from).date();
            let expected = if n == 0 && cal.is_working_day(d) { d } else { brute_nth_after(&cal, d, n.max(1)) };
            prop_assert_eq!(cal.add_working_days(from, n), to_utc(expected.and_time(time(18, 0))));
            if n > 0 {
                prop_assert_eq!(
                    cal.nth_working_day_before(expected, u64::from(n)),
                    Some(brute_nth_before(&cal, expected, n))
                );
                let first = d.succ_opt().unwrap();
                let brute_count = first.iter_days().take_while(|x| *x <= expected)
                    .filter(|x| cal.is_working_day(*x)).count() as i64;
                prop_assert_eq!(cal.count_working_days(first, expected), brute_count);
            }
        }

        #[test]
        fn gappy_minutes_match_minute_by_minute_reference(from in whole_minute_instant(), m in 0i64..2500) {
            let cal = gappy();
            let local = to_local(from);
            prop_assert_eq!(cal.add_working_minutes(from, m), to_utc(brute_add_minutes(&cal, local, m)));
            let back = brute_sub_minutes(&cal, local, m);
            prop_assert_eq!(cal.sub_working_minutes(from, m), to_utc(back));
            prop_assert_eq!(cal.working_minutes_between(to_utc(back), from), m);
        }
    }
}
