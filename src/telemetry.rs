//! All tracing set-up: human-readable logs in development and tests, JSON
//! lines in production; `RUST_LOG` overrides the level.

use tracing_subscriber::EnvFilter;

use crate::config::Environment;

pub fn init(env: Environment) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,actix_server=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = if env == Environment::Production {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
