//! Plausible random ticket histories: what agents, dispatchers and handlers
//! might do next, with delays that cross days, holidays and deadlines. The
//! figure property tests replay them, and `hotline generate` builds its
//! synthetic years of tickets from them. Pure: the caller owns the RNG.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;

use super::lifecycle::{Action, Actor, Ticket};
use super::types::{Resolution, Role, Satisfaction, TicketState};

/// A pending extension request the dispatcher may decide: `(id, working_days)`.
pub type PendingExtension = Option<(i64, u32)>;

/// Who does what next, and when; `None` once the ticket rests (closed or
/// merged). `merge_into` is the ticket a merge names.
pub fn propose<R: Rng>(
    rng: &mut R,
    t: &Ticket,
    now: DateTime<Utc>,
    departments: &[String],
    pending: PendingExtension,
    merge_into: Option<i64>,
) -> Option<(Actor, Action, DateTime<Utc>)> {
    use TicketState as S;
    let dispatcher = Actor {
        name: "dispatcher".into(),
        role: Role::Dispatcher,
        department: None,
    };
    let agent = Actor {
        name: "agent".into(),
        role: Role::Agent,
        department: None,
    };
    let lead = t.department.clone();
    let handler = Actor {
        name: format!("handler_{}", lead.as_deref().unwrap_or("none")),
        role: if rng.gen_bool(0.8) {
            Role::Handler
        } else {
            Role::DeptHead
        },
        department: lead,
    };
    let pick = |rng: &mut R| departments[rng.gen_range(0..departments.len())].clone();
    let dispatch = |rng: &mut R| {
        let department = pick(rng);
        let co = pick(rng);
        Action::Dispatch {
            co_departments: if rng.gen_bool(0.1) && co != department {
                vec![co]
            } else {
                Vec::new()
            },
            department,
            note: None,
        }
    };
    let roll: u32 = rng.gen_range(0..100);
    let (actor, action) = match t.state {
        S::Closed | S::Merged => return None,
        S::Registered => match roll {
            0..70 => (dispatcher, dispatch(rng)),
            70..85 => (
                agent,
                Action::Close {
                    resolution: Resolution::DirectAnswer,
                    note: "直接答复".into(),
                },
            ),
            85..92 => (
                agent,
                Action::Close {
                    resolution: if rng.gen_bool(0.5) {
                        Resolution::Rejected
                    } else {
                        Resolution::TransferredEmergency
                    },
                    note: "不予受理".into(),
                },
            ),
            92..96 if merge_into.is_some() => merge(dispatcher, merge_into),
            _ => (dispatcher, dispatch(rng)),
        },
        S::Dispatched => match roll {
            0..62 => (handler, Action::Sign),
            62..75 => (
                handler,
                Action::Return {
                    reason: "非本单位职责".into(),
                },
            ),
            75..83 => (dispatcher, dispatch(rng)),
            83..90 => (handler, extension_request(rng)),
            90..95 if pending.is_some() => decide(rng, dispatcher, pending),
            95..98 if merge_into.is_some() => merge(dispatcher, merge_into),
            _ => (handler, Action::Sign),
        },
        S::InProgress => match roll {
            0..65 => (
                handler,
                Action::Reply {
                    content: "已处理".into(),
                    resolved: rng.gen_bool(0.85),
                },
            ),
            65..72 => (
                handler,
                Action::Return {
                    reason: "非本单位职责".into(),
                },
            ),
            72..84 => (handler, extension_request(rng)),
            84..96 if pending.is_some() => decide(rng, dispatcher, pending),
            84..98 => (
                handler,
                Action::Note {
                    content: "正在协调".into(),
                },
            ),
            _ => (
                handler,
                Action::Reply {
                    content: "已处理".into(),
                    resolved: true,
                },
            ),
        },
        S::Returned => match roll {
            0..80 => (dispatcher, dispatch(rng)),
            _ => (
                dispatcher,
                Action::Close {
                    resolution: Resolution::Rejected,
                    note: "不属于受理范围".into(),
                },
            ),
        },
        S::Replied => {
            let satisfaction = match roll {
                0..50 => Satisfaction::Satisfied,
                50..70 => Satisfaction::BasicallySatisfied,
                70..88 => Satisfaction::Dissatisfied,
                _ => Satisfaction::Unreachable,
            };
            (
                dispatcher,
                Action::Callback {
                    satisfaction,
                    resolved: rng.gen_bool(0.75),
                    note: None,
                },
            )
        }
    };
    Some((actor, action, now + delay(rng)))
}

fn extension_request<R: Rng>(rng: &mut R) -> Action {
    Action::RequestExtension {
        working_days: rng.gen_range(1..=10),
        reason: "需现场勘查".into(),
    }
}

fn decide<R: Rng>(rng: &mut R, dispatcher: Actor, pending: PendingExtension) -> (Actor, Action) {
    let (extension_id, working_days) = pending.unwrap_or((0, 1));
    (
        dispatcher,
        Action::DecideExtension {
            extension_id,
            working_days,
            approve: rng.gen_bool(0.7),
            note: None,
        },
    )
}

fn merge(dispatcher: Actor, into: Option<i64>) -> (Actor, Action) {
    (
        dispatcher,
        Action::Merge {
            into: into.unwrap_or(0),
            into_ticket_no: String::new(),
            into_state: TicketState::Registered,
        },
    )
}

/// Minutes, hours or days: enough spread to land before, on and after every
/// kind of deadline, now and then at the very same instant.
pub fn delay<R: Rng>(rng: &mut R) -> Duration {
    match rng.gen_range(0..20) {
        0 => Duration::zero(),
        1..8 => Duration::minutes(rng.gen_range(1..180)),
        8..15 => Duration::minutes(rng.gen_range(180..3 * 24 * 60)),
        _ => Duration::minutes(rng.gen_range(3 * 24 * 60..20 * 24 * 60)),
    }
}
