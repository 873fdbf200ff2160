//! Outbox delivery: every instance claims pending rows (a compare-and-set
//! lease, so two workers never send the same row), sends them concurrently,
//! and marks them sent — or schedules a retry with back-off. Nothing is ever
//! dropped: a row stays pending until a transport accepts it, or — a webhook
//! the receiver refuses with a 4xx — is parked as `failed` for an admin.
//! Mail and webhooks are claimed and sent by separate workers.

use std::time::Duration;

use futures_util::StreamExt;

use crate::infra::mail::{CONCURRENCY, Mailer};
use crate::infra::webhook::{self, Outcome, WebhookSender};
use crate::store::outbox::Transport;
use crate::store::{Store, StoreResult};

const BATCH: u64 = 64;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub sent: usize,
    /// Attempts that failed and will be retried.
    pub failed: usize,
    /// Rows refused for good and parked as `failed`.
    pub parked: usize,
}

/// Delivers what is due now, batch after batch, until nothing is left.
pub async fn deliver_due(
    store: &Store,
    mailer: &Mailer,
    from: &str,
) -> StoreResult<DeliveryReport> {
    deliver_due_claiming(store, mailer, from, chrono::Duration::minutes(5)).await
}

/// The Message-ID of an outbox row's mail: the same row always gets the
/// same one, so a receiver can tell a repeat from a new notification.
pub fn message_id(row_id: i64) -> String {
    format!("<outbox-{row_id}@hotline.12345>")
}

/// [`deliver_due`] with the claim lease of `mail.claim_secs`. Each row is
/// marked sent as soon as its own message is accepted, and that mark is
/// retried through a short database outage: a row is only sent again if
/// its instance died between the SMTP server's acceptance and the mark.
pub async fn deliver_due_claiming(
    store: &Store,
    mailer: &Mailer,
    from: &str,
    claim: chrono::Duration,
) -> StoreResult<DeliveryReport> {
    let mut report = DeliveryReport::default();
    loop {
        let now = crate::store::now();
        let rows = store
            .claim_outbox(Transport::Mail, now, claim, BATCH)
            .await?;
        if rows.is_empty() {
            return Ok(report);
        }
        let sends: Vec<_> = rows
            .iter()
            .map(|row| Box::pin(deliver_one(store, mailer, from, row, claim)))
            .collect();
        let results: Vec<_> = futures_util::stream::iter(sends)
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for (ok, marked) in results {
            marked?;
            if ok {
                report.sent += 1;
            } else {
                report.failed += 1;
            }
        }
    }
}

/// Sends one row's mail and records the outcome: (accepted, recorded).
async fn deliver_one(
    store: &Store,
    mailer: &Mailer,
    from: &str,
    row: &crate::store::entities::outbox::Model,
    claim: chrono::Duration,
) -> (bool, StoreResult<()>) {
    let res = mailer
        .send_message(
            from,
            &row.recipient,
            &row.subject,
            &row.body,
            Some(message_id(row.id)),
        )
        .await;
    // The mark is retried while the claim is ours: until then no other
    // worker may take the row, so a mark that lands in time means "once".
    let hold = claim.to_std().unwrap_or_default();
    let mut persist = Persist::new(
        hold.saturating_sub(Duration::from_secs(5))
            .max(Duration::from_secs(10)),
    );
    let marked = loop {
        let r = match &res {
            Ok(()) => {
                store
                    .outbox_sent(std::slice::from_ref(&row.id), crate::store::now())
                    .await
            }
            Err(e) => {
                store
                    .outbox_failed(row, &e.to_string(), crate::store::now())
                    .await
            }
        };
        if !persist.again(&r).await {
            break r;
        }
    };
    if let Err(e) = &res {
        tracing::warn!(outbox = row.id, attempts = row.attempts + 1, error = %e, "delivery failed; will retry");
    }
    (res.is_ok(), marked)
}

/// Retries a small write while the database is unavailable (a restart), up
/// to a patience: losing a "sent" mark would mean sending twice.
struct Persist {
    give_up: std::time::Instant,
    delay: Duration,
}

impl Persist {
    fn new(patience: Duration) -> Persist {
        Persist {
            give_up: std::time::Instant::now() + patience,
            delay: Duration::from_millis(100),
        }
    }

    /// `true` when `r` failed for a reason worth waiting out (after the wait).
    async fn again(&mut self, r: &StoreResult<()>) -> bool {
        match r {
            Err(e) if e.is_unavailable() && std::time::Instant::now() < self.give_up => {
                tokio::time::sleep(self.delay).await;
                self.delay = (self.delay * 2).min(Duration::from_secs(2));
                true
            }
            _ => false,
        }
    }
}

/// Delivers the due webhooks (问政江西 reply pushes), batch after batch,
/// until nothing is left: 2xx → sent; 5xx, 408, 429, timeout, no connection
/// → retried with back-off; any other 4xx → parked as `failed`.
pub async fn deliver_webhooks(
    store: &Store,
    sender: &WebhookSender,
) -> StoreResult<DeliveryReport> {
    let mut report = DeliveryReport::default();
    loop {
        let now = crate::store::now();
        let rows = store
            .claim_outbox(Transport::Webhook, now, chrono::Duration::minutes(5), BATCH)
            .await?;
        if rows.is_empty() {
            return Ok(report);
        }
        let sends: Vec<_> = rows
            .iter()
            .map(|r| Box::pin(sender.send(&r.recipient, &r.body)))
            .collect();
        let results: Vec<Outcome> = futures_util::stream::iter(sends)
            .buffered(webhook::CONCURRENCY)
            .collect()
            .await;
        let mut sent = Vec::new();
        for (row, outcome) in rows.iter().zip(results) {
            match outcome {
                Outcome::Delivered => sent.push(row.id),
                Outcome::Retry { error, retry_after } => {
                    report.failed += 1;
                    tracing::warn!(outbox = row.id, attempts = row.attempts + 1, %error, "webhook not accepted; will retry");
                    let at_least = retry_after
                        .and_then(|d| chrono::Duration::from_std(d).ok())
                        .unwrap_or_else(chrono::Duration::zero);
                    store
                        .outbox_retry_after(row, &error, crate::store::now(), at_least)
                        .await?;
                }
                Outcome::Refused { error } => {
                    report.parked += 1;
                    tracing::error!(outbox = row.id, url = %row.recipient, %error, "webhook refused; parked as failed");
                    store.outbox_park(row, &error, crate::store::now()).await?;
                }
            }
        }
        report.sent += sent.len();
        store.outbox_sent(&sent, crate::store::now()).await?;
    }
}

/// Runs webhook delivery every `interval` until the process ends. Not
/// `Send`: spawn it on the current thread (`actix_web::rt::spawn`).
pub async fn run_webhooks(store: Store, secret: String, interval: Duration, mut stop: super::Stop) {
    let sender = WebhookSender::new(&secret);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if !stop.tick(&mut tick).await {
            return;
        }
        match deliver_webhooks(&store, &sender).await {
            Ok(r) if r.sent + r.failed + r.parked > 0 => {
                tracing::info!(
                    sent = r.sent,
                    failed = r.failed,
                    parked = r.parked,
                    "webhook delivery"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "webhook delivery failed; retrying next round"),
        }
    }
}

/// Runs delivery every `interval` until the process ends.
pub async fn run(
    store: Store,
    mailer: Mailer,
    from: String,
    interval: Duration,
    claim: chrono::Duration,
    mut stop: super::Stop,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if !stop.tick(&mut tick).await {
            return;
        }
        match deliver_due_claiming(&store, &mailer, &from, claim).await {
            Ok(r) if r.sent + r.failed > 0 => {
                tracing::info!(sent = r.sent, failed = r.failed, "outbox delivery")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "outbox delivery failed; retrying next round"),
        }
    }
}
