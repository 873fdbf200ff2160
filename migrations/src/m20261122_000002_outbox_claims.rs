//! Outbox rows are claimed by a worker for a while (`locked_until`), so two
//! workers never send the same row at once; `ticket_events` gets an index on
//! time for the live stream and figures.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000002_outbox_claims"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("outbox")
                .add_column(
                    ColumnDef::new("locked_until")
                        .timestamp_with_time_zone()
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_ticket_events_at")
                .table("ticket_events")
                .col("at")
                .to_owned(),
        )
        .await
    }
}
