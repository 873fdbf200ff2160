//! Schema migrations, shared by SQLite and PostgreSQL; run at start-up and by
//! `hotline migrate`.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_init;
mod m20261122_000002_outbox_claims;
pub mod m20261122_000003_stats;
mod m20261122_000004_stats_months;
mod m20261122_000005_stats_shards;
mod m20261123_000006_open311_requests;
mod m20261124_000007_reply_push_duplicates;
mod m20261124_000008_catalogue_versions;
mod m20261124_000009_hotspots;
pub mod m20261125_000010_escalated_index;
mod m20261125_000011_external_id_first;
mod m20261202_000012_created_by_index;
mod m20261202_000013_scope_state;
mod m20261202_000014_autovacuum;
mod m20261202_000015_partial_clock_indexes;
mod m20261202_000016_merged_by_creation;
mod m20261203_000017_unused_event_indexes;
mod m20261203_000018_stats_pending;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_init::Migration),
            Box::new(m20261122_000002_outbox_claims::Migration),
            Box::new(m20261122_000003_stats::Migration),
            Box::new(m20261122_000004_stats_months::Migration),
            Box::new(m20261122_000005_stats_shards::Migration),
            Box::new(m20261123_000006_open311_requests::Migration),
            Box::new(m20261124_000007_reply_push_duplicates::Migration),
            Box::new(m20261124_000008_catalogue_versions::Migration),
            Box::new(m20261124_000009_hotspots::Migration),
            Box::new(m20261125_000010_escalated_index::Migration),
            Box::new(m20261125_000011_external_id_first::Migration),
            Box::new(m20261202_000012_created_by_index::Migration),
            Box::new(m20261202_000013_scope_state::Migration),
            Box::new(m20261202_000014_autovacuum::Migration),
            Box::new(m20261202_000015_partial_clock_indexes::Migration),
            Box::new(m20261202_000016_merged_by_creation::Migration),
            Box::new(m20261203_000017_unused_event_indexes::Migration),
            Box::new(m20261203_000018_stats_pending::Migration),
        ]
    }
}
