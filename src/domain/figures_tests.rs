//! The figures against DESIGN.md's table: worked examples, then property
//! tests over random histories on the real 2026 calendar:
//! - the facts the changes add one by one equal the facts of the whole
//!   history (so the transactional rollups and a rebuild agree);
//! - figures read from those rollups equal figures counted straight from the
//!   tickets and their changes by the wording of DESIGN.md.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::domain::lifecycle::{Action, Actor, apply};
use crate::domain::simulate::propose;
use crate::domain::types::{Category, Role, TicketState, Urgency};

use crate::domain::testkit::{at, rules};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

/// One accepted change, as the store would commit it.
#[derive(Debug, Clone)]
struct Change {
    at: DateTime<Utc>,
    action: Action,
    before: Ticket,
    after: Ticket,
    event: EventDraft,
}

#[derive(Debug, Clone)]
struct History {
    dims: TicketDims,
    created_at: DateTime<Utc>,
    first: Ticket,
    changes: Vec<Change>,
}

impl History {
    fn last(&self) -> &Ticket {
        self.changes.last().map_or(&self.first, |c| &c.after)
    }

    fn events(&self) -> Vec<HistoryEvent> {
        self.changes
            .iter()
            .map(|c| HistoryEvent {
                at: c.at,
                kind: c.event.kind,
                department: c.event.department.clone(),
                payload: c.event.payload.clone(),
            })
            .collect()
    }

    /// What the ticket looked like at `t`: after every change strictly before.
    fn as_of(&self, t: DateTime<Utc>) -> Option<&Ticket> {
        if self.created_at >= t {
            return None;
        }
        Some(
            self.changes
                .iter()
                .take_while(|c| c.at < t)
                .last()
                .map_or(&self.first, |c| &c.after),
        )
    }
}

const DEPARTMENTS: &[&str] = &["city_management", "housing", "water", "donghu"];
const CHANNELS: &[&str] = &["hotline", "mailbox", "wenzheng"];
const DISTRICTS: &[&str] = &["", "donghu", "xihu"];

fn simulate(seed: u64, tickets: usize, start: DateTime<Utc>) -> Vec<History> {
    let mut rng = StdRng::seed_from_u64(seed);
    let rules = rules();
    let departments: Vec<String> = DEPARTMENTS.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    for i in 0..tickets {
        let category = Category::ALL[rng.gen_range(0..Category::ALL.len())];
        let urgency = if rng.gen_bool(0.15) {
            Urgency::Urgent
        } else {
            Urgency::Normal
        };
        let created_at = start + Duration::minutes(rng.gen_range(0..30 * 24 * 60));
        let first = Ticket::registered(category, urgency, rng.gen_bool(0.1));
        let mut h = History {
            dims: TicketDims {
                channel: CHANNELS[rng.gen_range(0..CHANNELS.len())].into(),
                category: category.as_str().into(),
                district: DISTRICTS[rng.gen_range(0..DISTRICTS.len())].into(),
            },
            created_at,
            first: first.clone(),
            changes: Vec::new(),
        };
        let mut t = first;
        let mut now = created_at;
        let mut pending = None;
        let mut next_ext = 1;
        for _ in 0..14 {
            let merge_into = (i > 0).then_some(i as i64);
            let Some((actor, action, when)) =
                propose(&mut rng, &t, now, &departments, pending, merge_into)
            else {
                break;
            };
            if matches!(action, Action::RequestExtension { .. }) && pending.is_some() {
                continue;
            }
            let Ok((after, event)) = apply(&rules, &t, &actor, &action, when) else {
                continue;
            };
            match &action {
                Action::RequestExtension { working_days, .. } => {
                    pending = Some((next_ext, *working_days));
                    next_ext += 1;
                }
                Action::DecideExtension { .. } => pending = None,
                _ => {}
            }
            h.changes.push(Change {
                at: when,
                action,
                before: t.clone(),
                after: after.clone(),
                event,
            });
            t = after;
            now = when;
        }
        out.push(h);
    }
    out
}

fn created_event() -> EventDraft {
    EventDraft {
        kind: EventKind::Created,
        from_state: None,
        to_state: Some(TicketState::Registered),
        department: None,
        payload: serde_json::json!({}),
    }
}

/// The rollups as the transactions build them, change by change.
fn incremental(histories: &[History]) -> Rollup {
    let mut r = Rollup::new();
    for h in histories {
        let facts = transition_facts(h.created_at, None, &h.first, &created_event(), h.created_at);
        add_facts(&mut r, &h.dims, &facts);
        for c in &h.changes {
            let facts = transition_facts(h.created_at, Some(&c.before), &c.after, &c.event, c.at);
            add_facts(&mut r, &h.dims, &facts);
        }
    }
    r
}

/// The rollups as a rebuild from stored rows builds them.
fn rebuilt(histories: &[History]) -> Rollup {
    let mut r = Rollup::new();
    for h in histories {
        add_facts(
            &mut r,
            &h.dims,
            &history_facts(h.created_at, h.last(), &h.events()),
        );
    }
    r
}

fn nonzero(r: Rollup) -> Rollup {
    r.into_iter().filter(|(_, c)| !c.is_zero()).collect()
}

#[derive(Default, Clone, Copy)]
struct Tally {
    c: Counts,
    overdue: i64,
}

/// DESIGN.md's table read literally, over the tickets and their changes.
fn naive(
    histories: &[History],
    period: Period,
    group_by: Option<GroupBy>,
    only: Option<&str>,
    basically: bool,
) -> BTreeMap<String, Figures> {
    let (from, to) = period.instants();
    let inside = |t: DateTime<Utc>| from <= t && t < to;
    let mut groups: BTreeMap<String, Tally> = BTreeMap::new();
    for h in histories {
        let mut add = |dept: Option<&String>, col: Option<Col>, overdue: i64| {
            let dept = dept.map(String::as_str).unwrap_or("");
            if only.is_some_and(|o| o != dept) {
                return;
            }
            let key = match group_by {
                None => "",
                Some(GroupBy::Department) => dept,
                Some(GroupBy::Channel) => &h.dims.channel,
                Some(GroupBy::Category) => &h.dims.category,
                Some(GroupBy::District) => &h.dims.district,
            };
            let g = groups.entry(key.to_owned()).or_default();
            if let Some(col) = col {
                g.c.add(col, 1);
            }
            g.overdue += overdue;
        };
        let last = h.last();
        // 受理量 and 直办率: created in the period.
        if inside(h.created_at) {
            add(last.department.as_ref(), Some(Col::Created), 0);
            if last.resolution == Some(Resolution::DirectAnswer) {
                add(last.department.as_ref(), Some(Col::DirectAnswer), 0);
            }
        }
        // 办结率, 按期办结率: tickets whose final reply deadline is in the period.
        if let Some(due) = last.reply_due_at
            && inside(due)
        {
            add(last.department.as_ref(), Some(Col::ReplyDue), 0);
            if let Some(r) = last.replied_at {
                add(last.department.as_ref(), Some(Col::Replied), 0);
                if r <= due {
                    add(last.department.as_ref(), Some(Col::RepliedOnTime), 0);
                }
            }
        }
        for (i, c) in h.changes.iter().enumerate() {
            let later = &h.changes[i + 1..];
            match c.event.kind {
                EventKind::Dispatched => {
                    let dept = c.after.department.as_ref();
                    // 按时签收率: each dispatch whose sign deadline is in the period.
                    let due = c
                        .after
                        .sign_due_at
                        .expect("a dispatch sets the sign deadline");
                    if inside(due) {
                        add(dept, Some(Col::SignDue), 0);
                        // What ended this dispatch's wait for a signature.
                        let next = later.iter().find(|n| {
                            matches!(
                                n.event.kind,
                                EventKind::Signed
                                    | EventKind::Returned
                                    | EventKind::Dispatched
                                    | EventKind::Merged
                            )
                        });
                        if let Some(n) = next
                            && n.event.kind == EventKind::Signed
                            && n.at <= due
                        {
                            add(dept, Some(Col::SignOnTime), 0);
                        }
                    }
                    if inside(c.at) {
                        add(dept, Some(Col::Dispatches), 0);
                        // 首派准确率: never returned nor dispatched again.
                        let undone = later.iter().any(|n| {
                            matches!(n.event.kind, EventKind::Returned | EventKind::Dispatched)
                        });
                        if !undone {
                            add(dept, Some(Col::Kept), 0);
                        }
                    }
                }
                EventKind::Returned if inside(c.at) => {
                    add(c.before.department.as_ref(), Some(Col::Returns), 0)
                }
                EventKind::Callback | EventKind::Reopened if inside(c.at) => {
                    let dept = c.before.department.as_ref();
                    let Action::Callback {
                        satisfaction,
                        resolved,
                        ..
                    } = &c.action
                    else {
                        panic!("a callback event from {:?}", c.action);
                    };
                    add(dept, Some(Col::Callbacks), 0);
                    if *satisfaction != Satisfaction::Unreachable {
                        add(dept, Some(Col::Reached), 0);
                        if *resolved {
                            add(dept, Some(Col::Resolved), 0);
                        }
                        match satisfaction {
                            Satisfaction::Satisfied => add(dept, Some(Col::Satisfied), 0),
                            Satisfaction::BasicallySatisfied => {
                                add(dept, Some(Col::BasicallySatisfied), 0)
                            }
                            _ => {}
                        }
                    }
                    if c.event.kind == EventKind::Reopened {
                        add(dept, Some(Col::Reopened), 0);
                    }
                }
                _ => {}
            }
        }
        // 超期未办: open at `to`, past the deadline of its running clock.
        if let Some(t) = h.as_of(to)
            && let Some((_, due)) = t.active_deadline()
            && due < to
        {
            add(t.department.as_ref(), None, 1);
        }
    }
    if group_by.is_none() {
        groups.entry(String::new()).or_default();
    }
    groups
        .into_iter()
        .map(|(k, g)| (k, Figures::from_counts(&g.c, g.overdue, basically)))
        .collect()
}

fn from_rollup(
    r: &Rollup,
    period: Period,
    group_by: Option<GroupBy>,
    only: Option<&str>,
    basically: bool,
) -> BTreeMap<String, Figures> {
    query_rollup(r, period, group_by, only)
        .into_iter()
        .map(|(k, (c, overdue))| (k, Figures::from_counts(&c, overdue, basically)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Worked examples
// ---------------------------------------------------------------------------------------------

fn dispatcher() -> Actor {
    Actor {
        name: "d".into(),
        role: Role::Dispatcher,
        department: None,
    }
}

fn handler(dept: &str) -> Actor {
    Actor {
        name: "h".into(),
        role: Role::Handler,
        department: Some(dept.into()),
    }
}

/// Builds a history from (minutes after creation, actor, action) steps.
fn story(
    created_at: DateTime<Utc>,
    category: Category,
    steps: Vec<(DateTime<Utc>, Actor, Action)>,
) -> History {
    let first = Ticket::registered(category, Urgency::Normal, false);
    let mut h = History {
        dims: TicketDims {
            channel: "hotline".into(),
            category: category.as_str().into(),
            district: "donghu".into(),
        },
        created_at,
        first: first.clone(),
        changes: Vec::new(),
    };
    let mut t = first;
    for (when, actor, action) in steps {
        let (after, event) = apply(&rules(), &t, &actor, &action, when).expect("accepted");
        h.changes.push(Change {
            at: when,
            action,
            before: t,
            after: after.clone(),
            event,
        });
        t = after;
    }
    h
}

fn dispatch(dept: &str) -> Action {
    Action::Dispatch {
        department: dept.into(),
        co_departments: Vec::new(),
        note: None,
    }
}

fn reply() -> Action {
    Action::Reply {
        content: "已处理".into(),
        resolved: true,
    }
}

#[test]
fn a_consultation_answered_late_counts_as_closed_but_not_on_time() {
    // Dispatched Wed 2026-09-30 10:00; a consultation has 2 working days:
    // Oct 8 (after the holiday) and Oct 9, so it is due Oct 9 17:30.
    let h = story(
        at(2026, 9, 30, 9, 50),
        Category::Consult,
        vec![
            (at(2026, 9, 30, 10, 0), dispatcher(), dispatch("water")),
            (at(2026, 9, 30, 11, 0), handler("water"), Action::Sign),
            (at(2026, 10, 12, 9, 0), handler("water"), reply()),
        ],
    );
    assert_eq!(h.last().reply_due_at, Some(at(2026, 10, 9, 17, 30)));
    let r = incremental(std::slice::from_ref(&h));
    let oct = Period {
        from: date(2026, 10, 1),
        to: date(2026, 11, 1),
    };
    let f = &from_rollup(&r, oct, None, None, true)[""];
    assert_eq!(f.closure_rate, Rate::new(1, 1));
    assert_eq!(f.on_time_rate, Rate::new(0, 1));
    assert_eq!(f.on_time_rate.rate, Some(0.0));
    // Created and dispatched in September: nothing of that in October.
    assert_eq!(f.intake.numerator, 0);
    assert_eq!(f.return_rate, Rate::new(0, 0));
    assert_eq!(f.return_rate.rate, None);

    let sept = Period {
        from: date(2026, 9, 1),
        to: date(2026, 10, 1),
    };
    let f = &from_rollup(&r, sept, None, None, true)[""];
    assert_eq!(f.intake.numerator, 1);
    assert_eq!(f.sign_on_time_rate, Rate::new(1, 1));
    assert_eq!(f.first_dispatch_accuracy, Rate::new(1, 1));
    assert_eq!(f.closure_rate.rate, None);

    // Overdue from Oct 9 17:30 until the reply on Oct 12.
    let day = |d| Period {
        from: date(2026, 10, 1),
        to: date(2026, 10, d),
    };
    let overdue = |d| {
        from_rollup(&r, day(d), None, None, true)[""]
            .overdue_open
            .numerator
    };
    assert_eq!(overdue(9), 0);
    assert_eq!(overdue(10), 1);
    assert_eq!(overdue(12), 1);
    assert_eq!(overdue(13), 0);
}

#[test]
fn a_return_spoils_the_first_dispatch_and_lands_on_the_returning_department() {
    let h = story(
        at(2026, 11, 2, 9, 0),
        Category::Complaint,
        vec![
            (at(2026, 11, 2, 9, 10), dispatcher(), dispatch("housing")),
            (
                at(2026, 11, 2, 10, 0),
                handler("housing"),
                Action::Return {
                    reason: "非本单位职责".into(),
                },
            ),
            (
                at(2026, 11, 2, 10, 30),
                dispatcher(),
                dispatch("city_management"),
            ),
        ],
    );
    let r = incremental(std::slice::from_ref(&h));
    let nov = Period {
        from: date(2026, 11, 1),
        to: date(2026, 12, 1),
    };
    let by = from_rollup(&r, nov, Some(GroupBy::Department), None, true);
    assert_eq!(by["housing"].return_rate, Rate::new(1, 1));
    assert_eq!(by["housing"].first_dispatch_accuracy, Rate::new(0, 1));
    // 按时签收率 counts the returned dispatch as not signed.
    assert_eq!(by["housing"].sign_on_time_rate, Rate::new(0, 1));
    assert_eq!(
        by["city_management"].first_dispatch_accuracy,
        Rate::new(1, 1)
    );
    // The ticket's intake is with the department that now leads it.
    assert_eq!(by["city_management"].intake.numerator, 1);
    assert!(!by.contains_key(""));
    let city = &from_rollup(&r, nov, None, None, true)[""];
    assert_eq!(city.first_dispatch_accuracy, Rate::new(1, 2));
}

#[test]
fn basically_satisfied_counts_only_when_configured() {
    let steps = |s| {
        vec![
            (at(2026, 11, 2, 9, 10), dispatcher(), dispatch("water")),
            (at(2026, 11, 2, 9, 20), handler("water"), Action::Sign),
            (at(2026, 11, 3, 9, 0), handler("water"), reply()),
            (
                at(2026, 11, 4, 9, 0),
                dispatcher(),
                Action::Callback {
                    satisfaction: s,
                    resolved: true,
                    note: None,
                },
            ),
        ]
    };
    let hs = vec![
        story(
            at(2026, 11, 2, 9, 0),
            Category::Help,
            steps(Satisfaction::Satisfied),
        ),
        story(
            at(2026, 11, 2, 9, 0),
            Category::Help,
            steps(Satisfaction::BasicallySatisfied),
        ),
        story(
            at(2026, 11, 2, 9, 0),
            Category::Help,
            steps(Satisfaction::Unreachable),
        ),
        story(
            at(2026, 11, 2, 9, 0),
            Category::Help,
            steps(Satisfaction::Dissatisfied),
        ),
    ];
    let r = incremental(&hs);
    let nov = Period {
        from: date(2026, 11, 1),
        to: date(2026, 12, 1),
    };
    let yes = &from_rollup(&r, nov, None, None, true)[""];
    let no = &from_rollup(&r, nov, None, None, false)[""];
    assert_eq!(yes.satisfaction_rate, Rate::new(2, 3));
    assert_eq!(no.satisfaction_rate, Rate::new(1, 3));
    // The unreachable callback is not in the denominator; it is a callback.
    assert_eq!(yes.resolution_rate, Rate::new(3, 3));
    assert_eq!(yes.rework_rate, Rate::new(1, 4));
}

#[test]
fn periods_parse_dates_and_city_midnights_only() {
    let p = Period::parse("2026-11-01", "2026-12-01").expect("dates");
    assert_eq!(p.days(), 30);
    assert_eq!(
        Period::parse("2026-11-01T00:00:00+08:00", "2026-11-30T16:00:00Z").expect("midnights"),
        p
    );
    assert!(Period::parse("2026-11-01T08:00:00+08:00", "2026-12-01").is_err());
    assert!(Period::parse("2026-12-01", "2026-11-01").is_err());
    assert!(Period::parse("2016-01-01", "2026-12-01").is_err());
    assert!(Period::parse("yesterday", "2026-12-01").is_err());
    assert_eq!(
        p.previous(),
        Period::parse("2026-10-02", "2026-11-01").expect("dates")
    );
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn changes_add_up_to_the_history(seed in any::<u64>(), n in 1usize..12) {
        let hs = simulate(seed, n, at(2026, 9, 20, 8, 0));
        prop_assert_eq!(nonzero(incremental(&hs)), nonzero(rebuilt(&hs)));
    }

    #[test]
    fn history_reads_only_the_payloads_it_says(seed in any::<u64>(), n in 1usize..12) {
        // The bulk import leaves the other payloads unparsed (null).
        for h in simulate(seed, n, at(2026, 9, 20, 8, 0)) {
            let full = history_facts(h.created_at, h.last(), &h.events());
            let mut events = h.events();
            for e in &mut events {
                if !history_reads_payload(e.kind) {
                    e.payload = serde_json::Value::Null;
                }
            }
            prop_assert_eq!(full, history_facts(h.created_at, h.last(), &events));
        }
    }

    #[test]
    fn rollup_figures_equal_the_raw_count(
        seed in any::<u64>(),
        n in 1usize..16,
        offset in 0u64..90,
        len in 0u64..70,
        group in 0usize..5,
        scoped in any::<bool>(),
        basically in any::<bool>(),
    ) {
        let hs = simulate(seed, n, at(2026, 9, 20, 8, 0));
        let r = incremental(&hs);
        let from = date(2026, 9, 15) + chrono::Days::new(offset);
        let period = Period { from, to: from + chrono::Days::new(len) };
        let group_by = [None, Some(GroupBy::Department), Some(GroupBy::Channel),
            Some(GroupBy::Category), Some(GroupBy::District)][group];
        let only = scoped.then_some(DEPARTMENTS[(seed % 4) as usize]);
        prop_assert_eq!(
            from_rollup(&r, period, group_by, only, basically),
            naive(&hs, period, group_by, only, basically)
        );
    }
}
