//! Fixtures shared by the domain's unit tests: the real 2026 calendar, the
//! default SLA policy, and instants on the city's wall clock.

use std::path::Path;
use std::sync::LazyLock;

use chrono::{DateTime, TimeZone, Utc};

use super::calendar::{Calendar, city_tz, parse_hours};
use super::lifecycle::Rules;
use super::sla::SlaPolicy;

pub static CALENDAR: LazyLock<Calendar> = LazyLock::new(|| {
    let hours = parse_hours("08:30-12:00,14:00-17:30").expect("office hours");
    Calendar::load_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("config/holidays"),
        hours,
    )
    .expect("config/holidays loads")
});

pub static POLICY: LazyLock<SlaPolicy> = LazyLock::new(SlaPolicy::default);

pub fn rules() -> Rules<'static> {
    Rules {
        calendar: &CALENDAR,
        sla: &POLICY,
    }
}

/// An instant given on the city's wall clock (UTC+08:00).
pub fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    city_tz()
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("valid local time")
        .with_timezone(&Utc)
}
