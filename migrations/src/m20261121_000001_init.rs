//! The first schema: departments, users, tokens, tickets with their events,
//! departments, extensions, access log, outbox and the daily number sequences.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261121_000001_init"
    }
}

fn id() -> ColumnDef {
    ColumnDef::new("id")
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

fn text(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).text().not_null().to_owned()
}

fn text_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).text().null().to_owned()
}

fn string(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).string_len(64).not_null().to_owned()
}

fn string_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).string_len(64).null().to_owned()
}

fn ts(name: &'static str) -> ColumnDef {
    ColumnDef::new(name)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn ts_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name)
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

fn int(name: &'static str) -> ColumnDef {
    ColumnDef::new(name)
        .integer()
        .not_null()
        .default(0)
        .to_owned()
}

fn big(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}

fn big_null(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).big_integer().null().to_owned()
}

fn boolean(name: &'static str, default: bool) -> ColumnDef {
    ColumnDef::new(name)
        .boolean()
        .not_null()
        .default(default)
        .to_owned()
}

fn index(table: &'static str, name: &str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(table);
    for c in cols {
        i.col(*c);
    }
    i.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("departments")
                .col(id())
                .col(
                    ColumnDef::new("code")
                        .string_len(64)
                        .not_null()
                        .unique_key(),
                )
                .col(text("name"))
                .col(string("kind"))
                .col(text_null("email"))
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("users")
                .col(id())
                .col(
                    ColumnDef::new("username")
                        .string_len(64)
                        .not_null()
                        .unique_key(),
                )
                .col(text("password_hash"))
                .col(string("role"))
                .col(string_null("department"))
                .col(text_null("email"))
                .col(text_null("display_name"))
                .col(boolean("active", true))
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("api_tokens")
                .col(id())
                .col(
                    ColumnDef::new("token_hash")
                        .string_len(64)
                        .not_null()
                        .unique_key(),
                )
                .col(big("user_id"))
                .col(ts("created_at"))
                .col(ts("expires_at"))
                .col(ts_null("revoked_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("api_tokens", "idx_api_tokens_user", &["user_id"]))
            .await?;

        m.create_table(
            Table::create()
                .table("tickets")
                .col(id())
                .col(
                    ColumnDef::new("ticket_no")
                        .string_len(32)
                        .not_null()
                        .unique_key(),
                )
                .col(string("query_code"))
                .col(string("channel"))
                .col(ColumnDef::new("external_id").string_len(128).null())
                .col(string("category"))
                .col(string("urgency"))
                .col(text("title"))
                .col(text("content"))
                .col(text_null("citizen_name"))
                .col(string_null("citizen_phone"))
                .col(text_null("address"))
                .col(string_null("district"))
                .col(string("state"))
                .col(string_null("resolution"))
                .col(big_null("merged_into"))
                .col(string_null("department"))
                .col(text("co_departments"))
                .col(string("created_by"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .col(ts_null("dispatched_at"))
                .col(ts_null("signed_at"))
                .col(ts_null("replied_at"))
                .col(ts_null("closed_at"))
                .col(ts_null("sign_due_at"))
                .col(ts_null("reply_due_at"))
                .col(ts_null("next_check_at"))
                .col(
                    ColumnDef::new("escalation_level")
                        .small_integer()
                        .not_null()
                        .default(0),
                )
                .col(int("rework_count"))
                .col(int("return_count"))
                .col(int("extension_count"))
                .col(boolean("final_dispatch", false))
                .col(text_null("reply_content"))
                .col(ColumnDef::new("reply_resolved").boolean().null())
                .col(string_null("satisfaction"))
                .col(int("version"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index(
                "tickets",
                "uq_tickets_channel_external",
                &["channel", "external_id"],
            )
            .unique()
            .to_owned(),
        )
        .await?;
        for (name, cols) in [
            ("idx_tickets_state", &["state", "id"][..]),
            ("idx_tickets_department", &["department", "state"][..]),
            ("idx_tickets_channel", &["channel"][..]),
            ("idx_tickets_category", &["category"][..]),
            ("idx_tickets_district", &["district"][..]),
            ("idx_tickets_escalation", &["escalation_level"][..]),
            ("idx_tickets_created_at", &["created_at"][..]),
            ("idx_tickets_next_check", &["next_check_at"][..]),
            ("idx_tickets_reply_due", &["reply_due_at"][..]),
            ("idx_tickets_sign_due", &["sign_due_at"][..]),
            ("idx_tickets_citizen_phone", &["citizen_phone"][..]),
        ] {
            m.create_index(index("tickets", name, cols)).await?;
        }

        // Every department a ticket was ever assigned to, lead or co: the
        // scope a department user may read.
        m.create_table(
            Table::create()
                .table("ticket_departments")
                .col(big("ticket_id"))
                .col(string("department"))
                .col(string("role"))
                .col(ts("since"))
                .primary_key(Index::create().col("ticket_id").col("department"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ticket_departments",
            "idx_ticket_departments_department",
            &["department", "ticket_id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("ticket_events")
                .col(id())
                .col(big("ticket_id"))
                .col(ts("at"))
                .col(string("actor"))
                .col(string("kind"))
                .col(string_null("from_state"))
                .col(string_null("to_state"))
                .col(string_null("department"))
                .col(text("payload"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ticket_events",
            "idx_ticket_events_ticket",
            &["ticket_id", "id"],
        ))
        .await?;
        m.create_index(index(
            "ticket_events",
            "idx_ticket_events_kind_at",
            &["kind", "at"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("extensions")
                .col(id())
                .col(big("ticket_id"))
                .col(string("department"))
                .col(int("working_days"))
                .col(text("reason"))
                .col(string("status"))
                .col(string("requested_by"))
                .col(ts("requested_at"))
                .col(string_null("decided_by"))
                .col(ts_null("decided_at"))
                .col(text_null("note"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "extensions",
            "idx_extensions_ticket",
            &["ticket_id", "status"],
        ))
        .await?;
        m.create_index(index("extensions", "idx_extensions_status", &["status"]))
            .await?;

        m.create_table(
            Table::create()
                .table("access_log")
                .col(id())
                .col(ts("at"))
                .col(string("username"))
                .col(string("role"))
                .col(big_null("ticket_id"))
                .col(string("action"))
                .col(text("reason"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("access_log", "idx_access_log_ticket", &["ticket_id"]))
            .await?;
        m.create_index(index("access_log", "idx_access_log_at", &["at"]))
            .await?;

        m.create_table(
            Table::create()
                .table("outbox")
                .col(id())
                .col(ts("created_at"))
                .col(string("kind"))
                .col(big_null("ticket_id"))
                .col(text("recipient"))
                .col(text("subject"))
                .col(text("body"))
                .col(string("status"))
                .col(int("attempts"))
                .col(ts("next_attempt_at"))
                .col(text_null("last_error"))
                .col(ts_null("sent_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "outbox",
            "idx_outbox_pending",
            &["status", "next_attempt_at"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("ticket_sequences")
                .col(ColumnDef::new("day").string_len(8).not_null())
                .col(ColumnDef::new("channel").string_len(16).not_null())
                .col(big("last"))
                .primary_key(Index::create().col("day").col("channel"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
