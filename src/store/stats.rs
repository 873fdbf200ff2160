//! Figures storage: the rollup upsert that every ticket-changing transaction
//! runs, the figure query over the rollups, and a rebuild from the raw
//! tickets and events (which also serves as the reference in tests).

use std::collections::BTreeMap;

use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};

use super::entities::{ticket, ticket_event};
use super::tickets::to_domain;
use super::{Store, StoreError, StoreResult, ph};
use crate::domain::figures::{
    Col, Counts, Dim, Fact, GroupBy, HistoryEvent, NCOLS, Period, Rollup, RollupKey, TicketDims,
    add_facts, day_key, history_facts, month_start, next_month,
};

/// The attributes a ticket's facts are grouped by.
pub fn dims_of(m: &ticket::Model) -> TicketDims {
    TicketDims {
        channel: m.channel.clone(),
        category: m.category.clone(),
        district: m.district.clone().unwrap_or_default(),
    }
}

/// The rollup rows a set of facts changes (rows that net to zero dropped).
pub fn rollup_of(dims: &TicketDims, facts: &[Fact]) -> Rollup {
    let mut r = Rollup::new();
    add_facts(&mut r, dims, facts);
    r.retain(|_, c| !c.is_zero());
    r
}

fn dim_from(s: &str) -> Option<Dim> {
    Dim::ALL.into_iter().find(|d| d.as_str() == s)
}

/// Rows per upsert statement: 22 parameters each stays far below both
/// databases' limits.
const UPSERT_CHUNK: usize = 1000;

/// `INSERT … ON CONFLICT DO UPDATE SET c = c + excluded.c` for `rows`, with
/// placeholders numbered from `first` (PostgreSQL). Rows go in key order, so
/// concurrent writers lock shared rows in the same order.
pub(crate) fn upsert_statement(
    backend: DbBackend,
    rows: &[(&RollupKey, &Counts)],
    first: usize,
    shard: i16,
) -> (String, Vec<sea_orm::Value>) {
    let cols: Vec<&str> = Col::ALL.iter().map(|c| c.name()).collect();
    let mut sql = format!(
        "INSERT INTO stats_daily (dim, day, department, value, shard, {}) VALUES ",
        cols.join(", ")
    );
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(rows.len() * (5 + NCOLS));
    let mut n = first;
    for (i, ((dim, day, dept, value), counts)) in rows.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for j in 0..5 + NCOLS {
            if j > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&ph(backend, n));
            n += 1;
        }
        sql.push(')');
        values.push(dim.as_str().into());
        values.push((*day).into());
        values.push(dept.clone().into());
        values.push(value.clone().into());
        values.push(shard.into());
        values.extend(counts.0.iter().map(|v| sea_orm::Value::from(*v)));
    }
    sql.push_str(&add_on_conflict());
    (sql, values)
}

/// ` ON CONFLICT (key) DO UPDATE SET c = stats_daily.c + excluded.c, …`:
/// the clause that makes an insert into `stats_daily` add its counters to
/// an existing row (every writer of the rollups ends with it).
pub(crate) fn add_on_conflict() -> String {
    let sets: Vec<String> = Col::ALL
        .iter()
        .map(|c| format!("{0} = stats_daily.{0} + excluded.{0}", c.name()))
        .collect();
    format!(
        " ON CONFLICT (dim, day, department, value, shard) DO UPDATE SET {}",
        sets.join(", ")
    )
}

/// Adds `rollup` to the table, inside the caller's transaction.
pub(crate) async fn write_rollup<C: ConnectionTrait>(c: &C, rollup: &Rollup) -> Result<(), DbErr> {
    write_rollup_on(c, rollup, 0).await
}

/// How many rollup shards single-ticket transitions spread over on
/// PostgreSQL: the intake writers' shards 1…4 (see `store::intake`), so
/// that no rows are added that a figure would have to sum.
pub(crate) const TRANSITION_SHARDS: i64 = 4;

/// The rollup shard for a transition of ticket `id`: on PostgreSQL, one of
/// [`TRANSITION_SHARDS`] by ticket, so that concurrent transitions of one
/// department on one day do not all queue on the same rollup rows (each
/// holds its row locks until it commits); SQLite has a single writer and
/// uses 0.
pub(crate) fn transition_shard(backend: DbBackend, id: i64) -> i16 {
    match backend {
        DbBackend::Postgres => 1 + id.rem_euclid(TRANSITION_SHARDS) as i16,
        _ => 0,
    }
}

/// [`write_rollup`] adding to rollup shard `shard`.
pub(crate) async fn write_rollup_on<C: ConnectionTrait>(
    c: &C,
    rollup: &Rollup,
    shard: i16,
) -> Result<(), DbErr> {
    let rows: Vec<_> = rollup.iter().filter(|(_, v)| !v.is_zero()).collect();
    let b = c.get_database_backend();
    for chunk in rows.chunks(UPSERT_CHUNK) {
        let (sql, values) = upsert_statement(b, chunk, 1, shard);
        c.execute_raw(Statement::from_sql_and_values(b, sql, values))
            .await?;
    }
    Ok(())
}

/// How often each instance folds registration's pending rollup rows into
/// `stats_daily` (see [`Store::fold_live_pending`]).
pub const FOLD_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// The `stats_daily` shard the folds add to: no transition, registration or
/// bulk load writes it.
pub const FOLD_SHARD: i16 = 50;

/// The advisory lock key of the fold ("hotline fold" as ASCII digits).
const FOLD_LOCK: i64 = 0x686f_746c_666f_6c64;

/// The rollup rows as figures read them, as a table named `stats_daily`: on
/// PostgreSQL the rows of `stats_daily` and those appended to `stats_pending`
/// and not yet added into it — by a bulk load (shards from 1000, folded at its
/// end) or by registration (the intake writers' shards, folded by
/// [`Store::fold_live_pending`] every [`FOLD_EVERY`]).
pub(crate) fn rollup_rows(b: DbBackend) -> String {
    if b != DbBackend::Postgres {
        return "stats_daily".to_owned();
    }
    let cols: Vec<&str> = ["dim", "day", "department", "value", "shard"]
        .into_iter()
        .chain(Col::ALL.iter().map(|c| c.name()))
        .collect();
    let cols = cols.join(", ");
    format!(
        "(SELECT {cols} FROM stats_daily UNION ALL SELECT {cols} FROM stats_pending) AS stats_daily"
    )
}

/// A ticket's stored events, as the figures read them.
pub fn history_event(e: &ticket_event::Model) -> StoreResult<HistoryEvent> {
    Ok(HistoryEvent {
        at: e.at,
        kind: e
            .kind
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("event kind {:?}", e.kind)))?,
        department: e.department.clone(),
        payload: serde_json::from_str(&e.payload)
            .map_err(|err| StoreError::Corrupt(format!("event payload: {err}")))?,
    })
}

/// Per group key ("" for the whole city): the period's counters and
/// `overdue_open` at the period's end.
pub type StatsRows = BTreeMap<String, (Counts, i64)>;

impl Store {
    /// The figures' counters for `period`, grouped, optionally for one
    /// department only. Reads only the rollups: the period's days for the
    /// counters, every day before `to` for `overdue_open`.
    pub async fn stats(
        &self,
        period: Period,
        group_by: Option<GroupBy>,
        department: Option<&str>,
    ) -> StoreResult<StatsRows> {
        let b = self.backend();
        let (key, group) = match group_by {
            None => ("CAST('' AS TEXT)", "dim"),
            Some(GroupBy::Department) => ("department", "department"),
            Some(_) => ("value", "value"),
        };
        let dim = GroupBy::dim(group_by);
        let rows = rollup_rows(b);
        let sums: Vec<String> = Col::ALL
            .iter()
            .filter(|c| **c != Col::OverdueDelta)
            .map(|c| format!("CAST(SUM({}) AS BIGINT)", c.name()))
            .collect();
        let scope = |n: usize| {
            if department.is_some() {
                format!(" AND department = {}", ph(b, n))
            } else {
                String::new()
            }
        };
        let with_scope = |mut v: Vec<sea_orm::Value>| {
            if let Some(d) = department {
                v.push(d.into());
            }
            v
        };
        // Whole months come from the monthly slice, the days around them
        // from the daily one.
        let monthly = dim.monthly();
        let (from, to) = (period.from, period.to);
        let m1 = if month_start(from) == from {
            from
        } else {
            next_month(from)
        };
        let m2 = month_start(to);
        let (head_end, months, tail_start) = if m1 < m2 {
            (m1, (m1, m2), m2)
        } else {
            (to, (to, to), to)
        };
        let k = |d| sea_orm::Value::from(day_key(d));
        let in_period = Statement::from_sql_and_values(
            b,
            format!(
                "SELECT {key}, {} FROM {rows} WHERE \
                 ((dim = {} AND ((day >= {} AND day < {}) OR (day >= {} AND day < {}))) \
                 OR (dim = {} AND day >= {} AND day < {})){} GROUP BY {group}",
                sums.join(", "),
                ph(b, 1),
                ph(b, 2),
                ph(b, 3),
                ph(b, 4),
                ph(b, 5),
                ph(b, 6),
                ph(b, 7),
                ph(b, 8),
                scope(9),
            ),
            with_scope(vec![
                dim.as_str().into(),
                k(from),
                k(head_end),
                k(tail_start),
                k(to),
                monthly.as_str().into(),
                k(months.0),
                k(months.1),
            ]),
        );
        // 超期未办 at `to` sums every day before it: the months before
        // `to`'s month, then its days.
        let overdue = Statement::from_sql_and_values(
            b,
            format!(
                "SELECT {key}, CAST(SUM(overdue_delta) AS BIGINT) FROM {rows} WHERE \
                 ((dim = {} AND day >= {} AND day < {}) OR (dim = {} AND day < {})){} GROUP BY {group}",
                ph(b, 1),
                ph(b, 2),
                ph(b, 3),
                ph(b, 4),
                ph(b, 5),
                scope(6),
            ),
            with_scope(vec![
                dim.as_str().into(),
                k(m2),
                k(to),
                monthly.as_str().into(),
                k(m2),
            ]),
        );
        let (rows, prefix) = futures_util::future::try_join(
            self.db.query_all_raw(in_period),
            self.db.query_all_raw(overdue),
        )
        .await?;

        let mut out = StatsRows::new();
        for r in rows {
            let k: String = r.try_get_by_index(0)?;
            let mut c = Counts::default();
            let mut j = 1;
            for col in Col::ALL {
                if *col == Col::OverdueDelta {
                    continue;
                }
                c.add(*col, r.try_get_by_index::<Option<i64>>(j)?.unwrap_or(0));
                j += 1;
            }
            // The city's rows come grouped by slice (daily, monthly): add up.
            out.entry(k).or_default().0.merge(&c);
        }
        for r in prefix {
            let k: String = r.try_get_by_index(0)?;
            let n = r.try_get_by_index::<Option<i64>>(1)?.unwrap_or(0);
            out.entry(k).or_default().1 += n;
        }
        if group_by.is_none() {
            out.entry(String::new()).or_default();
        } else {
            out.retain(|_, (c, overdue)| *overdue != 0 || !c.is_zero());
        }
        Ok(out)
    }

    /// The rollups as stored.
    pub async fn stored_rollup(&self) -> StoreResult<Rollup> {
        let b = self.backend();
        let cols: Vec<&str> = Col::ALL.iter().map(|c| c.name()).collect();
        let sql = format!(
            "SELECT dim, day, department, value, {} FROM {}",
            cols.join(", "),
            rollup_rows(b)
        );
        let mut out = Rollup::new();
        for r in self
            .db
            .query_all_raw(Statement::from_string(b, sql))
            .await?
        {
            let dim: String = r.try_get_by_index(0)?;
            let dim = dim_from(&dim)
                .ok_or_else(|| StoreError::Corrupt(format!("stats_daily.dim {dim:?}")))?;
            let mut c = Counts::default();
            for (j, col) in Col::ALL.iter().enumerate() {
                c.add(*col, r.try_get_by_index::<i64>(4 + j)?);
            }
            // Shards of one key add up.
            out.entry((
                dim,
                r.try_get_by_index(1)?,
                r.try_get_by_index(2)?,
                r.try_get_by_index(3)?,
            ))
            .or_default()
            .merge(&c);
        }
        out.retain(|_, c| !c.is_zero());
        Ok(out)
    }

    /// The rollups computed afresh from every ticket's row and events, in
    /// pages of tickets.
    pub async fn raw_rollup(&self) -> StoreResult<Rollup> {
        const PAGE: u64 = 2000;
        let mut out = Rollup::new();
        let mut after = 0i64;
        loop {
            let tickets = ticket::Entity::find()
                .filter(sea_orm::ColumnTrait::gt(&ticket::Column::Id, after))
                .order_by_asc(ticket::Column::Id)
                .limit(PAGE)
                .all(&self.db)
                .await?;
            let Some(last) = tickets.last() else { break };
            let (lo, hi) = (tickets[0].id, last.id);
            let events = ticket_event::Entity::find()
                .filter(sea_orm::ColumnTrait::between(
                    &ticket_event::Column::TicketId,
                    lo,
                    hi,
                ))
                .order_by_asc(ticket_event::Column::TicketId)
                .order_by_asc(ticket_event::Column::Id)
                .all(&self.db)
                .await?;
            let mut by_ticket: BTreeMap<i64, Vec<HistoryEvent>> = BTreeMap::new();
            for e in &events {
                by_ticket
                    .entry(e.ticket_id)
                    .or_default()
                    .push(history_event(e)?);
            }
            for t in &tickets {
                let facts = history_facts(
                    t.created_at,
                    &to_domain(t)?,
                    by_ticket.get(&t.id).map(Vec::as_slice).unwrap_or(&[]),
                );
                add_facts(&mut out, &dims_of(t), &facts);
            }
            after = hi;
        }
        out.retain(|_, c| !c.is_zero());
        Ok(out)
    }

    /// Replaces the rollups with ones computed from the raw tickets and
    /// events. On PostgreSQL the table is locked for the duration, so
    /// changes committed meanwhile wait and then add onto the rebuilt rows.
    pub async fn rebuild_stats(&self) -> StoreResult<usize> {
        let w = self.begin_write().await?;
        if self.backend() == DbBackend::Postgres {
            w.txn
                .execute_unprepared("LOCK TABLE stats_daily IN EXCLUSIVE MODE")
                .await?;
        }
        w.txn.execute_unprepared("DELETE FROM stats_daily").await?;
        if self.backend() == DbBackend::Postgres {
            // What is pending is in the rebuilt rows too; registrations
            // committed meanwhile wait, then append onto the rebuilt rows
            // (tables locked in the fold's order: `stats_daily` first).
            w.txn
                .execute_unprepared("LOCK TABLE stats_pending IN EXCLUSIVE MODE")
                .await?;
            w.txn
                .execute_unprepared("DELETE FROM stats_pending")
                .await?;
        }
        let rollup = self.raw_rollup().await?;
        write_rollup(&w.txn, &rollup).await?;
        w.commit().await?;
        Ok(rollup.len())
    }

    /// Adds the rollup rows registration appended to `stats_pending` (shards
    /// below 1000) into `stats_daily` and removes them, in one statement:
    /// figures see each row in one table or the other, never both or
    /// neither. PostgreSQL only (elsewhere nothing is pending); one fold at a
    /// time across instances (an advisory lock; a fold that finds it taken
    /// does nothing). The sums go to shard [`FOLD_SHARD`], which nothing
    /// else writes, and `stats_daily` is locked before `stats_pending` as in
    /// a rebuild, so a fold never waits on a transition's rollup rows nor
    /// deadlocks with a rebuild or a bulk load's fold. Returns the rows
    /// folded.
    pub async fn fold_live_pending(&self) -> StoreResult<u64> {
        if self.backend() != DbBackend::Postgres {
            return Ok(0);
        }
        let cols: Vec<&str> = Col::ALL.iter().map(|c| c.name()).collect();
        let sums: Vec<String> = cols.iter().map(|c| format!("SUM({c})")).collect();
        let sql = format!(
            "WITH moved AS (DELETE FROM stats_pending WHERE shard < 1000 RETURNING *), \
             folded AS (\
               INSERT INTO stats_daily (dim, day, department, value, shard, {cols}) \
               SELECT dim, day, department, value, {FOLD_SHARD}, {sums} FROM moved \
               GROUP BY dim, day, department, value{add}) \
             SELECT COUNT(*) FROM moved",
            cols = cols.join(", "),
            sums = sums.join(", "),
            add = add_on_conflict(),
        );
        let pool = self.db.get_postgres_connection_pool();
        let mut tx = pool.begin().await.map_err(super::sqlx_error)?;
        let mine: bool = sea_orm::sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(FOLD_LOCK)
            .fetch_one(&mut *tx)
            .await
            .map_err(super::sqlx_error)?;
        if !mine {
            return Ok(0);
        }
        sea_orm::sqlx::query("LOCK TABLE stats_daily IN ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(super::sqlx_error)?;
        // Built from the counter columns' names only.
        let n: i64 = sea_orm::sqlx::query_scalar(sea_orm::sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut *tx)
            .await
            .map_err(super::sqlx_error)?;
        tx.commit().await.map_err(super::sqlx_error)?;
        if n > 0 {
            // The deleted rows are dead rows every figure would scan until
            // a vacuum, and this table churns every few seconds: it is not
            // left to autovacuum (off on some servers, this machine's among
            // them, where a 600 s soak grew it to 129 K dead rows, 22 MB,
            // and p99 from 15 to 400 ms). Without truncation, which would
            // want an exclusive lock; the freed space is reused.
            self.db
                .execute_unprepared("VACUUM (SKIP_LOCKED, TRUNCATE false) stats_pending")
                .await?;
        }
        Ok(n as u64)
    }

    /// True when tickets exist but the rollups are empty: a database from
    /// before the rollups existed.
    pub async fn stats_missing(&self) -> StoreResult<bool> {
        let b = self.backend();
        let q = |sql: &str| Statement::from_string(b, sql.to_owned());
        let has_tickets = self
            .db
            .query_one_raw(q("SELECT 1 FROM tickets LIMIT 1"))
            .await?
            .is_some();
        let has_stats = self
            .db
            .query_one_raw(q(&format!("SELECT 1 FROM {} LIMIT 1", rollup_rows(b))))
            .await?
            .is_some();
        Ok(has_tickets && !has_stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_column_per_counter() {
        let names: Vec<&str> = Col::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names, migration::m20261122_000003_stats::COUNTERS);
    }
}

/// One group of figures, as the API and the bulletin show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FigureGroup {
    pub key: String,
    pub name: String,
    pub figures: crate::domain::figures::Figures,
}

impl Store {
    /// The figures for `period`: one group ("" named 全市) without grouping,
    /// else one per key, ordered by key. `department` limits every figure to
    /// that department's own.
    pub async fn figures(
        &self,
        period: Period,
        group_by: Option<GroupBy>,
        department: Option<&str>,
        basically_counts: bool,
    ) -> StoreResult<Vec<FigureGroup>> {
        use crate::domain::types::{Category, Channel};
        let rows = self.stats(period, group_by, department).await?;
        let departments: BTreeMap<String, String> = match group_by {
            Some(GroupBy::Department) | Some(GroupBy::District) => self
                .list_departments()
                .await?
                .into_iter()
                .map(|d| (d.code, d.name))
                .collect(),
            _ => BTreeMap::new(),
        };
        let name = |key: &str| -> String {
            match group_by {
                None => "全市".into(),
                Some(GroupBy::Department) if key.is_empty() => "未派单".into(),
                Some(GroupBy::District) if key.is_empty() => "未注明属地".into(),
                Some(GroupBy::Department) => {
                    departments.get(key).cloned().unwrap_or_else(|| key.into())
                }
                Some(GroupBy::District) => departments
                    .get(key)
                    .map(|n| n.trim_end_matches("人民政府").to_owned())
                    .unwrap_or_else(|| key.into()),
                Some(GroupBy::Channel) => key
                    .parse::<Channel>()
                    .map(|c| c.zh().to_owned())
                    .unwrap_or_else(|_| key.into()),
                Some(GroupBy::Category) => key
                    .parse::<Category>()
                    .map(|c| c.zh().to_owned())
                    .unwrap_or_else(|_| key.into()),
            }
        };
        Ok(rows
            .into_iter()
            .map(|(key, (c, overdue))| FigureGroup {
                name: name(&key),
                figures: crate::domain::figures::Figures::from_counts(
                    &c,
                    overdue,
                    basically_counts,
                ),
                key,
            })
            .collect())
    }
}

#[cfg(test)]
mod shard_tests {
    use super::*;

    #[test]
    fn transitions_use_the_intake_shards_on_postgres_and_shard_0_on_sqlite() {
        for id in [-7_i64, 0, 1, 2, 3, 4, 1_000_003] {
            let s = transition_shard(DbBackend::Postgres, id);
            assert!((1..=TRANSITION_SHARDS as i16).contains(&s), "{id}: {s}");
            assert_eq!(transition_shard(DbBackend::Sqlite, id), 0);
        }
        // Consecutive tickets spread over all of them.
        let used: std::collections::HashSet<i16> = (0..4)
            .map(|id| transition_shard(DbBackend::Postgres, id))
            .collect();
        assert_eq!(used.len(), TRANSITION_SHARDS as usize);
    }
}
