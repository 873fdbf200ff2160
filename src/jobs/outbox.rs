//! Outbox delivery: every instance claims pending rows (a compare-and-set
//! lease, so two workers never send the same row), sends them concurrently,
//! and marks them sent — or schedules a retry with back-off. Nothing is ever
//! dropped: a row stays pending until a transport accepts it.

use std::time::Duration;

use futures_util::StreamExt;

use crate::infra::mail::{CONCURRENCY, Mailer};
use crate::store::{Store, StoreResult};

const BATCH: u64 = 64;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: usize,
    pub failed: usize,
}

/// Delivers what is due now, batch after batch, until nothing is left.
pub async fn deliver_due(
    store: &Store,
    mailer: &Mailer,
    from: &str,
) -> StoreResult<DeliveryReport> {
    let mut report = DeliveryReport::default();
    loop {
        let now = crate::store::now();
        let rows = store
            .claim_outbox(now, chrono::Duration::minutes(5), BATCH)
            .await?;
        if rows.is_empty() {
            return Ok(report);
        }
        let sends: Vec<_> = rows
            .iter()
            .map(|r| Box::pin(mailer.send(from, &r.recipient, &r.subject, &r.body)))
            .collect();
        let results: Vec<_> = futures_util::stream::iter(sends)
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let mut sent = Vec::new();
        for (row, res) in rows.iter().zip(results) {
            match res {
                Ok(()) => sent.push(row.id),
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(outbox = row.id, attempts = row.attempts + 1, error = %e, "delivery failed; will retry");
                    store
                        .outbox_failed(row, &e.to_string(), crate::store::now())
                        .await?;
                }
            }
        }
        report.sent += sent.len();
        store.outbox_sent(&sent, crate::store::now()).await?;
    }
}

/// Runs delivery every `interval` until the process ends.
pub async fn run(store: Store, mailer: Mailer, from: String, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match deliver_due(&store, &mailer, &from).await {
            Ok(r) if r.sent + r.failed > 0 => {
                tracing::info!(sent = r.sent, failed = r.failed, "outbox delivery")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "outbox delivery failed; retrying next round"),
        }
    }
}
