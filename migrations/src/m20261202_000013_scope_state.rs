//! The department inbox's tabs count and page the department's tickets in
//! one state. The scope table held only who may see a ticket, so the tab's
//! count merged every ticket in that state city-wide with every ticket ever
//! in the department's scope (tens of thousands of rows on a city's data).
//! Keeping the ticket's current state beside its scope rows — written by the
//! same transaction that changes the ticket — turns both into one index
//! range: (department, state, ticket_id).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000013_scope_state"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared(
            "ALTER TABLE ticket_departments ADD COLUMN state VARCHAR NOT NULL DEFAULT ''",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE ticket_departments SET state = \
             (SELECT t.state FROM tickets t WHERE t.id = ticket_departments.ticket_id)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS idx_ticket_departments_state \
             ON ticket_departments (department, state, ticket_id)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS idx_ticket_departments_state")
            .await?;
        db.execute_unprepared("ALTER TABLE ticket_departments DROP COLUMN state")
            .await?;
        Ok(())
    }
}
