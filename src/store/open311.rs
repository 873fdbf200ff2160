//! Open311 GeoReport v2 storage: the row kept beside each ticket that came in
//! through `/open311/v2/requests`, and the public look-ups — by number, or by
//! time window, service and status — which only ever see Open311 tickets.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use super::entities::{open311_request, ticket};
use super::{Store, StoreResult};
use crate::domain::types::{Channel, TicketState};

/// What `GET requests` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestQuery {
    /// Ticket numbers; when given, every other field is ignored (the spec's
    /// `service_request_id` "overrides all other arguments").
    pub ticket_nos: Option<Vec<String>>,
    /// Empty means every service.
    pub service_codes: Vec<String>,
    /// `Some(true)`: open only; `Some(false)`: closed only.
    pub open: Option<bool>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub limit: u64,
}

/// An Open311 ticket and its request row (absent only if writing it failed).
pub type Open311Request = (ticket::Model, Option<open311_request::Model>);

const CLOSED: [TicketState; 2] = [TicketState::Closed, TicketState::Merged];

impl Store {
    pub async fn add_open311_request(&self, row: open311_request::Model) -> StoreResult<()> {
        let m = open311_request::ActiveModel {
            ticket_id: Set(row.ticket_id),
            service_code: Set(row.service_code),
            description: Set(row.description),
            latitude: Set(row.latitude),
            longitude: Set(row.longitude),
            address_id: Set(row.address_id),
            media_urls: Set(row.media_urls),
            email: Set(row.email),
            created_at: Set(row.created_at),
        };
        let w = self.begin_write().await?;
        open311_request::Entity::insert(m)
            .exec_without_returning(&w.txn)
            .await?;
        w.commit().await?;
        Ok(())
    }

    /// Open311 tickets matching `q`, newest first, at most `q.limit`.
    pub async fn open311_requests(&self, q: &RequestQuery) -> StoreResult<Vec<Open311Request>> {
        use ticket::Column as C;
        let closed = CLOSED.map(|s| s.as_str());
        let mut s = ticket::Entity::find().filter(C::Channel.eq(Channel::Open311.as_str()));
        if let Some(nos) = &q.ticket_nos {
            s = s.filter(C::TicketNo.is_in(nos.iter().map(String::as_str)));
        } else {
            s = s
                .filter(C::CreatedAt.gte(q.from))
                .filter(C::CreatedAt.lte(q.to));
            if !q.service_codes.is_empty() {
                s = s.filter(
                    C::Id.in_subquery(
                        Query::select()
                            .column(open311_request::Column::TicketId)
                            .from(open311_request::Entity)
                            .and_where(
                                open311_request::Column::ServiceCode
                                    .is_in(q.service_codes.iter().map(String::as_str)),
                            )
                            .to_owned(),
                    ),
                );
            }
            match q.open {
                Some(true) => s = s.filter(C::State.is_not_in(closed)),
                Some(false) => s = s.filter(C::State.is_in(closed)),
                None => {}
            }
        }
        let tickets = s
            .order_by_desc(C::CreatedAt)
            .order_by_desc(C::Id)
            .limit(q.limit)
            .all(&self.db)
            .await?;
        let ids: Vec<i64> = tickets.iter().map(|t| t.id).collect();
        let mut rows: HashMap<i64, open311_request::Model> = if ids.is_empty() {
            HashMap::new()
        } else {
            open311_request::Entity::find()
                .filter(open311_request::Column::TicketId.is_in(ids))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|r| (r.ticket_id, r))
                .collect()
        };
        Ok(tickets
            .into_iter()
            .map(|t| {
                let r = rows.remove(&t.id);
                (t, r)
            })
            .collect())
    }
}
