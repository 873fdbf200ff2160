//! `hotline export` and `hotline import`: the 台账 on the command line, with
//! progress bars when run in a terminal.

use std::io::Write;
use std::time::Instant;

use crate::config::Settings;
use crate::domain::calendar::Calendar;
use crate::domain::figures::Period;
use crate::domain::lifecycle::Rules;
use crate::ledger::{ExportQuery, export_csv, export_xlsx, import_csv};
use crate::startup::StartupError;
use crate::store::Store;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// First city day (YYYY-MM-DD) of ticket creation.
    #[arg(long)]
    pub from: String,
    /// Day after the last (exclusive).
    #[arg(long)]
    pub to: String,
    #[arg(long, value_parser = ["csv", "xlsx"], default_value = "csv")]
    pub format: String,
    /// Only tickets this department handles or handled.
    #[arg(long)]
    pub department: Option<String>,
    /// Citizen names and phones in full (writes an access-log row).
    #[arg(long, requires = "reason")]
    pub unmasked: bool,
    /// Why the unmasked data is needed (for the access log).
    #[arg(long)]
    pub reason: Option<String>,
    /// Output file (CSV goes to standard output without one).
    #[arg(long, short)]
    pub output: Option<std::path::PathBuf>,
}

fn err(e: impl std::fmt::Display) -> StartupError {
    StartupError::Bootstrap(e.to_string())
}

fn bar(len: Option<u64>, what: &str) -> indicatif::ProgressBar {
    let b = match len {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let template = if len.is_some() {
        format!(
            "{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {what} ({{per_sec}}, eta {{eta}})"
        )
    } else {
        format!("{{elapsed_precise}} {{spinner}} {{pos}} {what} ({{per_sec}})")
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
        b.set_style(style);
    }
    b
}

pub async fn export(store: &Store, args: ExportArgs) -> Result<(), StartupError> {
    let period = Period::parse(&args.from, &args.to).map_err(err)?;
    if let Some(d) = &args.department
        && store.department(d).await?.is_none()
    {
        return Err(err(format!("--department: no department {d:?}")));
    }
    let q = ExportQuery {
        period,
        department: args.department.clone(),
        unmasked: args.unmasked,
    };
    if args.unmasked {
        let who = std::env::var("USER").unwrap_or_else(|_| "cli".into());
        store
            .log_access(
                &who,
                "operator",
                None,
                "export_unmasked",
                &format!(
                    "{} ({}..{}{})",
                    args.reason.as_deref().unwrap_or_default(),
                    period.from,
                    period.to,
                    args.department
                        .as_deref()
                        .map(|d| format!(", {d}"))
                        .unwrap_or_default()
                ),
                crate::store::now(),
            )
            .await?;
    }
    let total = q.count(store).await?;
    let progress = bar(Some(total), "tickets");
    let started = Instant::now();
    let n = match (args.format.as_str(), &args.output) {
        ("xlsx", Some(path)) => export_xlsx(store, &q, path, |n| progress.set_position(n)).await?,
        ("xlsx", None) => return Err(err("--format xlsx needs --output <file>")),
        (_, Some(path)) => {
            let f =
                std::fs::File::create(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
            export_csv(
                store,
                &q,
                std::io::BufWriter::with_capacity(1 << 20, f),
                |n| progress.set_position(n),
            )
            .await?
        }
        (_, None) => {
            let out = std::io::stdout().lock();
            export_csv(
                store,
                &q,
                std::io::BufWriter::with_capacity(1 << 20, out),
                |n| progress.set_position(n),
            )
            .await?
        }
    };
    progress.finish_and_clear();
    eprintln!(
        "export rows={n} format={} seconds={:.2}",
        args.format,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub async fn import(
    settings: &Settings,
    store: &Store,
    calendar: &Calendar,
    file: &std::path::Path,
) -> Result<(), StartupError> {
    let f = std::fs::File::open(file).map_err(|e| err(format!("{}: {e}", file.display())))?;
    let rules = Rules {
        calendar,
        sla: &settings.sla,
    };
    let progress = bar(None, "rows");
    let started = Instant::now();
    let report = import_csv(
        store,
        &rules,
        std::io::BufReader::with_capacity(1 << 20, f),
        |n| progress.set_position(n),
    )
    .await?;
    progress.finish_and_clear();
    let mut err_out = std::io::stderr().lock();
    for (line, why) in &report.bad {
        let _ = writeln!(err_out, "line {line}: {why}");
    }
    println!(
        "import imported={} existing={} bad={} seconds={:.2}",
        report.imported,
        report.existing,
        report.bad.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
