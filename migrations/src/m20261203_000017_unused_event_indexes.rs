//! Drops the two indexes on `ticket_events` that no query reads:
//! `(kind, at)` and `(at)`. Every read of the events goes by ticket
//! (`(ticket_id, id)`): a ticket's history, the latest event of a kind for
//! some tickets, the 台账 export and the figures' replay. Each registration,
//! transition and escalation wrote two index entries for nothing, and a bulk
//! load rebuilt them (7.4 s of the index build after importing 1 M tickets,
//! 4.7 M events, on PostgreSQL).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000017_unused_event_indexes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS idx_ticket_events_kind_at")
            .await?;
        db.execute_unprepared("DROP INDEX IF EXISTS idx_ticket_events_at")
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS idx_ticket_events_kind_at ON ticket_events (kind, at)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS idx_ticket_events_at ON ticket_events (at)",
        )
        .await?;
        Ok(())
    }
}
