//! The agent console's "my recent tickets": the newest tickets one agent
//! registered. Without an index on the creator, the query walked every
//! ticket of the last seven days by `created_at` and filtered by creator —
//! about 20,000 rows a week at a city's volume, most of the page's time.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000012_created_by_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS idx_tickets_created_by ON tickets (created_by, created_at)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS idx_tickets_created_by")
            .await?;
        Ok(())
    }
}
