//! `hotspots`: clusters of similar appeals from one place (苗头性、倾向性问题)
//! found by the hotspot job, one row a cluster, and `hotspot_tickets`, its
//! members. `key` (topic and first ticket) is unique, so two instances that
//! find the same new cluster record — and mail — it once.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261124_000009_hotspots"
    }
}

fn ts(name: &'static str) -> ColumnDef {
    ColumnDef::new(name)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("hotspots")
                .col(
                    ColumnDef::new("id")
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new("key")
                        .string_len(200)
                        .not_null()
                        .unique_key(),
                )
                .col(ColumnDef::new("topic").string_len(64).not_null())
                .col(ColumnDef::new("topic_name").string_len(200).not_null())
                .col(ColumnDef::new("district").string_len(64).null())
                .col(ColumnDef::new("place").string_len(200).not_null())
                .col(ColumnDef::new("latitude").double().null())
                .col(ColumnDef::new("longitude").double().null())
                .col(ColumnDef::new("ticket_count").integer().not_null())
                .col(ts("first_at"))
                .col(ts("last_at"))
                .col(ts("detected_at"))
                .col(ts("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_hotspots_last_at")
                .table("hotspots")
                .col("last_at")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("hotspot_tickets")
                .col(ColumnDef::new("hotspot_id").big_integer().not_null())
                .col(ColumnDef::new("ticket_id").big_integer().not_null())
                .primary_key(Index::create().col("hotspot_id").col("ticket_id"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_hotspot_tickets_hotspot")
                        .from("hotspot_tickets", "hotspot_id")
                        .to("hotspots", "id"),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_hotspot_tickets_ticket")
                        .from("hotspot_tickets", "ticket_id")
                        .to("tickets", "id"),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_hotspot_tickets_ticket")
                .table("hotspot_tickets")
                .col("ticket_id")
                .to_owned(),
        )
        .await
    }
}
