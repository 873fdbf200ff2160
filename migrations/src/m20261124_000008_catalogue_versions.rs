//! `catalogue_versions`: the dispatch catalogue as edited through the API,
//! one row a version (never updated). The newest row wins over
//! `config/catalogue.toml`; the primary key makes two concurrent edits of
//! the same version collide instead of both winning.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261124_000008_catalogue_versions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("catalogue_versions")
                .col(
                    ColumnDef::new("version")
                        .big_integer()
                        .not_null()
                        .primary_key(),
                )
                // The catalogue as JSON (departments and topics).
                .col(ColumnDef::new("body").text().not_null())
                .col(ColumnDef::new("author").string_len(64).not_null())
                .col(
                    ColumnDef::new("created_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await
    }
}
