//! 统计: DESIGN.md's figures as counters ("facts") kept in daily rollups, and
//! the rates computed from them.
//!
//! A fact is "add `n` to counter `col` of department `department` on city day
//! `day`". Two derivations of the same facts live here:
//! - [`transition_facts`]: what one accepted change adds (the before/after
//!   difference of the ticket plus what its event counts). The transactions
//!   that change tickets write these into the rollups.
//! - [`history_facts`]: what a ticket's whole history adds, from its final row
//!   and its event list. Rebuilding the rollups and the tests use this.
//!
//! Summed over a ticket's changes, the first equals the second; the property
//! tests check that, and that figures read from the rollups equal figures
//! computed straight from raw tickets and events.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;

use super::calendar::city_tz;
use super::lifecycle::{EventDraft, Ticket};
use super::types::{EventKind, Resolution, Satisfaction};

macro_rules! columns {
    ($($var:ident => $name:literal),* $(,)?) => {
        /// One counter of the rollups; its name is the column name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Col { $($var),* }

        impl Col {
            pub const ALL: &'static [Col] = &[$(Col::$var),*];
            pub const fn name(self) -> &'static str {
                match self { $(Col::$var => $name),* }
            }
        }
    };
}

columns! {
    // keyed by the day the ticket was created, its current lead department
    Created => "created",
    DirectAnswer => "direct_answer",
    // keyed by each dispatch's sign deadline
    SignDue => "sign_due",
    SignOnTime => "sign_on_time",
    // keyed by the ticket's current (final) reply deadline
    ReplyDue => "reply_due",
    Replied => "replied",
    RepliedOnTime => "replied_on_time",
    // keyed by the day of the dispatch
    Dispatches => "dispatches",
    Kept => "kept",
    // keyed by the day of the event
    Returns => "returns",
    Callbacks => "callbacks",
    Reached => "reached",
    Resolved => "resolved",
    Satisfied => "satisfied",
    BasicallySatisfied => "basically_satisfied",
    Reopened => "reopened",
    // +1 on the day a ticket becomes overdue, -1 on the day it stops being
    // overdue: the sum over the days before `to` is `overdue_open` at `to`
    OverdueDelta => "overdue_delta",
}

pub const NCOLS: usize = Col::ALL.len();

/// One value per counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts(pub [i64; NCOLS]);

impl Counts {
    pub fn get(&self, c: Col) -> i64 {
        self.0[c as usize]
    }
    pub fn add(&mut self, c: Col, n: i64) {
        self.0[c as usize] += n;
    }
    pub fn merge(&mut self, o: &Counts) {
        for (a, b) in self.0.iter_mut().zip(o.0.iter()) {
            *a += b;
        }
    }
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|v| *v == 0)
    }
}

/// The city-local calendar day of an instant.
pub fn city_day(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&city_tz()).date_naive()
}

/// A day as the integer the rollups store: `YYYYMMDD`.
pub fn day_key(d: NaiveDate) -> i32 {
    d.year() * 10_000 + d.month() as i32 * 100 + d.day() as i32
}

/// Adds `n` to `col` for `department` ("" when none) on `day`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fact {
    pub day: NaiveDate,
    pub department: String,
    pub col: Col,
    pub n: i64,
}

fn push(out: &mut Vec<Fact>, at: DateTime<Utc>, department: &str, col: Col, n: i64) {
    out.push(Fact {
        day: city_day(at),
        department: department.to_owned(),
        col,
        n,
    });
}

/// The facts a ticket's current row stands for, times `sign`: intake and
/// 直办 (by creation day), and 应办结/已办结/按期办结 (by the final reply
/// deadline), all under the current lead department.
fn row_facts(created_at: DateTime<Utc>, t: &Ticket, sign: i64, out: &mut Vec<Fact>) {
    let dept = t.department.as_deref().unwrap_or("");
    push(out, created_at, dept, Col::Created, sign);
    if t.resolution == Some(Resolution::DirectAnswer) {
        push(out, created_at, dept, Col::DirectAnswer, sign);
    }
    if let Some(due) = t.reply_due_at {
        push(out, due, dept, Col::ReplyDue, sign);
        if let Some(replied) = t.replied_at {
            push(out, due, dept, Col::Replied, sign);
            if replied <= due {
                push(out, due, dept, Col::RepliedOnTime, sign);
            }
        }
    }
}

/// The current dispatch counts as kept (首派准确) while it stands: neither
/// returned (which clears the lead) nor replaced by another dispatch.
fn kept_fact(t: &Ticket, sign: i64, out: &mut Vec<Fact>) {
    if let (Some(dept), Some(at)) = (&t.department, t.dispatched_at) {
        push(out, at, dept, Col::Kept, sign);
    }
}

fn callback_facts(
    at: DateTime<Utc>,
    dept: &str,
    kind: EventKind,
    payload: &Value,
    out: &mut Vec<Fact>,
) {
    push(out, at, dept, Col::Callbacks, 1);
    let satisfaction = payload
        .get("satisfaction")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Satisfaction>().ok());
    if let Some(s) = satisfaction
        && s != Satisfaction::Unreachable
    {
        push(out, at, dept, Col::Reached, 1);
        if payload.get("resolved").and_then(Value::as_bool) == Some(true) {
            push(out, at, dept, Col::Resolved, 1);
        }
        match s {
            Satisfaction::Satisfied => push(out, at, dept, Col::Satisfied, 1),
            Satisfaction::BasicallySatisfied => push(out, at, dept, Col::BasicallySatisfied, 1),
            _ => {}
        }
    }
    if kind == EventKind::Reopened {
        push(out, at, dept, Col::Reopened, 1);
    }
}

/// An overdue-clock segment starts at `at` with deadline `due`: the ticket is
/// overdue from `max(at, due)` on.
fn segment_start(at: DateTime<Utc>, due: DateTime<Utc>, dept: &str, out: &mut Vec<Fact>) {
    push(out, at.max(due), dept, Col::OverdueDelta, 1);
}

/// The segment with deadline `due` ends at `at`: if it was overdue, it stops
/// being so at `at`; if not, the start it announced for `due` is withdrawn.
fn segment_end(at: DateTime<Utc>, due: DateTime<Utc>, dept: &str, out: &mut Vec<Fact>) {
    push(
        out,
        if due < at { at } else { due },
        dept,
        Col::OverdueDelta,
        -1,
    );
}

/// What one accepted change adds to the rollups: `before` is `None` for a
/// new ticket. Escalation-level changes add nothing (they move no deadline).
pub fn transition_facts(
    created_at: DateTime<Utc>,
    before: Option<&Ticket>,
    after: &Ticket,
    event: &EventDraft,
    now: DateTime<Utc>,
) -> Vec<Fact> {
    let mut out = Vec::new();
    if let Some(b) = before {
        row_facts(created_at, b, -1, &mut out);
        kept_fact(b, -1, &mut out);
    }
    row_facts(created_at, after, 1, &mut out);
    kept_fact(after, 1, &mut out);

    let dept = event.department.as_deref().unwrap_or("");
    match event.kind {
        EventKind::Dispatched => {
            push(&mut out, now, dept, Col::Dispatches, 1);
            if let Some(d) = after.sign_due_at {
                push(&mut out, d, dept, Col::SignDue, 1);
            }
        }
        EventKind::Signed => {
            if let Some(d) = before.and_then(|b| b.sign_due_at)
                && now <= d
            {
                push(&mut out, d, dept, Col::SignOnTime, 1);
            }
        }
        EventKind::Returned => push(&mut out, now, dept, Col::Returns, 1),
        EventKind::Callback | EventKind::Reopened => {
            callback_facts(now, dept, event.kind, &event.payload, &mut out)
        }
        _ => {}
    }

    let segment = |t: &Ticket| {
        t.active_deadline()
            .map(|(clock, due)| (clock, due, t.department.clone().unwrap_or_default()))
    };
    let (old, new) = (before.and_then(segment), segment(after));
    if old != new {
        if let Some((_, due, d)) = &old {
            segment_end(now, *due, d, &mut out);
        }
        if let Some((_, due, d)) = &new {
            segment_start(now, *due, d, &mut out);
        }
    }
    out
}

/// One stored event, as [`history_facts`] reads it.
#[derive(Debug, Clone)]
pub struct HistoryEvent {
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    pub department: Option<String>,
    pub payload: Value,
}

fn payload_time(p: &Value, key: &str) -> Option<DateTime<Utc>> {
    p.get(key)
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

/// Whether [`history_facts`] reads the payload of an event of this kind (the
/// others may be given `Value::Null`: a bulk load then skips parsing them).
/// Dispatches also carry the co-departments that see the ticket.
pub const fn history_reads_payload(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::Dispatched
            | EventKind::Signed
            | EventKind::ExtensionDecided
            | EventKind::Callback
            | EventKind::Reopened
    )
}

/// What a ticket's whole history adds to the rollups: its final row and its
/// events in order.
pub fn history_facts(
    created_at: DateTime<Utc>,
    last: &Ticket,
    events: &[HistoryEvent],
) -> Vec<Fact> {
    let mut out = Vec::new();
    row_facts(created_at, last, 1, &mut out);

    // The active clock: (deadline, department), and the reply deadline that
    // signing starts.
    let mut seg: Option<(DateTime<Utc>, String)> = None;
    let mut reply_due: Option<DateTime<Utc>> = None;
    let mut in_progress = false;
    let mut last_dispatch: Option<(DateTime<Utc>, String)> = None;

    for e in events {
        let dept = e.department.clone().unwrap_or_default();
        let end = |seg: &mut Option<(DateTime<Utc>, String)>, out: &mut Vec<Fact>| {
            if let Some((due, d)) = seg.take() {
                segment_end(e.at, due, &d, out);
            }
        };
        match e.kind {
            EventKind::Dispatched => {
                push(&mut out, e.at, &dept, Col::Dispatches, 1);
                end(&mut seg, &mut out);
                reply_due = payload_time(&e.payload, "reply_due_at");
                if let Some(d) = payload_time(&e.payload, "sign_due_at") {
                    push(&mut out, d, &dept, Col::SignDue, 1);
                    segment_start(e.at, d, &dept, &mut out);
                    seg = Some((d, dept.clone()));
                }
                in_progress = false;
                last_dispatch = Some((e.at, dept));
            }
            EventKind::Signed => {
                if e.payload.get("on_time").and_then(Value::as_bool) == Some(true)
                    && let Some(d) = payload_time(&e.payload, "sign_due_at")
                {
                    push(&mut out, d, &dept, Col::SignOnTime, 1);
                }
                end(&mut seg, &mut out);
                if let Some(d) = reply_due {
                    segment_start(e.at, d, &dept, &mut out);
                    seg = Some((d, dept));
                }
                in_progress = true;
            }
            EventKind::ExtensionDecided => {
                if e.payload.get("approve").and_then(Value::as_bool) == Some(true) {
                    reply_due = payload_time(&e.payload, "reply_due_at");
                    if in_progress {
                        end(&mut seg, &mut out);
                        if let Some(d) = reply_due {
                            segment_start(e.at, d, &dept, &mut out);
                            seg = Some((d, dept));
                        }
                    }
                }
            }
            EventKind::Returned => {
                push(&mut out, e.at, &dept, Col::Returns, 1);
                end(&mut seg, &mut out);
                in_progress = false;
                last_dispatch = None;
            }
            EventKind::Replied | EventKind::Closed | EventKind::Merged => {
                end(&mut seg, &mut out);
                in_progress = false;
            }
            EventKind::Callback => {
                callback_facts(e.at, &dept, e.kind, &e.payload, &mut out);
                end(&mut seg, &mut out);
                in_progress = false;
            }
            EventKind::Reopened => {
                callback_facts(e.at, &dept, e.kind, &e.payload, &mut out);
                end(&mut seg, &mut out);
                reply_due = payload_time(&e.payload, "reply_due_at");
                if let Some(d) = reply_due {
                    segment_start(e.at, d, &dept, &mut out);
                    seg = Some((d, dept));
                }
                in_progress = true;
            }
            EventKind::Created
            | EventKind::ExtensionRequested
            | EventKind::Escalated
            | EventKind::Note => {}
        }
    }
    if let Some((at, dept)) = last_dispatch {
        push(&mut out, at, &dept, Col::Kept, 1);
    }
    out
}

/// The fixed attributes of a ticket its facts are grouped by ("" when none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketDims {
    pub channel: String,
    pub category: String,
    pub district: String,
}

/// How figures are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Department,
    Channel,
    Category,
    District,
}

impl std::str::FromStr for GroupBy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "department" => GroupBy::Department,
            "channel" => GroupBy::Channel,
            "category" => GroupBy::Category,
            "district" => GroupBy::District,
            _ => {
                return Err(format!(
                    "`group_by` must be department, channel, category or district, not {s:?}"
                ));
            }
        })
    }
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Department => "department",
            GroupBy::Channel => "channel",
            GroupBy::Category => "category",
            GroupBy::District => "district",
        }
    }
    /// The slice of the rollups that answers this grouping.
    pub fn dim(g: Option<GroupBy>) -> Dim {
        match g {
            None | Some(GroupBy::Department) => Dim::All,
            Some(GroupBy::Channel) => Dim::Channel,
            Some(GroupBy::Category) => Dim::Category,
            Some(GroupBy::District) => Dim::District,
        }
    }
}

/// The rollups hold each fact per department alone (`all`) and per
/// department × channel, × category and × district, each per day and per
/// month (`…_m`, keyed by the month's first day). Every query the API can ask
/// (the city or one department, grouped by at most one attribute) reads one
/// slice: months for the whole months of a period, days for the rest. A full
/// four-way cube would be ~50 times the rows and answer nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    All,
    Channel,
    Category,
    District,
    AllM,
    ChannelM,
    CategoryM,
    DistrictM,
}

impl Dim {
    pub const ALL: [Dim; 8] = [
        Dim::All,
        Dim::Channel,
        Dim::Category,
        Dim::District,
        Dim::AllM,
        Dim::ChannelM,
        Dim::CategoryM,
        Dim::DistrictM,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Dim::All => "all",
            Dim::Channel => "channel",
            Dim::Category => "category",
            Dim::District => "district",
            Dim::AllM => "all_m",
            Dim::ChannelM => "channel_m",
            Dim::CategoryM => "category_m",
            Dim::DistrictM => "district_m",
        }
    }
    pub fn value(self, dims: &TicketDims) -> &str {
        match self {
            Dim::All | Dim::AllM => "",
            Dim::Channel | Dim::ChannelM => &dims.channel,
            Dim::Category | Dim::CategoryM => &dims.category,
            Dim::District | Dim::DistrictM => &dims.district,
        }
    }
    /// The monthly slice of a daily one (itself when already monthly).
    pub fn monthly(self) -> Dim {
        match self {
            Dim::All => Dim::AllM,
            Dim::Channel => Dim::ChannelM,
            Dim::Category => Dim::CategoryM,
            Dim::District => Dim::DistrictM,
            m => m,
        }
    }
    pub fn is_monthly(self) -> bool {
        self.monthly() == self
    }
    /// The `day` a fact of `d` is stored under in this slice.
    pub fn key_day(self, d: NaiveDate) -> i32 {
        if self.is_monthly() {
            day_key(month_start(d))
        } else {
            day_key(d)
        }
    }
}

/// The first day of `d`'s month.
pub fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

/// The first day of the month after `d`'s.
pub fn next_month(d: NaiveDate) -> NaiveDate {
    month_start(d)
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(d)
}

/// A rollup row's key: slice, day (`YYYYMMDD`), department, attribute value.
pub type RollupKey = (Dim, i32, String, String);

/// Rollup rows in memory, the same shape as the table.
pub type Rollup = BTreeMap<RollupKey, Counts>;

/// Adds a ticket's facts to `rollup`, once per slice. Rows that net to zero
/// are kept (the table keeps them too); queries ignore them.
pub fn add_facts(rollup: &mut Rollup, dims: &TicketDims, facts: &[Fact]) {
    for f in facts {
        for dim in Dim::ALL {
            let key = (
                dim,
                dim.key_day(f.day),
                f.department.clone(),
                dim.value(dims).to_owned(),
            );
            rollup.entry(key).or_default().add(f.col, f.n);
        }
    }
}

/// The rollups of many tickets, with interned strings: aggregating millions
/// of facts into a map keyed by owned strings costs more than simulating.
/// Hashed with foldhash rather than SipHash (about a quarter of `add`'s time
/// in a profile of a 1 M import): the keys come from our own tickets, not
/// from a network peer.
#[derive(Default)]
pub struct FastRollup {
    strings: HashMap<String, u32, foldhash::fast::RandomState>,
    names: Vec<String>,
    rows: HashMap<(Dim, i32, u32, u32), Counts, foldhash::fast::RandomState>,
}

impl FastRollup {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(i) = self.strings.get(s) {
            return *i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.to_owned());
        self.strings.insert(s.to_owned(), i);
        i
    }

    pub fn add(&mut self, dims: &TicketDims, facts: &[Fact]) {
        let values = Dim::ALL.map(|d| self.intern(d.value(dims)));
        for f in facts {
            let dept = self.intern(&f.department);
            for (dim, value) in Dim::ALL.into_iter().zip(values) {
                self.rows
                    .entry((dim, dim.key_day(f.day), dept, value))
                    .or_default()
                    .add(f.col, f.n);
            }
        }
    }

    pub fn take(&mut self) -> Rollup {
        let names = &self.names;
        self.rows
            .drain()
            .filter(|(_, c)| !c.is_zero())
            .map(|((dim, day, dept, value), c)| {
                (
                    (
                        dim,
                        day,
                        names[dept as usize].clone(),
                        names[value as usize].clone(),
                    ),
                    c,
                )
            })
            .collect()
    }
}

/// A period of whole city days, `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// The longest period a figure may cover.
pub const MAX_PERIOD_DAYS: i64 = 3653;

impl Period {
    /// Reads `from`/`to` as city dates (`2026-11-01`) or RFC 3339 instants
    /// that fall on a city midnight (`2026-11-01T00:00:00+08:00`).
    pub fn parse(from: &str, to: &str) -> Result<Period, String> {
        let from = parse_bound("from", from)?;
        let to = parse_bound("to", to)?;
        let p = Period { from, to };
        if to < from {
            return Err(format!("`to` ({to}) is before `from` ({from})"));
        }
        if p.days() > MAX_PERIOD_DAYS {
            return Err("the period is longer than 10 years".into());
        }
        Ok(p)
    }

    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days()
    }

    /// The period of the same length just before this one.
    pub fn previous(&self) -> Period {
        Period {
            from: self.from - chrono::Days::new(self.days() as u64),
            to: self.from,
        }
    }

    /// `from` and `to` as instants at the city's midnight.
    pub fn instants(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (midnight(self.from), midnight(self.to))
    }
}

pub fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(city_tz()).single())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn parse_bound(name: &str, s: &str) -> Result<NaiveDate, String> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d);
    }
    match DateTime::parse_from_rfc3339(s) {
        Ok(t) => {
            let local = t.with_timezone(&city_tz());
            if local.time() != chrono::NaiveTime::MIN {
                return Err(format!(
                    "`{name}` must fall on a midnight in the city's time zone (+08:00): figures are kept per day"
                ));
            }
            Ok(local.date_naive())
        }
        Err(_) => Err(format!(
            "`{name}` must be a date (YYYY-MM-DD) or an RFC 3339 instant at a city midnight, not {s:?}"
        )),
    }
}

/// Sums an in-memory rollup's daily rows: the period's counters and,
/// separately, `overdue_open` at `to` (all deltas before `to`), per group key
/// ("" for the whole city). The store answers the same from months and days;
/// the tests hold the two equal.
pub fn query_rollup(
    rollup: &Rollup,
    period: Period,
    group_by: Option<GroupBy>,
    department: Option<&str>,
) -> BTreeMap<String, (Counts, i64)> {
    let dim = GroupBy::dim(group_by);
    let (from, to) = (day_key(period.from), day_key(period.to));
    let mut out: BTreeMap<String, (Counts, i64)> = BTreeMap::new();
    for ((d, day, dept, value), c) in rollup {
        if *d != dim || *day >= to || department.is_some_and(|x| x != dept) {
            continue;
        }
        let key = match group_by {
            None => String::new(),
            Some(GroupBy::Department) => dept.clone(),
            Some(_) => value.clone(),
        };
        let entry = out.entry(key).or_default();
        if *day >= from {
            entry.0.merge(c);
        }
        entry.1 += c.get(Col::OverdueDelta);
    }
    // The period's counters leave the overdue deltas out; `.1` has them.
    for (c, _) in out.values_mut() {
        c.0[Col::OverdueDelta as usize] = 0;
    }
    // The whole city always answers; a group with nothing in the period and
    // nothing overdue is not shown.
    if group_by.is_none() {
        out.entry(String::new()).or_default();
        return out;
    }
    out.retain(|_, (c, overdue)| {
        *overdue != 0
            || Col::ALL
                .iter()
                .any(|col| *col != Col::OverdueDelta && c.get(*col) != 0)
    });
    out
}

/// A count: `intake` and `overdue_open`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Count {
    pub numerator: i64,
}

/// A rate with its parts; `rate` is `null` when the denominator is 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub numerator: i64,
    pub denominator: i64,
    pub rate: Option<f64>,
}

impl Rate {
    pub fn new(numerator: i64, denominator: i64) -> Rate {
        Rate {
            numerator,
            denominator,
            rate: (denominator != 0).then(|| numerator as f64 / denominator as f64),
        }
    }
}

/// Every figure of DESIGN.md, in its order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub intake: Count,
    pub direct_answer_rate: Rate,
    pub sign_on_time_rate: Rate,
    pub closure_rate: Rate,
    pub on_time_rate: Rate,
    pub resolution_rate: Rate,
    pub satisfaction_rate: Rate,
    pub return_rate: Rate,
    pub rework_rate: Rate,
    pub first_dispatch_accuracy: Rate,
    pub overdue_open: Count,
}

impl Figures {
    /// `basically_counts`: whether 基本满意 counts as satisfied
    /// (`stats.basically_satisfied_counts`).
    pub fn from_counts(c: &Counts, overdue_open: i64, basically_counts: bool) -> Figures {
        let satisfied = c.get(Col::Satisfied)
            + if basically_counts {
                c.get(Col::BasicallySatisfied)
            } else {
                0
            };
        Figures {
            intake: Count {
                numerator: c.get(Col::Created),
            },
            direct_answer_rate: Rate::new(c.get(Col::DirectAnswer), c.get(Col::Created)),
            sign_on_time_rate: Rate::new(c.get(Col::SignOnTime), c.get(Col::SignDue)),
            closure_rate: Rate::new(c.get(Col::Replied), c.get(Col::ReplyDue)),
            on_time_rate: Rate::new(c.get(Col::RepliedOnTime), c.get(Col::ReplyDue)),
            resolution_rate: Rate::new(c.get(Col::Resolved), c.get(Col::Reached)),
            satisfaction_rate: Rate::new(satisfied, c.get(Col::Reached)),
            return_rate: Rate::new(c.get(Col::Returns), c.get(Col::Dispatches)),
            rework_rate: Rate::new(c.get(Col::Reopened), c.get(Col::Callbacks)),
            first_dispatch_accuracy: Rate::new(c.get(Col::Kept), c.get(Col::Dispatches)),
            overdue_open: Count {
                numerator: overdue_open,
            },
        }
    }
}

#[cfg(test)]
#[path = "figures_tests.rs"]
mod tests;
