//! `hotline generate`: fills an empty database with years of synthetic
//! tickets for benchmarks. Every ticket lives through the real lifecycle
//! (`domain::lifecycle::apply`, driven by `domain::simulate`) up to now, so
//! its row, its events and the rollups are exactly what the service would
//! have written. They are bulk-loaded batch by batch; the rollups are
//! accumulated and written with every 250,000th ticket's batch, in the same
//! transaction, so the figures are complete when the command finishes (an
//! interrupted run leaves a database to throw away). Histories have no
//! extension requests.

use std::time::Instant;

use chrono::{DateTime, Days, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::config::Settings;
use crate::domain::calendar::Calendar;
use crate::domain::figures::{FastRollup, Rollup, TicketDims, midnight, transition_facts};
use crate::domain::lifecycle::{self, Action, EventDraft, Rules, Ticket};
use crate::domain::simulate::propose;
use crate::domain::types::{Category, Channel, EventKind, TicketNo, TicketState, Urgency};
use crate::startup::StartupError;
use crate::store::Store;
use crate::store::bulk::BulkTicket;
use crate::store::entities::{ticket, ticket_event};

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// How many tickets.
    #[arg(long, default_value_t = 100_000)]
    pub tickets: u64,
    /// Spread evenly over this many years up to today.
    #[arg(long, default_value_t = 3)]
    pub years: u32,
    #[arg(long, default_value_t = 12345)]
    pub seed: u64,
    /// Tickets per transaction.
    #[arg(long, default_value_t = 5000)]
    pub batch: usize,
}

/// Tickets between two writes of the accumulated rollups.
const FLUSH: usize = 250_000;

fn err(e: impl std::fmt::Display) -> StartupError {
    StartupError::Bootstrap(e.to_string())
}

const DISTRICTS: &[&str] = &[
    "donghu",
    "xihu",
    "qingyunpu",
    "qingshanhu",
    "xinjian",
    "honggutan",
    "nanchang_county",
    "jinxian",
    "anyi",
];

fn weighted<T: Copy>(rng: &mut StdRng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut roll = rng.gen_range(0..total);
    for (item, w) in items {
        if roll < *w {
            return *item;
        }
        roll -= w;
    }
    items[0].0
}

struct Generator<'a> {
    rules: Rules<'a>,
    departments: Vec<String>,
    names: Vec<String>,
    now: DateTime<Utc>,
    start: DateTime<Utc>,
    days: u64,
    total: u64,
    /// Last number per (day, channel).
    numbers: std::collections::HashMap<(String, Channel), u32>,
}

impl Generator<'_> {
    /// Ticket `i` (0-based) with id `i + 1`, its history up to now, and what
    /// it adds to the rollups.
    fn ticket(&mut self, rng: &mut StdRng, i: u64, rollup: &mut FastRollup) -> BulkTicket {
        let day = i * self.days / self.total;
        let created_at = self.start
            + Duration::days(day as i64)
            + Duration::minutes(rng.gen_range(7 * 60..22 * 60))
            + Duration::milliseconds(rng.gen_range(0..60_000));
        let created_at = created_at.min(self.now);
        let channel = weighted(
            rng,
            &[
                (Channel::Hotline, 60),
                (Channel::Mailbox, 22),
                (Channel::Wenzheng, 13),
                (Channel::Open311, 5),
            ],
        );
        let category = weighted(
            rng,
            &[
                (Category::Complaint, 45),
                (Category::Consult, 26),
                (Category::Report, 17),
                (Category::Help, 4),
                (Category::Praise, 4),
                (Category::Suggestion, 4),
            ],
        );
        let urgency = if rng.gen_bool(0.08) {
            Urgency::Urgent
        } else {
            Urgency::Normal
        };
        let district = (!rng.gen_bool(0.1)).then(|| DISTRICTS[rng.gen_range(0..DISTRICTS.len())]);
        let anonymous = rng.gen_bool(0.08);
        let home = self.departments[rng.gen_range(0..self.departments.len())].clone();
        let alt = self.departments[rng.gen_range(0..self.departments.len())].clone();
        let pool = vec![home.clone(), home.clone(), home.clone(), home.clone(), alt];

        let local_day = crate::domain::figures::city_day(created_at);
        let key = (local_day.format("%Y%m%d").to_string(), channel);
        let seq = self.numbers.entry(key).or_insert(0);
        *seq += 1;
        let no = TicketNo::new(local_day, channel, *seq);
        let id = i as i64 + 1;

        let first = Ticket::registered(category, urgency, anonymous);
        let dims = TicketDims {
            channel: channel.as_str().into(),
            category: category.as_str().into(),
            district: district.unwrap_or_default().into(),
        };
        let created = EventDraft {
            kind: EventKind::Created,
            from_state: None,
            to_state: Some(TicketState::Registered),
            department: None,
            payload: serde_json::json!({"ticket_no": no.as_str(), "channel": channel,
                "category": category, "urgency": urgency}),
        };
        let mut facts = transition_facts(created_at, None, &first, &created, created_at);
        let mut events = vec![event(id, created_at, "agent", &created)];
        let mut scope: Vec<(String, &'static str, DateTime<Utc>)> = Vec::new();
        let mut t = first;
        let mut at = created_at;
        let merge_into = (id > 1).then_some(id - 1);
        for _ in 0..12 {
            let Some((actor, action, when)) = propose(rng, &t, at, &pool, None, merge_into) else {
                break;
            };
            if matches!(
                action,
                Action::RequestExtension { .. } | Action::DecideExtension { .. }
            ) {
                continue;
            }
            if when > self.now {
                break;
            }
            let Ok((after, ev)) = lifecycle::apply(&self.rules, &t, &actor, &action, when) else {
                continue;
            };
            facts.extend(transition_facts(created_at, Some(&t), &after, &ev, when));
            if ev.kind == EventKind::Dispatched {
                let mut add = |d: &String, role| {
                    if !scope.iter().any(|(x, _, _)| x == d) {
                        scope.push((d.clone(), role, when));
                    }
                };
                if let Some(d) = &after.department {
                    add(d, "lead");
                }
                for d in &after.co_departments {
                    add(d, "co");
                }
            }
            events.push(event(id, when, &actor.name, &ev));
            t = after;
            at = when;
        }

        rollup.add(&dims, &facts);
        let n = rng.gen_range(0..1_000_000_000u64);
        let row = ticket::Model {
            id,
            ticket_no: no.as_str().to_owned(),
            query_code: format!("{:06}", n % 1_000_000),
            channel: channel.as_str().into(),
            external_id: None,
            category: category.as_str().into(),
            urgency: urgency.as_str().into(),
            title: format!("{}相关诉求", self.names[rng.gen_range(0..self.names.len())]),
            content: "市民反映情况，请有关部门核实处理并答复。".into(),
            citizen_name: (!anonymous).then(|| "王先生".to_owned()),
            citizen_phone: (!anonymous).then(|| format!("13{n:09}")),
            address: district.map(|d| format!("{d}某小区")),
            district: district.map(str::to_owned),
            state: t.state.as_str().into(),
            resolution: t.resolution.map(|r| r.as_str().to_owned()),
            merged_into: t.merged_into,
            department: t.department.clone(),
            co_departments: serde_json::to_string(&t.co_departments)
                .unwrap_or_else(|_| "[]".into()),
            created_by: "agent".into(),
            created_at,
            updated_at: at,
            dispatched_at: t.dispatched_at,
            signed_at: t.signed_at,
            replied_at: t.replied_at,
            closed_at: t.closed_at,
            sign_due_at: t.sign_due_at,
            reply_due_at: t.reply_due_at,
            next_check_at: t.next_check_at,
            escalation_level: t.escalation_level,
            rework_count: t.rework_count,
            return_count: t.return_count,
            extension_count: t.extension_count,
            final_dispatch: t.final_dispatch,
            reply_content: t.reply_content.clone(),
            reply_resolved: t.reply_resolved,
            satisfaction: t.satisfaction.map(|s| s.as_str().to_owned()),
            version: events.len() as i32 - 1,
            possible_duplicate_of: None,
        };
        BulkTicket {
            row,
            events,
            departments: scope,
        }
    }
}

fn event(ticket_id: i64, at: DateTime<Utc>, actor: &str, e: &EventDraft) -> ticket_event::Model {
    ticket_event::Model {
        id: 0,
        ticket_id,
        at,
        actor: actor.to_owned(),
        kind: e.kind.as_str().to_owned(),
        from_state: e.from_state.map(|s| s.as_str().to_owned()),
        to_state: e.to_state.map(|s| s.as_str().to_owned()),
        department: e.department.clone(),
        payload: e.payload.to_string(),
    }
}

pub async fn run(
    settings: &Settings,
    store: &Store,
    calendar: Calendar,
    args: GenerateArgs,
) -> Result<(), StartupError> {
    if store.count_tickets().await? > 0 {
        return Err(err(
            "generate fills an empty database; this one already has tickets",
        ));
    }
    super::demo::ensure_departments(settings, store).await?;
    let catalogue = settings.load_catalogue()?;
    let departments: Vec<String> = catalogue
        .departments
        .iter()
        .map(|d| d.code.as_str().to_owned())
        .collect();
    let names: Vec<String> = catalogue.topics.iter().map(|t| t.name.clone()).collect();
    let names = if names.is_empty() {
        vec!["民生".to_owned()]
    } else {
        names
    };
    let now = crate::store::now();
    let today = crate::domain::figures::city_day(now);
    let first_day = today - Days::new(u64::from(args.years) * 365);
    let days = (today - first_day).num_days() as u64 + 1;
    let total = args.tickets;
    let batch = args.batch.max(1);
    let sla = settings.sla.clone();

    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} tickets ({per_sec}, eta {eta})",
        )
        .map_err(err)?,
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Vec<BulkTicket>, Rollup)>(4);
    let seed = args.seed;
    // The histories are simulated on a thread of their own while the
    // database writes the previous batch.
    let producer = std::thread::spawn(move || {
        let rules = Rules {
            calendar: &calendar,
            sla: &sla,
        };
        let mut g = Generator {
            rules,
            departments,
            names,
            now,
            start: midnight(first_day),
            days,
            total,
            numbers: Default::default(),
        };
        let mut rng = StdRng::seed_from_u64(seed);
        let mut rollup = FastRollup::default();
        let mut i = 0;
        let mut since_flush = 0;
        while i < total {
            let end = (i + batch as u64).min(total);
            let tickets: Vec<BulkTicket> = (i..end)
                .map(|k| g.ticket(&mut rng, k, &mut rollup))
                .collect();
            since_flush += tickets.len();
            // The rollups travel with every FLUSH-th ticket's batch (and the
            // last): far fewer row updates than one set per batch.
            let r = if since_flush >= FLUSH || end == total {
                since_flush = 0;
                rollup.take()
            } else {
                Rollup::new()
            };
            if tx.blocking_send((tickets, r)).is_err() {
                break;
            }
            i = end;
        }
        g.numbers
    });

    // Secondary indexes are dropped for the load and built again after:
    // building an index once is far cheaper than keeping it up row by row.
    let indexes = store.drop_secondary_indexes().await?;

    let started = Instant::now();
    let (mut tickets, mut events) = (0u64, 0u64);
    while let Some((batch, rollup)) = rx.recv().await {
        store.bulk_insert(&batch, &rollup).await?;
        tickets += batch.len() as u64;
        events += batch.iter().map(|t| t.events.len() as u64).sum::<u64>();
        bar.set_position(tickets);
        if !bar.is_hidden() {
            continue;
        }
        if tickets % (batch.len() as u64 * 20) == 0 {
            eprintln!("generate: {tickets}/{total} tickets");
        }
    }
    bar.finish_and_clear();
    let loaded = started.elapsed().as_secs_f64();
    store.create_indexes(&indexes).await?;
    let numbers = producer
        .join()
        .map_err(|_| err("the generator thread panicked"))?;

    // Today's numbers continue after the generated ones, and PostgreSQL's
    // id sequence after the largest id.
    let b = store.backend();
    for ((day, channel), last) in numbers {
        let sql = format!(
            "INSERT INTO ticket_sequences (day, channel, last) VALUES ('{day}', '{}', {last}) \
             ON CONFLICT (day, channel) DO UPDATE SET last = excluded.last",
            channel.as_str()
        );
        store.db.execute_unprepared(&sql).await.map_err(err)?;
    }
    if b == DbBackend::Postgres {
        for table in ["tickets", "ticket_events"] {
            store
                .db
                .execute_raw(Statement::from_string(
                    b,
                    format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
                    ),
                ))
                .await
                .map_err(err)?;
        }
    }
    store.db.execute_unprepared("ANALYZE").await.map_err(err)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "generate tickets={tickets} events={events} days={days} load_seconds={loaded:.1} \
         index_seconds={:.1} seconds={secs:.1} tickets_per_s={:.0}",
        secs - loaded,
        tickets as f64 / secs
    );
    Ok(())
}
