//! The hotspot job: every `hotspots.interval`, reads the appeals of the last
//! `hotspots.window`, finds clusters (pure, `domain::hotspots`), records
//! them, and mails the supervisors once per new cluster. A lease keeps other
//! instances from doing the same work; the store keeps it exactly-once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::catalogue::Catalogue;
use crate::domain::hotspots::{self, HotspotFacts, Matcher, Rules};
use crate::infra::lease::Lease;
use crate::store::escalations::{Directory, OutboxDraft};
use crate::store::hotspots::{Recorded, WindowTicket};
use crate::store::{Store, StoreResult};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HotspotReport {
    /// Tickets of the window that name a topic.
    pub appeals: usize,
    /// Clusters found this run.
    pub clusters: usize,
    /// Of them, new (one mail each).
    pub new: usize,
    /// Of them, known hotspots that gained appeals.
    pub grown: usize,
}

/// One run as of `now`.
pub async fn run_once(
    store: &Store,
    matcher: &Matcher,
    rules: &Rules,
    base_url: &str,
    now: DateTime<Utc>,
) -> StoreResult<HotspotReport> {
    let tickets = store.hotspot_window(now - rules.window, now).await?;
    let appeals: Vec<_> = tickets
        .iter()
        .filter_map(|t| matcher.appeal(&t.raw()))
        .collect();
    let clusters = hotspots::find(&appeals, rules);
    let mut report = HotspotReport {
        appeals: appeals.len(),
        clusters: clusters.len(),
        ..Default::default()
    };
    if clusters.is_empty() {
        return Ok(report);
    }
    let by_id: std::collections::HashMap<i64, &WindowTicket> =
        tickets.iter().map(|t| (t.id, t)).collect();
    let dir = Directory::load(store).await?;
    for c in &clusters {
        let topic_name = matcher.topic_name(&c.topic).unwrap_or(&c.topic);
        let facts = HotspotFacts {
            topic_name,
            district_name: c
                .district
                .as_deref()
                .map(|d| dir.department_name(d))
                .unwrap_or_default(),
            place: &c.place,
            first_at: c.first_at,
            last_at: c.last_at,
            tickets: c
                .ids
                .iter()
                .filter_map(|id| by_id.get(id))
                .map(|t| (t.ticket_no.as_str(), t.title.as_str()))
                .collect(),
        };
        let n = hotspots::notice(&facts, base_url);
        let mail = OutboxDraft {
            kind: n.kind.to_owned(),
            ticket_id: c.ids.first().copied(),
            recipient: dir.addresses(&n.audience).join(", "),
            subject: n.subject,
            body: n.body,
        };
        match store.record_hotspot(c, topic_name, &mail, now).await? {
            Recorded::New(id) => {
                report.new += 1;
                tracing::info!(hotspot = id, topic = %c.topic, place = %c.place, appeals = c.ids.len(), "new hotspot");
            }
            Recorded::Grown(_) => report.grown += 1,
            Recorded::Unchanged(_) | Recorded::Lost => {}
        }
    }
    Ok(report)
}

/// Runs `run_once` every `interval` until the process ends. `catalogue`
/// gives the catalogue in force (it may be edited while the service runs).
pub async fn run(
    store: Store,
    catalogue: impl Fn() -> Arc<Catalogue>,
    rules: Rules,
    base_url: String,
    interval: Duration,
    lease: Lease,
    mut stop: super::Stop,
) {
    let mut matcher: Option<(Arc<Catalogue>, Matcher)> = None;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if !stop.tick(&mut tick).await {
            return;
        }
        if !lease.try_acquire("hotspots", interval * 2).await {
            continue;
        }
        let current = catalogue();
        let m = match matcher.take() {
            Some((c, m)) if Arc::ptr_eq(&c, &current) => (c, m),
            _ => {
                let m = Matcher::new(&current);
                (current, m)
            }
        };
        let (_, m) = matcher.insert(m);
        match run_once(&store, m, &rules, &base_url, crate::store::now()).await {
            Ok(r) if r.new + r.grown > 0 => {
                tracing::info!(
                    clusters = r.clusters,
                    new = r.new,
                    grown = r.grown,
                    "hotspots"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "hotspot detection failed; retrying next round"),
        }
    }
}
