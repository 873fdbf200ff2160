//! Tests of the ticket lifecycle against DESIGN.md ("Ticket lifecycle", "SLA clocks"):
//! one unit test per rule, then property tests over random action sequences on the real
//! 2026 holiday calendar.

use chrono::{DateTime, Datelike, NaiveTime, TimeDelta, Utc};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::*;
use crate::domain::calendar::{WorkingDuration, city_tz};
use crate::domain::types::{
    Category, EventKind, Resolution, Role, Satisfaction, TicketState, Urgency,
};

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

use crate::domain::testkit::{CALENDAR, POLICY, at, rules};

fn max_returns() -> i32 {
    POLICY.max_returns as i32
}

fn max_extensions() -> i32 {
    POLICY.max_extensions as i32
}

fn max_reworks() -> i32 {
    POLICY.max_reworks as i32
}

/// Wednesday 2026-09-30 10:00 +08:00, the day before the National Day holiday.
fn wed() -> DateTime<Utc> {
    at(2026, 9, 30, 10, 0)
}

fn minutes(m: i64) -> TimeDelta {
    TimeDelta::minutes(m)
}

const LEAD: &str = "city_management";
const CO: &str = "water";
const OTHER: &str = "donghu";

fn person(name: &str, role: Role, department: Option<&str>) -> Actor {
    Actor {
        name: name.to_owned(),
        role,
        department: department.map(str::to_owned),
    }
}

fn dispatcher() -> Actor {
    person("派单员", Role::Dispatcher, None)
}

fn agent() -> Actor {
    person("坐席", Role::Agent, None)
}

fn handler(dept: &str) -> Actor {
    person(&format!("承办人@{dept}"), Role::Handler, Some(dept))
}

fn head(dept: &str) -> Actor {
    person(&format!("负责人@{dept}"), Role::DeptHead, Some(dept))
}

fn supervisor() -> Actor {
    person("督办", Role::Supervisor, None)
}

fn leader() -> Actor {
    person("领导", Role::Leader, None)
}

fn admin() -> Actor {
    person("管理员", Role::Admin, None)
}

fn dispatch_to(dept: &str) -> Action {
    Action::Dispatch {
        department: dept.to_owned(),
        co_departments: vec![CO.to_owned()],
        note: None,
    }
}

fn sign() -> Action {
    Action::Sign
}

fn give_back() -> Action {
    Action::Return {
        reason: "不属本单位职责".into(),
    }
}

fn ask_extension(working_days: u32) -> Action {
    Action::RequestExtension {
        working_days,
        reason: "需现场勘查".into(),
    }
}

fn decide_extension(working_days: u32, approve: bool) -> Action {
    Action::DecideExtension {
        extension_id: 7,
        working_days,
        approve,
        note: None,
    }
}

fn reply() -> Action {
    Action::Reply {
        content: "已安排清理并回复诉求人".into(),
        resolved: true,
    }
}

fn callback(satisfaction: Satisfaction) -> Action {
    Action::Callback {
        satisfaction,
        resolved: satisfaction != Satisfaction::Dissatisfied,
        note: None,
    }
}

fn close(resolution: Resolution) -> Action {
    Action::Close {
        resolution,
        note: "坐席直接答复".into(),
    }
}

fn merge_into(into_state: TicketState) -> Action {
    Action::Merge {
        into: 42,
        into_ticket_no: "20260930H000042".into(),
        into_state,
    }
}

fn note() -> Action {
    Action::Note {
        content: "已电话联系诉求人".into(),
    }
}

/// Applies an action that must be accepted, checking the event's from/to states.
#[track_caller]
fn accept(t: &Ticket, who: &Actor, action: &Action, now: DateTime<Utc>) -> (Ticket, EventDraft) {
    match apply(&rules(), t, who, action, now) {
        Ok((next, event)) => {
            assert_eq!(event.from_state, Some(t.state), "event from_state");
            assert_eq!(event.to_state, Some(next.state), "event to_state");
            (next, event)
        }
        Err(e) => panic!(
            "{} by {:?} in state {} was refused: {e}",
            action.name(),
            who.role,
            t.state
        ),
    }
}

#[track_caller]
fn ok(t: &Ticket, who: &Actor, action: &Action, now: DateTime<Utc>) -> Ticket {
    accept(t, who, action, now).0
}

/// Applies an action that must be refused and returns why.
#[track_caller]
fn refused(t: &Ticket, who: &Actor, action: &Action, now: DateTime<Utc>) -> LifecycleError {
    match apply(&rules(), t, who, action, now) {
        Ok((next, _)) => panic!(
            "{} by {:?} in state {} was accepted (-> {})",
            action.name(),
            who.role,
            t.state,
            next.state
        ),
        Err(e) => e,
    }
}

#[track_caller]
fn assert_invalid(e: LifecycleError) {
    assert!(
        matches!(e, LifecycleError::InvalidTransition { .. }),
        "expected InvalidTransition, got {e:?}"
    );
}

#[track_caller]
fn assert_forbidden(e: LifecycleError) {
    assert!(
        matches!(e, LifecycleError::Forbidden(_)),
        "expected Forbidden, got {e:?}"
    );
}

#[track_caller]
fn assert_validation(e: LifecycleError) {
    assert!(
        matches!(e, LifecycleError::Validation(_)),
        "expected Validation, got {e:?}"
    );
}

fn registered(category: Category) -> Ticket {
    Ticket::registered(category, Urgency::Normal, false)
}

/// A complaint dispatched to LEAD (with CO as co-department) on Wed 2026-09-30 10:00.
fn dispatched() -> Ticket {
    ok(
        &registered(Category::Complaint),
        &dispatcher(),
        &dispatch_to(LEAD),
        wed(),
    )
}

/// `dispatched()` signed by LEAD's handler half an hour later.
fn in_progress() -> Ticket {
    ok(&dispatched(), &handler(LEAD), &sign(), wed() + minutes(30))
}

fn replied_ticket(anonymous: bool) -> Ticket {
    let t = ok(
        &Ticket::registered(Category::Complaint, Urgency::Normal, anonymous),
        &dispatcher(),
        &dispatch_to(LEAD),
        wed(),
    );
    let t = ok(&t, &handler(LEAD), &sign(), wed() + minutes(30));
    ok(&t, &handler(LEAD), &reply(), at(2026, 10, 20, 9, 0))
}

fn returned() -> Ticket {
    ok(
        &dispatched(),
        &handler(LEAD),
        &give_back(),
        wed() + minutes(40),
    )
}

fn closed() -> Ticket {
    ok(
        &replied_ticket(false),
        &dispatcher(),
        &callback(Satisfaction::Satisfied),
        at(2026, 10, 21, 9, 0),
    )
}

fn merged() -> Ticket {
    ok(
        &registered(Category::Help),
        &dispatcher(),
        &merge_into(TicketState::Dispatched),
        wed(),
    )
}

/// One ticket in every state, with a name for messages.
fn one_of_each_state() -> Vec<(&'static str, Ticket)> {
    vec![
        ("registered", registered(Category::Complaint)),
        ("dispatched", dispatched()),
        ("in_progress", in_progress()),
        ("returned", returned()),
        ("replied", replied_ticket(false)),
        ("closed", closed()),
        ("merged", merged()),
    ]
}

// ---------------------------------------------------------------------------------------------
// Happy path
// ---------------------------------------------------------------------------------------------

#[test]
fn happy_path_runs_registered_dispatched_in_progress_replied_closed_answered() {
    let t0 = registered(Category::Complaint);
    assert_eq!(t0.state, TicketState::Registered);

    let (t1, e1) = accept(&t0, &dispatcher(), &dispatch_to(LEAD), wed());
    assert_eq!(t1.state, TicketState::Dispatched);
    assert_eq!(e1.kind, EventKind::Dispatched);
    assert_eq!(e1.department.as_deref(), Some(LEAD));
    assert_eq!(t1.department.as_deref(), Some(LEAD));
    assert_eq!(t1.co_departments, vec![CO.to_owned()]);
    assert_eq!(t1.dispatched_at, Some(wed()));
    assert!(!t1.final_dispatch);
    assert_eq!(e1.payload["redispatch"], false);

    let signed_at = wed() + minutes(30);
    let (t2, e2) = accept(&t1, &head(LEAD), &sign(), signed_at);
    assert_eq!(t2.state, TicketState::InProgress);
    assert_eq!(e2.kind, EventKind::Signed);
    assert_eq!(t2.signed_at, Some(signed_at));
    assert_eq!(e2.payload["on_time"], true);

    let replied_at = at(2026, 10, 20, 9, 0);
    let (t3, e3) = accept(&t2, &handler(LEAD), &reply(), replied_at);
    assert_eq!(t3.state, TicketState::Replied);
    assert_eq!(e3.kind, EventKind::Replied);
    assert_eq!(t3.replied_at, Some(replied_at));
    assert_eq!(t3.reply_resolved, Some(true));
    assert!(t3.reply_content.is_some());
    assert_eq!(t3.resolution, None);
    assert_eq!(e3.payload["on_time"], true);

    let called_at = at(2026, 10, 21, 9, 0);
    let (t4, e4) = accept(
        &t3,
        &dispatcher(),
        &callback(Satisfaction::Satisfied),
        called_at,
    );
    assert_eq!(t4.state, TicketState::Closed);
    assert_eq!(e4.kind, EventKind::Callback);
    assert_eq!(t4.resolution, Some(Resolution::Answered));
    assert_eq!(t4.satisfaction, Some(Satisfaction::Satisfied));
    assert_eq!(t4.closed_at, Some(called_at));
    assert_eq!(t4.rework_count, 0);
    assert_eq!(t4.escalation_level, 0);
    assert_eq!(t4.next_check_at, None, "a closed ticket is never swept");
}

#[test]
fn basically_satisfied_and_unreachable_callbacks_close_answered() {
    for s in [Satisfaction::BasicallySatisfied, Satisfaction::Unreachable] {
        let (t, e) = accept(
            &replied_ticket(false),
            &dispatcher(),
            &callback(s),
            at(2026, 10, 21, 9, 0),
        );
        assert_eq!(t.state, TicketState::Closed, "{s}");
        assert_eq!(t.resolution, Some(Resolution::Answered), "{s}");
        assert_eq!(t.satisfaction, Some(s));
        assert_eq!(e.kind, EventKind::Callback);
        assert_eq!(e.payload["reached"], s != Satisfaction::Unreachable);
    }
}

// ---------------------------------------------------------------------------------------------
// Dispatch and SLA deadlines
// ---------------------------------------------------------------------------------------------

#[test]
fn dispatch_sets_sign_and_reply_deadlines_per_category_on_the_2026_calendar() {
    // Dispatched Wed 2026-09-30 10:00: Oct 1-7 are the National Day holiday and Sat Oct 10
    // is a make-up working day, so the working days after the dispatch day are
    // Oct 8, 9, 10, 12, 13, 14, 15, 16, 19, 20, 21, 22, 23, 26, 27, ...
    let cases = [
        (Category::Consult, at(2026, 10, 9, 17, 30)), // 2 working days
        (Category::Praise, at(2026, 10, 13, 17, 30)), // 5
        (Category::Help, at(2026, 10, 20, 17, 30)),   // 10
        (Category::Suggestion, at(2026, 10, 20, 17, 30)), // 10
        (Category::Complaint, at(2026, 10, 27, 17, 30)), // 15
        (Category::Report, at(2026, 10, 27, 17, 30)), // 15
    ];
    for (category, reply_due) in cases {
        let (t, e) = accept(
            &registered(category),
            &dispatcher(),
            &dispatch_to(LEAD),
            wed(),
        );
        // 2 working hours from 10:00 end exactly at the noon break.
        assert_eq!(t.sign_due_at, Some(at(2026, 9, 30, 12, 0)), "{category}");
        assert_eq!(t.reply_due_at, Some(reply_due), "{category}");
        assert_eq!(
            e.payload["reply_due_at"],
            serde_json::to_value(reply_due).unwrap()
        );
        assert_eq!(t.escalation_level, 0);
        // The sweeper first looks at the ticket when the sign warning is due.
        assert_eq!(
            t.next_check_at,
            Some(CALENDAR.before(at(2026, 9, 30, 12, 0), POLICY.warn_before.sign))
        );
    }
}

#[test]
fn complaint_dispatched_before_national_day_is_due_fifteen_working_days_later() {
    let t = dispatched();
    assert_eq!(t.reply_due_at, Some(at(2026, 10, 27, 17, 30)));
    assert_eq!(
        t.reply_due_at,
        Some(CALENDAR.due(wed(), WorkingDuration::WorkingDays(15)))
    );
}

#[test]
fn sign_deadline_counts_working_minutes_across_breaks_weekends_and_holidays() {
    let cases = [
        // 30 minutes before noon, 90 after the break.
        (at(2026, 9, 30, 11, 30), at(2026, 9, 30, 15, 30)),
        // An hour before close, the other hour after the National Day holiday.
        (at(2026, 9, 30, 16, 30), at(2026, 10, 8, 9, 30)),
        // Dispatched during the holiday: counting starts at the next opening.
        (at(2026, 10, 3, 15, 0), at(2026, 10, 8, 10, 30)),
        // Friday before the Spring Festival: Sat Feb 14 is a make-up working day.
        (at(2026, 2, 13, 17, 0), at(2026, 2, 14, 10, 0)),
        // Dispatched in the noon break.
        (at(2026, 3, 3, 12, 40), at(2026, 3, 3, 16, 0)),
    ];
    for (dispatched_at, sign_due) in cases {
        let t = ok(
            &registered(Category::Help),
            &dispatcher(),
            &dispatch_to(LEAD),
            dispatched_at,
        );
        assert_eq!(t.sign_due_at, Some(sign_due), "dispatched {dispatched_at}");
    }
}

#[test]
fn reply_deadline_skips_the_spring_festival_and_counts_make_up_saturdays() {
    // Fri Feb 13 → Sat Feb 14 (make-up) is day 1; Feb 15–23 are holidays; Tue Feb 24 is day 2.
    let t = ok(
        &registered(Category::Consult),
        &dispatcher(),
        &dispatch_to(LEAD),
        at(2026, 2, 13, 9, 0),
    );
    assert_eq!(t.reply_due_at, Some(at(2026, 2, 24, 17, 30)));
}

#[test]
fn urgent_dispatch_gets_thirty_natural_minutes_to_sign_and_twenty_four_hours_to_reply() {
    for category in Category::ALL {
        let t = ok(
            &Ticket::registered(*category, Urgency::Urgent, false),
            &dispatcher(),
            &dispatch_to(LEAD),
            wed(),
        );
        assert_eq!(t.sign_due_at, Some(wed() + minutes(30)), "{category}");
        // Natural time: the deadline falls on the National Day holiday, and that is fine.
        assert_eq!(t.reply_due_at, Some(at(2026, 10, 1, 10, 0)), "{category}");
    }
    // At night on a holiday too.
    let t = ok(
        &Ticket::registered(Category::Help, Urgency::Urgent, false),
        &dispatcher(),
        &dispatch_to(LEAD),
        at(2026, 10, 3, 2, 0),
    );
    assert_eq!(t.sign_due_at, Some(at(2026, 10, 3, 2, 30)));
    assert_eq!(t.reply_due_at, Some(at(2026, 10, 4, 2, 0)));
}

#[test]
fn only_a_dispatcher_dispatches() {
    let t = registered(Category::Help);
    for who in [
        agent(),
        handler(LEAD),
        head(LEAD),
        supervisor(),
        leader(),
        admin(),
    ] {
        assert_forbidden(refused(&t, &who, &dispatch_to(LEAD), wed()));
    }
}

#[test]
fn dispatch_refuses_the_lead_department_as_its_own_co_department() {
    let action = Action::Dispatch {
        department: LEAD.into(),
        co_departments: vec![CO.into(), LEAD.into()],
        note: None,
    };
    assert_validation(refused(
        &registered(Category::Help),
        &dispatcher(),
        &action,
        wed(),
    ));
}

#[test]
fn redispatch_moves_the_ticket_and_restarts_both_clocks() {
    let t = dispatched();
    let later = at(2026, 10, 8, 9, 0);
    let (t2, e) = accept(&t, &dispatcher(), &dispatch_to(OTHER), later);
    assert_eq!(t2.state, TicketState::Dispatched);
    assert_eq!(t2.department.as_deref(), Some(OTHER));
    assert_eq!(t2.dispatched_at, Some(later));
    assert_eq!(t2.sign_due_at, Some(at(2026, 10, 8, 11, 0)));
    assert_eq!(
        t2.reply_due_at,
        Some(CALENDAR.due(later, WorkingDuration::WorkingDays(15)))
    );
    assert_eq!(e.payload["redispatch"], true);
    assert_eq!(t2.return_count, 0, "改派 is not a return");
    // The old department may no longer sign.
    assert_forbidden(refused(&t2, &handler(LEAD), &sign(), later));
}

#[test]
fn dispatch_is_refused_once_work_has_started_or_ended() {
    for (name, t) in one_of_each_state() {
        if matches!(name, "registered" | "dispatched" | "returned") {
            continue;
        }
        assert_invalid(refused(&t, &dispatcher(), &dispatch_to(OTHER), wed()));
    }
}

// ---------------------------------------------------------------------------------------------
// Sign
// ---------------------------------------------------------------------------------------------

#[test]
fn sign_by_the_lead_departments_handler_or_head_starts_work() {
    for who in [handler(LEAD), head(LEAD)] {
        let (t, e) = accept(&dispatched(), &who, &sign(), wed() + minutes(5));
        assert_eq!(t.state, TicketState::InProgress);
        assert_eq!(e.kind, EventKind::Signed);
        assert_eq!(t.signed_at, Some(wed() + minutes(5)));
        // The reply clock now drives escalation.
        assert_eq!(
            t.next_check_at,
            Some(CALENDAR.before(at(2026, 10, 27, 17, 30), POLICY.warn_before.reply))
        );
    }
}

#[test]
fn late_sign_is_accepted_and_recorded_as_late() {
    let (t, e) = accept(
        &dispatched(),
        &handler(LEAD),
        &sign(),
        at(2026, 10, 8, 9, 0),
    );
    assert_eq!(t.state, TicketState::InProgress);
    assert_eq!(e.payload["on_time"], false);
}

#[test]
fn sign_by_a_co_department_is_forbidden() {
    let t = dispatched();
    for who in [handler(CO), head(CO)] {
        assert_forbidden(refused(&t, &who, &sign(), wed() + minutes(5)));
    }
}

#[test]
fn sign_by_anyone_outside_the_lead_department_is_forbidden() {
    let t = dispatched();
    for who in [
        dispatcher(),
        agent(),
        handler(OTHER),
        supervisor(),
        leader(),
        admin(),
        // A handler without a department must not match a ticket without one either.
        person("无部门", Role::Handler, None),
    ] {
        assert_forbidden(refused(&t, &who, &sign(), wed() + minutes(5)));
    }
}

#[test]
fn sign_before_dispatch_is_an_invalid_transition() {
    let t = registered(Category::Help);
    assert_invalid(refused(&t, &handler(LEAD), &sign(), wed()));
    assert_invalid(refused(&returned(), &handler(LEAD), &sign(), wed()));
}

#[test]
fn sign_before_dispatch_is_refused_and_changes_nothing() {
    // Refused either way, and nothing changes.
    let t = registered(Category::Help);
    let before = t.clone();
    assert!(apply(&rules(), &t, &handler(LEAD), &sign(), wed()).is_err());
    assert_eq!(t, before);
}

#[test]
fn signing_twice_or_after_reply_is_an_invalid_transition() {
    assert_invalid(refused(&in_progress(), &handler(LEAD), &sign(), wed()));
    assert_invalid(refused(
        &replied_ticket(false),
        &handler(LEAD),
        &sign(),
        wed(),
    ));
}

// ---------------------------------------------------------------------------------------------
// Return (退单)
// ---------------------------------------------------------------------------------------------

#[test]
fn return_within_window_increments_return_count_and_clears_department() {
    let (t, e) = accept(
        &dispatched(),
        &handler(LEAD),
        &give_back(),
        wed() + minutes(40),
    );
    assert_eq!(t.state, TicketState::Returned);
    assert_eq!(e.kind, EventKind::Returned);
    assert_eq!(t.return_count, 1);
    assert_eq!(t.department, None);
    assert!(t.co_departments.is_empty());
    assert_eq!(t.sign_due_at, None);
    assert_eq!(t.reply_due_at, None);
    assert_eq!(t.next_check_at, None, "no clock runs while returned");
    assert_eq!(
        e.department.as_deref(),
        Some(LEAD),
        "the event names the department that let go"
    );
    assert_eq!(e.payload["return_count"], 1);
}

#[test]
fn return_from_in_progress_within_window_is_accepted() {
    let (t, _) = accept(
        &in_progress(),
        &head(LEAD),
        &give_back(),
        wed() + minutes(90),
    );
    assert_eq!(t.state, TicketState::Returned);
    assert_eq!(t.signed_at, None);
}

#[test]
fn return_needs_a_reason() {
    let action = Action::Return {
        reason: "  ".into(),
    };
    assert_validation(refused(&dispatched(), &handler(LEAD), &action, wed()));
}

#[test]
fn return_by_a_co_department_or_the_office_is_forbidden() {
    for who in [handler(CO), head(OTHER), dispatcher(), agent()] {
        assert_forbidden(refused(&dispatched(), &who, &give_back(), wed()));
    }
}

#[test]
fn return_is_only_possible_from_dispatched_or_in_progress() {
    let t = replied_ticket(false);
    assert_invalid(refused(&t, &handler(LEAD), &give_back(), wed()));
}

#[test]
fn return_after_the_return_window_is_refused() {
    // Dispatched Wed Sep 30 10:00; one working day later is the close of Thu Oct 8.
    let t = dispatched();
    let end = at(2026, 10, 8, 17, 30);
    assert_eq!(
        Some(end),
        t.dispatched_at
            .map(|d| CALENDAR.due(d, POLICY.return_window))
    );
    ok(&t, &handler(LEAD), &give_back(), end);
    assert_invalid(refused(&t, &handler(LEAD), &give_back(), end + minutes(1)));
    let t = in_progress();
    assert_invalid(refused(
        &t,
        &handler(LEAD),
        &give_back(),
        at(2026, 10, 9, 9, 0),
    ));
}

#[test]
fn return_window_counts_make_up_saturdays() {
    // Dispatched Fri Oct 9: the next working day is the make-up Saturday Oct 10.
    let t = ok(
        &registered(Category::Help),
        &dispatcher(),
        &dispatch_to(LEAD),
        at(2026, 10, 9, 9, 0),
    );
    ok(&t, &handler(LEAD), &give_back(), at(2026, 10, 10, 17, 0));
    assert_invalid(refused(
        &t,
        &handler(LEAD),
        &give_back(),
        at(2026, 10, 12, 9, 0),
    ));
}

#[test]
fn returned_ticket_cannot_be_returned_past_max_returns() {
    let mut t = registered(Category::Complaint);
    let mut now = wed();
    for n in 1..=max_returns() {
        t = ok(&t, &dispatcher(), &dispatch_to(LEAD), now);
        assert!(!t.final_dispatch, "dispatch #{n} is not final yet");
        now += minutes(10);
        t = ok(&t, &handler(LEAD), &give_back(), now);
        assert_eq!(t.return_count, n);
        now += minutes(10);
    }
    // The dispatcher's next ruling stands (审定).
    let (t, e) = accept(&t, &dispatcher(), &dispatch_to(LEAD), now);
    assert!(t.final_dispatch);
    assert_eq!(e.payload["final"], true);
    assert_invalid(refused(&t, &handler(LEAD), &give_back(), now + minutes(5)));
    // A re-dispatch (改派) elsewhere stays final.
    let moved = ok(&t, &dispatcher(), &dispatch_to(OTHER), now + minutes(5));
    assert!(moved.final_dispatch);
    assert_invalid(refused(
        &moved,
        &handler(OTHER),
        &give_back(),
        now + minutes(6),
    ));
    // Nor can it be returned once signed.
    let t = ok(&t, &handler(LEAD), &sign(), now + minutes(5));
    assert_invalid(refused(&t, &handler(LEAD), &give_back(), now + minutes(6)));
}

// ---------------------------------------------------------------------------------------------
// Extensions (延期)
// ---------------------------------------------------------------------------------------------

#[test]
fn extension_request_before_the_deadline_is_recorded_and_changes_nothing() {
    let t = in_progress();
    let (t2, e) = accept(
        &t,
        &handler(LEAD),
        &ask_extension(5),
        at(2026, 10, 27, 17, 29),
    );
    assert_eq!(e.kind, EventKind::ExtensionRequested);
    assert_eq!(t2, t, "a pending request does not stop or move the clock");
    // Also while still dispatched.
    let (t3, _) = accept(&dispatched(), &head(LEAD), &ask_extension(1), wed());
    assert_eq!(t3.state, TicketState::Dispatched);
}

#[test]
fn extension_request_is_refused_after_the_reply_deadline() {
    let t = in_progress();
    let due = at(2026, 10, 27, 17, 30);
    assert_eq!(t.reply_due_at, Some(due));
    assert_invalid(refused(&t, &handler(LEAD), &ask_extension(5), due));
    assert_invalid(refused(
        &t,
        &handler(LEAD),
        &ask_extension(5),
        due + minutes(60 * 24),
    ));
}

#[test]
fn extension_request_is_refused_when_extensions_are_used_up() {
    let mut t = in_progress();
    let now = at(2026, 10, 12, 9, 0);
    for n in 1..=max_extensions() {
        t = ok(&t, &handler(LEAD), &ask_extension(3), now);
        t = ok(&t, &dispatcher(), &decide_extension(3, true), now);
        assert_eq!(t.extension_count, n);
    }
    assert_invalid(refused(&t, &handler(LEAD), &ask_extension(3), now));
    assert_invalid(refused(&t, &dispatcher(), &decide_extension(3, true), now));
    // Rejecting (e.g. a request still pending) remains possible and changes nothing.
    let (t2, _) = accept(&t, &dispatcher(), &decide_extension(3, false), now);
    assert_eq!(t2.reply_due_at, t.reply_due_at);
}

#[test]
fn extension_request_needs_a_reason_and_a_sane_number_of_days() {
    let t = in_progress();
    let now = at(2026, 10, 12, 9, 0);
    assert_validation(refused(&t, &handler(LEAD), &ask_extension(0), now));
    assert_validation(refused(
        &t,
        &handler(LEAD),
        &ask_extension(POLICY.max_extension_days + 1),
        now,
    ));
    ok(
        &t,
        &handler(LEAD),
        &ask_extension(POLICY.max_extension_days),
        now,
    );
    let blank = Action::RequestExtension {
        working_days: 3,
        reason: String::new(),
    };
    assert_validation(refused(&t, &handler(LEAD), &blank, now));
}

#[test]
fn extension_request_only_by_the_lead_department_while_work_is_open() {
    let now = at(2026, 10, 12, 9, 0);
    assert_forbidden(refused(
        &in_progress(),
        &handler(CO),
        &ask_extension(3),
        now,
    ));
    assert_forbidden(refused(
        &in_progress(),
        &dispatcher(),
        &ask_extension(3),
        now,
    ));
    assert_invalid(refused(
        &replied_ticket(false),
        &handler(LEAD),
        &ask_extension(3),
        now,
    ));
}

#[test]
fn approved_extension_moves_reply_due_by_working_days_from_the_old_deadline() {
    let t = in_progress();
    let old = at(2026, 10, 27, 17, 30);
    let (t2, e) = accept(
        &t,
        &dispatcher(),
        &decide_extension(5, true),
        at(2026, 10, 12, 9, 0),
    );
    // Oct 28, 29, 30, Nov 2, 3.
    assert_eq!(t2.reply_due_at, Some(at(2026, 11, 3, 17, 30)));
    assert_eq!(
        t2.reply_due_at,
        Some(CALENDAR.due(old, WorkingDuration::WorkingDays(5)))
    );
    assert_eq!(t2.extension_count, 1);
    assert_eq!(t2.state, TicketState::InProgress);
    assert_eq!(e.kind, EventKind::ExtensionDecided);
    assert_eq!(t2.sign_due_at, t.sign_due_at);
    assert_eq!(
        t2.next_check_at,
        Some(CALENDAR.before(at(2026, 11, 3, 17, 30), POLICY.warn_before.reply))
    );
}

#[test]
fn approved_extension_may_be_granted_after_the_deadline_has_passed() {
    // The handler asked in time; the dispatcher rules later. The new deadline still counts
    // from the old one, and an overdue ticket goes back to normal.
    let mut t = in_progress();
    t.escalation_level = 2;
    let (t2, _) = accept(
        &t,
        &dispatcher(),
        &decide_extension(2, true),
        at(2026, 10, 28, 9, 0),
    );
    assert_eq!(t2.reply_due_at, Some(at(2026, 10, 29, 17, 30)));
    assert_eq!(t2.escalation_level, 0);
}

#[test]
fn rejected_extension_leaves_deadline_and_count_alone() {
    let t = in_progress();
    let (t2, e) = accept(
        &t,
        &dispatcher(),
        &decide_extension(5, false),
        at(2026, 10, 12, 9, 0),
    );
    assert_eq!(t2, t);
    assert_eq!(e.kind, EventKind::ExtensionDecided);
    assert_eq!(e.payload["approve"], false);
}

#[test]
fn only_a_dispatcher_decides_extensions() {
    for who in [handler(LEAD), head(LEAD), agent(), supervisor(), admin()] {
        assert_forbidden(refused(
            &in_progress(),
            &who,
            &decide_extension(5, true),
            wed(),
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Reply
// ---------------------------------------------------------------------------------------------

#[test]
fn reply_requires_in_progress() {
    let now = at(2026, 10, 12, 9, 0);
    assert_invalid(refused(&dispatched(), &handler(LEAD), &reply(), now));
    assert_invalid(refused(
        &replied_ticket(false),
        &handler(LEAD),
        &reply(),
        now,
    ));
}

#[test]
fn reply_only_by_the_lead_department() {
    let now = at(2026, 10, 12, 9, 0);
    for who in [handler(CO), head(OTHER), dispatcher(), agent()] {
        assert_forbidden(refused(&in_progress(), &who, &reply(), now));
    }
}

#[test]
fn reply_needs_content() {
    let action = Action::Reply {
        content: " \n ".into(),
        resolved: true,
    };
    assert_validation(refused(
        &in_progress(),
        &handler(LEAD),
        &action,
        at(2026, 10, 12, 9, 0),
    ));
}

#[test]
fn late_reply_is_accepted_and_recorded_as_late() {
    let (t, e) = accept(
        &in_progress(),
        &handler(LEAD),
        &reply(),
        at(2026, 10, 28, 9, 0),
    );
    assert_eq!(t.state, TicketState::Replied);
    assert_eq!(e.payload["on_time"], false);
    assert_eq!(t.next_check_at, None, "no clock runs while replied");
}

#[test]
fn anonymous_ticket_closes_answered_at_reply_and_refuses_callback() {
    let t = ok(
        &Ticket::registered(Category::Complaint, Urgency::Normal, true),
        &dispatcher(),
        &dispatch_to(LEAD),
        wed(),
    );
    let t = ok(&t, &handler(LEAD), &sign(), wed() + minutes(30));
    let replied_at = at(2026, 10, 20, 9, 0);
    let (t, e) = accept(&t, &handler(LEAD), &reply(), replied_at);
    assert_eq!(t.state, TicketState::Closed);
    assert_eq!(t.resolution, Some(Resolution::Answered));
    assert_eq!(t.closed_at, Some(replied_at));
    assert_eq!(t.replied_at, Some(replied_at));
    assert_eq!(e.kind, EventKind::Replied);
    assert_eq!(e.to_state, Some(TicketState::Closed));
    for s in Satisfaction::ALL {
        assert_invalid(refused(
            &t,
            &dispatcher(),
            &callback(*s),
            at(2026, 10, 21, 9, 0),
        ));
    }
}

#[test]
fn anonymous_replied_ticket_cannot_be_called_back() {
    // Defence in depth: even if an anonymous ticket were ever left in `replied`.
    let mut t = replied_ticket(false);
    t.anonymous = true;
    assert_invalid(refused(
        &t,
        &dispatcher(),
        &callback(Satisfaction::Satisfied),
        wed(),
    ));
}

// ---------------------------------------------------------------------------------------------
// Callback (回访) and rework (重办)
// ---------------------------------------------------------------------------------------------

#[test]
fn dissatisfied_callback_reopens_to_the_same_department_with_a_fresh_reply_deadline() {
    let t = replied_ticket(false);
    let now = at(2026, 11, 2, 10, 0); // Monday
    let (t2, e) = accept(
        &t,
        &dispatcher(),
        &callback(Satisfaction::Dissatisfied),
        now,
    );
    assert_eq!(t2.state, TicketState::InProgress);
    assert_eq!(e.kind, EventKind::Reopened);
    assert_eq!(t2.rework_count, 1);
    assert_eq!(t2.department.as_deref(), Some(LEAD));
    assert_eq!(t2.satisfaction, Some(Satisfaction::Dissatisfied));
    assert_eq!(t2.resolution, None);
    assert_eq!(t2.replied_at, None);
    assert_eq!(t2.reply_content, None);
    assert_eq!(t2.reply_resolved, None);
    assert_eq!(t2.escalation_level, 0);
    // 15 working days from Mon Nov 2: Nov 3..6, 9..13, 16..20, 23.
    assert_eq!(t2.reply_due_at, Some(at(2026, 11, 23, 17, 30)));
    assert_eq!(
        t2.reply_due_at,
        Some(CALENDAR.due(now, WorkingDuration::WorkingDays(15)))
    );
    // The same department replies again.
    let t3 = ok(&t2, &handler(LEAD), &reply(), now + minutes(60));
    assert_eq!(t3.state, TicketState::Replied);
}

#[test]
fn dissatisfied_callback_past_max_reworks_closes_supervised() {
    let mut t = replied_ticket(false);
    let mut now = at(2026, 11, 2, 10, 0);
    for n in 1..=max_reworks() {
        t = ok(
            &t,
            &dispatcher(),
            &callback(Satisfaction::Dissatisfied),
            now,
        );
        assert_eq!(t.state, TicketState::InProgress);
        assert_eq!(t.rework_count, n);
        now += minutes(60);
        t = ok(&t, &handler(LEAD), &reply(), now);
        now += minutes(60);
    }
    let (t, e) = accept(
        &t,
        &dispatcher(),
        &callback(Satisfaction::Dissatisfied),
        now,
    );
    assert_eq!(t.state, TicketState::Closed);
    assert_eq!(t.resolution, Some(Resolution::Answered));
    assert_eq!(t.escalation_level, 3, "flagged for 督办");
    assert_eq!(t.rework_count, max_reworks());
    assert_eq!(t.closed_at, Some(now));
    assert_eq!(e.kind, EventKind::Callback);
    assert_eq!(e.payload["outcome"], "closed_supervised");
}

#[test]
fn callback_only_from_replied_and_only_by_a_dispatcher() {
    let now = at(2026, 10, 21, 9, 0);
    for (name, t) in one_of_each_state() {
        if name == "replied" {
            continue;
        }
        assert_invalid(refused(
            &t,
            &dispatcher(),
            &callback(Satisfaction::Satisfied),
            now,
        ));
    }
    for who in [agent(), handler(LEAD), head(LEAD), supervisor(), admin()] {
        assert_forbidden(refused(
            &replied_ticket(false),
            &who,
            &callback(Satisfaction::Satisfied),
            now,
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Close (直办 / 不予受理 / 转 110·119·120·122)
// ---------------------------------------------------------------------------------------------

#[test]
fn close_from_registered_with_direct_answer_rejected_or_transferred_emergency() {
    for who in [agent(), dispatcher()] {
        for resolution in [
            Resolution::DirectAnswer,
            Resolution::Rejected,
            Resolution::TransferredEmergency,
        ] {
            let (t, e) = accept(
                &registered(Category::Consult),
                &who,
                &close(resolution),
                wed(),
            );
            assert_eq!(t.state, TicketState::Closed);
            assert_eq!(t.resolution, Some(resolution));
            assert_eq!(t.closed_at, Some(wed()));
            assert_eq!(e.kind, EventKind::Closed);
        }
    }
}

#[test]
fn close_from_returned_clears_department_and_clocks() {
    let (t, _) = accept(
        &returned(),
        &dispatcher(),
        &close(Resolution::Rejected),
        wed(),
    );
    assert_eq!(t.state, TicketState::Closed);
    assert_eq!(t.department, None);
    assert_eq!(t.sign_due_at, None);
    assert_eq!(t.reply_due_at, None);
    assert_eq!(t.next_check_at, None);
}

#[test]
fn close_with_answered_is_refused() {
    for (name, t) in one_of_each_state() {
        let e = refused(&t, &dispatcher(), &close(Resolution::Answered), wed());
        assert!(
            !matches!(e, LifecycleError::Forbidden(_)),
            "{name}: answered is refused as a value, not as a permission: {e:?}"
        );
    }
    assert_validation(refused(
        &registered(Category::Consult),
        &agent(),
        &close(Resolution::Answered),
        wed(),
    ));
}

#[test]
fn close_is_refused_once_dispatched() {
    for (name, t) in one_of_each_state() {
        if matches!(name, "registered" | "returned") {
            continue;
        }
        assert_invalid(refused(
            &t,
            &dispatcher(),
            &close(Resolution::Rejected),
            wed(),
        ));
    }
}

#[test]
fn close_needs_a_note_and_an_agent_or_dispatcher() {
    let blank = Action::Close {
        resolution: Resolution::Rejected,
        note: String::new(),
    };
    assert_validation(refused(
        &registered(Category::Help),
        &agent(),
        &blank,
        wed(),
    ));
    for who in [handler(LEAD), head(LEAD), supervisor(), admin()] {
        assert_forbidden(refused(
            &registered(Category::Help),
            &who,
            &close(Resolution::DirectAnswer),
            wed(),
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Merge (并单)
// ---------------------------------------------------------------------------------------------

#[test]
fn merge_into_an_open_ticket_sets_merged_into() {
    let (t, e) = accept(
        &registered(Category::Help),
        &dispatcher(),
        &merge_into(TicketState::InProgress),
        wed(),
    );
    assert_eq!(t.state, TicketState::Merged);
    assert_eq!(t.merged_into, Some(42));
    assert_eq!(t.resolution, None);
    assert_eq!(t.next_check_at, None);
    assert_eq!(e.kind, EventKind::Merged);
    assert_eq!(e.payload["into_ticket_no"], "20260930H000042");
}

#[test]
fn merge_into_a_merged_ticket_is_refused() {
    for (name, t) in one_of_each_state() {
        if !matches!(name, "registered" | "dispatched" | "returned") {
            continue;
        }
        assert_invalid(refused(
            &t,
            &dispatcher(),
            &merge_into(TicketState::Merged),
            wed(),
        ));
    }
}

#[test]
fn merge_is_refused_once_work_has_started_or_ended() {
    for (name, t) in one_of_each_state() {
        if matches!(name, "registered" | "dispatched" | "returned") {
            continue;
        }
        assert_invalid(refused(
            &t,
            &dispatcher(),
            &merge_into(TicketState::Registered),
            wed(),
        ));
    }
}

#[test]
fn only_a_dispatcher_merges() {
    for who in [agent(), handler(LEAD), supervisor(), admin(), leader()] {
        assert_forbidden(refused(
            &registered(Category::Help),
            &who,
            &merge_into(TicketState::Registered),
            wed(),
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Notes and read-only roles
// ---------------------------------------------------------------------------------------------

#[test]
fn notes_are_allowed_in_every_state_and_change_nothing() {
    for (name, t) in one_of_each_state() {
        for who in [
            agent(),
            dispatcher(),
            handler(LEAD),
            head(CO),
            supervisor(),
            admin(),
        ] {
            let (t2, e) = accept(&t, &who, &note(), wed());
            assert_eq!(t2, t, "{name}: a note changes nothing");
            assert_eq!(e.kind, EventKind::Note);
        }
    }
    let blank = Action::Note {
        content: " ".into(),
    };
    assert_validation(refused(&dispatched(), &agent(), &blank, wed()));
}

/// Every action, each in a state where the right person could take it.
fn every_action_where_it_would_be_allowed() -> Vec<(Ticket, Action)> {
    vec![
        (registered(Category::Help), dispatch_to(LEAD)),
        (dispatched(), sign()),
        (dispatched(), give_back()),
        (in_progress(), ask_extension(3)),
        (in_progress(), decide_extension(3, true)),
        (in_progress(), reply()),
        (replied_ticket(false), callback(Satisfaction::Satisfied)),
        (
            registered(Category::Consult),
            close(Resolution::DirectAnswer),
        ),
        (
            registered(Category::Help),
            merge_into(TicketState::Dispatched),
        ),
        (dispatched(), note()),
    ]
}

#[test]
fn leaders_can_do_nothing() {
    let mut leaders = vec![leader()];
    // Even a leader who happens to be attached to the lead department.
    leaders.push(person("分管领导", Role::Leader, Some(LEAD)));
    for who in &leaders {
        for (t, action) in every_action_where_it_would_be_allowed() {
            let e = refused(&t, who, &action, wed() + minutes(10));
            assert!(
                matches!(e, LifecycleError::Forbidden(_)),
                "{} by a leader: expected Forbidden, got {e:?}",
                action.name()
            );
        }
    }
}

#[test]
fn leaders_are_forbidden_even_with_invalid_input() {
    let blank = Action::Note {
        content: " ".into(),
    };
    assert_forbidden(refused(&dispatched(), &leader(), &blank, wed()));
}

#[test]
fn supervisors_and_admins_only_add_notes() {
    for who in [supervisor(), admin()] {
        for (t, action) in every_action_where_it_would_be_allowed() {
            let result = apply(&rules(), &t, &who, &action, wed() + minutes(10));
            if matches!(action, Action::Note { .. }) {
                assert!(result.is_ok());
            } else {
                assert!(
                    matches!(result, Err(LifecycleError::Forbidden(_))),
                    "{} by {:?}: {result:?}",
                    action.name(),
                    who.role
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------

/// Who acts in a generated step. `Lead` is resolved against the ticket at that moment, so
/// that random sequences actually get past `dispatched`.
#[derive(Debug, Clone)]
enum Who {
    Lead(Role),
    Fixed(Actor),
}

fn cast() -> Vec<Actor> {
    vec![
        dispatcher(),
        agent(),
        handler(LEAD),
        head(LEAD),
        handler(CO),
        head(OTHER),
        supervisor(),
        leader(),
        admin(),
    ]
}

fn anyone() -> impl Strategy<Value = Who> {
    prop::sample::select(cast()).prop_map(Who::Fixed)
}

/// Mostly a dispatcher (or `role`), sometimes anyone.
fn office(make: fn() -> Actor) -> BoxedStrategy<Who> {
    prop_oneof![6 => Just(Who::Fixed(make())), 1 => anyone()].boxed()
}

/// Mostly the current lead department, sometimes anyone.
fn lead() -> BoxedStrategy<Who> {
    prop_oneof![
        6 => prop::sample::select(vec![Role::Handler, Role::DeptHead]).prop_map(Who::Lead),
        1 => anyone(),
    ]
    .boxed()
}

fn resolve(who: &Who, t: &Ticket) -> Actor {
    match who {
        Who::Fixed(a) => a.clone(),
        Who::Lead(role) => {
            let dept = t.department.as_deref().unwrap_or(LEAD);
            person("lead", *role, Some(dept))
        }
    }
}

/// One generated step.
#[derive(Debug, Clone)]
enum Move {
    /// A given action by a given person.
    Act(Who, Action),
    /// Whatever takes the ticket one step along the main path (dispatch, sign, reply,
    /// callback with this satisfaction), by the right person: keeps sequences from stalling.
    Progress(Satisfaction),
}

fn resolve_move(m: &Move, t: &Ticket) -> (Actor, Action) {
    use TicketState as S;
    match m {
        Move::Act(who, action) => (resolve(who, t), action.clone()),
        Move::Progress(satisfaction) => {
            let lead = || resolve(&Who::Lead(Role::Handler), t);
            match t.state {
                S::Registered | S::Returned => (dispatcher(), dispatch_to(LEAD)),
                S::Dispatched => (lead(), sign()),
                S::InProgress => (lead(), reply()),
                S::Replied => (dispatcher(), callback(*satisfaction)),
                S::Closed | S::Merged => (agent(), note()),
            }
        }
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![9 => Just("已处理".to_owned()), 1 => Just("   ".to_owned())]
}

fn departments() -> Vec<String> {
    vec![LEAD.to_owned(), CO.to_owned(), OTHER.to_owned()]
}

fn step() -> impl Strategy<Value = Move> {
    let dispatch = (
        prop::sample::select(departments()),
        prop::sample::subsequence(departments(), 0..=2),
        prop::option::of(Just("请尽快处理".to_owned())),
    )
        .prop_map(|(department, co_departments, note)| Action::Dispatch {
            department,
            co_departments,
            note,
        });
    let ret = text().prop_map(|reason| Action::Return { reason });
    let ask = (0u32..=32, text()).prop_map(|(working_days, reason)| Action::RequestExtension {
        working_days,
        reason,
    });
    let decide = (1u32..=30, prop::bool::weighted(0.7)).prop_map(|(working_days, approve)| {
        Action::DecideExtension {
            extension_id: 1,
            working_days,
            approve,
            note: None,
        }
    });
    let reply =
        (text(), any::<bool>()).prop_map(|(content, resolved)| Action::Reply { content, resolved });
    let callback = (prop::sample::select(Satisfaction::ALL), any::<bool>()).prop_map(
        |(satisfaction, resolved)| Action::Callback {
            satisfaction,
            resolved,
            note: None,
        },
    );
    let close = (prop::sample::select(Resolution::ALL), text())
        .prop_map(|(resolution, note)| Action::Close { resolution, note });
    let merge =
        (1i64..1000, prop::sample::select(TicketState::ALL)).prop_map(|(into, st)| Action::Merge {
            into,
            into_ticket_no: format!("20260101H{into:06}"),
            into_state: st,
        });
    let note = text().prop_map(|content| Action::Note { content });
    // Weighted so that sequences get deep (returns used up, reworks used up, extensions used
    // up) before a close or merge ends them.
    let act = prop_oneof![
        6 => (office(dispatcher), dispatch),
        5 => (lead(), Just(Action::Sign)),
        4 => (lead(), ret),
        2 => (lead(), ask),
        3 => (office(dispatcher), decide),
        5 => (lead(), reply),
        5 => (office(dispatcher), callback),
        1 => (office(agent), close),
        1 => (office(dispatcher), merge),
        1 => (anyone(), note),
    ];
    let progress = prop_oneof![
        3 => Just(Satisfaction::Dissatisfied),
        1 => prop::sample::select(Satisfaction::ALL),
    ]
    .prop_map(Move::Progress);
    prop_oneof![
        7 => act.prop_map(|(who, action)| Move::Act(who, action)),
        1 => progress,
    ]
}

/// Minutes between steps: mostly within a working day, sometimes several days.
fn time_step() -> impl Strategy<Value = i64> {
    prop_oneof![3 => 0i64..=240, 1 => 0i64..5 * 24 * 60]
}

/// A whole-minute instant in `[from, to)`.
fn minute_in(from: DateTime<Utc>, to: DateTime<Utc>) -> BoxedStrategy<DateTime<Utc>> {
    (from.timestamp() / 60..to.timestamp() / 60)
        .prop_map(|m| DateTime::from_timestamp(m * 60, 0).expect("in range"))
        .boxed()
}

/// Instants in 2026, with extra weight on the holiday periods and their make-up days.
fn instant_2026() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        4 => minute_in(at(2026, 1, 1, 0, 0), at(2027, 1, 1, 0, 0)),
        // Spring Festival, Feb 15–23, with make-up Saturdays Feb 14 and 28.
        2 => minute_in(at(2026, 2, 12, 0, 0), at(2026, 3, 2, 0, 0)),
        // Mid-Autumn Sep 25–27 and National Day Oct 1–7, make-up Sep 20 and Oct 10.
        2 => minute_in(at(2026, 9, 18, 0, 0), at(2026, 10, 13, 0, 0)),
        // Labour Day May 1–5, make-up Sat May 9.
        1 => minute_in(at(2026, 4, 28, 0, 0), at(2026, 5, 11, 0, 0)),
        // New Year, make-up Sun Jan 4.
        1 => minute_in(at(2026, 1, 1, 0, 0), at(2026, 1, 6, 0, 0)),
    ]
}

fn fresh_ticket() -> impl Strategy<Value = Ticket> {
    (
        prop::sample::select(Category::ALL),
        prop::sample::select(vec![Urgency::Normal, Urgency::Normal, Urgency::Urgent]),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(c, u, anon)| Ticket::registered(c, u, anon))
}

fn check_invariants(t: &Ticket) -> Result<(), TestCaseError> {
    use TicketState as S;
    prop_assert!(TicketState::ALL.contains(&t.state));
    prop_assert_eq!(
        t.state == S::Closed,
        t.resolution.is_some(),
        "closed <=> resolution: {:?}",
        t
    );
    prop_assert_eq!(
        t.state == S::Merged,
        t.merged_into.is_some(),
        "merged <=> merged_into: {:?}",
        t
    );
    if matches!(t.state, S::Dispatched | S::InProgress) {
        prop_assert!(
            t.department.is_some() && t.sign_due_at.is_some() && t.reply_due_at.is_some(),
            "open work without department or deadlines: {:?}",
            t
        );
        prop_assert!(t.dispatched_at.is_some());
        prop_assert!(
            t.next_check_at.is_some(),
            "running clock not scheduled: {:?}",
            t
        );
    }
    if t.state == S::InProgress {
        prop_assert!(t.signed_at.is_some());
    }
    if t.state == S::Registered {
        prop_assert!(t.department.is_none());
    }
    if matches!(t.state, S::Returned | S::Replied | S::Closed | S::Merged) {
        prop_assert!(
            t.next_check_at.is_none(),
            "no clock runs in {}: {:?}",
            t.state,
            t
        );
    }
    if t.state == S::Replied {
        prop_assert!(t.replied_at.is_some() && t.reply_content.is_some());
    }
    if !t.state.is_open() {
        prop_assert!(t.closed_at.is_some());
    }
    prop_assert!((0..=max_returns()).contains(&t.return_count), "{:?}", t);
    prop_assert!((0..=max_reworks()).contains(&t.rework_count), "{:?}", t);
    prop_assert!(
        (0..=max_extensions()).contains(&t.extension_count),
        "{:?}",
        t
    );
    prop_assert!((0..=3).contains(&t.escalation_level), "{:?}", t);
    if t.final_dispatch {
        prop_assert!(t.return_count >= max_returns());
    }
    Ok(())
}

fn in_office_hours(time: NaiveTime) -> bool {
    let hm = |h, m| NaiveTime::from_hms_opt(h, m, 0).expect("valid time");
    (hm(8, 30) <= time && time <= hm(12, 0)) || (hm(14, 0) <= time && time <= hm(17, 30))
}

/// Working-time limits never land in a holiday or outside office hours.
fn check_deadlines(t: &Ticket) -> Result<(), TestCaseError> {
    if let (Some(from), Some(due)) = (t.dispatched_at, t.sign_due_at) {
        prop_assert!(
            due > from,
            "sign deadline {} not after dispatch {}",
            due,
            from
        );
    }
    if let (Some(from), Some(due)) = (t.dispatched_at, t.reply_due_at) {
        prop_assert!(
            due > from,
            "reply deadline {} not after dispatch {}",
            due,
            from
        );
    }
    if t.urgency == Urgency::Urgent {
        return Ok(());
    }
    let tz = city_tz();
    if let Some(due) = t.sign_due_at {
        let local = due.with_timezone(&tz);
        prop_assert!(
            CALENDAR.is_working_day(local.date_naive()),
            "sign deadline {} ({}) on a day off",
            local,
            local.weekday()
        );
        prop_assert!(
            in_office_hours(local.time()),
            "sign deadline {} outside office hours",
            local
        );
    }
    if let Some(due) = t.reply_due_at {
        let local = due.with_timezone(&tz);
        prop_assert!(
            CALENDAR.is_working_day(local.date_naive()),
            "reply deadline {} ({}) on a day off",
            local,
            local.weekday()
        );
        prop_assert_eq!(
            local.time(),
            NaiveTime::from_hms_opt(17, 30, 0).expect("valid time"),
            "reply deadline {} is not the close of day",
            local
        );
    }
    Ok(())
}

fn expected_kind(action: &Action, after: &Ticket) -> EventKind {
    match action {
        Action::Dispatch { .. } => EventKind::Dispatched,
        Action::Sign => EventKind::Signed,
        Action::Return { .. } => EventKind::Returned,
        Action::RequestExtension { .. } => EventKind::ExtensionRequested,
        Action::DecideExtension { .. } => EventKind::ExtensionDecided,
        Action::Reply { .. } => EventKind::Replied,
        Action::Callback { .. } if after.state == TicketState::InProgress => EventKind::Reopened,
        Action::Callback { .. } => EventKind::Callback,
        Action::Close { .. } => EventKind::Closed,
        Action::Merge { .. } => EventKind::Merged,
        Action::Note { .. } => EventKind::Note,
    }
}

/// The edges of the DESIGN.md state diagram (plus 改派 and merging a dispatched or returned
/// duplicate, which the code allows).
fn edge_allowed(action: &Action, from: TicketState, to: TicketState) -> bool {
    use TicketState as S;
    match action {
        Action::Dispatch { .. } => {
            matches!(from, S::Registered | S::Returned | S::Dispatched) && to == S::Dispatched
        }
        Action::Sign => from == S::Dispatched && to == S::InProgress,
        Action::Return { .. } => matches!(from, S::Dispatched | S::InProgress) && to == S::Returned,
        Action::RequestExtension { .. } | Action::DecideExtension { .. } => {
            matches!(from, S::Dispatched | S::InProgress) && to == from
        }
        Action::Reply { .. } => from == S::InProgress && matches!(to, S::Replied | S::Closed),
        Action::Callback { .. } => from == S::Replied && matches!(to, S::Closed | S::InProgress),
        Action::Close { .. } => matches!(from, S::Registered | S::Returned) && to == S::Closed,
        Action::Merge { .. } => {
            matches!(from, S::Registered | S::Returned | S::Dispatched) && to == S::Merged
        }
        Action::Note { .. } => to == from,
    }
}

fn run_sequence(
    start: Ticket,
    mut now: DateTime<Utc>,
    steps: &[(Move, i64)],
) -> Result<(), TestCaseError> {
    let rules = rules();
    let mut t = start;
    check_invariants(&t)?;
    for (i, (step, dt)) in steps.iter().enumerate() {
        now += minutes(*dt);
        let (actor, action) = resolve_move(step, &t);
        let action = &action;
        let before = t.clone();
        let result = apply(&rules, &t, &actor, action, now);
        // Pure: the same inputs give the same answer.
        prop_assert_eq!(&result, &apply(&rules, &t, &actor, action, now));
        match result {
            Ok((next, event)) => {
                let ctx = format!(
                    "step {i}: {action:?} by {:?}@{:?} at {now}, {} -> {}",
                    actor.role, actor.department, before.state, next.state
                );
                prop_assert_eq!(event.from_state, Some(before.state), "{}", ctx);
                prop_assert_eq!(event.to_state, Some(next.state), "{}", ctx);
                prop_assert_eq!(event.kind, expected_kind(action, &next), "{}", ctx);
                prop_assert_eq!(
                    event.department.clone(),
                    next.department.clone().or(before.department.clone()),
                    "{}",
                    ctx
                );
                prop_assert!(edge_allowed(action, before.state, next.state), "{}", ctx);
                prop_assert!(
                    before.state.is_open() || matches!(action, Action::Note { .. }),
                    "a finished ticket changed: {}",
                    ctx
                );
                prop_assert!(
                    actor.role != Role::Leader,
                    "a leader was allowed to act: {}",
                    ctx
                );
                if matches!(
                    action,
                    Action::Note { .. } | Action::RequestExtension { .. }
                ) {
                    prop_assert_eq!(&next, &before, "{}", ctx);
                }
                check_invariants(&next).map_err(|e| TestCaseError::fail(format!("{ctx}: {e}")))?;
                check_deadlines(&next).map_err(|e| TestCaseError::fail(format!("{ctx}: {e}")))?;
                t = next;
            }
            Err(_) => {
                // Refused: the caller keeps the ticket it had, which is still valid.
                prop_assert_eq!(&t, &before);
            }
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn random_action_sequences_keep_every_invariant(
        start in fresh_ticket(),
        now in instant_2026(),
        steps in prop::collection::vec((step(), time_step()), 1..60),
    ) {
        run_sequence(start, now, &steps)?;
    }

    #[test]
    fn working_time_deadlines_at_dispatch_fall_in_office_hours_on_working_days(
        category in prop::sample::select(Category::ALL),
        now in instant_2026(),
    ) {
        let (t, _) = apply(
            &rules(),
            &Ticket::registered(category, Urgency::Normal, false),
            &dispatcher(),
            &dispatch_to(LEAD),
            now,
        )
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_deadlines(&t)?;
        let local = now.with_timezone(&city_tz());
        // The reply deadline is on a later day than the dispatch day.
        let due = t.reply_due_at.expect("dispatched").with_timezone(&city_tz());
        prop_assert!(due.date_naive() > local.date_naive());
    }
}
