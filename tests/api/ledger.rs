//! 台账 export and import: a round trip through CSV gives back the same
//! tickets and the same figures on a fresh database; import is idempotent and
//! reports bad rows by line; the HTTP export respects roles and masking.

use chrono::{TimeZone, Utc};
use hotline::domain::calendar::{Calendar, city_tz, parse_hours};
use hotline::domain::figures::Period;
use hotline::domain::lifecycle::Rules;
use hotline::domain::sla::SlaPolicy;
use hotline::ledger::{ExportQuery, export_csv, import_csv};
use hotline::store::Store;
use serde_json::json;

use crate::both;
use crate::helpers::*;
use crate::stats::{DEPARTMENTS, fresh_store, random_histories};

fn calendar() -> Calendar {
    let hours = parse_hours("08:30-12:00,14:00-17:30").expect("hours");
    Calendar::load_dir(&config_dir().join("holidays"), hours).expect("calendar")
}

fn everything() -> Period {
    Period::parse("2026-01-01", "2027-06-01").expect("period")
}

async fn export_all(store: &Store) -> Vec<u8> {
    let q = ExportQuery {
        period: everything(),
        department: None,
        unmasked: false,
    };
    let mut out = Vec::new();
    export_csv(store, &q, &mut out, |_| {})
        .await
        .expect("export");
    out
}

/// The same export through the HTTP endpoint's reader: pages of tickets
/// through the ORM, each page's events looked up apart. The streaming
/// reader (COPY on PostgreSQL, the file itself on SQLite) must agree byte
/// for byte.
async fn export_by_pages(store: &Store, q: &ExportQuery) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(hotline::ledger::COLUMNS).unwrap();
    let mut cursor = None;
    while let Some((rows, next)) = q.page(store, cursor).await.expect("page") {
        for r in rows {
            w.write_record(&r).unwrap();
        }
        cursor = next;
    }
    w.into_inner().unwrap()
}

async fn with_departments(store: &Store) {
    for d in DEPARTMENTS {
        store
            .create_department(d, &format!("{d} 部门"), "functional", None, Utc::now())
            .await
            .expect("department");
    }
}

fn round_trip(backend: Backend) {
    actix_web::rt::System::new().block_on(async move {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let Some(a) = fresh_store(backend, da.path()).await else {
            return;
        };
        let b = fresh_store(backend, db.path()).await.expect("second store");
        with_departments(&a).await;
        with_departments(&b).await;
        let start = city_tz()
            .with_ymd_and_hms(2026, 9, 20, 8, 0, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc);
        random_histories(&a, 7, 40, start).await;
        // Every transition kept the scope rows' copy of the state.
        assert_eq!(a.scope_state_mismatches().await.unwrap(), 0);
        let csv = export_all(&a).await;
        let lines = csv.iter().filter(|c| **c == b'\n').count();
        assert!(lines > 40, "every ticket and a header: {lines} lines");
        // The tickets were made in random order over 30 days from 20
        // September: a whole-period export reads one run of ids; a department,
        // or five days, a scattered few (each ticket's events looked up); three
        // weeks most of the run with other tickets among them (one walk of the
        // events over the run, skipping theirs).
        let three_weeks = Period::parse("2026-09-20", "2026-10-11").unwrap();
        let five_days = Period::parse("2026-09-25", "2026-09-30").unwrap();
        for (period, department) in [
            (everything(), None),
            (everything(), Some(DEPARTMENTS[0].to_owned())),
            (three_weeks, None),
            (five_days, None),
        ] {
            let q = ExportQuery {
                period,
                department,
                unmasked: false,
            };
            let mut streamed = Vec::new();
            export_csv(&a, &q, &mut streamed, |_| {}).await.unwrap();
            // The pages run in creation order, the stream in id order.
            let records = |bytes: Vec<u8>| {
                let mut r: Vec<csv::StringRecord> = csv::Reader::from_reader(bytes.as_slice())
                    .records()
                    .map(Result::unwrap)
                    .collect();
                r.sort_by(|x, y| x.iter().cmp(y.iter()));
                r
            };
            let streamed = records(streamed);
            assert!(!streamed.is_empty());
            assert_eq!(streamed, records(export_by_pages(&a, &q).await), "{q:?}");
        }

        let cal = calendar();
        let sla = SlaPolicy::default();
        let rules = Rules {
            calendar: &cal,
            sla: &sla,
        };
        let report = import_csv(&b, &rules, std::io::Cursor::new(csv.clone()), |_| {})
            .await
            .expect("import");
        assert!(report.bad.is_empty(), "{:?}", report.bad);
        assert_eq!(report.imported, 40);
        assert_eq!(report.existing, 0);
        // So did the bulk load.
        assert_eq!(b.scope_state_mismatches().await.unwrap(), 0);
        // Every index dropped for the load is back, as it was.
        assert_eq!(index_definitions(&b).await, index_definitions(&a).await);

        // Identical figures, from the rollups and from the raw rows.
        let figures_a = a.stored_rollup().await.unwrap();
        assert_eq!(b.stored_rollup().await.unwrap(), figures_a);
        assert_eq!(b.raw_rollup().await.unwrap(), figures_a);
        for group in [None, Some(hotline::domain::figures::GroupBy::Department)] {
            let p = Period::parse("2026-09-01", "2027-01-01").unwrap();
            assert_eq!(
                b.figures(p, group, None, true).await.unwrap().len(),
                a.figures(p, group, None, true).await.unwrap().len()
            );
        }
        // The same ledger comes back out.
        let back = String::from_utf8(export_all(&b).await).unwrap();
        let sent = String::from_utf8(csv.clone()).unwrap();
        for (x, y) in back.lines().zip(sent.lines()) {
            if x != y {
                let at = x.chars().zip(y.chars()).take_while(|(a, b)| a == b).count();
                let near = |s: &str| {
                    s.chars()
                        .skip(at.saturating_sub(80))
                        .take(160)
                        .collect::<String>()
                };
                panic!(
                    "export after import differs at char {at}:\n{}\n{}",
                    near(x),
                    near(y)
                );
            }
        }
        assert_eq!(back.lines().count(), sent.lines().count());

        // A second import adds nothing.
        let again = import_csv(&b, &rules, std::io::Cursor::new(csv.clone()), |_| {})
            .await
            .expect("again");
        assert_eq!((again.imported, again.existing), (0, 40));
        assert_eq!(b.count_tickets().await.unwrap(), 40);
        assert_eq!(b.stored_rollup().await.unwrap(), figures_a);

        if backend == Backend::Postgres {
            use sea_orm::ConnectionTrait;
            let sql = |s: &str| sea_orm::Statement::from_string(sea_orm::DbBackend::Postgres, s);
            let pending = || async {
                let r =
                    b.db.query_one_raw(sql("SELECT COUNT(*) FROM stats_pending"))
                        .await
                        .unwrap()
                        .unwrap();
                r.try_get_by_index::<i64>(0).unwrap()
            };
            // The load's rollup rows went pending and were folded in at its end.
            assert_eq!(pending().await, 0);
            // Rows a load has left pending count like the others.
            let p = Period::parse("2026-09-01", "2027-01-01").unwrap();
            let group = Some(hotline::domain::figures::GroupBy::Department);
            let before = b.stats(p, group, None).await.unwrap();
            for s in [
                "INSERT INTO stats_pending SELECT * FROM stats_daily WHERE day % 3 = 0",
                "DELETE FROM stats_daily WHERE day % 3 = 0",
            ] {
                b.db.execute_raw(sql(s)).await.unwrap();
            }
            assert!(pending().await > 0);
            assert_eq!(b.stored_rollup().await.unwrap(), figures_a);
            assert_eq!(b.stats(p, group, None).await.unwrap(), before);
            // A rebuild takes them in, once.
            b.rebuild_stats().await.unwrap();
            assert_eq!(pending().await, 0);
            assert_eq!(b.stored_rollup().await.unwrap(), figures_a);
        }
    });
}

/// The indexes of the bulk-loaded tables, by name, with their definitions.
async fn index_definitions(store: &Store) -> Vec<(String, String)> {
    use sea_orm::ConnectionTrait;
    let b = store.db.get_database_backend();
    let sql = if b == sea_orm::DbBackend::Postgres {
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() \
         AND tablename IN ('tickets', 'ticket_events', 'ticket_departments') ORDER BY 1"
    } else {
        "SELECT name, COALESCE(sql, '') FROM sqlite_master WHERE type = 'index' \
         AND tbl_name IN ('tickets', 'ticket_events', 'ticket_departments') ORDER BY 1"
    };
    let rows = store
        .db
        .query_all_raw(sea_orm::Statement::from_string(b, sql.to_owned()))
        .await
        .unwrap();
    let defs: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            let (name, def): (String, String) = (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
            );
            // Each store has a schema of its own on PostgreSQL.
            (name, def.replace(&format!("{}.", schema_of(&def)), ""))
        })
        .collect();
    assert!(defs.len() > 10, "{defs:?}");
    defs
}

/// The schema qualifying the table in an index definition (`ON s.t USING`).
fn schema_of(def: &str) -> String {
    def.split(" ON ")
        .nth(1)
        .and_then(|rest| rest.split_once('.'))
        .map(|(schema, _)| schema.trim_start_matches("ONLY ").to_owned())
        .unwrap_or_default()
}

#[test]
fn export_then_import_gives_identical_figures_sqlite() {
    round_trip(Backend::Sqlite);
}

#[test]
fn export_then_import_gives_identical_figures_postgres() {
    round_trip(Backend::Postgres);
}

both!(bad_rows_are_reported_by_line, |app: TestApp| async move {
    let store = &app.app_state.store;
    app.department("water").await;
    let header = hotline::ledger::COLUMNS.join(",");
    let good = |no: &str, category: &str, created: &str| {
        let mut cells: Vec<String> = hotline::ledger::COLUMNS
            .iter()
            .map(|c| match *c {
                "ticket_no" => no.into(),
                "channel" => "hotline".into(),
                "category" => category.into(),
                "urgency" => "normal".into(),
                "title" => "路灯不亮".into(),
                "content" => "小区门口路灯不亮。".into(),
                "state" => "registered".into(),
                "created_by" => "agent".into(),
                "created_at" => created.into(),
                "escalation_level" | "rework_count" | "return_count" | "extension_count" => {
                    "0".into()
                }
                _ => String::new(),
            })
            .collect();
        cells.iter_mut().for_each(|c| {
            if c.contains(',') {
                *c = format!("\"{c}\"");
            }
        });
        cells.join(",")
    };
    let csv = [
        header,
        good("20250301H000001", "complaint", "2025-03-01T09:00:00+08:00"),
        good("20250301H000002", "gripe", "2025-03-01T09:05:00+08:00"),
        good("20250301H000003", "consult", "yesterday"),
        good("not-a-number", "consult", "2025-03-01T09:05:00+08:00"),
        good("20250301H000004", "consult", "2025-03-01T10:00:00+08:00"),
    ]
    .join("\n");
    let cal = calendar();
    let sla = SlaPolicy::default();
    let rules = Rules {
        calendar: &cal,
        sla: &sla,
    };
    let r = import_csv(
        store,
        &rules,
        std::io::Cursor::new(csv.as_bytes().to_vec()),
        |_| {},
    )
    .await
    .expect("import");
    assert_eq!(r.imported, 2);
    let lines: Vec<u64> = r.bad.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![3, 4, 5], "{:?}", r.bad);
    assert!(r.bad[0].1.contains("category"), "{:?}", r.bad);
    assert!(r.bad[1].1.contains("created_at"), "{:?}", r.bad);
    // The imported history counts in the figures of its day.
    let leader = app.user("leader1", "leader", None).await;
    let f = app
        .get("/api/v1/stats?from=2025-03-01&to=2025-03-02", &leader)
        .await;
    assert_eq!(f.expect(200)["figures"]["intake"]["numerator"], 2);
    // A missing column stops the import before any row.
    let e = import_csv(store, &rules, "ticket_no,channel\n".as_bytes(), |_| {}).await;
    assert!(e.is_err());
});

both!(
    the_export_endpoint_masks_and_scopes,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        app.dispatched_ticket(&o.agent, &o.dispatcher, "water", "停水")
            .await;
        app.dispatched_ticket(&o.agent, &o.dispatcher, "gas", "燃气")
            .await;
        let today = Utc::now().with_timezone(&city_tz()).date_naive();
        let q = format!(
            "/api/v1/export?from={today}&to={}",
            today + chrono::Days::new(1)
        );
        let all = app.get(&q, &o.leader).await;
        assert_eq!(all.status, 200);
        assert!(all.content_type.starts_with("text/csv"));
        let text = all.body.as_str().expect("csv text").to_owned();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains("138****1234"), "{text}");
        assert!(!text.contains("13800001234"), "{text}");

        let own = app.get(&q, &o.water_head).await;
        let own = own.body.as_str().expect("csv").to_owned();
        assert_eq!(own.lines().count(), 2, "{own}");
        assert!(own.contains("停水") && !own.contains("燃气"));
        app.get(&format!("{q}&department=gas"), &o.water_head)
            .await
            .expect_problem(403, "forbidden");
        app.get(&q, &o.water).await.expect_problem(403, "forbidden");
        app.get(
            &format!("{q}&unmasked=true&reason=%E6%A0%B8%E6%9F%A5"),
            &o.leader,
        )
        .await
        .expect_problem(403, "forbidden");
        app.get(&format!("{q}&unmasked=true"), &app.admin)
            .await
            .expect_problem(422, "validation_failed");
        app.get("/api/v1/export?from=2026-01-01", &o.leader)
            .await
            .expect_problem(422, "validation_failed");

        let full = app
            .get(
                &format!("{q}&unmasked=true&reason=%E6%A0%B8%E6%9F%A5"),
                &app.admin,
            )
            .await;
        assert_eq!(full.status, 200);
        assert!(full.body.as_str().unwrap().contains("13800001234"));
        let log = app.get("/api/v1/access-log", &app.admin).await;
        let log = log.expect(200);
        assert!(
            log["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["action"] == "export_unmasked"),
            "{log}"
        );

        let x = app.get(&format!("{q}&format=xlsx"), &o.leader).await;
        assert_eq!(x.status, 200);
        assert!(x.content_type.contains("spreadsheetml"));
        let _ = json!({});
    }
);
