//! Ticket registration on PostgreSQL: a batch of appeals in two round trips,
//! each one statement whose text never changes with the batch (the rows
//! travel as arrays), so every session prepares and plans it once.
//!
//! 1. On the number-allocation sessions (asynchronous commit): the daily
//!    sequence numbers for every channel of the batch and the earlier
//!    tickets the appeals may repeat, in one statement. (A batch with
//!    external ids first looks up those already registered, so that a
//!    repeated push does not take a number.)
//! 2. On the intake sessions: the tickets, their `created` events and the
//!    intake figures (appended to `stats_pending`) in one statement,
//!    committed durably.
//!
//! An intake writer runs both on sessions of its own (`pg_lanes`), not on a
//! pool, and stage 2 waits for its turn in the writers' pipeline
//! (`intake::Handover`). Other callers (the demo, tests) use two small pools.
//!
//! The statements run with generic plans, made once per session, on
//! sessions where sequential scans, hash and merge joins are off, and the
//! look-up of earlier tickets is written so that only the phone and address
//! indexes can serve it (see [`ALLOCATE`]): a plan made while the table was
//! small (a fresh database grows faster than autovacuum analyses it) cannot
//! turn into a read of many tickets per batch later. A test checks the plan
//! made on an empty table.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, Row};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::duplicates::{MAX_EARLIER, Repeat, Row as Earlier, lookup_keys, match_earlier};
use super::entities::ticket;
use super::intake::Handover;
use super::pg_lanes::{Role, Sessions};
use super::tickets::{Created, answers, creation_rollup, query_code, registered_model};
use super::{Store, StoreError, StoreResult, sqlx_error};
use crate::domain::appeal::NewAppeal;
use crate::domain::calendar::city_tz;
use crate::domain::duplicates::window_start;
use crate::domain::figures::Col;
use crate::domain::types::{Channel, TicketNo, TicketState};

/// Session settings of the allocation and intake pools (see the module
/// comment); `jit` is off everywhere (see `Store::connect`). With
/// sequential scans, hash and merge joins off, the earlier tickets can only
/// be read by a nested loop over the batch's phones (addresses) probing
/// their index.
pub const SESSION_OPTIONS: [(&str, &str); 5] = [
    ("jit", "off"),
    ("enable_seqscan", "off"),
    ("enable_hashjoin", "off"),
    ("enable_mergejoin", "off"),
    ("plan_cache_mode", "force_generic_plan"),
];

/// Round trip 1: numbers for `$2` channels (`$3` each) on day `$1`, and the
/// tickets since `$4` with a phone in `$5` or an address in `$6`. Sequence
/// rows come back with `last` set, earlier tickets (oldest first) without.
/// The window is written as a row comparison led by the phone (address),
/// which only an index led by that column can serve: no plan can read the
/// window through the index on `created_at` alone, which a plan made on an
/// empty table preferred and which then read every ticket of the last three
/// days for each batch.
pub static ALLOCATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH s AS (\
           INSERT INTO ticket_sequences (day, channel, last) \
           SELECT $1, u.c, u.n FROM unnest($2::text[], $3::int8[]) AS u(c, n) \
           ON CONFLICT (day, channel) DO UPDATE SET last = ticket_sequences.last + excluded.last \
           RETURNING channel, last), \
         r AS MATERIALIZED (\
           SELECT t.id, t.ticket_no, t.citizen_phone, t.address, t.category, t.title, t.content \
           FROM unnest($5::text[]) AS k(phone) JOIN tickets t ON t.citizen_phone = k.phone \
           WHERE (t.citizen_phone, t.created_at) >= (k.phone, $4) AND t.state <> '{merged}' \
           UNION \
           SELECT t.id, t.ticket_no, t.citizen_phone, t.address, t.category, t.title, t.content \
           FROM unnest($6::text[]) AS k(address) JOIN tickets t ON t.address = k.address \
           WHERE (t.address, t.created_at) >= (k.address, $4) AND t.state <> '{merged}') \
         SELECT channel::text, last, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text FROM s \
         UNION ALL \
         (SELECT NULL::text, NULL::int8, ticket_no::text, citizen_phone::text, address::text, \
                 category::text, title::text, content::text \
          FROM r ORDER BY id LIMIT {MAX_EARLIER})",
        merged = TicketState::Merged.as_str(),
    )
});

/// Registered tickets among `$1` external ids × `$2` channels.
const EXISTING: &str = "SELECT t.id FROM tickets t \
     JOIN unnest($1::text[], $2::text[]) AS k(external_id, channel) \
       ON t.external_id = k.external_id AND t.channel = k.channel";

/// Round trip 2: the tickets (`$1`…`$14` per ticket, `$15` the instant),
/// their `created` events (the payload `intake_sqlite` writes on
/// SQLite) and the rollup rows (`$16`… per row) in one statement. The
/// rollup rows are appended to `stats_pending` (figures read them there from
/// the commit on) rather than upserted into `stats_daily`: a plain append
/// takes no row lock and leaves no dead row, and the fold job
/// ([`Store::fold_live_pending`]) adds them into `stats_daily` every second
/// or two. Side by side with the upsert: 6,377 / 6,182 tickets/s against
/// 5,727 / 5,693.
static INSERT: LazyLock<String> = LazyLock::new(|| {
    let cols: Vec<&str> = Col::ALL.iter().map(|c| c.name()).collect();
    let counters: Vec<String> = (0..cols.len())
        .map(|k| format!("${}::int8[]", 21 + k))
        .collect();
    format!(
        "WITH t AS (\
           INSERT INTO tickets (ticket_no, query_code, channel, external_id, category, urgency, \
             title, content, citizen_name, citizen_phone, address, district, created_by, \
             possible_duplicate_of, state, co_departments, created_at, updated_at, \
             escalation_level, rework_count, return_count, extension_count, final_dispatch, version) \
           SELECT u.*, '{registered}', '[]', $15, $15, 0, 0, 0, 0, false, 0 \
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                       $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
                       $13::text[], $14::text[]) AS u \
           RETURNING id, ticket_no, channel, category, urgency, created_by, created_at), \
         e AS (\
           INSERT INTO ticket_events (ticket_id, at, actor, kind, from_state, to_state, department, payload) \
           SELECT id, created_at, created_by, 'created', NULL, '{registered}', NULL, \
             json_build_object('ticket_no', ticket_no, 'channel', channel, 'category', category, \
                               'urgency', urgency)::text \
           FROM t), \
         s AS (\
           INSERT INTO stats_pending (dim, day, department, value, shard, {cols}) \
           SELECT * FROM unnest($16::text[], $17::int4[], $18::text[], $19::text[], $20::int2[], {counters})) \
         SELECT id, ticket_no::text FROM t",
        registered = TicketState::Registered.as_str(),
        cols = cols.join(", "),
        counters = counters.join(", "),
    )
});

impl Store {
    /// The PostgreSQL side of [`Store::create_tickets_on`]: one batch, all
    /// or nothing (a failed batch leaves a gap in the day's numbers; it never
    /// repeats one).
    pub(super) async fn create_batch_pg(
        &self,
        items: &[NewAppeal],
        now: DateTime<Utc>,
        shard: i16,
        handover: &mut Handover,
    ) -> StoreResult<Vec<Created>> {
        let (Some(alloc), Some(intake)) = (&self.alloc_db, &self.intake_db) else {
            return Err(StoreError::Conflict("not a PostgreSQL store".into()));
        };
        let sessions = match self.pg_lanes.as_ref().and_then(|l| l.lane(shard)) {
            Some(lane) => Sessions::Lane(lane),
            None => Sessions::Pools { alloc, intake },
        };

        // The first appeal of each external id is a candidate; already
        // registered ones answer with their ticket.
        let mut first_of: HashMap<(Channel, &str), usize> = HashMap::new();
        let mut candidates: Vec<usize> = Vec::with_capacity(items.len());
        for (idx, i) in items.iter().enumerate() {
            match &i.external_id {
                Some(ext) => {
                    if first_of.contains_key(&(i.channel, ext.as_str())) {
                        continue;
                    }
                    first_of.insert((i.channel, ext.as_str()), idx);
                    candidates.push(idx);
                }
                None => candidates.push(idx),
            }
        }
        let mut existing: HashMap<(Channel, String), ticket::Model> = HashMap::new();
        if !first_of.is_empty() {
            let (exts, channels): (Vec<&str>, Vec<&str>) =
                first_of.keys().map(|(ch, ext)| (*ext, ch.as_str())).unzip();
            let ids: Vec<i64> = sessions
                .fetch_all(Role::Alloc, sqlx::query(EXISTING).bind(exts).bind(channels))
                .await
                .map_err(sqlx_error)?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()
                .map_err(sqlx_error)?;
            if !ids.is_empty() {
                let found = ticket::Entity::find()
                    .filter(ticket::Column::Id.is_in(ids))
                    .all(&self.db)
                    .await?;
                for t in found {
                    let ch = t
                        .channel
                        .parse::<Channel>()
                        .map_err(|_| StoreError::Corrupt(format!("channel `{}`", t.channel)))?;
                    if let Some(ext) = t.external_id.clone() {
                        existing.insert((ch, ext), t);
                    }
                }
            }
        }
        let fresh: Vec<usize> = candidates
            .into_iter()
            .filter(|idx| {
                let i = &items[*idx];
                i.external_id
                    .as_ref()
                    .is_none_or(|e| !existing.contains_key(&(i.channel, e.clone())))
            })
            .collect();

        let mut created_for: HashMap<usize, ticket::Model> = HashMap::new();
        if !fresh.is_empty() {
            created_for = self
                .insert_fresh(&sessions, items, &fresh, now, shard, handover)
                .await?;
        }

        answers(items, &created_for, &existing)
    }

    /// Numbers, repeats and rows for the `fresh` appeals of `items`.
    async fn insert_fresh(
        &self,
        sessions: &Sessions<'_>,
        items: &[NewAppeal],
        fresh: &[usize],
        now: DateTime<Utc>,
        shard: i16,
        handover: &mut Handover,
    ) -> StoreResult<HashMap<usize, ticket::Model>> {
        let day = now.with_timezone(&city_tz()).date_naive();
        let day_key = day.format("%Y%m%d").to_string();
        // Channels in one order for every writer: rows locked alike.
        let mut per_channel: Vec<(Channel, i64)> = Vec::new();
        for idx in fresh {
            let ch = items[*idx].channel;
            match per_channel.iter_mut().find(|(c, _)| *c == ch) {
                Some((_, n)) => *n += 1,
                None => per_channel.push((ch, 1)),
            }
        }
        per_channel.sort_by_key(|(c, _)| c.as_str());
        let fresh_items: Vec<&NewAppeal> = fresh.iter().map(|i| &items[*i]).collect();
        let (phones, addresses) = lookup_keys(&fresh_items);

        let allocate = sqlx::query(ALLOCATE.as_str())
            .bind(&day_key)
            .bind(
                per_channel
                    .iter()
                    .map(|(c, _)| c.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(per_channel.iter().map(|(_, n)| *n).collect::<Vec<_>>())
            .bind(window_start(now))
            .bind(phones)
            .bind(addresses);
        let rows = sessions
            .fetch_all(Role::Alloc, allocate)
            .await
            .map_err(sqlx_error)?;
        let mut next_seq: HashMap<Channel, i64> = HashMap::new();
        let mut earlier: Vec<Earlier> = Vec::new();
        for r in rows {
            let last: Option<i64> = r.try_get(1).map_err(sqlx_error)?;
            if let Some(last) = last {
                let ch: String = r.try_get(0).map_err(sqlx_error)?;
                let ch = ch
                    .parse::<Channel>()
                    .map_err(|_| StoreError::Corrupt(format!("channel `{ch}`")))?;
                if last > 999_999 {
                    return Err(StoreError::Conflict(format!(
                        "the daily sequence for {ch} on {day_key} is exhausted"
                    )));
                }
                let n = per_channel
                    .iter()
                    .find(|(c, _)| *c == ch)
                    .map_or(0, |(_, n)| *n);
                next_seq.insert(ch, last - n + 1);
            } else {
                earlier.push((
                    r.try_get(2).map_err(sqlx_error)?,
                    r.try_get(3).map_err(sqlx_error)?,
                    r.try_get(4).map_err(sqlx_error)?,
                    r.try_get(5).map_err(sqlx_error)?,
                    r.try_get(6).map_err(sqlx_error)?,
                    r.try_get(7).map_err(sqlx_error)?,
                ));
            }
        }
        let repeats = match_earlier(&fresh_items, &earlier);

        // The rows, column by column.
        let n = fresh.len();
        let mut numbers: Vec<String> = Vec::with_capacity(n);
        let mut codes: Vec<String> = Vec::with_capacity(n);
        let mut dup: Vec<Option<String>> = Vec::with_capacity(n);
        for (k, i) in fresh_items.iter().enumerate() {
            let seq = next_seq
                .get_mut(&i.channel)
                .ok_or_else(|| StoreError::Corrupt("no sequence for a channel".into()))?;
            numbers.push(
                TicketNo::new(day, i.channel, *seq as u32)
                    .as_str()
                    .to_owned(),
            );
            *seq += 1;
            codes.push(query_code());
            dup.push(match &repeats[k] {
                Some(Repeat::Stored(no)) => Some(no.clone()),
                Some(Repeat::InBatch(j)) => Some(numbers[*j].clone()),
                None => None,
            });
        }
        let col = |f: fn(&NewAppeal) -> Option<&str>| -> Vec<Option<&str>> {
            fresh_items.iter().map(|i| f(i)).collect()
        };
        let rollup = creation_rollup(fresh_items.iter().copied(), now);
        let mut q = sqlx::query(INSERT.as_str())
            .bind(&numbers)
            .bind(&codes)
            .bind(col(|i| Some(i.channel.as_str())))
            .bind(col(|i| i.external_id.as_deref()))
            .bind(col(|i| Some(i.category.as_str())))
            .bind(col(|i| Some(i.urgency.as_str())))
            .bind(col(|i| Some(i.title.as_str())))
            .bind(col(|i| Some(i.content.as_str())))
            .bind(col(|i| i.citizen_name.as_deref()))
            .bind(col(|i| i.citizen_phone.as_deref()))
            .bind(col(|i| i.address.as_deref()))
            .bind(col(|i| i.district.as_ref().map(|d| d.as_str())))
            .bind(col(|i| Some(i.created_by.as_str())))
            .bind(&dup)
            .bind(now)
            .bind(rollup.keys().map(|k| k.0.as_str()).collect::<Vec<_>>())
            .bind(rollup.keys().map(|k| k.1).collect::<Vec<i32>>())
            .bind(rollup.keys().map(|k| k.2.as_str()).collect::<Vec<_>>())
            .bind(rollup.keys().map(|k| k.3.as_str()).collect::<Vec<_>>())
            .bind(vec![shard; rollup.len()]);
        for c in 0..Col::ALL.len() {
            q = q.bind(rollup.values().map(|v| v.0[c]).collect::<Vec<i64>>());
        }
        let turn = handover.enter_stage_two().await;
        let inserted = sessions
            .fetch_all(Role::Intake, q)
            .await
            .map_err(sqlx_error)?;
        drop(turn);
        let mut id_of: HashMap<String, i64> = HashMap::with_capacity(inserted.len());
        for r in inserted {
            id_of.insert(
                r.try_get(1).map_err(sqlx_error)?,
                r.try_get(0).map_err(sqlx_error)?,
            );
        }

        // The stored rows, as `RETURNING *` would give them.
        let mut out = HashMap::with_capacity(n);
        for (k, (idx, i)) in fresh.iter().zip(&fresh_items).enumerate() {
            let id = *id_of
                .get(&numbers[k])
                .ok_or_else(|| StoreError::Corrupt(format!("{} was not inserted", numbers[k])))?;
            out.insert(
                *idx,
                registered_model(
                    id,
                    numbers[k].clone(),
                    codes[k].clone(),
                    i,
                    now,
                    dup[k].clone(),
                )?,
            );
        }
        Ok(out)
    }
}
