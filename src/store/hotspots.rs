//! Hotspot storage: the appeals of the window as the detector reads them, and
//! the clusters it finds — each recorded once, with its one mail, however
//! many instances find it at the same time.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, Statement,
};

use super::entities::{hotspot, hotspot_ticket, open311_request, ticket};
use super::escalations::{OutboxDraft, outbox_model};
use super::{Store, StoreResult};
use crate::domain::hotspots::{Cluster, Point, Raw};
use crate::domain::types::TicketState;

/// A ticket of the window, as much of it as finding hotspots needs.
#[derive(Debug, Clone)]
pub struct WindowTicket {
    pub id: i64,
    pub ticket_no: String,
    pub created_at: DateTime<Utc>,
    pub title: String,
    pub content: String,
    pub address: Option<String>,
    pub district: Option<String>,
    pub service_code: Option<String>,
    pub point: Option<Point>,
}

impl WindowTicket {
    pub fn raw(&self) -> Raw<'_> {
        Raw {
            id: self.id,
            at: self.created_at,
            title: &self.title,
            content: &self.content,
            address: self.address.as_deref(),
            district: self.district.as_deref(),
            service_code: self.service_code.as_deref(),
            point: self.point,
        }
    }
}

/// What recording a cluster did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// A new hotspot, and its mail queued.
    New(i64),
    /// A known hotspot gained appeals or moved its times.
    Grown(i64),
    Unchanged(i64),
    /// Another instance recorded it first.
    Lost,
}

/// A current hotspot with its members' ticket numbers, oldest first.
pub type CurrentHotspot = (hotspot::Model, Vec<String>);

type TicketRow = (
    i64,
    String,
    DateTime<Utc>,
    String,
    String,
    Option<String>,
    Option<String>,
);

impl Store {
    /// Tickets created in `[since, until]`, except those merged into another
    /// (a repeat is not a second appeal), with their Open311 points.
    pub async fn hotspot_window(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<WindowTicket>> {
        use ticket::Column as C;
        let rows: Vec<TicketRow> = ticket::Entity::find()
            .select_only()
            .columns([C::Id, C::TicketNo, C::CreatedAt, C::Title, C::Content])
            .columns([C::Address, C::District])
            .filter(C::CreatedAt.gte(since))
            .filter(C::CreatedAt.lte(until))
            .filter(C::State.ne(TicketState::Merged.as_str()))
            .order_by_asc(C::Id)
            .into_tuple()
            .all(&self.db)
            .await?;
        let located: HashMap<i64, open311_request::Model> = open311_request::Entity::find()
            .filter(
                open311_request::Column::TicketId.in_subquery(
                    Query::select()
                        .column(C::Id)
                        .from(ticket::Entity)
                        .and_where(C::CreatedAt.gte(since))
                        .and_where(C::CreatedAt.lte(until))
                        .to_owned(),
                ),
            )
            .all(&self.db)
            .await?
            .into_iter()
            .map(|r| (r.ticket_id, r))
            .collect();
        Ok(rows
            .into_iter()
            .map(
                |(id, ticket_no, created_at, title, content, address, district)| {
                    let o311 = located.get(&id);
                    WindowTicket {
                        id,
                        ticket_no,
                        created_at,
                        title,
                        content,
                        address,
                        district,
                        service_code: o311.map(|r| r.service_code.clone()),
                        point: o311.and_then(|r| {
                            Some(Point {
                                lat: r.latitude?,
                                lon: r.longitude?,
                            })
                        }),
                    }
                },
            )
            .collect())
    }

    /// Records a cluster found by the detector. A cluster that shares an
    /// appeal with a known hotspot of its topic is that hotspot (it grows);
    /// otherwise it is new, and `mail` is queued in the same transaction.
    /// On PostgreSQL an advisory lock on the topic serialises detectors; on
    /// SQLite the single writer does; the unique key settles the rest.
    pub async fn record_hotspot(
        &self,
        c: &Cluster,
        topic_name: &str,
        mail: &OutboxDraft,
        now: DateTime<Utc>,
    ) -> StoreResult<Recorded> {
        let w = self.begin_write().await?;
        if self.backend() == DbBackend::Postgres {
            w.txn
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_advisory_xact_lock(hashtext($1))",
                    [format!("hotspot:{}", c.topic).into()],
                ))
                .await?;
        }
        let of_topic = Query::select()
            .column(hotspot::Column::Id)
            .from(hotspot::Entity)
            .and_where(hotspot::Column::Topic.eq(c.topic.as_str()))
            .to_owned();
        let known = hotspot_ticket::Entity::find()
            .select_only()
            .column(hotspot_ticket::Column::HotspotId)
            .filter(hotspot_ticket::Column::TicketId.is_in(c.ids.iter().copied()))
            .filter(hotspot_ticket::Column::HotspotId.in_subquery(of_topic))
            .order_by_asc(hotspot_ticket::Column::HotspotId)
            .into_tuple::<i64>()
            .one(&w.txn)
            .await?;
        if let Some(id) = known {
            let grew = self.grow(&w.txn, id, c, now).await?;
            w.commit().await?;
            return Ok(if grew {
                Recorded::Grown(id)
            } else {
                Recorded::Unchanged(id)
            });
        }
        let row = hotspot::ActiveModel {
            key: Set(format!("{}:{}", c.topic, c.ids[0])),
            topic: Set(c.topic.clone()),
            topic_name: Set(topic_name.to_owned()),
            district: Set(c.district.clone()),
            place: Set(c.place.chars().take(200).collect()),
            latitude: Set(c.centre.map(|p| p.lat)),
            longitude: Set(c.centre.map(|p| p.lon)),
            ticket_count: Set(c.ids.len() as i32),
            first_at: Set(c.first_at),
            last_at: Set(c.last_at),
            detected_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        let id = match row.insert(&w.txn).await {
            Ok(m) => m.id,
            Err(e) => {
                let e = super::StoreError::from(e);
                return if e.is_unique_violation() {
                    Ok(Recorded::Lost)
                } else {
                    Err(e)
                };
            }
        };
        insert_members(&w.txn, id, c.ids.iter().copied()).await?;
        outbox_model(mail, now).insert(&w.txn).await?;
        w.commit().await?;
        Ok(Recorded::New(id))
    }

    /// Adds the cluster's new appeals to hotspot `id`; true when it changed.
    async fn grow(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        id: i64,
        c: &Cluster,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let members: BTreeSet<i64> = hotspot_ticket::Entity::find()
            .select_only()
            .column(hotspot_ticket::Column::TicketId)
            .filter(hotspot_ticket::Column::HotspotId.eq(id))
            .into_tuple::<i64>()
            .all(txn)
            .await?
            .into_iter()
            .collect();
        let added: Vec<i64> = c
            .ids
            .iter()
            .copied()
            .filter(|t| !members.contains(t))
            .collect();
        let Some(h) = hotspot::Entity::find_by_id(id).one(txn).await? else {
            return Ok(false);
        };
        let (first, last) = (h.first_at.min(c.first_at), h.last_at.max(c.last_at));
        if added.is_empty() && first == h.first_at && last == h.last_at {
            return Ok(false);
        }
        insert_members(txn, id, added.iter().copied()).await?;
        let mut m: hotspot::ActiveModel = h.into();
        m.ticket_count = Set((members.len() + added.len()) as i32);
        m.first_at = Set(first);
        m.last_at = Set(last);
        m.updated_at = Set(now);
        m.update(txn).await?;
        Ok(true)
    }

    /// Hotspots whose latest appeal came at or after `since`, most recent
    /// activity first, each with its members' ticket numbers.
    pub async fn current_hotspots(&self, since: DateTime<Utc>) -> StoreResult<Vec<CurrentHotspot>> {
        let spots = hotspot::Entity::find()
            .filter(hotspot::Column::LastAt.gte(since))
            .order_by_desc(hotspot::Column::LastAt)
            .order_by_desc(hotspot::Column::Id)
            .all(&self.db)
            .await?;
        if spots.is_empty() {
            return Ok(Vec::new());
        }
        let members: Vec<(i64, String)> = hotspot_ticket::Entity::find()
            .select_only()
            .column(hotspot_ticket::Column::HotspotId)
            .column(ticket::Column::TicketNo)
            .join(
                sea_orm::JoinType::InnerJoin,
                hotspot_ticket::Entity::belongs_to(ticket::Entity)
                    .from(hotspot_ticket::Column::TicketId)
                    .to(ticket::Column::Id)
                    .into(),
            )
            .filter(hotspot_ticket::Column::HotspotId.is_in(spots.iter().map(|h| h.id)))
            .order_by_asc(ticket::Column::CreatedAt)
            .order_by_asc(ticket::Column::Id)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut by_spot: HashMap<i64, Vec<String>> = HashMap::new();
        for (h, no) in members {
            by_spot.entry(h).or_default().push(no);
        }
        Ok(spots
            .into_iter()
            .map(|h| {
                let nos = by_spot.remove(&h.id).unwrap_or_default();
                (h, nos)
            })
            .collect())
    }
}

async fn insert_members(
    txn: &sea_orm::DatabaseTransaction,
    hotspot_id: i64,
    tickets: impl Iterator<Item = i64>,
) -> StoreResult<()> {
    let rows: Vec<hotspot_ticket::ActiveModel> = tickets
        .map(|ticket_id| hotspot_ticket::ActiveModel {
            hotspot_id: Set(hotspot_id),
            ticket_id: Set(ticket_id),
        })
        .collect();
    for chunk in rows.chunks(500) {
        hotspot_ticket::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}
