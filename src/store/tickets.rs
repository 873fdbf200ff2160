//! Ticket storage: batched registration with daily numbers, compare-and-set
//! transitions that append their event in the same transaction, scoped reads.

use chrono::{DateTime, Utc};
use rand::Rng;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement, TryIntoModel,
};

use super::entities::{extension, ticket, ticket_department, ticket_event};
use super::intake::Handover;
use super::stats::{dims_of, rollup_of};
use super::{Store, StoreError, StoreResult};
use crate::domain::appeal::NewAppeal;
use crate::domain::figures::{Rollup, TicketDims, add_facts, transition_facts};
use crate::domain::lifecycle::{EventDraft, Ticket};
use crate::domain::types::{
    Category, Channel, EventKind, ExtensionStatus, Resolution, Satisfaction, TicketState, Urgency,
};

/// The result of registering one appeal.
#[derive(Debug, Clone)]
pub struct Created {
    pub ticket: ticket::Model,
    /// False when `(channel, external_id)` already existed.
    pub created: bool,
}

/// Whose tickets a reader may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Tickets the department leads or co-handles now, or did before.
    Department(String),
}

#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub state: Option<TicketState>,
    pub department: Option<String>,
    pub channel: Option<Channel>,
    pub category: Option<Category>,
    pub overdue: Option<bool>,
    pub escalation_level: Option<i16>,
    pub q: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub page: u64,
    pub per_page: u64,
    /// Count no further than this many matches (a queue's heading says
    /// "1,000+" rather than read every open ticket of a city to say how
    /// many); `None` counts them all.
    pub count_at_most: Option<u64>,
}

impl TicketFilter {
    /// No condition but (at most) the state.
    /// (Destructured so that a new filter cannot be forgotten here.)
    fn only_state(&self) -> bool {
        let TicketFilter {
            state: _,
            department,
            channel,
            category,
            overdue,
            escalation_level,
            q,
            created_from,
            created_to,
            page: _,
            per_page: _,
            count_at_most: _,
        } = self;
        department.is_none()
            && channel.is_none()
            && category.is_none()
            && overdue.is_none()
            && escalation_level.is_none()
            && q.is_none()
            && created_from.is_none()
            && created_to.is_none()
    }
}

/// Everything one accepted action writes, in one transaction.
#[derive(Clone, Copy)]
pub struct TransitionWrite<'a> {
    /// The row the lifecycle read (its `version` is the compare-and-set).
    pub before: &'a ticket::Model,
    pub after: &'a Ticket,
    pub event: &'a EventDraft,
    pub actor: &'a str,
    pub side: &'a SideEffect,
    /// Notifications the change causes.
    pub outbox: &'a [super::escalations::OutboxDraft],
}

/// What a transition writes besides the ticket and its event.
#[derive(Debug, Clone)]
pub enum SideEffect {
    None,
    NewExtension {
        working_days: u32,
        reason: String,
        department: String,
    },
    DecideExtension {
        id: i64,
        approve: bool,
        note: Option<String>,
    },
}

const QUERY_CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

pub(super) fn query_code() -> String {
    let mut rng = rand::thread_rng();
    (0..6)
        .map(|_| QUERY_CODE_ALPHABET[rng.gen_range(0..QUERY_CODE_ALPHABET.len())] as char)
        .collect()
}

fn parse<T: std::str::FromStr>(what: &str, s: &str) -> StoreResult<T> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("{what} `{s}`")))
}

/// The lifecycle's view of a stored ticket.
pub fn to_domain(m: &ticket::Model) -> StoreResult<Ticket> {
    Ok(Ticket {
        state: parse("state", &m.state)?,
        resolution: m
            .resolution
            .as_deref()
            .map(|r| parse::<Resolution>("resolution", r))
            .transpose()?,
        merged_into: m.merged_into,
        category: parse("category", &m.category)?,
        urgency: parse::<Urgency>("urgency", &m.urgency)?,
        anonymous: m.citizen_phone.is_none(),
        department: m.department.clone(),
        co_departments: co_departments(m),
        dispatched_at: m.dispatched_at,
        signed_at: m.signed_at,
        replied_at: m.replied_at,
        closed_at: m.closed_at,
        sign_due_at: m.sign_due_at,
        reply_due_at: m.reply_due_at,
        escalation_level: m.escalation_level,
        next_check_at: m.next_check_at,
        rework_count: m.rework_count,
        return_count: m.return_count,
        extension_count: m.extension_count,
        final_dispatch: m.final_dispatch,
        reply_content: m.reply_content.clone(),
        reply_resolved: m.reply_resolved,
        satisfaction: m
            .satisfaction
            .as_deref()
            .map(|s| parse::<Satisfaction>("satisfaction", s))
            .transpose()?,
    })
}

pub fn co_departments(m: &ticket::Model) -> Vec<String> {
    serde_json::from_str(&m.co_departments).unwrap_or_default()
}

/// The columns a transition may change, as an update.
fn changes(t: &Ticket, now: DateTime<Utc>, version: i32) -> ticket::ActiveModel {
    ticket::ActiveModel {
        state: Set(t.state.as_str().to_owned()),
        resolution: Set(t.resolution.map(|r| r.as_str().to_owned())),
        merged_into: Set(t.merged_into),
        department: Set(t.department.clone()),
        co_departments: Set(
            serde_json::to_string(&t.co_departments).unwrap_or_else(|_| "[]".into())
        ),
        updated_at: Set(now),
        dispatched_at: Set(t.dispatched_at),
        signed_at: Set(t.signed_at),
        replied_at: Set(t.replied_at),
        closed_at: Set(t.closed_at),
        sign_due_at: Set(t.sign_due_at),
        reply_due_at: Set(t.reply_due_at),
        next_check_at: Set(t.next_check_at),
        escalation_level: Set(t.escalation_level),
        rework_count: Set(t.rework_count),
        return_count: Set(t.return_count),
        extension_count: Set(t.extension_count),
        final_dispatch: Set(t.final_dispatch),
        reply_content: Set(t.reply_content.clone()),
        reply_resolved: Set(t.reply_resolved),
        satisfaction: Set(t.satisfaction.map(|s| s.as_str().to_owned())),
        version: Set(version + 1),
        ..Default::default()
    }
}

pub(crate) fn event_model(
    ticket_id: i64,
    actor: &str,
    e: &EventDraft,
    now: DateTime<Utc>,
) -> ticket_event::ActiveModel {
    ticket_event::ActiveModel {
        ticket_id: Set(ticket_id),
        at: Set(now),
        actor: Set(actor.to_owned()),
        kind: Set(e.kind.as_str().to_owned()),
        from_state: Set(e.from_state.map(|s| s.as_str().to_owned())),
        to_state: Set(e.to_state.map(|s| s.as_str().to_owned())),
        department: Set(e.department.clone()),
        payload: Set(e.payload.to_string()),
        ..Default::default()
    }
}

/// What registering `items` at `now` adds to the figures (受理量).
pub(super) fn creation_rollup<'a>(
    items: impl Iterator<Item = &'a NewAppeal>,
    now: DateTime<Utc>,
) -> Rollup {
    let created = EventDraft {
        kind: EventKind::Created,
        from_state: None,
        to_state: Some(TicketState::Registered),
        department: None,
        payload: serde_json::Value::Null,
    };
    let mut rollup = Rollup::new();
    for i in items {
        let t = Ticket::registered(i.category, i.urgency, i.citizen_phone.is_none());
        let dims = TicketDims {
            channel: i.channel.as_str().to_owned(),
            category: i.category.as_str().to_owned(),
            district: i
                .district
                .as_ref()
                .map(|d| d.as_str().to_owned())
                .unwrap_or_default(),
        };
        add_facts(
            &mut rollup,
            &dims,
            &transition_facts(now, None, &t, &created, now),
        );
    }
    rollup.retain(|_, c| !c.is_zero());
    rollup
}

/// Each appeal's answer: the ticket it created; for an external id already
/// registered, that ticket (`existing`); for a repeat of one earlier in the
/// batch, the ticket its first appeal created.
pub(super) fn answers(
    items: &[NewAppeal],
    created: &std::collections::HashMap<usize, ticket::Model>,
    existing: &std::collections::HashMap<(Channel, String), ticket::Model>,
) -> StoreResult<Vec<Created>> {
    let mut first_of: std::collections::HashMap<(Channel, &str), usize> = Default::default();
    for (idx, i) in items.iter().enumerate() {
        if let (Some(ext), true) = (i.external_id.as_deref(), created.contains_key(&idx)) {
            first_of.insert((i.channel, ext), idx);
        }
    }
    items
        .iter()
        .enumerate()
        .map(|(idx, i)| {
            if let Some(t) = created.get(&idx) {
                return Ok(Created {
                    ticket: t.clone(),
                    created: true,
                });
            }
            let ext = i
                .external_id
                .as_deref()
                .ok_or_else(|| StoreError::Corrupt("appeal without result".into()))?;
            let t = existing
                .get(&(i.channel, ext.to_owned()))
                .or_else(|| first_of.get(&(i.channel, ext)).and_then(|f| created.get(f)))
                .cloned()
                .ok_or_else(|| StoreError::Corrupt("appeal without result".into()))?;
            Ok(Created {
                ticket: t,
                created: false,
            })
        })
        .collect()
}

/// The row a registered appeal becomes, as `RETURNING *` would give it: the
/// appeal's own columns, and the lifecycle columns of the domain's freshly
/// registered ticket written as every transition writes them (`changes`).
pub(super) fn registered_model(
    id: i64,
    ticket_no: String,
    query_code: String,
    i: &NewAppeal,
    now: DateTime<Utc>,
    possible_duplicate_of: Option<String>,
) -> StoreResult<ticket::Model> {
    let t = Ticket::registered(i.category, i.urgency, i.is_anonymous());
    // `changes` counts the version up from the one it is given.
    let mut row = changes(&t, now, -1);
    row.id = Set(id);
    row.ticket_no = Set(ticket_no);
    row.query_code = Set(query_code);
    row.channel = Set(i.channel.as_str().to_owned());
    row.external_id = Set(i.external_id.clone());
    row.category = Set(i.category.as_str().to_owned());
    row.urgency = Set(i.urgency.as_str().to_owned());
    row.title = Set(i.title.clone());
    row.content = Set(i.content.clone());
    row.citizen_name = Set(i.citizen_name.clone());
    row.citizen_phone = Set(i.citizen_phone.clone());
    row.address = Set(i.address.clone());
    row.district = Set(i.district.as_ref().map(|d| d.as_str().to_owned()));
    row.created_by = Set(i.created_by.clone());
    row.created_at = Set(now);
    row.possible_duplicate_of = Set(possible_duplicate_of);
    Ok(row.try_into_model()?)
}

impl Store {
    /// Registers appeals in one transaction (group commit), giving each a
    /// ticket number from the daily sequence. An appeal whose
    /// `(channel, external_id)` exists returns the existing ticket.
    /// Falls back to one transaction per appeal if the batch fails.
    pub async fn create_tickets(
        &self,
        items: &[NewAppeal],
        now: DateTime<Utc>,
    ) -> Vec<StoreResult<Created>> {
        self.create_tickets_on(items, now, 0, &mut Handover::default())
            .await
    }

    /// As [`Store::create_tickets`], for an intake writer: the intake figures
    /// go to rollup shard `shard` (each writer has its own, so concurrent
    /// batches never wait on one another's rollup rows; on PostgreSQL it
    /// also picks the writer's own sessions), and `handover` is the writer's
    /// place in the pipeline (see [`Handover`]).
    pub async fn create_tickets_on(
        &self,
        items: &[NewAppeal],
        now: DateTime<Utc>,
        shard: i16,
        handover: &mut Handover,
    ) -> Vec<StoreResult<Created>> {
        match self.create_batch(items, now, shard, handover).await {
            Ok(v) => v.into_iter().map(Ok).collect(),
            Err(_) if items.len() > 1 => {
                // One at a time, out of the pipeline: the next batch goes on.
                handover.leave();
                let mut out = Vec::with_capacity(items.len());
                for it in items {
                    out.push(self.create_one(it, now, shard).await);
                }
                out
            }
            Err(e) => vec![self.recover_one(&items[0], e).await],
        }
    }

    async fn create_one(
        &self,
        it: &NewAppeal,
        now: DateTime<Utc>,
        shard: i16,
    ) -> StoreResult<Created> {
        match self
            .create_batch(
                std::slice::from_ref(it),
                now,
                shard,
                &mut Handover::default(),
            )
            .await
        {
            Ok(mut v) => v.pop().ok_or(StoreError::NotFound),
            Err(e) => self.recover_one(it, e).await,
        }
    }

    /// Another instance registered the same external id first: answer with
    /// its ticket.
    async fn recover_one(&self, it: &NewAppeal, e: StoreError) -> StoreResult<Created> {
        if let (true, Some(ext)) = (e.is_unique_violation(), &it.external_id)
            && let Some(t) = self.ticket_by_external(it.channel, ext).await?
        {
            return Ok(Created {
                ticket: t,
                created: false,
            });
        }
        Err(e)
    }

    pub async fn ticket_by_external(
        &self,
        channel: Channel,
        external_id: &str,
    ) -> StoreResult<Option<ticket::Model>> {
        Ok(ticket::Entity::find()
            .filter(ticket::Column::Channel.eq(channel.as_str()))
            .filter(ticket::Column::ExternalId.eq(external_id))
            .one(&self.db)
            .await?)
    }

    async fn create_batch(
        &self,
        items: &[NewAppeal],
        now: DateTime<Utc>,
        shard: i16,
        handover: &mut Handover,
    ) -> StoreResult<Vec<Created>> {
        if self.alloc_db.is_some() {
            return self.create_batch_pg(items, now, shard, handover).await;
        }
        match &self.sqlite_writer {
            Some(w) => self.create_batch_sqlite(w, items, now).await,
            None => Err(StoreError::Conflict("no SQLite database file".into())),
        }
    }

    /// Scope rows whose copy of the state differs from their ticket's (the
    /// checkers and tests expect 0: every writer keeps them in step).
    pub async fn scope_state_mismatches(&self) -> StoreResult<u64> {
        let b = self.backend();
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                b,
                "SELECT COUNT(*) FROM ticket_departments td JOIN tickets t ON t.id = td.ticket_id \
                 WHERE td.state <> t.state",
            ))
            .await?;
        super::count_of(row)
    }

    /// A ticket, if `scope` may see it.
    pub async fn ticket(&self, id: i64, scope: &Scope) -> StoreResult<Option<ticket::Model>> {
        let Some(t) = ticket::Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(None);
        };
        match scope {
            Scope::All => Ok(Some(t)),
            Scope::Department(d) => {
                let seen = ticket_department::Entity::find()
                    .filter(ticket_department::Column::TicketId.eq(id))
                    .filter(ticket_department::Column::Department.eq(d.as_str()))
                    .count(&self.db)
                    .await?;
                Ok((seen > 0).then_some(t))
            }
        }
    }

    pub async fn ticket_by_no(&self, no: &str) -> StoreResult<Option<ticket::Model>> {
        Ok(ticket::Entity::find()
            .filter(ticket::Column::TicketNo.eq(no))
            .one(&self.db)
            .await?)
    }

    pub async fn events(&self, ticket_id: i64) -> StoreResult<Vec<ticket_event::Model>> {
        Ok(ticket_event::Entity::find()
            .filter(ticket_event::Column::TicketId.eq(ticket_id))
            .order_by_asc(ticket_event::Column::Id)
            .all(&self.db)
            .await?)
    }

    pub async fn extensions(&self, ticket_id: i64) -> StoreResult<Vec<extension::Model>> {
        Ok(extension::Entity::find()
            .filter(extension::Column::TicketId.eq(ticket_id))
            .order_by_asc(extension::Column::Id)
            .all(&self.db)
            .await?)
    }

    pub async fn extension(&self, id: i64) -> StoreResult<Option<extension::Model>> {
        Ok(extension::Entity::find_by_id(id).one(&self.db).await?)
    }

    pub async fn list_tickets(
        &self,
        f: &TicketFilter,
        scope: &Scope,
        now: DateTime<Utc>,
    ) -> StoreResult<(Vec<ticket::Model>, u64)> {
        use ticket::Column as C;
        use ticket_department::Column as Td;
        let mut q = ticket::Entity::find();
        // A department sees the tickets in its scope: joined (one scope row
        // per ticket and department), with the state read off the scope row
        // so that (department, state) is one index range, newest first.
        let scoped = match scope {
            Scope::Department(d) => Some(d.as_str()),
            Scope::All => None,
        };
        if let Some(d) = scoped {
            q = q
                .join(
                    sea_orm::JoinType::InnerJoin,
                    ticket::Entity::belongs_to(ticket_department::Entity)
                        .from(C::Id)
                        .to(Td::TicketId)
                        .into(),
                )
                .filter(Td::Department.eq(d));
            if let Some(s) = f.state {
                q = q.filter(Td::State.eq(s.as_str()));
            }
        } else if let Some(s) = f.state {
            q = q.filter(C::State.eq(s.as_str()));
        }
        if let Some(d) = &f.department {
            q = q.filter(C::Department.eq(d.as_str()));
        }
        if let Some(c) = f.channel {
            q = q.filter(C::Channel.eq(c.as_str()));
        }
        if let Some(c) = f.category {
            q = q.filter(C::Category.eq(c.as_str()));
        }
        if let Some(l) = f.escalation_level {
            q = q.filter(C::EscalationLevel.eq(l));
        }
        if let Some(from) = f.created_from {
            q = q.filter(C::CreatedAt.gte(from));
        }
        if let Some(to) = f.created_to {
            q = q.filter(C::CreatedAt.lt(to));
        }
        if let Some(text) = &f.q {
            q = q.filter(
                Condition::any()
                    .add(C::TicketNo.eq(text.as_str()))
                    .add(C::Title.contains(text.as_str()))
                    .add(C::Content.contains(text.as_str())),
            );
        }
        if let Some(overdue) = f.overdue {
            let late = Condition::any()
                .add(
                    Condition::all()
                        .add(C::State.eq(TicketState::Dispatched.as_str()))
                        .add(C::SignDueAt.lt(now)),
                )
                .add(
                    Condition::all()
                        .add(C::State.eq(TicketState::InProgress.as_str()))
                        .add(C::ReplyDueAt.lt(now)),
                );
            if overdue && scoped.is_some() {
                q = q.filter(Td::State.is_in([
                    TicketState::Dispatched.as_str(),
                    TicketState::InProgress.as_str(),
                ]));
            }
            q = q.filter(if overdue { late } else { late.not() });
        }
        // Scope and state alone: the count is the index range itself.
        let total = match scoped {
            Some(d) if f.only_state() => {
                let mut c = ticket_department::Entity::find().filter(Td::Department.eq(d));
                if let Some(s) = f.state {
                    c = c.filter(Td::State.eq(s.as_str()));
                }
                count(&self.db, c, f.count_at_most).await?
            }
            _ => count(&self.db, q.clone(), f.count_at_most).await?,
        };
        let q = if scoped.is_some() {
            q.order_by_desc(Td::TicketId)
        } else {
            q.order_by_desc(C::Id)
        };
        let rows = q
            .limit(f.per_page)
            .offset((f.page.saturating_sub(1)) * f.per_page)
            .all(&self.db)
            .await?;
        Ok((rows, total))
    }

    /// Writes a transition: the ticket (compare-and-set on `version`), its
    /// event, and any side effect, in one transaction. `Ok(None)` means the
    /// ticket changed under us and the caller should reload and retry.
    pub async fn commit_transition(
        &self,
        write: &TransitionWrite<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(ticket::Model, Option<extension::Model>)>> {
        let TransitionWrite {
            before,
            after,
            event,
            actor,
            side,
            outbox,
        } = *write;
        let w = self.begin_write().await?;
        let txn = &w.txn;
        // The row as written comes back with the update (nothing below
        // writes the ticket again), one round trip instead of two.
        let Some(t) = ticket::Entity::update_many()
            .set(changes(after, now, before.version))
            .filter(ticket::Column::Id.eq(before.id))
            .filter(ticket::Column::Version.eq(before.version))
            .exec_with_returning(txn)
            .await?
            .pop()
        else {
            return Ok(None);
        };
        event_model(before.id, actor, event, now)
            .insert(txn)
            .await?;
        if !outbox.is_empty() {
            super::entities::outbox::Entity::insert_many(
                outbox
                    .iter()
                    .map(|d| super::escalations::outbox_model(d, now))
                    .collect::<Vec<_>>(),
            )
            .exec_without_returning(txn)
            .await?;
        }

        // The scope rows carry the ticket's state (the inbox's tabs read
        // them by department and state). Only a ticket dispatched before
        // can have rows; a first dispatch writes its rows with the state.
        if before.state != after.state.as_str() && before.dispatched_at.is_some() {
            ticket_department::Entity::update_many()
                .col_expr(
                    ticket_department::Column::State,
                    Expr::value(after.state.as_str()),
                )
                .filter(ticket_department::Column::TicketId.eq(before.id))
                .exec(txn)
                .await?;
        }
        if event.kind == EventKind::Dispatched {
            let mut rows = Vec::new();
            if let Some(d) = &after.department {
                rows.push((d.clone(), "lead"));
            }
            rows.extend(after.co_departments.iter().map(|d| (d.clone(), "co")));
            let models: Vec<ticket_department::ActiveModel> = rows
                .into_iter()
                .map(|(d, role)| ticket_department::ActiveModel {
                    ticket_id: Set(before.id),
                    department: Set(d),
                    role: Set(role.to_owned()),
                    since: Set(now),
                    state: Set(after.state.as_str().to_owned()),
                })
                .collect();
            if !models.is_empty() {
                ticket_department::Entity::insert_many(models)
                    .on_conflict(
                        OnConflict::columns([
                            ticket_department::Column::TicketId,
                            ticket_department::Column::Department,
                        ])
                        .do_nothing()
                        .to_owned(),
                    )
                    .exec_without_returning(txn)
                    .await?;
            }
        }

        let ext = match side {
            SideEffect::None => None,
            SideEffect::NewExtension {
                working_days,
                reason,
                department,
            } => {
                let pending = extension::Entity::find()
                    .filter(extension::Column::TicketId.eq(before.id))
                    .filter(extension::Column::Status.eq(ExtensionStatus::Pending.as_str()))
                    .count(txn)
                    .await?;
                if pending > 0 {
                    return Err(StoreError::Conflict(
                        "an extension request is already pending".into(),
                    ));
                }
                Some(
                    extension::ActiveModel {
                        ticket_id: Set(before.id),
                        department: Set(department.clone()),
                        working_days: Set(*working_days as i32),
                        reason: Set(reason.clone()),
                        status: Set(ExtensionStatus::Pending.as_str().to_owned()),
                        requested_by: Set(actor.to_owned()),
                        requested_at: Set(now),
                        decided_by: Set(None),
                        decided_at: Set(None),
                        note: Set(None),
                        ..Default::default()
                    }
                    .insert(txn)
                    .await?,
                )
            }
            SideEffect::DecideExtension { id, approve, note } => {
                let status = if *approve {
                    ExtensionStatus::Approved
                } else {
                    ExtensionStatus::Rejected
                };
                let r = extension::Entity::update_many()
                    .set(extension::ActiveModel {
                        status: Set(status.as_str().to_owned()),
                        decided_by: Set(Some(actor.to_owned())),
                        decided_at: Set(Some(now)),
                        note: Set(note.clone()),
                        ..Default::default()
                    })
                    .filter(extension::Column::Id.eq(*id))
                    .filter(extension::Column::Status.eq(ExtensionStatus::Pending.as_str()))
                    .exec(txn)
                    .await?;
                if r.rows_affected != 1 {
                    return Err(StoreError::Conflict(
                        "the extension request has already been decided".into(),
                    ));
                }
                extension::Entity::find_by_id(*id).one(txn).await?
            }
        };
        // The figures last, so the shared rollup rows stay locked briefly.
        let facts = transition_facts(
            before.created_at,
            Some(&to_domain(before)?),
            after,
            event,
            now,
        );
        let shard = super::stats::transition_shard(self.backend(), before.id);
        super::stats::write_rollup_on(txn, &rollup_of(&dims_of(before), &facts), shard).await?;
        w.commit().await?;
        Ok(Some((t, ext)))
    }

    pub async fn count_tickets(&self) -> StoreResult<u64> {
        Ok(ticket::Entity::find().count(&self.db).await?)
    }
}

/// The number of rows `q` selects, or `at_most + 1` when there are more than
/// `at_most` (the scan stops there).
async fn count<E>(
    db: &sea_orm::DatabaseConnection,
    q: sea_orm::Select<E>,
    at_most: Option<u64>,
) -> StoreResult<u64>
where
    E: EntityTrait,
    E::Model: Sync,
{
    use sea_orm::QueryTrait;
    let Some(cap) = at_most else {
        return Ok(q.count(db).await?);
    };
    let inner = q
        .select_only()
        .expr(Expr::val(1))
        .limit(cap.saturating_add(1))
        .into_query();
    let stmt = sea_orm::sea_query::Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from_subquery(inner, sea_orm::sea_query::Alias::new("capped"))
        .to_owned();
    super::count_of(db.query_one(&stmt).await?)
}
