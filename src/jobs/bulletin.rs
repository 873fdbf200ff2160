//! The weekly 通报: every Monday from 08:30 (city time), last week's
//! bulletin is written under `data/reports/` and queued to the leaders
//! through the outbox, once per week however many instances run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Datelike, Days, NaiveTime, Utc};

use crate::domain::calendar::city_tz;
use crate::domain::figures::Period;
use crate::report::{self, Bulletin};
use crate::store::{Store, StoreResult};

/// The week whose bulletin is due at `now`: Monday to Monday before the
/// current week, once this week's Monday 08:30 has passed.
pub fn due_week(now: DateTime<Utc>) -> Option<Period> {
    let local = now.with_timezone(&city_tz());
    let monday = local.date_naive() - Days::new(u64::from(local.weekday().num_days_from_monday()));
    let opens = NaiveTime::from_hms_opt(8, 30, 0)?;
    // Before Monday 08:30 the week before last is still the latest due.
    let monday = if local.date_naive() == monday && local.time() < opens {
        monday - Days::new(7)
    } else {
        monday
    };
    Some(Period {
        from: monday - Days::new(7),
        to: monday,
    })
}

/// Writes the bulletin as `.txt`, `.html` and `.png` into `dir`; returns the
/// paths written.
pub fn write_files(b: &Bulletin, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let stem = format!("bulletin-{}-{}", b.period.from, b.period.to);
    let png = format!("{stem}.png");
    let files = [
        (dir.join(format!("{stem}.txt")), b.text().into_bytes()),
        (
            dir.join(format!("{stem}.html")),
            b.html(Some(&png)).into_bytes(),
        ),
        (dir.join(&png), b.chart_png()),
    ];
    let mut out = Vec::new();
    for (path, bytes) in files {
        std::fs::write(&path, bytes)?;
        out.push(path);
    }
    Ok(out)
}

/// One check: queues the due week's bulletin if nobody has. True when this
/// call queued it.
pub async fn tick(
    store: &Store,
    basically: bool,
    dir: &Path,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let Some(week) = due_week(now) else {
        return Ok(false);
    };
    let b = report::build(store, week, basically).await?;
    let draft = b.draft_mail(store).await?;
    let queued = store.queue_once(&draft, now).await?;
    if queued {
        if let Err(e) = write_files(&b, dir) {
            tracing::warn!(error = %e, "weekly bulletin queued, but its files could not be written");
        }
        tracing::info!(from = %week.from, to = %week.to, "weekly bulletin queued");
    }
    Ok(queued)
}

pub async fn run(
    store: Store,
    basically: bool,
    dir: PathBuf,
    every: Duration,
    mut stop: super::Stop,
) {
    let mut t = tokio::time::interval(every);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if !stop.tick(&mut t).await {
            return;
        }
        if let Err(e) = tick(&store, basically, &dir, crate::store::now()).await {
            tracing::error!(error = %e, "weekly bulletin failed; retrying later");
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        city_tz()
            .with_ymd_and_hms(2026, 11, d, h, m, 0)
            .single()
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn last_week_is_due_from_monday_half_past_eight() {
        // Monday 2026-11-23.
        assert_eq!(
            due_week(at(23, 8, 29)),
            Some(Period::parse("2026-11-09", "2026-11-16").unwrap())
        );
        assert_eq!(
            due_week(at(23, 8, 30)),
            Some(Period::parse("2026-11-16", "2026-11-23").unwrap())
        );
        assert_eq!(
            due_week(at(29, 23, 0)),
            Some(Period::parse("2026-11-16", "2026-11-23").unwrap())
        );
    }
}
