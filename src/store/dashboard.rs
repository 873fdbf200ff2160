//! What the leader dashboard reads besides the figures themselves: intake
//! and overdue deltas per day and channel (from the rollups, never the
//! tickets), and the short lists of escalated open tickets.

use chrono::{DateTime, NaiveDate, Utc};
use migration::m20261125_000010_escalated_index::{ACTIVE_DUE, RUNNING};
use sea_orm::{ConnectionTrait, Statement};

use super::{Store, StoreError, StoreResult, ph};
use crate::domain::figures::{Dim, Period, day_key, month_start};

/// One day's rollup totals for one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayChannel {
    pub day: NaiveDate,
    pub channel: String,
    pub created: i64,
    /// Tickets that became overdue that day, minus those that stopped being.
    pub overdue_delta: i64,
}

/// An escalated open ticket, as a list shows it.
#[derive(Debug, Clone)]
pub struct Escalated {
    pub id: i64,
    pub ticket_no: String,
    pub title: String,
    pub department: Option<String>,
    pub state: String,
    /// The active deadline: signing while dispatched, the reply after.
    pub due: Option<DateTime<Utc>>,
    pub escalation_level: i16,
}

fn day_of(key: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(key / 10_000, (key / 100 % 100) as u32, (key % 100) as u32)
}

impl Store {
    /// Per day of `period` and channel: tickets created and the net change
    /// in overdue tickets, from the channel slices of the rollups (optionally
    /// one department's rows only). With `monthly`, the months before `to`'s
    /// come from the monthly slice, keyed by their first day (which may fall
    /// before `from`), and only `to`'s month by day. Days with nothing are
    /// absent.
    pub async fn daily_by_channel(
        &self,
        period: Period,
        department: Option<&str>,
        monthly: bool,
    ) -> StoreResult<Vec<DayChannel>> {
        let b = self.backend();
        let (m1, m2) = if monthly {
            (month_start(period.from), month_start(period.to))
        } else {
            (period.from, period.from)
        };
        let daily_from = period.from.max(m2);
        let mut values: Vec<sea_orm::Value> = vec![
            Dim::Channel.as_str().into(),
            day_key(daily_from).into(),
            day_key(period.to).into(),
            Dim::ChannelM.as_str().into(),
            day_key(m1).into(),
            day_key(m2).into(),
        ];
        let scope = match department {
            Some(d) => {
                values.push(d.into());
                format!(" AND department = {}", ph(b, 7))
            }
            None => String::new(),
        };
        let rows = super::stats::rollup_rows(b);
        let sql = format!(
            "SELECT day, value, CAST(SUM(created) AS BIGINT), CAST(SUM(overdue_delta) AS BIGINT) \
             FROM {rows} WHERE ((dim = {} AND day >= {} AND day < {}) \
             OR (dim = {} AND day >= {} AND day < {})){scope} \
             GROUP BY day, value ORDER BY day, value",
            ph(b, 1),
            ph(b, 2),
            ph(b, 3),
            ph(b, 4),
            ph(b, 5),
            ph(b, 6),
        );
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(b, sql, values))
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let key: i32 = r.try_get_by_index(0)?;
            out.push(DayChannel {
                day: day_of(key)
                    .ok_or_else(|| StoreError::Corrupt(format!("stats_daily.day {key}")))?,
                channel: r.try_get_by_index(1)?,
                created: r.try_get_by_index::<Option<i64>>(2)?.unwrap_or(0),
                overdue_delta: r.try_get_by_index::<Option<i64>>(3)?.unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// Open tickets at `level` (2 overdue, 3 督办), longest past their active
    /// deadline first, at most `limit`, with how many there are in all;
    /// `department` limits them to one lead department. Both read the
    /// partial index `idx_tickets_escalated`, whose expression and predicate
    /// the SQL repeats literally. With `count_at_most`, the count stops
    /// there (and says `count_at_most + 1` when there are more).
    pub async fn escalated(
        &self,
        level: i16,
        department: Option<&str>,
        limit: u64,
        count_at_most: Option<u64>,
    ) -> StoreResult<(Vec<Escalated>, u64)> {
        let b = self.backend();
        let mut values: Vec<sea_orm::Value> = vec![level.into()];
        let scope = match department {
            Some(d) => {
                values.push(d.into());
                format!(" AND department = {}", ph(b, 2))
            }
            None => String::new(),
        };
        let filter = format!("escalation_level = {}{scope} AND {RUNNING}", ph(b, 1));
        let count = Statement::from_sql_and_values(
            b,
            match count_at_most {
                None => format!("SELECT COUNT(*) FROM tickets WHERE {filter}"),
                Some(cap) => format!(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM tickets WHERE {filter} LIMIT {}) capped",
                    cap.saturating_add(1)
                ),
            },
            values.clone(),
        );
        let list = Statement::from_sql_and_values(
            b,
            format!(
                "SELECT id, ticket_no, title, department, state, {ACTIVE_DUE}, escalation_level \
                 FROM tickets WHERE {filter} ORDER BY escalation_level, {ACTIVE_DUE}, id LIMIT {limit}"
            ),
            values,
        );
        let (total, rows) = futures_util::future::try_join(
            self.db.query_one_raw(count),
            self.db.query_all_raw(list),
        )
        .await?;
        let total = super::count_of(total)?;
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            items.push(Escalated {
                id: r.try_get_by_index(0)?,
                ticket_no: r.try_get_by_index(1)?,
                title: r.try_get_by_index(2)?,
                department: r.try_get_by_index(3)?,
                state: r.try_get_by_index(4)?,
                due: r.try_get_by_index(5)?,
                escalation_level: r.try_get_by_index(6)?,
            });
        }
        Ok((items, total))
    }
}

impl Store {
    /// The `limit` hotspots with the most recent activity since `since`
    /// (without their members, which `current_hotspots` also reads).
    pub async fn latest_hotspots(
        &self,
        since: DateTime<Utc>,
        limit: u64,
    ) -> StoreResult<Vec<super::entities::hotspot::Model>> {
        use super::entities::hotspot;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
        Ok(hotspot::Entity::find()
            .filter(hotspot::Column::LastAt.gte(since))
            .order_by_desc(hotspot::Column::LastAt)
            .order_by_desc(hotspot::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_keys_read_back_as_dates() {
        let d = NaiveDate::from_ymd_opt(2026, 2, 28).unwrap();
        assert_eq!(day_of(day_key(d)), Some(d));
        assert_eq!(day_of(20261399), None);
    }
}
