//! PostgreSQL only: `stats_daily` pages are filled to half on insert, so an
//! upsert that adds to a rollup row finds room for the row's new version on
//! the same page and is a HOT update (no new entry in the wide primary-key
//! index, less WAL). Rollup rows are updated far more often than inserted:
//! importing 1 M tickets inserts 0.46 M rollup rows and updates them 0.95 M
//! times; at the default fill factor 87 K of those updates were HOT, at 50 %
//! 907 K, and the import's load phase went from 53.4 s to 48.9 s. SQLite has
//! no such setting.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000018_rollup_fillfactor"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        m.get_connection()
            .execute_unprepared("ALTER TABLE stats_daily SET (fillfactor = 50)")
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        m.get_connection()
            .execute_unprepared("ALTER TABLE stats_daily RESET (fillfactor)")
            .await?;
        Ok(())
    }
}
