//! 通报: the bulletin of a month of random histories has its sections, ranks
//! departments by 按期办结率, lists the longest-overdue tickets, renders as
//! HTML and PNG, and is queued to leaders once per period.

use chrono::{TimeZone, Utc};
use hotline::domain::calendar::city_tz;
use hotline::domain::figures::Period;
use hotline::report;

use crate::both;
use crate::helpers::*;
use crate::stats::random_histories;

both!(
    a_month_bulletin_is_complete_and_mailed_once,
    |app: TestApp| async move {
        app.user_with_email("leader1", "leader", None).await;
        let store = &app.app_state.store;
        let start = city_tz()
            .with_ymd_and_hms(2026, 9, 20, 8, 0, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc);
        random_histories(store, 11, 60, start).await;
        let october = Period::parse("2026-10-01", "2026-11-01").unwrap();
        let b = report::build(store, october, true).await.expect("bulletin");

        let city = &store.figures(october, None, None, true).await.unwrap()[0].figures;
        assert_eq!(b.city, *city);
        assert_eq!(
            b.previous,
            Period::parse("2026-08-31", "2026-10-01").unwrap()
        );
        let text = b.text();
        for part in [
            "一、总体情况",
            "二、承办单位排名",
            "三、超期未办工单",
            "按期办结率",
            "满意率",
        ] {
            assert!(text.contains(part), "{part} missing:\n{text}");
        }
        assert!(
            text.contains(&format!("受理量 {} 件", city.intake.numerator)),
            "{text}"
        );
        // Ranked by on-time rate, best first, undefined last.
        let rates: Vec<Option<f64>> = b
            .departments
            .iter()
            .map(|g| g.figures.on_time_rate.rate)
            .collect();
        for w in rates.windows(2) {
            match (w[0], w[1]) {
                (Some(a), Some(b)) => assert!(a >= b, "{rates:?}"),
                (None, Some(_)) => panic!("undefined before defined: {rates:?}"),
                _ => {}
            }
        }
        // The overdue list is ordered by how long ago the deadline passed.
        let dues: Vec<_> = b.overdue.iter().map(|o| o.due).collect();
        assert!(dues.windows(2).all(|w| w[0] <= w[1]), "{dues:?}");
        assert!(b.overdue.iter().all(|o| o.due < b.as_of));

        let html = b.html(Some("chart.png"));
        assert!(
            html.starts_with("<!doctype html>")
                && html.contains("<table")
                && html.contains("chart.png")
        );
        assert!(b.chart_png().starts_with(b"\x89PNG\r\n\x1a\n"));

        let draft = b.draft_mail(store).await.unwrap();
        assert_eq!(draft.recipient, "leader1@example.cn");
        let now = Utc::now();
        assert!(store.queue_once(&draft, now).await.unwrap());
        assert!(!store.queue_once(&draft, now).await.unwrap());
        let rows = store.outbox_rows(None).await.unwrap();
        let bulletins: Vec<_> = rows
            .iter()
            .filter(|r| r.kind.starts_with("bulletin:"))
            .collect();
        assert_eq!(bulletins.len(), 1);
        assert!(bulletins[0].body.contains("一、总体情况"));

        // The weekly job: once per week, files written.
        let dir = tempfile::tempdir().unwrap();
        let monday = city_tz()
            .with_ymd_and_hms(2026, 10, 19, 9, 0, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc);
        assert!(
            hotline::jobs::bulletin::tick(store, true, dir.path(), monday)
                .await
                .unwrap()
        );
        assert!(
            !hotline::jobs::bulletin::tick(store, true, dir.path(), monday)
                .await
                .unwrap()
        );
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(files.len(), 3, "{files:?}");
    }
);
