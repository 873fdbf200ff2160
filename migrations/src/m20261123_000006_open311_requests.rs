//! `open311_requests`: what an Open311 GeoReport v2 request carries beyond
//! its ticket — the service code, the point, the address id, media URLs and
//! the reporter's e-mail (kept, never shown). One row a ticket.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000006_open311_requests"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("open311_requests")
                .col(
                    ColumnDef::new("ticket_id")
                        .big_integer()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new("service_code").string_len(64).not_null())
                .col(ColumnDef::new("description").text().null())
                .col(ColumnDef::new("latitude").double().null())
                .col(ColumnDef::new("longitude").double().null())
                .col(ColumnDef::new("address_id").string_len(128).null())
                .col(ColumnDef::new("media_urls").text().not_null())
                .col(ColumnDef::new("email").string_len(254).null())
                .col(
                    ColumnDef::new("created_at")
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_open311_requests_ticket")
                        .from("open311_requests", "ticket_id")
                        .to("tickets", "id"),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_open311_requests_service")
                .table("open311_requests")
                .col("service_code")
                .to_owned(),
        )
        .await
    }
}
