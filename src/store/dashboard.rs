//! What the leader dashboard reads besides the figures themselves: intake
//! and overdue deltas per day and channel (from the rollups, never the
//! tickets), and the short lists of escalated open tickets.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};

use super::entities::ticket;
use super::{Store, StoreError, StoreResult, ph};
use crate::domain::figures::{Dim, Period, day_key, month_start};
use crate::domain::types::TicketState;

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
        let sql = format!(
            "SELECT day, value, CAST(SUM(created) AS BIGINT), CAST(SUM(overdue_delta) AS BIGINT) \
             FROM stats_daily WHERE ((dim = {} AND day >= {} AND day < {}) \
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
    /// `department` limits them to one lead department. Found through the
    /// escalation-level index: few tickets are escalated at a time.
    pub async fn escalated(
        &self,
        level: i16,
        department: Option<&str>,
        limit: u64,
    ) -> StoreResult<(Vec<Escalated>, u64)> {
        use ticket::Column as C;
        let mut q = ticket::Entity::find()
            .filter(C::EscalationLevel.eq(level))
            .filter(C::State.is_in([
                TicketState::Dispatched.as_str(),
                TicketState::InProgress.as_str(),
            ]));
        if let Some(d) = department {
            q = q.filter(C::Department.eq(d));
        }
        let total = q.clone().count(&self.db).await?;
        type Row = (
            i64,
            String,
            String,
            Option<String>,
            String,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
            i16,
        );
        let rows: Vec<Row> = q
            .select_only()
            .columns([
                C::Id,
                C::TicketNo,
                C::Title,
                C::Department,
                C::State,
                C::SignDueAt,
                C::ReplyDueAt,
                C::EscalationLevel,
            ])
            .order_by(
                Expr::cust("CASE WHEN state = 'dispatched' THEN sign_due_at ELSE reply_due_at END"),
                Order::Asc,
            )
            .order_by_asc(C::Id)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        let items = rows
            .into_iter()
            .map(
                |(id, ticket_no, title, department, state, sign, reply, level)| Escalated {
                    due: if state == TicketState::Dispatched.as_str() {
                        sign
                    } else {
                        reply
                    },
                    id,
                    ticket_no,
                    title,
                    department,
                    state,
                    escalation_level: level,
                },
            )
            .collect();
        Ok((items, total))
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
