//! Configuration: `config/default.toml` (also compiled in, so the binary runs
//! anywhere), then `config/<HOTLINE_ENV>.toml`, then `HOTLINE__SECTION__KEY`
//! environment variables. Parsed and checked once, here.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::calendar::{self, Calendar, WorkInterval};
use crate::domain::sla::SlaPolicy;

const EMBEDDED_DEFAULT: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Test,
    Production,
}

impl Environment {
    pub fn from_env() -> Result<Self, ConfigError> {
        match std::env::var("HOTLINE_ENV").as_deref() {
            Err(_) | Ok("") | Ok("development") => Ok(Environment::Development),
            Ok("test") => Ok(Environment::Test),
            Ok("production") => Ok(Environment::Production),
            Ok(other) => Err(ConfigError::Invalid {
                key: "HOTLINE_ENV".into(),
                message: format!("`{other}` is not one of development, test, production"),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Test => "test",
            Environment::Production => "production",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub catalogue: PathBuf,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub mail: MailSettings,
    pub sweep: SweepSettings,
    pub channels: ChannelSettings,
    pub open311: Open311Settings,
    pub mailbox: MailboxSettings,
    pub auth: AuthSettings,
    pub calendar: CalendarSettings,
    pub sla: SlaPolicy,
    pub stats: StatsSettings,
    pub report: ReportSettings,
    pub hotspots: HotspotSettings,
    pub routing: RoutingSettings,
    #[serde(skip, default = "default_env")]
    pub env: Environment,
}

fn default_env() -> Environment {
    Environment::Development
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub base_url: String,
    pub workers: usize,
    pub request_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    /// Registration writer tasks (group commit); 0 = 1 on SQLite, 2 on PostgreSQL.
    pub intake_writers: usize,
    /// How long start-up keeps retrying an unreachable database (seconds).
    #[serde(default = "default_connect_retry")]
    pub connect_retry_secs: u64,
}

fn default_connect_retry() -> u64 {
    60
}

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MailSettings {
    pub smtp_url: String,
    pub from: String,
    /// Seconds between delivery rounds.
    pub deliver_interval: u64,
    /// Seconds a worker holds the outbox rows it claimed before another
    /// instance may take them (an instance that died mid-round).
    #[serde(default = "default_claim_secs")]
    pub claim_secs: u64,
}

fn default_claim_secs() -> u64 {
    300
}

#[derive(Debug, Clone, Deserialize)]
pub struct SweepSettings {
    /// Seconds between sweeps.
    pub interval: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChannelSettings {
    pub wenzheng: WenzhengSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WenzhengSettings {
    pub secret: String,
    pub reply_url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Open311Settings {
    pub api_key: String,
}

/// The public mailbox's abuse control. A limit of N per period lets N
/// through at once, then one more every period / N (GCRA); 0 turns it off.
#[derive(Debug, Clone, Deserialize)]
pub struct MailboxSettings {
    pub per_phone_per_minute: u32,
    pub per_phone_per_day: u32,
    pub per_address_per_minute: u32,
    pub per_address_per_day: u32,
    /// Largest accepted body; bigger is 413 `payload_too_large`.
    pub max_body_bytes: usize,
    /// Empty: the TCP peer is the client. Else a header the proxy in front
    /// sets (its last comma-separated entry counts).
    pub client_ip_header: String,
    /// Redis key prefix of the shared counters.
    pub redis_prefix: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub token_ttl_hours: i64,
    /// Failed log-ins one user name may have within the window before its
    /// next attempt is refused (429) unchecked; 0 = no limit.
    pub max_failed_logins: u32,
    /// The same per client address, over every user name it tries.
    pub max_failed_logins_per_address: u32,
    /// The window, from an account's first failure, in minutes.
    pub failed_login_window_minutes: u64,
    /// Empty: the TCP peer is the client. Else the header the proxy in front
    /// sets (its last comma-separated entry counts), as `mailbox.client_ip_header`.
    pub client_ip_header: String,
    /// Redis key prefix of the shared failure counters.
    pub redis_prefix: String,
}

impl AuthSettings {
    /// The window of the failure counters.
    pub fn failed_login_window(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.failed_login_window_minutes * 60)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.token_ttl_hours <= 0 {
            return Err(invalid("auth.token_ttl_hours", "must be positive"));
        }
        if !(1..=7 * 24 * 60).contains(&self.failed_login_window_minutes) {
            return Err(invalid(
                "auth.failed_login_window_minutes",
                "must be 1 to 10080 (a week)",
            ));
        }
        if !self
            .client_ip_header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                "auth.client_ip_header",
                "must be empty or a header name such as X-Real-IP",
            ));
        }
        let prefix = &self.redis_prefix;
        if prefix.is_empty() || prefix.len() > 100 || prefix.chars().any(char::is_whitespace) {
            return Err(invalid(
                "auth.redis_prefix",
                "must be 1–100 characters without spaces",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CalendarSettings {
    pub dir: PathBuf,
    pub hours: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReportSettings {
    /// Mail last week's bulletin to the leaders every Monday from 08:30.
    pub weekly: bool,
}

/// 智能派单 in the service (`[routing]`).
#[derive(Debug, Clone, Deserialize)]
pub struct RoutingSettings {
    /// Dispatch a new ticket by itself when the top suggestion's confidence
    /// is at least this, in (0, 1]; 0 = never (the default).
    pub auto_dispatch_threshold: f64,
    /// How often the model is retrained from history: a natural duration
    /// such as "1 hour" or "30 minutes".
    pub retrain_interval: String,
    /// Labelled appeals (JSON Lines, the shared corpus format) learned from
    /// besides the history; empty = none.
    pub corpus: PathBuf,
}

impl RoutingSettings {
    /// The threshold, when auto-dispatch is on.
    pub fn auto_dispatch(&self) -> Option<f64> {
        (self.auto_dispatch_threshold > 0.0).then_some(self.auto_dispatch_threshold)
    }

    pub fn corpus(&self) -> Option<&Path> {
        (!self.corpus.as_os_str().is_empty()).then_some(self.corpus.as_path())
    }

    /// Checked in `validate`; the fallback is the documented default.
    pub fn retrain_every(&self) -> std::time::Duration {
        Self::interval(&self.retrain_interval).unwrap_or(std::time::Duration::from_secs(3600))
    }

    fn interval(text: &str) -> Result<std::time::Duration, String> {
        match text.parse::<calendar::WorkingDuration>() {
            Ok(calendar::WorkingDuration::Natural { minutes }) if minutes > 0 => (minutes as u64)
                .checked_mul(60)
                .map(std::time::Duration::from_secs)
                .ok_or_else(|| "is too long".to_owned()),
            Ok(_) => {
                Err("must be natural time (\"1 hour\", \"30 minutes\"), not working time".into())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let t = self.auto_dispatch_threshold;
        if !(0.0..=1.0).contains(&t) {
            return Err(invalid(
                "routing.auto_dispatch_threshold",
                "must be 0 (off) or a confidence in (0, 1]",
            ));
        }
        Self::interval(&self.retrain_interval)
            .map_err(|e| invalid("routing.retrain_interval", e))?;
        if let Some(p) = self.corpus()
            && !p.is_file()
        {
            return Err(invalid(
                "routing.corpus",
                format!("{} is not a file", p.display()),
            ));
        }
        Ok(())
    }
}

/// Hotspots (`[hotspots]`): clusters of similar appeals from one place.
#[derive(Debug, Clone, Deserialize)]
pub struct HotspotSettings {
    /// Run the detector in this instance.
    pub enabled: bool,
    /// How often it runs: a natural duration such as "5 minutes".
    pub interval: String,
    /// The sliding window a cluster must fit in, e.g. "48 hours".
    pub window: String,
    /// Appeals a cluster needs at least.
    pub min_appeals: usize,
    /// Coordinates within this many metres of one appeal are one place.
    pub radius_m: f64,
}

impl HotspotSettings {
    fn natural(key: &str, text: &str) -> Result<chrono::Duration, ConfigError> {
        match text.parse::<calendar::WorkingDuration>() {
            // `try_minutes`: `minutes` panics past chrono's range (about 2^63 ms).
            Ok(calendar::WorkingDuration::Natural { minutes }) => {
                chrono::Duration::try_minutes(minutes).ok_or_else(|| invalid(key, "is too long"))
            }
            Ok(_) => Err(invalid(
                key,
                "must be natural time (\"5 minutes\", \"48 hours\"), not working time",
            )),
            Err(e) => Err(invalid(key, e.to_string())),
        }
    }

    /// Checked in `validate`; the fallback is the documented default.
    pub fn every(&self) -> std::time::Duration {
        Self::natural("hotspots.interval", &self.interval)
            .ok()
            .and_then(|d| d.to_std().ok())
            .unwrap_or(std::time::Duration::from_secs(300))
    }

    /// The detector's thresholds.
    pub fn rules(&self) -> crate::domain::hotspots::Rules {
        crate::domain::hotspots::Rules {
            min_appeals: self.min_appeals,
            window: Self::natural("hotspots.window", &self.window)
                .unwrap_or(chrono::Duration::hours(48)),
            radius_m: self.radius_m,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        Self::natural("hotspots.interval", &self.interval)?;
        let window = Self::natural("hotspots.window", &self.window)?;
        if window > chrono::Duration::days(31) {
            return Err(invalid("hotspots.window", "must be at most 744 hours"));
        }
        if !(2..=10_000).contains(&self.min_appeals) {
            return Err(invalid("hotspots.min_appeals", "must be 2 to 10000"));
        }
        if !(self.radius_m.is_finite() && (0.0..=50_000.0).contains(&self.radius_m)) {
            return Err(invalid(
                "hotspots.radius_m",
                "must be 0 (places only) to 50000 (metres)",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatsSettings {
    pub basically_satisfied_counts: bool,
}

impl Settings {
    /// Loads the layered configuration from `config_dir` (default `config`,
    /// or `HOTLINE_CONFIG_DIR`) and the process environment.
    pub fn load() -> Result<Settings, ConfigError> {
        let dir = std::env::var_os("HOTLINE_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("config"));
        Self::load_from(&dir, Environment::from_env()?, &[])
    }

    /// Like `load`, plus explicit overrides (`("server.port", "0")`), used by
    /// tests and the CLI.
    pub fn load_from(
        dir: &Path,
        env: Environment,
        overrides: &[(&str, &str)],
    ) -> Result<Settings, ConfigError> {
        let mut b = config::Config::builder()
            .add_source(config::File::from_str(
                EMBEDDED_DEFAULT,
                config::FileFormat::Toml,
            ))
            .add_source(config::File::from(dir.join("default.toml")).required(false))
            .add_source(
                config::File::from(dir.join(format!("{}.toml", env.as_str()))).required(false),
            )
            .add_source(
                config::Environment::with_prefix("HOTLINE")
                    .prefix_separator("__")
                    .separator("__"),
            );
        if let Ok(url) = std::env::var("DATABASE_URL")
            && std::env::var_os("HOTLINE__DATABASE__URL").is_none()
        {
            b = b.set_override("database.url", url)?;
        }
        for (k, v) in overrides {
            b = b.set_override(*k, *v)?;
        }
        let mut s: Settings = b.build()?.try_deserialize()?;
        s.env = env;
        // Relative paths that point into the repository fall back to the
        // directory the configuration came from.
        for p in [&mut s.catalogue, &mut s.calendar.dir] {
            if p.is_relative()
                && !p.exists()
                && let Some(parent) = dir.parent()
            {
                let alt = parent.join(&*p);
                if alt.exists() {
                    *p = alt;
                }
            }
        }
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let url = &self.database.url;
        if !(url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                "must be empty (SQLite in data_dir), sqlite:… or postgres://…",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if !(self.redis.url.is_empty()
            || self.redis.url.starts_with("redis://")
            || self.redis.url.starts_with("rediss://"))
        {
            return Err(invalid("redis.url", "must be empty or redis://…"));
        }
        if !(self.mail.smtp_url.is_empty()
            || self.mail.smtp_url.starts_with("smtp://")
            || self.mail.smtp_url.starts_with("smtps://"))
        {
            return Err(invalid("mail.smtp_url", "must be empty or smtp(s)://…"));
        }
        let reply = &self.channels.wenzheng.reply_url;
        if !(reply.is_empty() || reply.starts_with("http://") || reply.starts_with("https://")) {
            return Err(invalid(
                "channels.wenzheng.reply_url",
                "must be empty or an http(s) URL",
            ));
        }
        if self.sweep.interval == 0 {
            return Err(invalid("sweep.interval", "must be at least 1 (seconds)"));
        }
        if self.mail.deliver_interval == 0 {
            return Err(invalid(
                "mail.deliver_interval",
                "must be at least 1 (seconds)",
            ));
        }
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid("mail.from", "is not a mailbox (Name <address>)"));
        }
        self.auth.validate()?;
        if self.server.request_timeout_secs == 0 {
            return Err(invalid("server.request_timeout_secs", "must be positive"));
        }
        calendar::parse_hours(&self.calendar.hours)
            .map_err(|e| invalid("calendar.hours", e.to_string()))?;
        if self.sla.max_extension_days == 0 {
            return Err(invalid("sla.max_extension_days", "must be at least 1"));
        }
        self.routing.validate()?;
        self.hotspots.validate()?;
        self.mailbox.validate()
    }

    /// The database URL in force: the configured one, or SQLite in `data_dir`.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("hotline.db").display()
            )
        } else {
            self.database.url.clone()
        }
    }

    pub fn work_hours(&self) -> Vec<WorkInterval> {
        // Checked in `validate`; the fallback is the documented default.
        calendar::parse_hours(&self.calendar.hours)
            .or_else(|_| calendar::parse_hours("08:30-12:00,14:00-17:30"))
            .unwrap_or_default()
    }

    /// The holiday calendar: files in `calendar.dir`, or the compiled-in
    /// 2025 and 2026 notices when that directory does not exist.
    pub fn load_calendar(&self) -> Result<Calendar, ConfigError> {
        let hours = self.work_hours();
        if self.calendar.dir.is_dir() {
            Calendar::load_dir(&self.calendar.dir, hours)
                .map_err(|e| invalid("calendar.dir", e.to_string()))
        } else {
            let years = [
                include_str!("../config/holidays/2025.toml"),
                include_str!("../config/holidays/2026.toml"),
            ]
            .iter()
            .map(|t| calendar::YearCalendar::parse_toml(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("calendar.dir", e.to_string()))?;
            Calendar::new(hours, years).map_err(|e| invalid("calendar.dir", e.to_string()))
        }
    }
}

impl MailboxSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        const MAX_RATE: u32 = 1_000_000;
        for (key, minute, day) in [
            ("phone", self.per_phone_per_minute, self.per_phone_per_day),
            (
                "address",
                self.per_address_per_minute,
                self.per_address_per_day,
            ),
        ] {
            for (window, n) in [("minute", minute), ("day", day)] {
                if n > MAX_RATE {
                    return Err(invalid(
                        &format!("mailbox.per_{key}_per_{window}"),
                        format!("must be 0 (no limit) to {MAX_RATE}"),
                    ));
                }
            }
            if minute > 0 && day > 0 && day < minute {
                return Err(invalid(
                    &format!("mailbox.per_{key}_per_day"),
                    format!("must be 0 (no limit) or at least per_{key}_per_minute ({minute})"),
                ));
            }
        }
        // The API's own cap on every body (`api::MAX_BODY`) is 1 MiB.
        if !(1024..=1024 * 1024).contains(&self.max_body_bytes) {
            return Err(invalid(
                "mailbox.max_body_bytes",
                "must be 1024 to 1048576 (bytes)",
            ));
        }
        let header = &self.client_ip_header;
        if !header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                "mailbox.client_ip_header",
                "must be empty or a header name such as X-Real-IP",
            ));
        }
        let prefix = &self.redis_prefix;
        if prefix.is_empty() || prefix.len() > 100 || prefix.chars().any(char::is_whitespace) {
            return Err(invalid(
                "mailbox.redis_prefix",
                "must be 1–100 characters without spaces",
            ));
        }
        Ok(())
    }
}

impl Settings {
    /// The dispatch catalogue: `catalogue`, or the compiled-in one when that
    /// file does not exist.
    pub fn load_catalogue(&self) -> Result<crate::domain::catalogue::Catalogue, ConfigError> {
        let text = match std::fs::read_to_string(&self.catalogue) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                include_str!("../config/catalogue.toml").to_owned()
            }
            Err(e) => return Err(invalid("catalogue", e.to_string())),
        };
        crate::domain::catalogue::Catalogue::parse(&text).map_err(|e| invalid("catalogue", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
    }

    #[test]
    fn defaults_load_and_match_the_design() {
        let s = Settings::load_from(&dir(), Environment::Development, &[]).unwrap();
        assert_eq!(s.sla, SlaPolicy::default());
        assert_eq!(s.data_dir, PathBuf::from("data"));
        assert!(s.stats.basically_satisfied_counts);
        assert!(s.database_url().starts_with("sqlite://data/hotline.db"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = Settings::load_from(&dir(), Environment::Test, &[("sla.consult.sign", "soon")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("sla.consult.sign"), "{err}");
        let err = Settings::load_from(&dir(), Environment::Test, &[("database.url", "mysql://x")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("database.url"), "{err}");
        let err = Settings::load_from(&dir(), Environment::Test, &[("server.port", "99999")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.port"), "{err}");
    }

    #[test]
    fn mailbox_limits_are_checked() {
        let s = Settings::load_from(&dir(), Environment::Test, &[]).unwrap();
        assert_eq!(s.mailbox.per_phone_per_minute, 5);
        assert_eq!(s.mailbox.per_phone_per_day, 20);
        for (key, value) in [
            ("mailbox.per_phone_per_minute", "-1"),
            ("mailbox.per_phone_per_day", "3"),
            ("mailbox.per_address_per_minute", "many"),
            ("mailbox.max_body_bytes", "10"),
            ("mailbox.client_ip_header", "X Real IP"),
            ("mailbox.redis_prefix", ""),
            ("routing.auto_dispatch_threshold", "1.5"),
            ("routing.auto_dispatch_threshold", "-0.1"),
            ("routing.retrain_interval", "2 working days"),
            ("routing.retrain_interval", "soon"),
            ("routing.corpus", "/nonexistent/corpus.jsonl"),
        ] {
            let err = Settings::load_from(&dir(), Environment::Test, &[(key, value)])
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{key}={value}: {err}");
        }
    }

    #[test]
    fn hotspot_settings_are_checked() {
        let s = Settings::load_from(&dir(), Environment::Test, &[]).unwrap();
        let rules = s.hotspots.rules();
        assert_eq!(rules.window, chrono::Duration::hours(48));
        assert_eq!((rules.min_appeals, rules.radius_m), (5, 500.0));
        assert_eq!(s.hotspots.every(), std::time::Duration::from_secs(300));
        for (key, value) in [
            ("hotspots.interval", "2 working hours"),
            ("hotspots.interval", "often"),
            ("hotspots.window", "2 days"),
            ("hotspots.window", "800 hours"),
            ("hotspots.min_appeals", "1"),
            ("hotspots.radius_m", "-1"),
        ] {
            let err = Settings::load_from(&dir(), Environment::Test, &[(key, value)])
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{key}={value}: {err}");
        }
    }

    #[test]
    fn huge_durations_are_refused_by_key_not_a_panic() {
        // Found by fuzzing (fuzz/regressions/calendar_config/): minutes * 60
        // overflowed, and chrono's `Duration::minutes` panicked.
        for (key, value) in [
            ("routing.retrain_interval", "9223372036854775807 minutes"),
            ("routing.retrain_interval", "307445734561825861 minutes"),
            ("hotspots.interval", "9223372036854775807 minutes"),
            ("hotspots.window", "153722867280912930 hours"),
        ] {
            let err = Settings::load_from(&dir(), Environment::Test, &[(key, value)])
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{key}={value}: {err}");
        }
    }
}
