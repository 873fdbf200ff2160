//! The escalation sweeper: reads only tickets whose `next_check_at` has come
//! (indexed), evaluates them with the pure escalation rules, and records
//! each level change once — event and mail in the same transaction, guarded
//! by a compare-and-set — however many sweepers run at once.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::escalation;
use crate::domain::lifecycle::Rules;
use crate::domain::notify::{self, TicketFacts};
use crate::store::escalations::{Directory, EscalationWrite};
use crate::store::tickets::to_domain;
use crate::store::{Store, StoreResult};

/// Tickets read a round, committed as `PARALLEL` transactions of `CHUNK`
/// at once (PostgreSQL works them on several cores; SQLite queues them).
const PAGE: u64 = 4000;
const CHUNK: usize = 1000;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Tickets read because a threshold had come.
    pub examined: usize,
    /// Tickets whose level (or schedule) this sweep changed.
    pub changed: usize,
    /// Level changes recorded (one event each).
    pub levels: usize,
}

/// One sweep as of `at`.
pub async fn sweep(
    store: &Store,
    rules: &Rules<'_>,
    base_url: &str,
    at: DateTime<Utc>,
) -> StoreResult<SweepReport> {
    let mut report = SweepReport::default();
    let mut directory: Option<Directory> = None;
    loop {
        // Every ticket a sweep changes moves its `next_check_at` past `at`,
        // so each round reads fresh work from the front of the index.
        let page = store.due_for_check(at, PAGE).await?;
        if page.is_empty() {
            break;
        }
        report.examined += page.len();
        // Addresses are looked up once a sweep, and only when work is due.
        let dir = match directory.take() {
            Some(d) => d,
            None => Directory::load(store).await?,
        };
        let dir = &*directory.insert(dir);
        let mut writes = Vec::with_capacity(page.len());
        for m in &page {
            let current = to_domain(m)?;
            let Some(e) = escalation::evaluate(rules, &current, at) else {
                continue;
            };
            let department = m.department.clone().unwrap_or_default();
            let facts = TicketFacts {
                id: m.id,
                ticket_no: &m.ticket_no,
                title: &m.title,
                department_name: dir.department_name(&department),
            };
            let mut outbox = Vec::new();
            for ev in &e.events {
                let level = ev.payload["level"].as_i64().unwrap_or(0) as i16;
                let n = notify::escalation(
                    &facts,
                    &department,
                    level,
                    e.clock.as_str(),
                    e.deadline,
                    at,
                    base_url,
                );
                outbox.push(dir.draft(&n, m.id));
            }
            writes.push(EscalationWrite {
                before: m,
                escalation: e,
                outbox,
            });
        }
        let commits = writes
            .chunks(CHUNK)
            .map(|chunk| store.commit_escalations(chunk, at));
        let mut changed = 0;
        for r in futures_util::future::join_all(commits).await {
            let (c, l) = r?;
            changed += c;
            report.levels += l;
        }
        report.changed += changed;
        // A page where every compare-and-set lost went to other sweepers,
        // which carry on; stopping here keeps two sweepers from chasing
        // each other. What is left is read again by the next round.
        if changed == 0 || (page.len() as u64) < PAGE {
            break;
        }
    }
    Ok(report)
}

/// Runs `sweep` every `interval` until the process ends. Errors are logged
/// and the next round tries again: a missed round is caught up by the next.
pub async fn run(
    store: Store,
    calendar: crate::domain::calendar::Calendar,
    sla: crate::domain::sla::SlaPolicy,
    base_url: String,
    interval: Duration,
    lease: crate::infra::lease::Lease,
    mut stop: super::Stop,
) {
    let rules = Rules {
        calendar: &calendar,
        sla: &sla,
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if !stop.tick(&mut tick).await {
            return;
        }
        // The lease only saves work; the compare-and-set keeps it correct.
        if !lease.try_acquire("sweeper", interval * 2).await {
            continue;
        }
        match sweep(&store, &rules, &base_url, crate::store::now()).await {
            Ok(r) if r.levels > 0 => {
                tracing::info!(
                    examined = r.examined,
                    changed = r.changed,
                    levels = r.levels,
                    "sweep"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "sweep failed; retrying next round"),
        }
    }
}
