//! Escalation storage: the tickets whose next threshold has passed, and the
//! compare-and-set that records a level change with its events and outbox
//! rows exactly once, however many sweepers run.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use super::entities::{department, outbox, ticket, ticket_event, user};
use super::tickets::event_model;
use super::{Store, StoreResult};
use crate::domain::escalation::Escalation;
use crate::domain::notify::{Audience, Notice};

/// An outbox row to be written with the change that causes it.
#[derive(Debug, Clone)]
pub struct OutboxDraft {
    pub kind: String,
    pub ticket_id: Option<i64>,
    /// Comma-separated addresses.
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

/// A notice with nobody to send it to is still recorded, as `no_recipient`.
pub fn outbox_model(d: &OutboxDraft, now: DateTime<Utc>) -> outbox::ActiveModel {
    let status = if d.recipient.trim().is_empty() {
        "no_recipient"
    } else {
        "pending"
    };
    outbox::ActiveModel {
        created_at: Set(now),
        kind: Set(d.kind.clone()),
        transport: Set(super::outbox::Transport::for_kind(&d.kind)
            .as_str()
            .to_owned()),
        ticket_id: Set(d.ticket_id),
        recipient: Set(d.recipient.clone()),
        subject: Set(d.subject.clone()),
        body: Set(d.body.clone()),
        status: Set(status.into()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        last_error: Set(None),
        sent_at: Set(None),
        locked_until: Set(None),
        ..Default::default()
    }
}

/// Addresses by audience and department names, looked up once per sweep.
#[derive(Default)]
pub struct Directory {
    departments: HashMap<String, department::Model>,
    users: Vec<user::Model>,
}

impl Directory {
    pub async fn load(store: &Store) -> StoreResult<Directory> {
        let departments = store
            .list_departments()
            .await?
            .into_iter()
            .map(|d| (d.code.clone(), d))
            .collect();
        let users = user::Entity::find()
            .filter(user::Column::Active.eq(true))
            .filter(user::Column::Email.is_not_null())
            .order_by_asc(user::Column::Id)
            .all(&store.db)
            .await?;
        Ok(Directory { departments, users })
    }

    pub fn department_name<'a>(&'a self, code: &'a str) -> &'a str {
        self.departments
            .get(code)
            .map(|d| d.name.as_str())
            .unwrap_or(code)
    }

    fn users(&self, roles: &[&str], department: Option<&str>) -> impl Iterator<Item = &str> {
        self.users
            .iter()
            .filter(move |u| roles.contains(&u.role.as_str()))
            .filter(move |u| department.is_none() || u.department.as_deref() == department)
            .filter_map(|u| u.email.as_deref())
    }

    /// E-mail addresses of an audience, without duplicates.
    pub fn addresses(&self, audience: &Audience) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |a: &str| {
            let a = a.trim();
            if !a.is_empty() && !out.iter().any(|x| x == a) {
                out.push(a.to_owned());
            }
        };
        match audience {
            Audience::Department(d) => {
                if let Some(e) = self.departments.get(d).and_then(|d| d.email.as_deref()) {
                    add(e);
                }
                self.users(&["handler"], Some(d)).for_each(&mut add);
            }
            Audience::DepartmentHeads(d) => {
                if let Some(e) = self.departments.get(d).and_then(|d| d.email.as_deref()) {
                    add(e);
                }
                self.users(&["dept_head"], Some(d)).for_each(&mut add);
            }
            Audience::SupervisorsAndLeaders => {
                self.users(&["supervisor", "leader"], None)
                    .for_each(&mut add);
            }
            Audience::Supervisors => self.users(&["supervisor"], None).for_each(&mut add),
            Audience::Leaders => self.users(&["leader"], None).for_each(&mut add),
        }
        out
    }

    /// The notice as one outbox row (one notification per change), sent as
    /// one message to every address of its audience.
    pub fn draft(&self, n: &Notice, ticket_id: i64) -> OutboxDraft {
        OutboxDraft {
            kind: n.kind.to_owned(),
            ticket_id: Some(ticket_id),
            recipient: self.addresses(&n.audience).join(", "),
            subject: n.subject.clone(),
            body: n.body.clone(),
        }
    }
}

/// One ticket's escalation, ready to commit.
pub struct EscalationWrite<'a> {
    pub before: &'a ticket::Model,
    pub escalation: Escalation,
    pub outbox: Vec<OutboxDraft>,
}

impl Store {
    /// One statement for a whole page: `UPDATE … FROM (VALUES …)` matching
    /// each ticket on its id, the level and the version the sweeper read,
    /// `RETURNING` the ids that won. Works on PostgreSQL and SQLite ≥ 3.35.
    async fn compare_and_set_levels(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        writes: &[EscalationWrite<'_>],
    ) -> StoreResult<std::collections::HashSet<i64>> {
        use sea_orm::{ConnectionTrait, Statement, Value};
        let pg = self.backend() == sea_orm::DbBackend::Postgres;
        let mut won = std::collections::HashSet::new();
        for chunk in writes.chunks(1000) {
            let mut rows = Vec::with_capacity(chunk.len());
            let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 5);
            for (i, wr) in chunk.iter().enumerate() {
                let n = i * 5;
                rows.push(if pg {
                    format!(
                        "(CAST(${} AS BIGINT), CAST(${} AS SMALLINT), CAST(${} AS INTEGER), CAST(${} AS SMALLINT), CAST(${} AS TIMESTAMPTZ))",
                        n + 1, n + 2, n + 3, n + 4, n + 5
                    )
                } else {
                    "(?, ?, ?, ?, ?)".to_owned()
                });
                values.push(wr.before.id.into());
                values.push(wr.before.escalation_level.into());
                values.push(wr.before.version.into());
                values.push(wr.escalation.ticket.escalation_level.into());
                values.push(wr.escalation.ticket.next_check_at.into());
            }
            let sql = format!(
                "UPDATE tickets SET escalation_level = v.column4, next_check_at = v.column5, \
                 version = tickets.version + 1 \
                 FROM (VALUES {}) AS v \
                 WHERE tickets.id = v.column1 AND tickets.escalation_level = v.column2 \
                 AND tickets.version = v.column3 RETURNING tickets.id",
                rows.join(", ")
            );
            for row in txn
                .query_all_raw(Statement::from_sql_and_values(self.backend(), sql, values))
                .await?
            {
                won.insert(row.try_get_by_index::<i64>(0)?);
            }
        }
        Ok(won)
    }

    /// Open tickets whose next escalation threshold is at or before `at`,
    /// earliest first: an in-order scan of the `next_check_at` index.
    /// `next_check_at` is set only while a clock runs (dispatched or in
    /// progress), so no other filter is needed.
    pub async fn due_for_check(
        &self,
        at: DateTime<Utc>,
        limit: u64,
    ) -> StoreResult<Vec<ticket::Model>> {
        use ticket::Column as C;
        Ok(ticket::Entity::find()
            .filter(C::NextCheckAt.lte(at))
            .order_by_asc(C::NextCheckAt)
            .limit(limit)
            .all(&self.db)
            .await?)
    }

    /// Writes a page of escalations in one transaction. Each ticket is a
    /// compare-and-set on its id, level and version: a ticket another sweeper
    /// (or a person) changed meanwhile is skipped, with no event and no mail.
    /// Returns how many tickets changed and how many levels they climbed.
    pub async fn commit_escalations(
        &self,
        writes: &[EscalationWrite<'_>],
        at: DateTime<Utc>,
    ) -> StoreResult<(usize, usize)> {
        if writes.is_empty() {
            return Ok((0, 0));
        }
        let w = self.begin_write().await?;
        let won = self.compare_and_set_levels(&w.txn, writes).await?;
        let mut events = Vec::new();
        let mut mails = Vec::new();
        let (mut tickets, mut levels) = (0, 0);
        // Events carry the sweep's instant; mail is due now, even when the
        // sweep is run for another instant (backfills, `sweep --at`).
        let due = at.min(super::now());
        for wr in writes.iter().filter(|wr| won.contains(&wr.before.id)) {
            tickets += 1;
            levels += wr.escalation.events.len();
            events.extend(
                wr.escalation
                    .events
                    .iter()
                    .map(|e| event_model(wr.before.id, "sweeper", e, at)),
            );
            mails.extend(wr.outbox.iter().map(|d| outbox_model(d, due)));
        }
        for chunk in events.chunks(500) {
            ticket_event::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&w.txn)
                .await?;
        }
        for chunk in mails.chunks(500) {
            outbox::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&w.txn)
                .await?;
        }
        w.commit().await?;
        Ok((tickets, levels))
    }
}
