//! JSON shapes of tickets and events as DESIGN.md names them; citizen data
//! masked unless the caller's role talks to citizens.

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;
use serde_json::Value;

use super::auth::Caller;
use crate::domain::calendar::city_tz;
use crate::domain::types::{TicketState, mask_name, mask_phone};
use crate::store::entities::{extension, ticket, ticket_event};
use crate::store::tickets::co_departments;

/// Timestamps go out in city time with their offset (RFC 3339).
pub fn ts(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    t.with_timezone(&city_tz())
}

fn ots(t: Option<DateTime<Utc>>) -> Option<DateTime<FixedOffset>> {
    t.map(ts)
}

#[derive(Serialize)]
pub struct CitizenView {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub anonymous: bool,
    pub masked: bool,
}

#[derive(Serialize)]
pub struct ReplyView {
    pub content: String,
    pub resolved: Option<bool>,
    pub replied_at: Option<DateTime<FixedOffset>>,
}

#[derive(Serialize)]
pub struct TicketView {
    pub id: i64,
    pub ticket_no: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_code: Option<String>,
    pub channel: String,
    pub external_id: Option<String>,
    pub category: String,
    pub urgency: String,
    pub title: String,
    pub content: String,
    pub citizen: CitizenView,
    pub address: Option<String>,
    pub district: Option<String>,
    pub state: String,
    pub resolution: Option<String>,
    pub merged_into: Option<i64>,
    pub department: Option<String>,
    pub co_departments: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<FixedOffset>,
    pub updated_at: DateTime<FixedOffset>,
    pub dispatched_at: Option<DateTime<FixedOffset>>,
    pub signed_at: Option<DateTime<FixedOffset>>,
    pub replied_at: Option<DateTime<FixedOffset>>,
    pub closed_at: Option<DateTime<FixedOffset>>,
    pub sign_due_at: Option<DateTime<FixedOffset>>,
    pub reply_due_at: Option<DateTime<FixedOffset>>,
    pub next_check_at: Option<DateTime<FixedOffset>>,
    pub overdue: bool,
    pub escalation_level: i16,
    pub rework_count: i32,
    pub return_count: i32,
    pub extension_count: i32,
    pub final_dispatch: bool,
    pub reply: Option<ReplyView>,
    pub satisfaction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Vec<ExtensionView>>,
    /// The number of an earlier ticket this appeal may repeat (重复件), for
    /// the dispatcher to merge: same phone and similar text, or same address
    /// and category, within 72 hours of it.
    pub possible_duplicate_of: Option<String>,
}

#[derive(Serialize)]
pub struct EventView {
    pub id: i64,
    pub at: DateTime<FixedOffset>,
    pub actor: String,
    pub kind: String,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub department: Option<String>,
    pub payload: Value,
}

#[derive(Serialize)]
pub struct ExtensionView {
    pub id: i64,
    pub ticket_id: i64,
    pub department: String,
    pub working_days: i32,
    pub reason: String,
    pub status: String,
    pub requested_by: String,
    pub requested_at: DateTime<FixedOffset>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<FixedOffset>>,
    pub note: Option<String>,
}

pub fn extension_view(e: &extension::Model) -> ExtensionView {
    ExtensionView {
        id: e.id,
        ticket_id: e.ticket_id,
        department: e.department.clone(),
        working_days: e.working_days,
        reason: e.reason.clone(),
        status: e.status.clone(),
        requested_by: e.requested_by.clone(),
        requested_at: ts(e.requested_at),
        decided_by: e.decided_by.clone(),
        decided_at: ots(e.decided_at),
        note: e.note.clone(),
    }
}

pub fn event_view(e: &ticket_event::Model) -> EventView {
    EventView {
        id: e.id,
        at: ts(e.at),
        actor: e.actor.clone(),
        kind: e.kind.clone(),
        from_state: e.from_state.clone(),
        to_state: e.to_state.clone(),
        department: e.department.clone(),
        payload: serde_json::from_str(&e.payload).unwrap_or(Value::Null),
    }
}

/// Whether the ticket is past its active deadline at `now`.
pub fn is_overdue(t: &ticket::Model, now: DateTime<Utc>) -> bool {
    let due = match t.state.parse::<TicketState>() {
        Ok(TicketState::Dispatched) => t.sign_due_at,
        Ok(TicketState::InProgress) => t.reply_due_at,
        _ => None,
    };
    due.is_some_and(|d| d < now)
}

pub fn ticket_view(t: &ticket::Model, caller: &Caller, now: DateTime<Utc>) -> TicketView {
    let full = caller.role.sees_citizen_data();
    ticket_view_with(t, full, full, now)
}

/// `unmasked`: citizen data in clear; `with_code`: include the query code.
pub fn ticket_view_with(
    t: &ticket::Model,
    unmasked: bool,
    with_code: bool,
    now: DateTime<Utc>,
) -> TicketView {
    let citizen = CitizenView {
        name: t
            .citizen_name
            .as_deref()
            .map(|n| if unmasked { n.to_owned() } else { mask_name(n) }),
        phone: t.citizen_phone.as_deref().map(|p| {
            if unmasked {
                p.to_owned()
            } else {
                mask_phone(p)
            }
        }),
        anonymous: t.citizen_phone.is_none(),
        masked: !unmasked,
    };
    TicketView {
        id: t.id,
        ticket_no: t.ticket_no.clone(),
        query_code: with_code.then(|| t.query_code.clone()),
        channel: t.channel.clone(),
        external_id: t.external_id.clone(),
        category: t.category.clone(),
        urgency: t.urgency.clone(),
        title: t.title.clone(),
        content: t.content.clone(),
        citizen,
        address: t.address.clone(),
        district: t.district.clone(),
        state: t.state.clone(),
        resolution: t.resolution.clone(),
        merged_into: t.merged_into,
        department: t.department.clone(),
        co_departments: co_departments(t),
        created_by: t.created_by.clone(),
        created_at: ts(t.created_at),
        updated_at: ts(t.updated_at),
        dispatched_at: ots(t.dispatched_at),
        signed_at: ots(t.signed_at),
        replied_at: ots(t.replied_at),
        closed_at: ots(t.closed_at),
        sign_due_at: ots(t.sign_due_at),
        reply_due_at: ots(t.reply_due_at),
        next_check_at: ots(t.next_check_at),
        overdue: is_overdue(t, now),
        escalation_level: t.escalation_level,
        rework_count: t.rework_count,
        return_count: t.return_count,
        extension_count: t.extension_count,
        final_dispatch: t.final_dispatch,
        reply: t.reply_content.as_ref().map(|c| ReplyView {
            content: c.clone(),
            resolved: t.reply_resolved,
            replied_at: ots(t.replied_at),
        }),
        satisfaction: t.satisfaction.clone(),
        events: None,
        extensions: None,
        possible_duplicate_of: t.possible_duplicate_of.clone(),
    }
}
