//! The `(channel, external_id)` uniqueness, kept with the external id first.
//! On a young table (not analysed yet) PostgreSQL answered the intake's
//! look-up of `(channel, external_id)` pairs by scanning the old index on its
//! channel prefix alone — every ticket of the channel, for every batch. With
//! the external id first only the exact pairs can be looked up.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000011_external_id_first"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("uq_tickets_external_channel")
                .table("tickets")
                .col("external_id")
                .col("channel")
                .unique()
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .name("uq_tickets_channel_external")
                .table("tickets")
                .if_exists()
                .to_owned(),
        )
        .await
    }
}
