//! Monthly slices of the rollups (`all_m`, `channel_m`, `category_m`,
//! `district_m`, keyed by the month's first day), summed from the daily rows
//! already there; from now on every change adds to both.

use sea_orm_migration::prelude::*;

use crate::m20261122_000003_stats::COUNTERS;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000004_stats_months"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let cols = COUNTERS.join(", ");
        let sums: Vec<String> = COUNTERS.iter().map(|c| format!("SUM({c})")).collect();
        m.get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO stats_daily (dim, day, department, value, {cols}) \
                 SELECT dim || '_m', (day / 100) * 100 + 1, department, value, {} \
                 FROM stats_daily WHERE dim IN ('all', 'channel', 'category', 'district') \
                 GROUP BY dim, (day / 100) * 100 + 1, department, value",
                sums.join(", ")
            ))
            .await?;
        Ok(())
    }
}
