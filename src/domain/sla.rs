//! SLA limits by category and urgency, and the deadlines and escalation
//! thresholds they give on the working-time calendar.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::calendar::{Calendar, WorkingDuration};
use super::types::{Category, TicketState, Urgency};

/// Sign and reply limits for one class of ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub sign: WorkingDuration,
    pub reply: WorkingDuration,
}

/// Warning lead times, one per clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarnBefore {
    pub sign: WorkingDuration,
    pub reply: WorkingDuration,
}

/// The `[sla]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaPolicy {
    pub urgent: Limits,
    pub consult: Limits,
    pub help: Limits,
    pub complaint: Limits,
    pub report: Limits,
    pub suggestion: Limits,
    pub praise: Limits,
    pub warn_before: WarnBefore,
    pub supervise_after: WorkingDuration,
    pub return_window: WorkingDuration,
    pub max_returns: u32,
    pub max_extensions: u32,
    pub max_reworks: u32,
    pub max_extension_days: u32,
}

impl Default for SlaPolicy {
    fn default() -> Self {
        let wh = |h: i64| WorkingDuration::WorkingMinutes(h * 60);
        let wd = WorkingDuration::WorkingDays;
        SlaPolicy {
            urgent: Limits {
                sign: WorkingDuration::Natural { minutes: 30 },
                reply: WorkingDuration::Natural { minutes: 24 * 60 },
            },
            consult: Limits {
                sign: wh(2),
                reply: wd(2),
            },
            help: Limits {
                sign: wh(2),
                reply: wd(10),
            },
            suggestion: Limits {
                sign: wh(2),
                reply: wd(10),
            },
            complaint: Limits {
                sign: wh(2),
                reply: wd(15),
            },
            report: Limits {
                sign: wh(2),
                reply: wd(15),
            },
            praise: Limits {
                sign: wh(2),
                reply: wd(5),
            },
            warn_before: WarnBefore {
                sign: WorkingDuration::WorkingMinutes(30),
                reply: wd(1),
            },
            supervise_after: wd(2),
            return_window: wd(1),
            max_returns: 2,
            max_extensions: 2,
            max_reworks: 2,
            max_extension_days: 30,
        }
    }
}

impl SlaPolicy {
    pub fn limits(&self, category: Category, urgency: Urgency) -> Limits {
        if urgency == Urgency::Urgent {
            return self.urgent;
        }
        match category {
            Category::Consult => self.consult,
            Category::Help => self.help,
            Category::Complaint => self.complaint,
            Category::Report => self.report,
            Category::Suggestion => self.suggestion,
            Category::Praise => self.praise,
        }
    }
}

/// Deadlines for a dispatch made at `at`.
pub fn deadlines(
    cal: &Calendar,
    policy: &SlaPolicy,
    category: Category,
    urgency: Urgency,
    at: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let l = policy.limits(category, urgency);
    (cal.due(at, l.sign), cal.due(at, l.reply))
}

/// Which clock drives escalation in a state, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    Sign,
    Reply,
}

impl Clock {
    pub fn for_state(state: TicketState) -> Option<Clock> {
        match state {
            TicketState::Dispatched => Some(Clock::Sign),
            TicketState::InProgress => Some(Clock::Reply),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Clock::Sign => "sign",
            Clock::Reply => "reply",
        }
    }
}

/// The instants at which a clock's escalation level becomes 1, 2 and 3.
pub fn thresholds(
    cal: &Calendar,
    policy: &SlaPolicy,
    clock: Clock,
    deadline: DateTime<Utc>,
) -> [DateTime<Utc>; 3] {
    let warn = match clock {
        Clock::Sign => policy.warn_before.sign,
        Clock::Reply => policy.warn_before.reply,
    };
    [
        cal.before(deadline, warn),
        deadline,
        cal.due(deadline, policy.supervise_after),
    ]
}

/// Level a clock has reached at `now` (0 normal … 3 supervised).
pub fn level_at(
    cal: &Calendar,
    policy: &SlaPolicy,
    clock: Clock,
    deadline: DateTime<Utc>,
    now: DateTime<Utc>,
) -> i16 {
    thresholds(cal, policy, clock, deadline)
        .iter()
        .filter(|t| **t <= now)
        .count() as i16
}

/// The next instant after which the level above `level` is reached, so the
/// sweeper reads only tickets whose time has come.
pub fn next_check(
    cal: &Calendar,
    policy: &SlaPolicy,
    clock: Clock,
    deadline: DateTime<Utc>,
    level: i16,
) -> Option<DateTime<Utc>> {
    let t = thresholds(cal, policy, clock, deadline);
    usize::try_from(level).ok().and_then(|l| t.get(l).copied())
}
