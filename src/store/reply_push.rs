//! 问政江西 reply pushes a change causes, as outbox drafts written in the
//! same transaction as the change: the ticket's own post when it is
//! answered, the posts of the wenzheng tickets merged into it (并单), and a
//! wenzheng ticket merged into a ticket that was already answered.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::entities::{ticket, ticket_event};
use super::escalations::OutboxDraft;
use super::outbox::WENZHENG_REPLY;
use super::tickets::to_domain;
use super::{Store, StoreResult};
use crate::domain::lifecycle::{EventDraft, Ticket};
use crate::domain::types::{Channel, EventKind, TicketState};
use crate::domain::wenzheng::{Answer, answer, reply_push_body, standing_answer};

impl Store {
    /// The pushes to `reply_url` that the change `before` → `after` (with
    /// `event`) causes. An empty `reply_url` still records them, as
    /// `no_recipient`.
    pub async fn reply_push_drafts(
        &self,
        reply_url: &str,
        before: &ticket::Model,
        after: &Ticket,
        event: &EventDraft,
    ) -> StoreResult<Vec<OutboxDraft>> {
        let mut out = Vec::new();
        let from: TicketState = to_domain(before)?.state;
        if let Some(a) = answer(from, after, event) {
            let name = self.department_name(a.department.as_deref()).await?;
            if let Some(post) = wenzheng_post(before) {
                out.push(draft(reply_url, before, post, &a, name.as_deref()));
            }
            // The citizens of the appeals merged into this one hear the same.
            let merged = ticket::Entity::find()
                .filter(ticket::Column::MergedInto.eq(before.id))
                .filter(ticket::Column::Channel.eq(Channel::Wenzheng.as_str()))
                .filter(ticket::Column::State.eq(TicketState::Merged.as_str()))
                .order_by_asc(ticket::Column::Id)
                .all(&self.db)
                .await?;
            for m in &merged {
                if let Some(post) = wenzheng_post(m) {
                    out.push(draft(reply_url, m, post, &a, name.as_deref()));
                }
            }
        }
        // Merged into a ticket that was answered already: tell it now.
        if event.kind == EventKind::Merged
            && let (Some(post), Some(into)) = (wenzheng_post(before), after.merged_into)
            && let Some(master) = ticket::Entity::find_by_id(into).one(&self.db).await?
        {
            let note = if master.reply_content.is_none() {
                self.closing_note(master.id).await?
            } else {
                None
            };
            if let Some(a) = standing_answer(&to_domain(&master)?, note.as_deref()) {
                let name = self.department_name(a.department.as_deref()).await?;
                out.push(draft(reply_url, before, post, &a, name.as_deref()));
            }
        }
        Ok(out)
    }

    async fn department_name(&self, code: Option<&str>) -> StoreResult<Option<String>> {
        Ok(match code {
            Some(c) => Some(
                self.department(c)
                    .await?
                    .map_or_else(|| c.to_owned(), |d| d.name),
            ),
            None => None,
        })
    }

    /// The note of the last direct close (直办 and the like) of a ticket.
    async fn closing_note(&self, ticket_id: i64) -> StoreResult<Option<String>> {
        let ev = ticket_event::Entity::find()
            .filter(ticket_event::Column::TicketId.eq(ticket_id))
            .filter(ticket_event::Column::Kind.eq(EventKind::Closed.as_str()))
            .order_by_desc(ticket_event::Column::Id)
            .one(&self.db)
            .await?;
        Ok(ev.and_then(|e| {
            serde_json::from_str::<serde_json::Value>(&e.payload)
                .ok()
                .and_then(|p| p.get("note").and_then(|n| n.as_str()).map(str::to_owned))
        }))
    }
}

/// The post id of a wenzheng ticket.
fn wenzheng_post(t: &ticket::Model) -> Option<&str> {
    (t.channel == Channel::Wenzheng.as_str())
        .then_some(t.external_id.as_deref())
        .flatten()
}

fn draft(
    reply_url: &str,
    t: &ticket::Model,
    post_id: &str,
    a: &Answer,
    department_name: Option<&str>,
) -> OutboxDraft {
    OutboxDraft {
        kind: WENZHENG_REPLY.to_owned(),
        ticket_id: Some(t.id),
        recipient: reply_url.trim().to_owned(),
        subject: format!("问政江西回复 {post_id} ({})", a.state),
        body: reply_push_body(post_id, &t.ticket_no, a, department_name),
    }
}
