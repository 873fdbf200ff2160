//! The dashboard's lists of escalated open tickets (红牌, 督办), longest past
//! their active deadline first, and their counts: a partial index on the
//! open tickets with a running clock, by level and active deadline, so a
//! list reads 20 index entries and a count only the index, however many
//! tickets are escalated. The dashboard's query repeats the expression and
//! the predicate literally (a bound parameter would not match a partial
//! index).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000010_escalated_index"
    }
}

/// The active deadline: signing while dispatched, the reply after.
pub const ACTIVE_DUE: &str =
    "(CASE WHEN state = 'dispatched' THEN sign_due_at ELSE reply_due_at END)";
/// The tickets whose clock runs.
pub const RUNNING: &str = "state IN ('dispatched', 'in_progress')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared(&format!(
                "CREATE INDEX IF NOT EXISTS idx_tickets_escalated ON tickets \
                 (escalation_level, {ACTIVE_DUE}, id) WHERE {RUNNING}"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS idx_tickets_escalated")
            .await?;
        Ok(())
    }
}
