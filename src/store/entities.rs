//! sea-orm entities, one module a table (schema in `migrations/`). Enum
//! columns are plain strings here; `store` converts them to domain types.

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}
        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod department {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "departments")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub code: String,
        pub name: String,
        pub kind: String,
        pub email: Option<String>,
        pub created_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub username: String,
        pub password_hash: String,
        pub role: String,
        pub department: Option<String>,
        pub email: Option<String>,
        pub display_name: Option<String>,
        pub active: bool,
        pub created_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod api_token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_tokens")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub token_hash: String,
        pub user_id: i64,
        pub created_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
        pub revoked_at: Option<DateTimeUtc>,
    }
    no_relations!();
}

pub mod ticket {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tickets")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub ticket_no: String,
        pub query_code: String,
        pub channel: String,
        pub external_id: Option<String>,
        pub category: String,
        pub urgency: String,
        pub title: String,
        pub content: String,
        pub citizen_name: Option<String>,
        pub citizen_phone: Option<String>,
        pub address: Option<String>,
        pub district: Option<String>,
        pub state: String,
        pub resolution: Option<String>,
        pub merged_into: Option<i64>,
        pub department: Option<String>,
        /// JSON array of department codes.
        pub co_departments: String,
        pub created_by: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub dispatched_at: Option<DateTimeUtc>,
        pub signed_at: Option<DateTimeUtc>,
        pub replied_at: Option<DateTimeUtc>,
        pub closed_at: Option<DateTimeUtc>,
        pub sign_due_at: Option<DateTimeUtc>,
        pub reply_due_at: Option<DateTimeUtc>,
        pub next_check_at: Option<DateTimeUtc>,
        pub escalation_level: i16,
        pub rework_count: i32,
        pub return_count: i32,
        pub extension_count: i32,
        pub final_dispatch: bool,
        pub reply_content: Option<String>,
        pub reply_resolved: Option<bool>,
        pub satisfaction: Option<String>,
        /// Bumped by every update; updates compare-and-set on it.
        pub version: i32,
        /// The number of an earlier ticket this one may repeat (same phone
        /// and similar text, or same address and category, within 72 h).
        pub possible_duplicate_of: Option<String>,
    }
    no_relations!();
}

pub mod ticket_department {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ticket_departments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub ticket_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub department: String,
        pub role: String,
        pub since: DateTimeUtc,
        /// The ticket's current state, kept in step by every transition, so
        /// a department's tickets in one state are one index range.
        pub state: String,
    }
    no_relations!();
}

pub mod ticket_event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ticket_events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub ticket_id: i64,
        pub at: DateTimeUtc,
        pub actor: String,
        pub kind: String,
        pub from_state: Option<String>,
        pub to_state: Option<String>,
        pub department: Option<String>,
        /// JSON object.
        pub payload: String,
    }
    no_relations!();
}

pub mod extension {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "extensions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub ticket_id: i64,
        pub department: String,
        pub working_days: i32,
        pub reason: String,
        pub status: String,
        pub requested_by: String,
        pub requested_at: DateTimeUtc,
        pub decided_by: Option<String>,
        pub decided_at: Option<DateTimeUtc>,
        pub note: Option<String>,
    }
    no_relations!();
}

pub mod access_log {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "access_log")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub at: DateTimeUtc,
        pub username: String,
        pub role: String,
        pub ticket_id: Option<i64>,
        pub action: String,
        pub reason: String,
    }
    no_relations!();
}

pub mod outbox {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub created_at: DateTimeUtc,
        pub kind: String,
        pub ticket_id: Option<i64>,
        pub recipient: String,
        pub subject: String,
        pub body: String,
        pub status: String,
        pub attempts: i32,
        pub next_attempt_at: DateTimeUtc,
        pub last_error: Option<String>,
        pub sent_at: Option<DateTimeUtc>,
        /// Claimed by a delivery worker until then.
        pub locked_until: Option<DateTimeUtc>,
        /// `mail` (recipient: addresses) or `webhook` (recipient: a URL,
        /// body: JSON, signed when sent).
        pub transport: String,
    }
    no_relations!();
}

pub mod open311_request {
    use sea_orm::entity::prelude::*;

    /// What an Open311 request carries beyond its ticket.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "open311_requests")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub ticket_id: i64,
        pub service_code: String,
        /// As submitted (the ticket's content adds the location and media).
        pub description: Option<String>,
        pub latitude: Option<f64>,
        pub longitude: Option<f64>,
        pub address_id: Option<String>,
        /// JSON array of URLs.
        pub media_urls: String,
        /// The reporter's; never shown by the Open311 API.
        pub email: Option<String>,
        pub created_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod catalogue_version {
    use sea_orm::entity::prelude::*;

    /// One edit of the dispatch catalogue; `body` is its JSON.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "catalogue_versions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i64,
        pub body: String,
        pub author: String,
        pub created_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod hotspot {
    use sea_orm::entity::prelude::*;

    /// A cluster of similar appeals from one place (热点); members in
    /// `hotspot_tickets`.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "hotspots")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Topic and first ticket id: the same new cluster is recorded once.
        pub key: String,
        pub topic: String,
        pub topic_name: String,
        pub district: Option<String>,
        pub place: String,
        pub latitude: Option<f64>,
        pub longitude: Option<f64>,
        pub ticket_count: i32,
        pub first_at: DateTimeUtc,
        pub last_at: DateTimeUtc,
        pub detected_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod hotspot_ticket {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "hotspot_tickets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub hotspot_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub ticket_id: i64,
    }
    no_relations!();
}
