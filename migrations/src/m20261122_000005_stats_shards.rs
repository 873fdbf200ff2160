//! A `shard` column in the rollups' key: each intake writer adds to rows of
//! its own, so concurrent registrations never wait on each other's rollup
//! rows; every read sums the shards. Existing rows become shard 0.

use sea_orm_migration::prelude::*;

use crate::m20261122_000003_stats::COUNTERS;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000005_stats_shards"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared("ALTER TABLE stats_daily RENAME TO stats_daily_old")
            .await?;
        if m.get_database_backend() == sea_orm::DbBackend::Postgres {
            // The old primary key's index keeps its name after the rename.
            db.execute_unprepared(
                "ALTER TABLE stats_daily_old RENAME CONSTRAINT stats_daily_pkey TO stats_daily_old_pkey",
            )
            .await?;
        }
        let mut t = Table::create();
        t.table("stats_daily")
            .col(ColumnDef::new("dim").string_len(16).not_null())
            .col(ColumnDef::new("day").integer().not_null())
            .col(ColumnDef::new("department").string_len(64).not_null())
            .col(ColumnDef::new("value").string_len(64).not_null())
            .col(
                ColumnDef::new("shard")
                    .small_integer()
                    .not_null()
                    .default(0),
            )
            .primary_key(
                Index::create()
                    .col("dim")
                    .col("day")
                    .col("department")
                    .col("value")
                    .col("shard"),
            );
        for c in COUNTERS {
            t.col(ColumnDef::new(*c).big_integer().not_null().default(0));
        }
        m.create_table(t.to_owned()).await?;
        let cols = COUNTERS.join(", ");
        db.execute_unprepared(&format!(
            "INSERT INTO stats_daily (dim, day, department, value, shard, {cols}) \
             SELECT dim, day, department, value, 0, {cols} FROM stats_daily_old"
        ))
        .await?;
        db.execute_unprepared("DROP TABLE stats_daily_old").await?;
        Ok(())
    }
}
