//! Command-line work beyond `serve`: demo data and benchmarks.

pub mod bench;
pub mod bench_pages;
pub mod demo;
pub mod generate;
pub mod ledger;
pub mod route_eval;
pub mod soak;

/// `hotline report`: prints the bulletin, writes its files, and with `mail`
/// queues it to the leaders (once per period).
pub async fn report(
    settings: &crate::config::Settings,
    store: &crate::store::Store,
    from: &str,
    to: &str,
    mail: bool,
    out: Option<std::path::PathBuf>,
) -> Result<(), crate::startup::StartupError> {
    use crate::startup::StartupError;
    let period =
        crate::domain::figures::Period::parse(from, to).map_err(StartupError::Bootstrap)?;
    let b = crate::report::build(store, period, settings.stats.basically_satisfied_counts).await?;
    print!("{}", b.text());
    let dir = out.unwrap_or_else(|| settings.data_dir.join("reports"));
    let files = crate::jobs::bulletin::write_files(&b, &dir)
        .map_err(|e| StartupError::Bootstrap(format!("{}: {e}", dir.display())))?;
    for f in files {
        eprintln!("wrote {}", f.display());
    }
    if mail {
        let draft = b.draft_mail(store).await?;
        if draft.recipient.is_empty() {
            eprintln!(
                "no leader has an e-mail address: the bulletin is recorded as `no_recipient`"
            );
        }
        if store.queue_once(&draft, crate::store::now()).await? {
            eprintln!("queued to: {}", draft.recipient);
        } else {
            eprintln!("this period's bulletin was already queued; not sent twice");
        }
    }
    Ok(())
}
