//! Reads the staff pages need beyond the API's ticket list: pending
//! extension requests, an agent's recent tickets, a caller's other recent
//! appeals, and the latest event of a kind for a page of tickets. Each is
//! bounded and served by an index.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::entities::{extension, ticket, ticket_event};
use super::{Store, StoreResult};
use crate::domain::types::ExtensionStatus;

impl Store {
    /// Pending extension requests, oldest first, with their tickets.
    pub async fn pending_extensions(
        &self,
        limit: u64,
    ) -> StoreResult<Vec<(extension::Model, ticket::Model)>> {
        let exts = extension::Entity::find()
            .filter(extension::Column::Status.eq(ExtensionStatus::Pending.as_str()))
            .order_by_asc(extension::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        let ids: Vec<i64> = exts.iter().map(|e| e.ticket_id).collect();
        let mut tickets: HashMap<i64, ticket::Model> = self
            .tickets_by_ids(&ids)
            .await?
            .into_iter()
            .map(|t| (t.id, t))
            .collect();
        Ok(exts
            .into_iter()
            .filter_map(|e| tickets.remove(&e.ticket_id).map(|t| (e, t)))
            .collect())
    }

    pub async fn tickets_by_ids(&self, ids: &[i64]) -> StoreResult<Vec<ticket::Model>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(ticket::Entity::find()
            .filter(ticket::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?)
    }

    /// The newest tickets `username` registered since `since`.
    pub async fn recent_by_creator(
        &self,
        username: &str,
        since: DateTime<Utc>,
        limit: u64,
    ) -> StoreResult<Vec<ticket::Model>> {
        Ok(ticket::Entity::find()
            .filter(ticket::Column::CreatedAt.gte(since))
            .filter(ticket::Column::CreatedBy.eq(username))
            .order_by_desc(ticket::Column::CreatedAt)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// The newest tickets from this phone number since `since` (the
    /// agent's repeat warning while a call is being logged).
    pub async fn recent_by_phone(
        &self,
        phone: &str,
        since: DateTime<Utc>,
        limit: u64,
    ) -> StoreResult<Vec<ticket::Model>> {
        Ok(ticket::Entity::find()
            .filter(ticket::Column::CitizenPhone.eq(phone))
            .filter(ticket::Column::CreatedAt.gte(since))
            .order_by_desc(ticket::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// For each of `ticket_ids`, its latest event of `kind` (the reason of
    /// the last return, say).
    pub async fn latest_events(
        &self,
        ticket_ids: &[i64],
        kind: &str,
    ) -> StoreResult<HashMap<i64, ticket_event::Model>> {
        if ticket_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = ticket_event::Entity::find()
            .filter(ticket_event::Column::TicketId.is_in(ticket_ids.iter().copied()))
            .filter(ticket_event::Column::Kind.eq(kind))
            .order_by_asc(ticket_event::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|e| (e.ticket_id, e)).collect())
    }
}
