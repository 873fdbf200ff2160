//! Building the application: connect, migrate, bootstrap the first admin,
//! start the intake writers and bind the HTTP server (port 0 in tests).

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use chrono::Datelike;
use rand::Rng;
use tracing_actix_web::TracingLogger;

use crate::api::{self, AppState};
use crate::config::{ConfigError, Environment, Settings};
use crate::domain::calendar::{Calendar, city_tz};
use crate::infra::bus::EventBus;
use crate::infra::lease::Lease;
use crate::infra::mail::Mailer;
use crate::infra::ratelimit::PublicLimits;
use crate::infra::redis::RedisHandle;
use crate::jobs;
use crate::store::intake::Intake;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Bootstrap(String),
}

/// Connects to the configured database (retrying while it comes up) and
/// applies migrations.
pub async fn open_store(settings: &Settings) -> Result<Store, StartupError> {
    let url = settings.database_url();
    let mut delay = std::time::Duration::from_millis(250);
    let mut attempt = 0;
    let store = loop {
        attempt += 1;
        match Store::connect(&url, settings.database.max_connections).await {
            Ok(s) => break s,
            Err(e) if attempt < 6 => {
                tracing::warn!(error = %e, attempt, "database not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => return Err(e.into()),
        }
    };
    store.migrate().await?;
    if store.stats_missing().await? {
        // A database from before the rollups: count its history once.
        let rows = store.rebuild_stats().await?;
        tracing::info!(rows, "figures rebuilt from the existing tickets");
    }
    Ok(store)
}

/// Loads the calendar and warns about years that have no holiday file.
pub fn calendar(settings: &Settings) -> Result<Calendar, StartupError> {
    let cal = settings.load_calendar()?;
    let this_year = crate::store::now().with_timezone(&city_tz()).year();
    let known = cal.known_years();
    for y in [this_year, this_year + 1] {
        if !known.contains(&y) {
            tracing::warn!(
                year = y,
                "no holiday calendar file for {y} (config/holidays/{y}.toml): counting Monday–Friday only"
            );
        }
    }
    Ok(cal)
}

/// On an empty database, creates `admin`. The password comes from
/// `HOTLINE_ADMIN_PASSWORD`; in development a random one is printed once.
pub async fn bootstrap_admin(
    store: &Store,
    env: Environment,
    password: Option<String>,
) -> Result<(), StartupError> {
    if store.count_users().await? > 0 {
        return Ok(());
    }
    let (password, generated) = match password.filter(|p| !p.is_empty()) {
        Some(p) => (p, false),
        None if env == Environment::Development => {
            let p: String = rand::thread_rng()
                .sample_iter(&rand::distributions::Alphanumeric)
                .take(16)
                .map(char::from)
                .collect();
            (p, true)
        }
        None => {
            return Err(StartupError::Bootstrap(
                "the database has no users: set HOTLINE_ADMIN_PASSWORD to create the first admin"
                    .into(),
            ));
        }
    };
    if password.chars().count() < 8 {
        return Err(StartupError::Bootstrap(
            "HOTLINE_ADMIN_PASSWORD must be at least 8 characters".into(),
        ));
    }
    let hash =
        api::auth::hash_password(&password).map_err(|e| StartupError::Bootstrap(e.to_string()))?;
    store
        .create_user(
            "admin",
            &hash,
            "admin",
            None,
            None,
            Some("管理员"),
            crate::store::now(),
        )
        .await?;
    if generated {
        println!("Created user `admin` with password: {password}");
        println!("(shown once; set HOTLINE_ADMIN_PASSWORD to choose it)");
    }
    tracing::info!("created the first admin user");
    Ok(())
}

/// The router's catalogue: the newest version edited through the API, else
/// the configured file. The model is trained in the background.
async fn routing(
    settings: &Settings,
    store: &Store,
) -> Result<std::sync::Arc<jobs::retrain::Routing>, StartupError> {
    let stored = match store.latest_catalogue().await? {
        Some(row) => match jobs::retrain::stored_catalogue(&row.body) {
            Ok(c) => Some((c, row.version, Some(row.created_at))),
            Err(e) => {
                tracing::error!(version = row.version, errors = ?e, "stored catalogue unusable; using the file");
                None
            }
        },
        None => None,
    };
    let (catalogue, version, updated_at) = match stored {
        Some(s) => s,
        None => (settings.load_catalogue()?, 0, None),
    };
    Ok(std::sync::Arc::new(jobs::retrain::Routing::new(
        catalogue,
        version,
        updated_at,
        settings.routing.corpus().map(Into::into),
    )))
}

pub struct Application {
    port: u16,
    server: Server,
    pub state: web::Data<AppState>,
}

impl Application {
    /// Everything but `run`: tests call this with `server.port = 0` and
    /// read the port back.
    pub async fn build(
        settings: Settings,
        admin_password: Option<String>,
    ) -> Result<Self, StartupError> {
        let store = open_store(&settings).await?;
        let calendar = calendar(&settings)?;
        bootstrap_admin(&store, settings.env, admin_password).await?;
        Self::build_with(settings, store, calendar).await
    }

    pub async fn build_with(
        settings: Settings,
        store: Store,
        calendar: Calendar,
    ) -> Result<Self, StartupError> {
        // SQLite has one writer; PostgreSQL commits several batches at once.
        let writers = match settings.database.intake_writers {
            0 if store.backend() == sea_orm::DbBackend::Postgres => 4,
            0 => 1,
            n => n,
        };
        let intake = Intake::start(store.clone(), writers);
        let redis = match settings.redis.url.as_str() {
            "" => None,
            url => Some(RedisHandle::new(url).map_err(|e| {
                StartupError::Config(crate::config::ConfigError::Invalid {
                    key: "redis.url".into(),
                    message: e.to_string(),
                })
            })?),
        };
        let bus = EventBus::new(redis.clone());
        let mailer =
            Mailer::from_settings(&settings.mail.smtp_url, &settings.data_dir).map_err(|e| {
                StartupError::Config(crate::config::ConfigError::Invalid {
                    key: "mail.smtp_url".into(),
                    message: e.to_string(),
                })
            })?;
        let routing = routing(&settings, &store).await?;
        tracing::info!(mail = %mailer.describe(), redis = redis.is_some(), "background workers starting");
        tokio::spawn(jobs::retrain::run(
            routing.clone(),
            store.clone(),
            settings.routing.retrain_every(),
        ));
        tokio::spawn(jobs::sweeper::run(
            store.clone(),
            calendar.clone(),
            settings.sla.clone(),
            settings.server.base_url.clone(),
            Duration::from_secs(settings.sweep.interval),
            Lease::new(redis.clone()),
        ));
        tokio::spawn(jobs::outbox::run(
            store.clone(),
            mailer.clone(),
            settings.mail.from.clone(),
            Duration::from_secs(settings.mail.deliver_interval),
        ));
        // awc is single-threaded: the webhook worker runs on this thread.
        actix_web::rt::spawn(jobs::outbox::run_webhooks(
            store.clone(),
            settings.channels.wenzheng.secret.clone(),
            Duration::from_secs(settings.mail.deliver_interval),
        ));
        if settings.report.weekly {
            tokio::spawn(jobs::bulletin::run(
                store.clone(),
                settings.stats.basically_satisfied_counts,
                settings.data_dir.join("reports"),
                Duration::from_secs(600),
            ));
        }
        if settings.hotspots.enabled {
            let live = routing.clone();
            tokio::spawn(jobs::hotspots::run(
                store.clone(),
                move || live.current().catalogue.clone(),
                settings.hotspots.rules(),
                settings.server.base_url.clone(),
                settings.hotspots.every(),
                Lease::new(redis.clone()),
            ));
        }
        let addr = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&addr).map_err(|source| StartupError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let workers = settings.server.workers;
        let limits = PublicLimits::new(&settings.mailbox, redis.clone());
        let state = web::Data::new(AppState {
            settings,
            store,
            calendar,
            intake,
            tokens: Default::default(),
            bus,
            redis,
            mailer,
            limits,
            routing,
        });
        let data = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(api::problem_errors())
                .wrap(TracingLogger::default())
                .app_data(data.clone())
                .configure(api::extractor_config)
                .configure(api::routes)
        })
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: addr.clone(),
            source,
        })?;
        if workers > 0 {
            server = server.workers(workers);
        }
        tracing::info!(%addr, port, "listening");
        Ok(Application {
            port,
            server: server.run(),
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// The server future, for tests that spawn it.
    pub fn into_server(self) -> Server {
        self.server
    }
}
