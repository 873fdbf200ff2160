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
    let give_up = std::time::Instant::now()
        + std::time::Duration::from_secs(settings.database.connect_retry_secs);
    let mut delay = std::time::Duration::from_millis(250);
    let mut attempt = 0;
    let store = loop {
        attempt += 1;
        let tried = async {
            let s = Store::connect(&url, settings.database.max_connections).await?;
            s.migrate().await?;
            Ok::<_, StoreError>(s)
        };
        match tried.await {
            Ok(s) => break s,
            Err(e) if e.is_unavailable() && std::time::Instant::now() + delay < give_up => {
                tracing::warn!(
                    error = %e,
                    attempt,
                    retry_in_ms = delay.as_millis() as u64,
                    "database not reachable; retrying (database.connect_retry_secs)"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
            Err(e) => {
                tracing::error!(error = %e, attempt, "cannot use the database; giving up");
                return Err(e.into());
            }
        }
    };
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
    let created = store
        .create_user(
            "admin",
            &hash,
            "admin",
            None,
            None,
            Some("管理员"),
            crate::store::now(),
        )
        .await;
    if let Err(e) = created {
        // Instances started together on an empty database: one of them
        // created the admin first, and that is as good.
        if store.user_by_name("admin").await?.is_some() {
            tracing::info!("the first admin was created by another instance");
            return Ok(());
        }
        return Err(e.into());
    }
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
    stopper: jobs::Stopper,
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
            0 if store.backend() == sea_orm::DbBackend::Postgres => 2,
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
        let mut stopper = jobs::Stopper::default();
        let stop = stopper.stop_signal();
        stopper.add(
            "retrain",
            tokio::spawn(jobs::retrain::run(
                routing.clone(),
                store.clone(),
                settings.routing.retrain_every(),
                stop.clone(),
            )),
        );
        let sweeper = tokio::spawn(jobs::sweeper::run(
            store.clone(),
            calendar.clone(),
            settings.sla.clone(),
            settings.server.base_url.clone(),
            Duration::from_secs(settings.sweep.interval),
            Lease::new(redis.clone()),
            stop.clone(),
        ));
        stopper.add("sweeper", sweeper);
        let outbox = tokio::spawn(jobs::outbox::run(
            store.clone(),
            mailer.clone(),
            settings.mail.from.clone(),
            Duration::from_secs(settings.mail.deliver_interval),
            chrono::Duration::seconds(settings.mail.claim_secs as i64),
            stop.clone(),
        ));
        stopper.add("outbox", outbox);
        if store.backend() == sea_orm::DbBackend::Postgres {
            let fold = tokio::spawn(jobs::fold::run(
                store.clone(),
                jobs::fold::FOLD_EVERY,
                stop.clone(),
            ));
            stopper.add("fold", fold);
        }
        // awc is single-threaded: the webhook worker runs on this thread.
        let webhooks = actix_web::rt::spawn(jobs::outbox::run_webhooks(
            store.clone(),
            settings.channels.wenzheng.secret.clone(),
            Duration::from_secs(settings.mail.deliver_interval),
            stop.clone(),
        ));
        stopper.add("webhooks", webhooks);
        if settings.report.weekly {
            let bulletin = tokio::spawn(jobs::bulletin::run(
                store.clone(),
                settings.stats.basically_satisfied_counts,
                settings.data_dir.join("reports"),
                Duration::from_secs(600),
                stop.clone(),
            ));
            stopper.add("bulletin", bulletin);
        }
        if settings.hotspots.enabled {
            let live = routing.clone();
            let hotspots = tokio::spawn(jobs::hotspots::run(
                store.clone(),
                move || live.current().catalogue.clone(),
                settings.hotspots.rules(),
                settings.server.base_url.clone(),
                settings.hotspots.every(),
                Lease::new(redis.clone()),
                stop.clone(),
            ));
            stopper.add("hotspots", hotspots);
        }
        let addr = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&addr).map_err(|source| StartupError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let workers = settings.server.workers;
        let request_timeout = settings.server.request_timeout_secs;
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
        if let Some(r) = &state.redis {
            state.tokens.listen(r);
        }
        let data = state.clone();
        let https = state
            .settings
            .server
            .base_url
            .to_ascii_lowercase()
            .starts_with("https://");
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    api::deadline::request_deadline,
                ))
                .wrap(api::problem_errors())
                .wrap(TracingLogger::default())
                .wrap(crate::web::headers::security_headers(https))
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
        // SIGTERM / SIGINT: stop accepting, let requests in flight finish
        // (none may run past the request timeout), then stop the jobs.
        server = server.shutdown_timeout(request_timeout.min(60));
        tracing::info!(%addr, port, "listening");
        Ok(Application {
            port,
            server: server.run(),
            state,
            stopper,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM/SIGINT (or a stop through the server handle),
    /// drains the requests in flight, then lets every background job finish
    /// its round and stop.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        tracing::info!("HTTP server stopped; stopping background jobs");
        self.stopper.stop(Duration::from_secs(20)).await;
        tracing::info!("stopped");
        result
    }

    /// A handle that stops the server gracefully (tests).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The server future, for tests that spawn it. The background jobs keep
    /// running until the runtime ends.
    pub fn into_server(self) -> Server {
        self.server
    }
}
