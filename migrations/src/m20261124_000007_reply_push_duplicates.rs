//! The outbox learns a second transport (`webhook`: signed JSON to a URL,
//! beside `mail`); tickets carry `possible_duplicate_of` (the earlier
//! ticket's number), found through an address index; merged tickets are
//! found from their master through an index on `merged_into`.
//!
//! `idx_tickets_channel` goes: `uq_tickets_channel_external` leads with the
//! channel and serves the same filters, and on a young table (not analysed
//! yet) the planner took the channel-only index for the intake's look-up of
//! `(channel, external_id)` pairs and read every ticket of the channel.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261124_000007_reply_push_duplicates"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("outbox")
                .add_column(
                    ColumnDef::new("transport")
                        .string_len(16)
                        .not_null()
                        .default("mail"),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("tickets")
                .add_column(
                    ColumnDef::new("possible_duplicate_of")
                        .string_len(32)
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_tickets_address_created")
                .table("tickets")
                .col("address")
                .col("created_at")
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_tickets_merged_into")
                .table("tickets")
                .col("merged_into")
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .name("idx_tickets_channel")
                .table("tickets")
                .if_exists()
                .to_owned(),
        )
        .await
    }
}
