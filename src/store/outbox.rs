//! The outbox: notifications written in the same transaction as the change
//! that causes them, claimed by delivery workers with a compare-and-set
//! lease, retried with back-off, never deleted. Two transports: `mail`, and
//! `webhook` (问政江西's reply push). A webhook the receiver refuses for good
//! (a 4xx) is parked as `failed` until an admin retries it.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::entities::outbox;
use super::{Store, StoreResult};

/// Back-off after the n-th failed attempt: 10 s doubling, at most an hour.
pub fn backoff(attempts: i32) -> Duration {
    let secs = 10i64
        .saturating_mul(1i64 << attempts.clamp(0, 20))
        .min(3600);
    Duration::seconds(secs)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub pending: u64,
    pub oldest_pending_secs: i64,
    /// Parked rows: refused for good, waiting for an admin.
    pub failed: u64,
}

/// The outbox kind of 问政江西 reply pushes; rows of this kind are webhooks.
pub const WENZHENG_REPLY: &str = "wenzheng_reply";

/// How a row is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `recipient`: comma-separated addresses; `subject` and `body`: text.
    Mail,
    /// `recipient`: a URL; `body`: JSON, signed at the moment it is sent.
    Webhook,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Mail => "mail",
            Transport::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Transport> {
        match s {
            "mail" => Some(Transport::Mail),
            "webhook" => Some(Transport::Webhook),
            _ => None,
        }
    }

    /// Drafts name their kind; the kind decides the transport.
    pub fn for_kind(kind: &str) -> Transport {
        if kind == WENZHENG_REPLY {
            Transport::Webhook
        } else {
            Transport::Mail
        }
    }
}

/// Statuses an admin may list.
pub const STATUSES: &[&str] = &["pending", "sent", "failed", "no_recipient"];

impl Store {
    /// Queues `draft` unless a row of the same `kind` exists: one bulletin per
    /// period however many instances try at once (a transaction-scoped
    /// advisory lock on PostgreSQL, the single writer on SQLite). True when
    /// this call queued it.
    pub async fn queue_once(
        &self,
        draft: &super::escalations::OutboxDraft,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        use sea_orm::{ActiveModelTrait, ConnectionTrait, DbBackend, Statement};
        let w = self.begin_write().await?;
        if self.backend() == DbBackend::Postgres {
            w.txn
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_advisory_xact_lock(hashtext($1))",
                    [draft.kind.clone().into()],
                ))
                .await?;
        }
        let exists = outbox::Entity::find()
            .filter(outbox::Column::Kind.eq(draft.kind.clone()))
            .count(&w.txn)
            .await?
            > 0;
        if exists {
            return Ok(false);
        }
        super::escalations::outbox_model(draft, now)
            .insert(&w.txn)
            .await?;
        w.commit().await?;
        Ok(true)
    }

    /// Claims up to `limit` deliverable rows of `transport` for `lease`: rows
    /// another worker holds are skipped, and a row whose worker died is free
    /// again once its lease has passed.
    pub async fn claim_outbox(
        &self,
        transport: Transport,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u64,
    ) -> StoreResult<Vec<outbox::Model>> {
        use outbox::Column as C;
        let free = || {
            Condition::all()
                .add(C::Status.eq("pending"))
                .add(C::Transport.eq(transport.as_str()))
                .add(C::NextAttemptAt.lte(now))
                .add(
                    Condition::any()
                        .add(C::LockedUntil.is_null())
                        .add(C::LockedUntil.lt(now)),
                )
        };
        let ids: Vec<i64> = outbox::Entity::find()
            .select_only()
            .column(C::Id)
            .filter(free())
            .order_by_asc(C::Id)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let w = self.begin_write().await?;
        let claimed = outbox::Entity::update_many()
            .col_expr(C::LockedUntil, Expr::value(now + lease))
            .filter(C::Id.is_in(ids))
            .filter(free())
            .exec_with_returning(&w.txn)
            .await?;
        w.commit().await?;
        Ok(claimed)
    }

    pub async fn outbox_sent(&self, ids: &[i64], now: DateTime<Utc>) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let w = self.begin_write().await?;
        outbox::Entity::update_many()
            .col_expr(outbox::Column::Status, Expr::value("sent"))
            .col_expr(outbox::Column::SentAt, Expr::value(now))
            .col_expr(
                outbox::Column::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                outbox::Column::Attempts,
                sea_orm::sea_query::ExprTrait::add(Expr::col(outbox::Column::Attempts), 1),
            )
            .filter(outbox::Column::Id.is_in(ids.iter().copied()))
            .exec(&w.txn)
            .await?;
        w.commit().await?;
        Ok(())
    }

    pub async fn outbox_failed(
        &self,
        row: &outbox::Model,
        error: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.outbox_retry_after(row, error, now, Duration::zero())
            .await
    }

    /// As [`Store::outbox_failed`], waiting at least `at_least` (a
    /// receiver's `Retry-After`, at most an hour).
    pub async fn outbox_retry_after(
        &self,
        row: &outbox::Model,
        error: &str,
        now: DateTime<Utc>,
        at_least: Duration,
    ) -> StoreResult<()> {
        let attempts = row.attempts + 1;
        let wait = backoff(attempts - 1).max(at_least.min(Duration::hours(1)));
        self.outbox_set(
            row.id,
            outbox::ActiveModel {
                attempts: Set(attempts),
                next_attempt_at: Set(now + wait),
                last_error: Set(Some(error.chars().take(1000).collect())),
                locked_until: Set(None),
                ..Default::default()
            },
        )
        .await
    }

    /// Writes `changes` to outbox row `id` and releases its claim.
    async fn outbox_set(&self, id: i64, changes: outbox::ActiveModel) -> StoreResult<()> {
        let w = self.begin_write().await?;
        outbox::Entity::update_many()
            .set(changes)
            .filter(outbox::Column::Id.eq(id))
            .exec(&w.txn)
            .await?;
        w.commit().await?;
        Ok(())
    }

    /// Parks a row the receiver refused for good: `failed`, no more
    /// attempts until an admin retries it.
    pub async fn outbox_park(
        &self,
        row: &outbox::Model,
        error: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.outbox_set(
            row.id,
            outbox::ActiveModel {
                status: Set("failed".into()),
                attempts: Set(row.attempts + 1),
                next_attempt_at: Set(now),
                last_error: Set(Some(error.chars().take(1000).collect())),
                locked_until: Set(None),
                ..Default::default()
            },
        )
        .await
    }

    /// Puts a parked (or backing-off) row back in the queue, due now.
    /// `None` when there is no such row or it was already sent.
    pub async fn outbox_requeue(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<outbox::Model>> {
        use outbox::Column as C;
        let w = self.begin_write().await?;
        let rows = outbox::Entity::update_many()
            .col_expr(C::Status, Expr::value("pending"))
            .col_expr(C::NextAttemptAt, Expr::value(now))
            .col_expr(C::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .filter(C::Id.eq(id))
            .filter(C::Status.is_in(["failed", "pending"]))
            .exec_with_returning(&w.txn)
            .await?;
        w.commit().await?;
        Ok(rows.into_iter().next())
    }

    pub async fn outbox_row(&self, id: i64) -> StoreResult<Option<outbox::Model>> {
        Ok(outbox::Entity::find_by_id(id).one(&self.db).await?)
    }

    /// A page of rows, newest first, optionally of one status and transport.
    pub async fn outbox_page(
        &self,
        status: Option<&str>,
        transport: Option<Transport>,
        limit: u64,
        offset: u64,
    ) -> StoreResult<(Vec<outbox::Model>, u64)> {
        let mut q = outbox::Entity::find();
        if let Some(s) = status {
            q = q.filter(outbox::Column::Status.eq(s));
        }
        if let Some(t) = transport {
            q = q.filter(outbox::Column::Transport.eq(t.as_str()));
        }
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_desc(outbox::Column::Id)
            .limit(limit)
            .offset(offset)
            .all(&self.db)
            .await?;
        Ok((rows, total))
    }

    pub async fn outbox_backlog(&self, now: DateTime<Utc>) -> StoreResult<Backlog> {
        let failed = outbox::Entity::find()
            .filter(outbox::Column::Status.eq("failed"))
            .count(&self.db)
            .await?;
        let q = outbox::Entity::find().filter(outbox::Column::Status.eq("pending"));
        let pending = q.clone().count(&self.db).await?;
        let oldest = q
            .order_by_asc(outbox::Column::Id)
            .one(&self.db)
            .await?
            .map(|r| (now - r.created_at).num_seconds().max(0))
            .unwrap_or(0);
        Ok(Backlog {
            pending,
            oldest_pending_secs: oldest,
            failed,
        })
    }

    pub async fn outbox_rows(&self, ticket_id: Option<i64>) -> StoreResult<Vec<outbox::Model>> {
        let mut q = outbox::Entity::find();
        if let Some(t) = ticket_id {
            q = q.filter(outbox::Column::TicketId.eq(t));
        }
        Ok(q.order_by_asc(outbox::Column::Id).all(&self.db).await?)
    }
}
