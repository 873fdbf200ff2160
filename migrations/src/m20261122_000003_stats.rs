//! Daily rollups of the figures (`stats_daily`): one row per slice
//! (`all`, `channel`, `category`, `district`), city day (`YYYYMMDD`),
//! department ("" when none) and attribute value, with one counter per
//! column of `hotline::domain::figures::Col`. The transactions that change
//! tickets keep it current.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000003_stats"
    }
}

/// Keep in step with `hotline::domain::figures::Col` (a test checks).
pub const COUNTERS: &[&str] = &[
    "created",
    "direct_answer",
    "sign_due",
    "sign_on_time",
    "reply_due",
    "replied",
    "replied_on_time",
    "dispatches",
    "kept",
    "returns",
    "callbacks",
    "reached",
    "resolved",
    "satisfied",
    "basically_satisfied",
    "reopened",
    "overdue_delta",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut t = Table::create();
        t.table("stats_daily")
            .col(ColumnDef::new("dim").string_len(16).not_null())
            .col(ColumnDef::new("day").integer().not_null())
            .col(ColumnDef::new("department").string_len(64).not_null())
            .col(ColumnDef::new("value").string_len(64).not_null())
            .primary_key(
                Index::create()
                    .col("dim")
                    .col("day")
                    .col("department")
                    .col("value"),
            );
        for c in COUNTERS {
            t.col(ColumnDef::new(*c).big_integer().not_null().default(0));
        }
        m.create_table(t.to_owned()).await
    }
}
