//! Escalation (催办 / 督办): which levels a ticket has passed at an instant,
//! and the one `escalated` event per level. Pure; the sweeper persists it
//! with a compare-and-set on the level it read.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::lifecycle::{EventDraft, Rules, Ticket};
use super::sla::{self, Clock};
use super::types::EventKind;

/// Level names as DESIGN.md gives them.
pub fn level_name(level: i16) -> &'static str {
    match level {
        0 => "normal",
        1 => "warning",
        2 => "overdue",
        _ => "supervised",
    }
}

/// The outcome of evaluating one ticket at `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    pub ticket: Ticket,
    /// One per level passed, lowest first; empty when only the schedule moved.
    pub events: Vec<EventDraft>,
    pub clock: Clock,
    pub deadline: DateTime<Utc>,
}

/// Evaluates `t` at `at`. `None` when nothing changes (not due, or no clock).
pub fn evaluate(rules: &Rules<'_>, t: &Ticket, at: DateTime<Utc>) -> Option<Escalation> {
    let (clock, deadline) = t.active_deadline()?;
    let target = sla::level_at(rules.calendar, rules.sla, clock, deadline, at);
    let mut next = t.clone();
    let mut events = Vec::new();
    if target > t.escalation_level {
        for level in (t.escalation_level + 1)..=target {
            events.push(EventDraft {
                kind: EventKind::Escalated,
                from_state: Some(t.state),
                to_state: Some(t.state),
                department: t.department.clone(),
                payload: json!({
                    "level": level,
                    "name": level_name(level),
                    "clock": clock.as_str(),
                    "deadline": deadline,
                }),
            });
        }
        next.escalation_level = target;
    }
    rules.schedule(&mut next);
    (next != *t).then_some(Escalation {
        ticket: next,
        events,
        clock,
        deadline,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::{FixedOffset, TimeZone};

    use super::*;
    use crate::domain::calendar::{Calendar, parse_hours};
    use crate::domain::lifecycle::{Action, Actor, apply};
    use crate::domain::sla::SlaPolicy;
    use crate::domain::types::{Category, Role, Urgency};

    fn cal() -> Calendar {
        let hours = parse_hours("08:30-12:00,14:00-17:30").unwrap();
        Calendar::load_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("config/holidays"),
            hours,
        )
        .unwrap()
    }

    /// A 2026 instant in city time.
    fn local(month: u32, d: u32, h: u32, m: u32) -> DateTime<Utc> {
        FixedOffset::east_opt(8 * 3600)
            .unwrap()
            .with_ymd_and_hms(2026, month, d, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn dispatched(rules: &Rules<'_>, when: DateTime<Utc>) -> Ticket {
        let t = Ticket::registered(Category::Consult, Urgency::Normal, false);
        let d = Actor {
            name: "d".into(),
            role: Role::Dispatcher,
            department: None,
        };
        let action = Action::Dispatch {
            department: "water".into(),
            co_departments: vec![],
            note: None,
        };
        apply(rules, &t, &d, &action, when).unwrap().0
    }

    #[test]
    fn the_sign_clock_climbs_warning_overdue_supervised_in_working_time() {
        let cal = cal();
        let sla = SlaPolicy::default();
        let rules = Rules {
            calendar: &cal,
            sla: &sla,
        };
        // Wed 2026-09-30 10:00: sign due 12:00; warning at 11:30;
        // supervised 2 working days after the deadline: Oct 9 17:30 (after
        // the National Day holiday, Oct 8 and 9).
        let t = dispatched(&rules, local(9, 30, 10, 0));
        assert_eq!(t.next_check_at, Some(local(9, 30, 11, 30)));
        assert!(evaluate(&rules, &t, local(9, 30, 11, 29)).is_none());
        let e = evaluate(&rules, &t, local(9, 30, 11, 30)).unwrap();
        assert_eq!(e.ticket.escalation_level, 1);
        assert_eq!(e.events.len(), 1);
        assert_eq!(e.ticket.next_check_at, Some(local(9, 30, 12, 0)));
        let e2 = evaluate(&rules, &e.ticket, local(9, 30, 12, 0)).unwrap();
        assert_eq!(e2.ticket.escalation_level, 2);
        assert_eq!(e2.ticket.next_check_at, Some(local(10, 9, 17, 30)));
        assert!(evaluate(&rules, &e2.ticket, local(10, 9, 17, 29)).is_none());
        let e3 = evaluate(&rules, &e2.ticket, local(10, 9, 17, 30)).unwrap();
        assert_eq!(e3.ticket.escalation_level, 3);
        assert_eq!(e3.ticket.next_check_at, None);
        assert!(evaluate(&rules, &e3.ticket, local(10, 30, 0, 0)).is_none());
    }

    #[test]
    fn a_ticket_found_late_records_every_level_once_in_order() {
        let cal = cal();
        let sla = SlaPolicy::default();
        let rules = Rules {
            calendar: &cal,
            sla: &sla,
        };
        let t = dispatched(&rules, local(9, 30, 10, 0));
        let e = evaluate(&rules, &t, local(10, 20, 9, 0)).unwrap();
        let levels: Vec<i64> = e
            .events
            .iter()
            .map(|ev| ev.payload["level"].as_i64().unwrap())
            .collect();
        assert_eq!(levels, [1, 2, 3]);
        assert!(e.events.iter().all(|ev| ev.payload["clock"] == "sign"));
        assert_eq!(e.ticket.escalation_level, 3);
    }

    #[test]
    fn signing_switches_to_the_reply_clock_from_level_zero() {
        let cal = cal();
        let sla = SlaPolicy::default();
        let rules = Rules {
            calendar: &cal,
            sla: &sla,
        };
        let t = dispatched(&rules, local(9, 30, 10, 0));
        let late = evaluate(&rules, &t, local(9, 30, 12, 30)).unwrap().ticket;
        assert_eq!(late.escalation_level, 2);
        let h = Actor {
            name: "h".into(),
            role: Role::Handler,
            department: Some("water".into()),
        };
        let (signed, _) = apply(&rules, &late, &h, &Action::Sign, local(9, 30, 12, 40)).unwrap();
        assert_eq!(signed.escalation_level, 0);
        // Consult: reply due Oct 9 17:30; the warning comes one working day
        // (420 working minutes) before: at Oct 9's opening.
        assert_eq!(signed.reply_due_at, Some(local(10, 9, 17, 30)));
        assert_eq!(signed.next_check_at, Some(local(10, 9, 8, 30)));
        assert!(evaluate(&rules, &signed, local(10, 8, 17, 30)).is_none());
        let e = evaluate(&rules, &signed, local(10, 9, 8, 30)).unwrap();
        assert_eq!(e.events[0].payload["clock"], "reply");
    }
}
