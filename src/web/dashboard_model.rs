//! The leader dashboard's arithmetic, apart from any IO: the period a form
//! asks for, and the chart series built from the rollups' per-day rows
//! (weekly intake by channel, the overdue backlog at each bucket's end).

use chrono::{Datelike, Days, NaiveDate};

use super::charts::{Column, Point};
use crate::domain::figures::{MAX_PERIOD_DAYS, Period, month_start, next_month};
use crate::domain::types::Channel;
use crate::store::dashboard::DayChannel;

/// Periods longer than this are charted by month (and read from the
/// monthly rollups); shorter ones by week.
pub const WEEKLY_UP_TO_DAYS: i64 = 430;

/// The period of the form: `from` and `to` are dates, `to` the last day
/// included (people think in inclusive ranges; the figures' `to` is
/// exclusive). Without them: this month.
pub fn form_period(
    from: Option<&str>,
    to: Option<&str>,
    today: NaiveDate,
) -> Result<Period, String> {
    let parse = |name: &str, s: &str| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| format!("{name}须为日期（如 2026-11-01），而不是“{s}”"))
    };
    let from = match from.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => parse("开始日期", s)?,
        None => month_start(today),
    };
    let last = match to.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => parse("结束日期", s)?,
        None => next_month(from).pred_opt().unwrap_or(from),
    };
    if last < from {
        return Err("结束日期早于开始日期".into());
    }
    let to = last + Days::new(1);
    let p = Period { from, to };
    if p.days() > MAX_PERIOD_DAYS {
        return Err("统计周期不能超过 10 年".into());
    }
    Ok(p)
}

/// How the charts group days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Weeks starting on Monday.
    Week,
    Month,
}

impl Bucket {
    pub fn of(period: Period) -> Bucket {
        if period.days() > WEEKLY_UP_TO_DAYS {
            Bucket::Month
        } else {
            Bucket::Week
        }
    }
    pub fn start(self, d: NaiveDate) -> NaiveDate {
        match self {
            Bucket::Week => d - Days::new(d.weekday().num_days_from_monday() as u64),
            Bucket::Month => month_start(d),
        }
    }
    pub fn next(self, start: NaiveDate) -> NaiveDate {
        match self {
            Bucket::Week => start + Days::new(7),
            Bucket::Month => next_month(start),
        }
    }
    pub fn label(self, start: NaiveDate) -> String {
        match self {
            Bucket::Week => start.format("%m-%d").to_string(),
            Bucket::Month => start.format("%Y-%m").to_string(),
        }
    }
    pub fn zh(self) -> &'static str {
        match self {
            Bucket::Week => "每周",
            Bucket::Month => "每月",
        }
    }
}

/// The starts of the buckets that overlap `[from, to)`.
pub fn buckets(bucket: Bucket, period: Period) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let mut b = bucket.start(period.from);
    while b < period.to {
        out.push(b);
        b = bucket.next(b);
    }
    out
}

/// The channels, in the order of the enum, with their Chinese names.
pub fn channel_series() -> Vec<(&'static str, &'static str)> {
    Channel::ALL.iter().map(|c| (c.as_str(), c.zh())).collect()
}

/// Intake per bucket, stacked by channel (channels the enum does not know
/// are ignored: they cannot be stored).
pub fn intake_columns(rows: &[DayChannel], period: Period, bucket: Bucket) -> Vec<Column> {
    let series = channel_series();
    let starts = buckets(bucket, period);
    let mut cols: Vec<Column> = starts
        .iter()
        .map(|s| Column {
            label: bucket.label(*s),
            values: vec![0; series.len()],
        })
        .collect();
    for r in rows {
        // Monthly rows are keyed by the month's first day, which may fall
        // before `from`: the bucket decides.
        if r.day >= period.to {
            continue;
        }
        let Ok(i) = starts.binary_search(&bucket.start(r.day)) else {
            continue;
        };
        if let Some(j) = series.iter().position(|(c, _)| *c == r.channel) {
            cols[i].values[j] += r.created;
        }
    }
    cols
}

/// The overdue backlog (超期未办) at the end of each bucket up to `today`,
/// from `overdue_at_to` (the figures' `overdue_open` at the period's end)
/// less the deltas of the days after each point. The last point is the
/// backlog at the end of `today` when the period runs past it. Returns the
/// points and the backlog at the last one.
pub fn backlog_points(
    rows: &[DayChannel],
    period: Period,
    bucket: Bucket,
    overdue_at_to: i64,
    today: NaiveDate,
) -> (Vec<Point>, i64) {
    // The backlog at the end of day `d` is the figure at `to` minus the
    // deltas of the days in (d, to).
    let after = |d: NaiveDate| -> i64 {
        rows.iter()
            .filter(|r| r.day > d && r.day < period.to)
            .map(|r| r.overdue_delta)
            .sum()
    };
    let last_day = period.to.pred_opt().unwrap_or(period.from);
    let mut points = Vec::new();
    let mut now = overdue_at_to;
    for start in buckets(bucket, period) {
        if start > today {
            break;
        }
        let end = bucket
            .next(start)
            .pred_opt()
            .unwrap_or(start)
            .min(last_day)
            .min(today);
        now = overdue_at_to - after(end);
        // Labelled with the day the backlog is taken at.
        points.push(Point {
            label: match bucket {
                Bucket::Month if end == bucket.next(start).pred_opt().unwrap_or(end) => {
                    bucket.label(start)
                }
                _ => end.format("%m-%d").to_string(),
            },
            value: now,
        });
    }
    (points, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn row(day: &str, channel: &str, created: i64, overdue_delta: i64) -> DayChannel {
        DayChannel {
            day: d(day),
            channel: channel.into(),
            created,
            overdue_delta,
        }
    }

    #[test]
    fn the_form_defaults_to_this_month_and_reads_to_as_the_last_day() {
        let today = d("2026-11-24");
        let p = form_period(None, Some(""), today).unwrap();
        assert_eq!((p.from, p.to), (d("2026-11-01"), d("2026-12-01")));
        let p = form_period(Some("2026-02-01"), Some("2026-02-28"), today).unwrap();
        assert_eq!(
            (p.from, p.to, p.days()),
            (d("2026-02-01"), d("2026-03-01"), 28)
        );
        let p = form_period(Some("2026-11-24"), Some("2026-11-24"), today).unwrap();
        assert_eq!(p.days(), 1);
        assert!(form_period(Some("2026-11-24"), Some("2026-11-23"), today).is_err());
        assert!(
            form_period(Some("11/24"), None, today)
                .unwrap_err()
                .contains("开始日期")
        );
        assert!(form_period(Some("2000-01-01"), Some("2026-01-01"), today).is_err());
    }

    #[test]
    fn long_periods_are_charted_by_month_and_weeks_start_on_monday() {
        let year = form_period(Some("2025-11-01"), Some("2026-10-31"), d("2026-11-24")).unwrap();
        assert_eq!(Bucket::of(year), Bucket::Week);
        assert_eq!(buckets(Bucket::Week, year).len(), 53);
        let two = form_period(Some("2024-11-01"), Some("2026-10-31"), d("2026-11-24")).unwrap();
        assert_eq!(Bucket::of(two), Bucket::Month);
        assert_eq!(buckets(Bucket::Month, two).len(), 24);
        // 2026-11-01 is a Sunday: its week began on Monday 10-26.
        assert_eq!(Bucket::Week.start(d("2026-11-01")), d("2026-10-26"));
        assert_eq!(Bucket::Week.start(d("2026-11-02")), d("2026-11-02"));
    }

    #[test]
    fn intake_is_summed_per_week_and_channel() {
        let p = form_period(Some("2026-11-01"), Some("2026-11-30"), d("2026-11-24")).unwrap();
        let rows = [
            row("2026-11-01", "hotline", 3, 0),
            row("2026-11-02", "hotline", 5, 0),
            row("2026-11-03", "mailbox", 2, 0),
            row("2026-11-03", "carrier_pigeon", 9, 0),
        ];
        let cols = intake_columns(&rows, p, Bucket::Week);
        assert_eq!(cols.len(), 6, "10-26 … 11-30");
        let hotline = channel_series()
            .iter()
            .position(|(c, _)| *c == "hotline")
            .unwrap();
        let mailbox = channel_series()
            .iter()
            .position(|(c, _)| *c == "mailbox")
            .unwrap();
        assert_eq!(cols[0].label, "10-26");
        assert_eq!(cols[0].values[hotline], 3);
        assert_eq!(cols[1].values[hotline], 5);
        assert_eq!(cols[1].values[mailbox], 2);
        assert_eq!(
            cols[1].values.iter().sum::<i64>(),
            7,
            "unknown channels ignored"
        );
    }

    #[test]
    fn the_backlog_line_ends_at_today_and_counts_back_from_the_period_end() {
        // At the period's end (12-01) 4 are overdue; 2 of them become so in
        // the future (11-28), 1 was resolved on 11-10, 3 became overdue 11-05.
        let p = form_period(Some("2026-11-01"), Some("2026-11-30"), d("2026-11-24")).unwrap();
        let rows = [
            row("2026-11-05", "hotline", 0, 3),
            row("2026-11-10", "mailbox", 0, -1),
            row("2026-11-28", "hotline", 0, 2),
        ];
        let (points, now) = backlog_points(&rows, p, Bucket::Week, 4, d("2026-11-24"));
        let values: Vec<i64> = points.iter().map(|p| p.value).collect();
        // Week ends: 11-01 (before any delta: 4-3+1-2 = 0), 11-08 (3),
        // 11-15 (2), 11-22 (2), then today 11-24 (2); 11-30 is in the future.
        assert_eq!(values, vec![0, 3, 2, 2, 2]);
        let labels: Vec<&str> = points.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, vec!["11-01", "11-08", "11-15", "11-22", "11-24"]);
        assert_eq!(now, 2);
        // A period in the past ends at its last day.
        let past = form_period(Some("2026-10-01"), Some("2026-10-31"), d("2026-11-24")).unwrap();
        let (points, now) = backlog_points(&[], past, Bucket::Week, 7, d("2026-11-24"));
        assert_eq!(now, 7);
        assert!(points.iter().all(|p| p.value == 7));
    }
}
