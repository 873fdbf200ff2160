//! The `hotline` binary: command-line parsing only.

use std::process::ExitCode;

/// mimalloc: the formatting and intake threads free what other threads
/// allocated, which glibc's allocator does slowly and with growing arenas.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use hotline::config::Settings;
use hotline::startup::{self, Application};
use hotline::{cli, telemetry};

#[derive(Parser)]
#[command(
    name = "hotline",
    version,
    about = "12345 government service hotline router"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Load the demo catalogue, one user per role and sample tickets.
    Demo {
        /// How many sample tickets to create.
        #[arg(long, default_value_t = 300)]
        tickets: usize,
    },
    /// One escalation sweep as of an instant, against the configured
    /// database (safe while servers run beside it).
    Sweep {
        /// RFC 3339 instant, e.g. 2026-11-21T09:00:00+08:00 (default: now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Deliver the outbox rows that are due now, then exit.
    Deliver,
    /// The 通报 (bulletin) of a period's figures: printed, written as text,
    /// HTML and a PNG chart, and with --mail queued to the leaders.
    Report {
        /// First city day (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// Day after the last (exclusive).
        #[arg(long)]
        to: String,
        /// Queue the bulletin to every leader through the outbox.
        #[arg(long)]
        mail: bool,
        /// Where the files go (default: <data_dir>/reports).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Export the 台账 (ledger) of tickets created in a period.
    Export(cli::ledger::ExportArgs),
    /// Import a ledger CSV (the export's columns), skipping tickets already
    /// present and reporting bad rows by line.
    Import { file: std::path::PathBuf },
    /// Fill an empty database with years of synthetic tickets (benchmarks).
    Generate(cli::generate::GenerateArgs),
    /// Train the router on one JSONL file and evaluate it on another, or by
    /// k-fold cross-validation.
    RouteEval(cli::route_eval::RouteEvalArgs),
    /// Benchmarks that print their figures.
    Bench {
        #[command(subcommand)]
        what: cli::bench::BenchCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.env);
    let result = actix_web::rt::System::new().block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => {
                let admin = std::env::var("HOTLINE_ADMIN_PASSWORD").ok();
                let store = startup::open_store(&settings).await?;
                let calendar = startup::calendar(&settings)?;
                startup::bootstrap_admin(&store, settings.env, admin).await?;
                if settings.env == hotline::config::Environment::Development
                    && store.count_tickets().await? == 0
                {
                    cli::demo::load(&settings, &store, &calendar, 300).await?;
                }
                let app = Application::build_with(settings, store, calendar).await?;
                app.run_until_stopped()
                    .await
                    .map_err(|e| startup::StartupError::Bootstrap(e.to_string()))
            }
            Command::Migrate => {
                startup::open_store(&settings).await?;
                println!("migrations applied");
                Ok(())
            }
            Command::Demo { tickets } => {
                let store = startup::open_store(&settings).await?;
                let calendar = startup::calendar(&settings)?;
                let admin = std::env::var("HOTLINE_ADMIN_PASSWORD").ok();
                startup::bootstrap_admin(&store, settings.env, admin).await?;
                cli::demo::load(&settings, &store, &calendar, tickets).await
            }
            Command::Sweep { at } => {
                let at = match at {
                    None => hotline::store::now(),
                    Some(a) => chrono::DateTime::parse_from_rfc3339(&a)
                        .map_err(|e| startup::StartupError::Bootstrap(format!("--at: {e}")))?
                        .with_timezone(&chrono::Utc),
                };
                let store = startup::open_store(&settings).await?;
                let calendar = startup::calendar(&settings)?;
                let rules = hotline::domain::lifecycle::Rules {
                    calendar: &calendar,
                    sla: &settings.sla,
                };
                let started = std::time::Instant::now();
                let r =
                    hotline::jobs::sweeper::sweep(&store, &rules, &settings.server.base_url, at)
                        .await?;
                println!(
                    "sweep at={} examined={} changed={} levels={} seconds={:.3}",
                    at.to_rfc3339(),
                    r.examined,
                    r.changed,
                    r.levels,
                    started.elapsed().as_secs_f64()
                );
                Ok(())
            }
            Command::Deliver => {
                let store = startup::open_store(&settings).await?;
                let mailer = hotline::infra::mail::Mailer::from_settings(
                    &settings.mail.smtp_url,
                    &settings.data_dir,
                )
                .map_err(|e| startup::StartupError::Bootstrap(e.to_string()))?;
                let started = std::time::Instant::now();
                let r = hotline::jobs::outbox::deliver_due(&store, &mailer, &settings.mail.from)
                    .await?;
                let sender = hotline::infra::webhook::WebhookSender::new(
                    &settings.channels.wenzheng.secret,
                );
                let w = hotline::jobs::outbox::deliver_webhooks(&store, &sender).await?;
                println!(
                    "deliver sent={} failed={} webhooks_sent={} webhooks_failed={} webhooks_parked={} seconds={:.3}",
                    r.sent,
                    r.failed,
                    w.sent,
                    w.failed,
                    w.parked,
                    started.elapsed().as_secs_f64()
                );
                Ok(())
            }
            Command::Report {
                from,
                to,
                mail,
                out,
            } => {
                let store = startup::open_store(&settings).await?;
                cli::report(&settings, &store, &from, &to, mail, out).await
            }
            Command::Export(args) => {
                let store = startup::open_store(&settings).await?;
                cli::ledger::export(&store, args).await
            }
            Command::Import { file } => {
                let store = startup::open_store(&settings).await?;
                let calendar = startup::calendar(&settings)?;
                cli::ledger::import(&settings, &store, &calendar, &file).await
            }
            Command::Generate(args) => {
                let store = startup::open_store(&settings).await?;
                let calendar = startup::calendar(&settings)?;
                cli::generate::run(&settings, &store, calendar, args).await
            }
            Command::RouteEval(args) => cli::route_eval::run(&settings, args),
            Command::Bench { what } => cli::bench::run(&settings, what).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
