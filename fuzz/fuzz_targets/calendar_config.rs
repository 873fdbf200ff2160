//! The holiday calendar, the configuration and the deadline arithmetic built on them.
//!
//! Input: UTF-8 text in up to four sections separated by a line `%%`:
//! a `YYYY.toml` holiday file, a working-hours spec, a configuration file (layered over the
//! compiled-in defaults as `config/test.toml`), and whitespace-separated integers (Unix
//! seconds, then working-day and working-minute counts). Missing sections take defaults.
//!
//! Beyond "never panics": a parsed year keeps its dates in the year, make-up days on weekends
//! and apart from holidays; a working-days deadline is the close of a working day, exactly n
//! working days after the start day, strictly increasing in n; a working-minutes deadline lies
//! in working time, contains exactly m working minutes, increases with m and is inverted by
//! `sub_working_minutes`; the escalation thresholds of every SLA clock are in order.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeDelta, Utc, Weekday};
use hotline::config::{Environment, Settings};
use hotline::domain::calendar::{
    Calendar, WorkInterval, WorkingDuration, YearCalendar, city_tz, parse_hours,
};
use hotline::domain::sla::{self, Clock, SlaPolicy};
use hotline::domain::types::{Category, Urgency};
use libfuzzer_sys::fuzz_target;

const DEFAULT_HOURS: &str = "08:30-12:00,14:00-17:30";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut sections = text.split("\n%%\n");
    let holidays = sections.next().unwrap_or_default();
    let hours_spec = sections.next();
    let config = sections.next();
    let numbers: Vec<i64> = sections
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .take(8)
        .collect();

    let year = YearCalendar::parse_toml(holidays).ok();
    if let Some(y) = &year {
        check_year(y);
    }
    if let Some(spec) = hours_spec {
        // The same text as a duration: what parses prints back to itself.
        if let Ok(d) = spec.parse::<WorkingDuration>() {
            let printed = d.to_string();
            assert_eq!(
                printed.parse::<WorkingDuration>().ok(),
                Some(d),
                "{printed}"
            );
        }
    }
    let settings = config.and_then(load_settings);
    let hours = hours_spec
        .and_then(|s| parse_hours(s).ok())
        .or_else(|| settings.as_ref().map(Settings::work_hours))
        .unwrap_or_else(|| parse_hours(DEFAULT_HOURS).expect("default hours"));
    check_hours(&hours);
    let policy = settings.map(|s| s.sla).unwrap_or_default();

    let cal = Calendar::new(hours, year.iter().cloned().collect()).expect("checked parts");
    let y = year.as_ref().map_or(2026, |y| y.year);
    let mut instants = vec![local(y, 1, 1, 0, 0, 0)];
    if let Some(y) = &year {
        if let Some(d) = y.holidays.first() {
            instants.push(local(d.year(), d.month(), d.day(), 8, 29, 59));
        }
        if let Some(d) = y.workdays.first() {
            instants.push(local(d.year(), d.month(), d.day(), 12, 0, 0));
        }
    }
    let (lo, hi) = (local(1000, 1, 1, 0, 0, 0), local(9999, 12, 31, 0, 0, 0));
    let span = hi.timestamp() - lo.timestamp();
    let mut rest = numbers.iter().copied();
    if let Some(s) = rest.next() {
        let secs = lo.timestamp() + s.rem_euclid(span);
        let nanos = u32::try_from(s.rem_euclid(1_000_000_000)).unwrap_or(0);
        instants.push(DateTime::from_timestamp(secs, nanos).expect("in range"));
    }
    let mut days: Vec<u32> = vec![0, 1, 2, 23];
    let mut minutes: Vec<i64> = vec![1, 420, 421];
    if let Some(n) = rest.next() {
        days.push(u32::try_from(n.rem_euclid(800)).unwrap_or(0));
    }
    if let Some(m) = rest.next() {
        minutes.push(1 + m.rem_euclid(60_000));
    }
    days.sort_unstable();
    days.dedup();
    minutes.sort_unstable();
    minutes.dedup();
    for t in instants {
        check_working_days(&cal, t, &days);
        check_working_minutes(&cal, t, &minutes);
        check_thresholds(&cal, &policy, t);
    }
});

fn local(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(h, min, s))
        .and_then(|t| t.and_local_timezone(city_tz()).single())
        .map(|t| t.with_timezone(&Utc))
        .expect("a valid city time")
}

fn wall(t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&city_tz()).naive_local()
}

fn check_year(y: &YearCalendar) {
    assert!((1000..=9999).contains(&y.year));
    for d in y.holidays.iter().chain(&y.workdays) {
        assert_eq!(d.year(), y.year, "{d} outside {}", y.year);
    }
    for d in &y.workdays {
        assert!(matches!(d.weekday(), Weekday::Sat | Weekday::Sun), "{d}");
        assert!(!y.holidays.contains(d), "{d} is a holiday and a workday");
    }
}

fn check_hours(hours: &[WorkInterval]) {
    assert!(!hours.is_empty());
    for iv in hours {
        assert!(iv.start < iv.end);
    }
    for w in hours.windows(2) {
        assert!(w[0].end <= w[1].start, "{hours:?}");
    }
}

fn load_settings(text: &str) -> Option<Settings> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("hotline-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("a temporary directory");
        d
    });
    std::fs::write(dir.join("test.toml"), text).ok()?;
    let s = Settings::load_from(dir, Environment::Test, &[]).ok()?;
    // What `validate` promised.
    assert!(parse_hours(&s.calendar.hours).is_ok());
    assert!(s.sla.max_extension_days >= 1);
    assert!(!s.routing.retrain_every().is_zero() && !s.hotspots.every().is_zero());
    let url = s.database_url();
    assert!(
        url.starts_with("sqlite:") || url.starts_with("postgres"),
        "{url}"
    );
    assert!(s.hotspots.rules().window <= TimeDelta::days(31));
    Some(s)
}

fn in_working_time(cal: &Calendar, t: DateTime<Utc>, open_end: bool) -> bool {
    let l = wall(t);
    cal.is_working_day(l.date())
        && cal.hours().iter().any(|iv| {
            iv.start <= l.time() && (l.time() < iv.end || (!open_end && l.time() == iv.end))
        })
}

fn check_working_days(cal: &Calendar, t: DateTime<Utc>, days: &[u32]) {
    let close = cal.hours().last().expect("non-empty").end;
    let start = wall(t).date();
    let mut prev: Option<(u32, DateTime<Utc>)> = None;
    for &n in days {
        let due = cal.add_working_days(t, n);
        if due == DateTime::<Utc>::MAX_UTC {
            return;
        }
        let l = wall(due);
        assert!(cal.is_working_day(l.date()), "{t} + {n} wd = {due}");
        assert_eq!(l.time(), close, "{t} + {n} wd = {due}");
        if n == 0 {
            assert!(l.date() >= start);
        } else {
            assert!(l.date() > start, "{t} + {n} wd = {due}");
            if n <= 60 {
                let counted = start
                    .iter_days()
                    .skip(1)
                    .take_while(|d| *d <= l.date())
                    .filter(|d| cal.is_working_day(*d))
                    .count();
                assert_eq!(counted, n as usize, "{t} + {n} wd = {due}");
            }
        }
        if let Some((pn, p)) = prev {
            if pn >= 1 {
                assert!(p < due, "not increasing: {t} + {pn} = {p}, + {n} = {due}");
            } else {
                assert!(p <= due, "{t} + 0 = {p}, + {n} = {due}");
            }
        }
        assert_eq!(cal.due(t, WorkingDuration::WorkingDays(n)), due);
        prev = Some((n, due));
    }
}

fn check_working_minutes(cal: &Calendar, t: DateTime<Utc>, minutes: &[i64]) {
    let mut prev: Option<DateTime<Utc>> = None;
    for &m in minutes {
        let due = cal.add_working_minutes(t, m);
        if due == DateTime::<Utc>::MAX_UTC {
            return;
        }
        assert!(due > t, "{t} + {m} wm = {due}");
        assert!(in_working_time(cal, due, false), "{t} + {m} wm = {due}");
        assert_eq!(
            cal.working_minutes_between(t, due),
            m,
            "{t} + {m} wm = {due}"
        );
        if let Some(p) = prev {
            assert!(p < due, "not increasing in m at {t}: {p} then {due} ({m})");
        }
        let back = cal.sub_working_minutes(due, m);
        if in_working_time(cal, t, true) {
            assert_eq!(back, t, "{t} + {m} wm = {due}, back {back}");
        } else {
            // Outside hours the count began at the next opening, which is what comes back.
            assert!(back > t, "{t} + {m} wm = {due}, back {back}");
            assert!(in_working_time(cal, back, true), "{back}");
            assert_eq!(cal.working_minutes_between(t, back), 0);
            assert_eq!(cal.add_working_minutes(back, m), due);
        }
        prev = Some(due);
    }
}

fn check_thresholds(cal: &Calendar, policy: &SlaPolicy, t: DateTime<Utc>) {
    let saturated =
        |x: DateTime<Utc>| x == DateTime::<Utc>::MAX_UTC || x == DateTime::<Utc>::MIN_UTC;
    for category in [Category::Consult, Category::Complaint] {
        for urgency in [Urgency::Normal, Urgency::Urgent] {
            let (sign, reply) = sla::deadlines(cal, policy, category, urgency, t);
            for (clock, due) in [(Clock::Sign, sign), (Clock::Reply, reply)] {
                if saturated(due) {
                    continue;
                }
                let th = sla::thresholds(cal, policy, clock, due);
                if th.iter().any(|x| saturated(*x)) {
                    continue;
                }
                assert!(th[0] <= th[1] && th[1] <= th[2], "{clock:?} {due}: {th:?}");
                for (i, at) in th.iter().enumerate() {
                    assert!(sla::level_at(cal, policy, clock, due, *at) as usize > i);
                }
            }
        }
    }
}
