//! Indexes on columns that stay NULL until a ticket is dispatched (its
//! department, its clocks, the sweeper's next check) or merged: only the
//! rows that have a value are indexed. Every query that reads them compares
//! the column (`=`, `<`, `<=`, `IS NOT NULL`), which implies a value, so
//! PostgreSQL and SQLite use the partial index exactly where they used the
//! whole one; registration, the busiest write, no longer adds five index
//! entries per ticket that no query reads.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000015_partial_clock_indexes"
    }
}

/// `(name, columns, the column that is NULL until set)`.
const PARTIAL: &[(&str, &str, &str)] = &[
    ("idx_tickets_department", "department, state", "department"),
    ("idx_tickets_next_check", "next_check_at", "next_check_at"),
    ("idx_tickets_reply_due", "reply_due_at", "reply_due_at"),
    ("idx_tickets_sign_due", "sign_due_at", "sign_due_at"),
    ("idx_tickets_merged_into", "merged_into", "merged_into"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        // One call per index, so both statements run on one connection: a
        // SQLite connection whose schema is stale would parse the CREATE
        // against the index it still believes exists.
        for (name, cols, col) in PARTIAL {
            db.execute_unprepared(&format!(
                "DROP INDEX IF EXISTS {name}; \
                 CREATE INDEX {name} ON tickets ({cols}) WHERE {col} IS NOT NULL"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        for (name, cols, _) in PARTIAL {
            db.execute_unprepared(&format!(
                "DROP INDEX IF EXISTS {name}; CREATE INDEX {name} ON tickets ({cols})"
            ))
            .await?;
        }
        Ok(())
    }
}
