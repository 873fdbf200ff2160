//! The one transition function: what an action by an actor does to a ticket.
//! Handlers, the importer and the demo loader all go through `apply`; nothing
//! else decides a ticket's `state`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::calendar::{Calendar, WorkingDuration};
use super::sla::{self, Clock, SlaPolicy};
use super::types::{Category, EventKind, Resolution, Role, Satisfaction, TicketState, Urgency};

/// The part of a ticket the lifecycle reads and writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub state: TicketState,
    pub resolution: Option<Resolution>,
    pub merged_into: Option<i64>,
    pub category: Category,
    pub urgency: Urgency,
    /// No phone to call back on: closes at reply, never counts in satisfaction.
    pub anonymous: bool,
    pub department: Option<String>,
    pub co_departments: Vec<String>,
    pub dispatched_at: Option<DateTime<Utc>>,
    pub signed_at: Option<DateTime<Utc>>,
    pub replied_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub sign_due_at: Option<DateTime<Utc>>,
    pub reply_due_at: Option<DateTime<Utc>>,
    pub escalation_level: i16,
    pub next_check_at: Option<DateTime<Utc>>,
    pub rework_count: i32,
    pub return_count: i32,
    pub extension_count: i32,
    pub final_dispatch: bool,
    pub reply_content: Option<String>,
    pub reply_resolved: Option<bool>,
    pub satisfaction: Option<Satisfaction>,
}

impl Ticket {
    /// A freshly registered ticket.
    pub fn registered(category: Category, urgency: Urgency, anonymous: bool) -> Ticket {
        Ticket {
            state: TicketState::Registered,
            resolution: None,
            merged_into: None,
            category,
            urgency,
            anonymous,
            department: None,
            co_departments: Vec::new(),
            dispatched_at: None,
            signed_at: None,
            replied_at: None,
            closed_at: None,
            sign_due_at: None,
            reply_due_at: None,
            escalation_level: 0,
            next_check_at: None,
            rework_count: 0,
            return_count: 0,
            extension_count: 0,
            final_dispatch: false,
            reply_content: None,
            reply_resolved: None,
            satisfaction: None,
        }
    }

    /// The deadline escalation is driven by in the current state.
    pub fn active_deadline(&self) -> Option<(Clock, DateTime<Utc>)> {
        match Clock::for_state(self.state)? {
            Clock::Sign => self.sign_due_at.map(|d| (Clock::Sign, d)),
            Clock::Reply => self.reply_due_at.map(|d| (Clock::Reply, d)),
        }
    }
}

/// Who acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: Role,
    pub department: Option<String>,
}

/// Everything a person can do to a ticket.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Dispatch {
        department: String,
        co_departments: Vec<String>,
        note: Option<String>,
    },
    Sign,
    Return {
        reason: String,
    },
    RequestExtension {
        working_days: u32,
        reason: String,
    },
    DecideExtension {
        extension_id: i64,
        working_days: u32,
        approve: bool,
        note: Option<String>,
    },
    Reply {
        content: String,
        resolved: bool,
    },
    Callback {
        satisfaction: Satisfaction,
        resolved: bool,
        note: Option<String>,
    },
    Close {
        resolution: Resolution,
        note: String,
    },
    Merge {
        into: i64,
        into_ticket_no: String,
        into_state: TicketState,
    },
    Note {
        content: String,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Dispatch { .. } => "dispatch",
            Action::Sign => "sign",
            Action::Return { .. } => "return",
            Action::RequestExtension { .. } => "request_extension",
            Action::DecideExtension { .. } => "decide_extension",
            Action::Reply { .. } => "reply",
            Action::Callback { .. } => "callback",
            Action::Close { .. } => "close",
            Action::Merge { .. } => "merge",
            Action::Note { .. } => "note",
        }
    }
}

/// The event an accepted action appends.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    pub kind: EventKind,
    pub from_state: Option<TicketState>,
    pub to_state: Option<TicketState>,
    pub department: Option<String>,
    pub payload: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("`{action}` is not allowed while the ticket is `{state}`{detail}")]
    InvalidTransition {
        action: &'static str,
        state: TicketState,
        detail: String,
    },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Validation(String),
}

fn invalid(action: &Action, state: TicketState, detail: &str) -> LifecycleError {
    LifecycleError::InvalidTransition {
        action: action.name(),
        state,
        detail: if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        },
    }
}

/// What the lifecycle needs from the outside world: the clock rules.
pub struct Rules<'a> {
    pub calendar: &'a Calendar,
    pub sla: &'a SlaPolicy,
}

impl Rules<'_> {
    /// Recomputes `next_check_at` from the active deadline and level.
    pub fn schedule(&self, t: &mut Ticket) {
        t.next_check_at = t.active_deadline().and_then(|(clock, due)| {
            sla::next_check(self.calendar, self.sla, clock, due, t.escalation_level)
        });
    }
}

fn require_role(action: &Action, actor: &Actor, roles: &[Role]) -> Result<(), LifecycleError> {
    if roles.contains(&actor.role) {
        Ok(())
    } else {
        Err(LifecycleError::Forbidden(format!(
            "role `{}` may not {}",
            actor.role,
            action.name()
        )))
    }
}

/// The roles that work a department's tickets.
const HANDLERS: &[Role] = &[Role::Handler, Role::DeptHead];

/// Checked after the state, so a handler acting in the wrong state hears
/// 409, and one acting for another department hears 403.
fn require_lead(action: &Action, actor: &Actor, t: &Ticket) -> Result<(), LifecycleError> {
    if actor.department.is_some() && actor.department == t.department {
        Ok(())
    } else {
        Err(LifecycleError::Forbidden(format!(
            "only the lead department may {}",
            action.name()
        )))
    }
}

fn non_empty(field: &str, s: &str, max: usize) -> Result<(), LifecycleError> {
    let n = s.trim().chars().count();
    if n == 0 {
        Err(LifecycleError::Validation(format!(
            "`{field}` must not be empty"
        )))
    } else if n > max {
        Err(LifecycleError::Validation(format!(
            "`{field}` is longer than {max} characters"
        )))
    } else {
        Ok(())
    }
}

/// Applies `action` by `actor` at `now`: the new ticket and the one event to
/// append, or why not. Pure: the caller persists both in one transaction.
pub fn apply(
    rules: &Rules<'_>,
    ticket: &Ticket,
    actor: &Actor,
    action: &Action,
    now: DateTime<Utc>,
) -> Result<(Ticket, EventDraft), LifecycleError> {
    use TicketState as S;
    let from = ticket.state;
    let mut t = ticket.clone();
    let kind;
    let payload;

    match action {
        Action::Dispatch {
            department,
            co_departments,
            note,
        } => {
            require_role(action, actor, &[Role::Dispatcher])?;
            if !matches!(from, S::Registered | S::Returned | S::Dispatched) {
                return Err(invalid(action, from, ""));
            }
            if co_departments.contains(department) {
                return Err(LifecycleError::Validation(
                    "the lead department cannot also be a co-department".into(),
                ));
            }
            if note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
                return Err(LifecycleError::Validation(
                    "`note` is longer than 2000 characters".into(),
                ));
            }
            let (sign_due, reply_due) =
                sla::deadlines(rules.calendar, rules.sla, t.category, t.urgency, now);
            let redispatch = from != S::Registered;
            // Once the returns are used up, the dispatcher's ruling stands (审定).
            t.final_dispatch = t.return_count >= rules.sla.max_returns as i32;
            t.state = S::Dispatched;
            t.department = Some(department.clone());
            t.co_departments = co_departments.clone();
            t.dispatched_at = Some(now);
            t.signed_at = None;
            t.sign_due_at = Some(sign_due);
            t.reply_due_at = Some(reply_due);
            t.escalation_level = 0;
            t.extension_count = 0;
            kind = EventKind::Dispatched;
            payload = json!({
                "department": department,
                "co_departments": co_departments,
                "note": note,
                "redispatch": redispatch,
                "final": t.final_dispatch,
                "sign_due_at": sign_due,
                "reply_due_at": reply_due,
            });
        }
        Action::Sign => {
            require_role(action, actor, HANDLERS)?;
            if from != S::Dispatched {
                return Err(invalid(action, from, ""));
            }
            require_lead(action, actor, ticket)?;
            t.state = S::InProgress;
            t.signed_at = Some(now);
            t.escalation_level = 0;
            kind = EventKind::Signed;
            payload = json!({
                "on_time": ticket.sign_due_at.is_none_or(|d| now <= d),
                "sign_due_at": ticket.sign_due_at,
            });
        }
        Action::Return { reason } => {
            require_role(action, actor, HANDLERS)?;
            non_empty("reason", reason, 2000)?;
            if !matches!(from, S::Dispatched | S::InProgress) {
                return Err(invalid(action, from, ""));
            }
            require_lead(action, actor, ticket)?;
            if t.final_dispatch || t.return_count >= rules.sla.max_returns as i32 {
                return Err(invalid(
                    action,
                    from,
                    "the returns are used up and this dispatch is final (审定)",
                ));
            }
            let window_end = ticket
                .dispatched_at
                .map(|d| rules.calendar.due(d, rules.sla.return_window));
            if window_end.is_some_and(|end| now > end) {
                return Err(invalid(
                    action,
                    from,
                    &format!("the return window ({}) has passed", rules.sla.return_window),
                ));
            }
            t.state = S::Returned;
            t.return_count += 1;
            t.department = None;
            t.co_departments.clear();
            t.signed_at = None;
            t.sign_due_at = None;
            t.reply_due_at = None;
            t.escalation_level = 0;
            kind = EventKind::Returned;
            payload = json!({ "reason": reason, "return_count": t.return_count });
        }
        Action::RequestExtension {
            working_days,
            reason,
        } => {
            require_role(action, actor, HANDLERS)?;
            non_empty("reason", reason, 2000)?;
            if *working_days == 0 || *working_days > rules.sla.max_extension_days {
                return Err(LifecycleError::Validation(format!(
                    "`working_days` must be between 1 and {}",
                    rules.sla.max_extension_days
                )));
            }
            if !matches!(from, S::Dispatched | S::InProgress) {
                return Err(invalid(action, from, ""));
            }
            require_lead(action, actor, ticket)?;
            if ticket.reply_due_at.is_some_and(|d| now >= d) {
                return Err(invalid(
                    action,
                    from,
                    "the reply deadline has already passed",
                ));
            }
            if t.extension_count >= rules.sla.max_extensions as i32 {
                return Err(invalid(action, from, "no extensions left"));
            }
            kind = EventKind::ExtensionRequested;
            payload = json!({ "working_days": working_days, "reason": reason });
        }
        Action::DecideExtension {
            extension_id,
            working_days,
            approve,
            note,
        } => {
            require_role(action, actor, &[Role::Dispatcher])?;
            if !matches!(from, S::Dispatched | S::InProgress) {
                return Err(invalid(action, from, ""));
            }
            let mut new_due = None;
            if *approve {
                if t.extension_count >= rules.sla.max_extensions as i32 {
                    return Err(invalid(action, from, "no extensions left"));
                }
                let old = ticket.reply_due_at.unwrap_or(now);
                let due = rules
                    .calendar
                    .due(old, WorkingDuration::WorkingDays(*working_days));
                t.reply_due_at = Some(due);
                t.extension_count += 1;
                if from == S::InProgress {
                    t.escalation_level = 0;
                }
                new_due = Some(due);
            }
            kind = EventKind::ExtensionDecided;
            payload = json!({
                "extension_id": extension_id,
                "approve": approve,
                "note": note,
                "working_days": working_days,
                "old_reply_due_at": ticket.reply_due_at,
                "reply_due_at": new_due,
            });
        }
        Action::Reply { content, resolved } => {
            require_role(action, actor, HANDLERS)?;
            non_empty("content", content, 10_000)?;
            if from != S::InProgress {
                return Err(invalid(action, from, "sign the ticket first"));
            }
            require_lead(action, actor, ticket)?;
            t.state = S::Replied;
            t.replied_at = Some(now);
            t.reply_content = Some(content.clone());
            t.reply_resolved = Some(*resolved);
            t.escalation_level = 0;
            if ticket.anonymous {
                // Nobody to call back: the reply ends the case.
                t.state = S::Closed;
                t.resolution = Some(Resolution::Answered);
                t.closed_at = Some(now);
            }
            kind = EventKind::Replied;
            payload = json!({
                "content": content,
                "resolved": resolved,
                "on_time": ticket.reply_due_at.is_none_or(|d| now <= d),
                "reply_due_at": ticket.reply_due_at,
            });
        }
        Action::Callback {
            satisfaction,
            resolved,
            note,
        } => {
            require_role(action, actor, &[Role::Dispatcher])?;
            if from != S::Replied {
                return Err(invalid(action, from, ""));
            }
            if ticket.anonymous {
                return Err(invalid(
                    action,
                    from,
                    "anonymous appeals cannot be called back",
                ));
            }
            let reached = *satisfaction != Satisfaction::Unreachable;
            t.satisfaction = Some(*satisfaction);
            let outcome;
            if *satisfaction == Satisfaction::Dissatisfied {
                if ticket.rework_count < rules.sla.max_reworks as i32 {
                    // 重办: back to the same department with a fresh reply clock.
                    let limits = rules.sla.limits(t.category, t.urgency);
                    t.state = S::InProgress;
                    t.rework_count += 1;
                    t.replied_at = None;
                    t.reply_content = None;
                    t.reply_resolved = None;
                    t.reply_due_at = Some(rules.calendar.due(now, limits.reply));
                    t.escalation_level = 0;
                    kind = EventKind::Reopened;
                    outcome = "reopened";
                } else {
                    // Reworks exhausted: close, and flag it for 督办.
                    t.state = S::Closed;
                    t.resolution = Some(Resolution::Answered);
                    t.closed_at = Some(now);
                    t.escalation_level = 3;
                    kind = EventKind::Callback;
                    outcome = "closed_supervised";
                }
            } else {
                t.state = S::Closed;
                t.resolution = Some(Resolution::Answered);
                t.closed_at = Some(now);
                kind = EventKind::Callback;
                outcome = "closed";
            }
            payload = json!({
                "satisfaction": satisfaction,
                "resolved": resolved,
                "reached": reached,
                "note": note,
                "outcome": outcome,
                "rework_count": t.rework_count,
                // The new reply deadline when reopened, so the history alone
                // tells every clock the ticket ran on.
                "reply_due_at": (kind == EventKind::Reopened).then_some(t.reply_due_at).flatten(),
            });
        }
        Action::Close { resolution, note } => {
            require_role(action, actor, &[Role::Agent, Role::Dispatcher])?;
            non_empty("note", note, 2000)?;
            if *resolution == Resolution::Answered {
                return Err(LifecycleError::Validation(
                    "`resolution` must be direct_answer, rejected or transferred_emergency".into(),
                ));
            }
            if !matches!(from, S::Registered | S::Returned) {
                return Err(invalid(action, from, ""));
            }
            t.state = S::Closed;
            t.resolution = Some(*resolution);
            t.closed_at = Some(now);
            t.department = None;
            t.co_departments.clear();
            t.sign_due_at = None;
            t.reply_due_at = None;
            kind = EventKind::Closed;
            payload = json!({ "resolution": resolution, "note": note });
        }
        Action::Merge {
            into,
            into_ticket_no,
            into_state,
        } => {
            require_role(action, actor, &[Role::Dispatcher])?;
            if !matches!(from, S::Registered | S::Returned | S::Dispatched) {
                return Err(invalid(action, from, ""));
            }
            if *into_state == S::Merged {
                return Err(invalid(action, from, "the target ticket is itself merged"));
            }
            t.state = S::Merged;
            t.merged_into = Some(*into);
            t.closed_at = Some(now);
            t.sign_due_at = None;
            t.reply_due_at = None;
            kind = EventKind::Merged;
            payload = json!({ "into": into, "into_ticket_no": into_ticket_no });
        }
        Action::Note { content } => {
            if actor.role == Role::Leader {
                return Err(LifecycleError::Forbidden(
                    "leaders read; they do not write".into(),
                ));
            }
            non_empty("content", content, 4000)?;
            kind = EventKind::Note;
            payload = json!({ "content": content });
        }
    }

    rules.schedule(&mut t);
    let event = EventDraft {
        kind,
        from_state: Some(from),
        to_state: Some(t.state),
        // The department acted on: the new lead, or the one that just let go.
        department: t.department.clone().or_else(|| ticket.department.clone()),
        payload,
    };
    Ok((t, event))
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
