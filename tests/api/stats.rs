//! Figures (DESIGN.md "Figures"): random ticket histories committed through
//! the real store keep the rollups equal to what the raw tickets and events
//! say, on SQLite and PostgreSQL; and `GET /api/v1/stats` answers with the
//! right numbers, scoping and errors.

use std::path::Path;

use chrono::{DateTime, Days, Duration, NaiveDate, TimeZone, Utc};
use hotline::domain::appeal::NewAppeal;
use hotline::domain::calendar::{Calendar, city_tz, parse_hours};
use hotline::domain::figures::{GroupBy, Period, query_rollup};
use hotline::domain::lifecycle::{self, Action, Rules};
use hotline::domain::simulate::propose;
use hotline::domain::sla::SlaPolicy;
use hotline::domain::types::{Category, Channel, DepartmentCode, TicketState, Urgency};
use hotline::store::Store;
use hotline::store::tickets::{SideEffect, TransitionWrite, to_domain};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::both;
use crate::helpers::*;

pub const DEPARTMENTS: &[&str] = &["water", "gas", "housing", "donghu"];

pub async fn fresh_store(backend: Backend, dir: &Path) -> Option<Store> {
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.join("stats.db").display()),
        Backend::Postgres => {
            let admin = std::env::var("TEST_DATABASE_URL")
                .ok()
                .filter(|s| !s.is_empty())?;
            fresh_pg_database(&admin).await
        }
    };
    let store = Store::connect(&url, 4).await.expect("connect");
    store.migrate().await.expect("migrate");
    Some(store)
}

/// Registers `n` appeals over a month from `start` and works each through
/// random actions, every change committed as the API commits it.
pub async fn random_histories(store: &Store, seed: u64, n: usize, start: DateTime<Utc>) {
    let hours = parse_hours("08:30-12:00,14:00-17:30").expect("hours");
    let calendar = Calendar::load_dir(&config_dir().join("holidays"), hours).expect("calendar");
    let sla = SlaPolicy::default();
    let rules = Rules {
        calendar: &calendar,
        sla: &sla,
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let departments: Vec<String> = DEPARTMENTS.iter().map(|s| s.to_string()).collect();
    let mut created: Vec<i64> = Vec::new();
    for i in 0..n {
        let at = start + Duration::minutes(rng.gen_range(0..30 * 24 * 60));
        let appeal = NewAppeal {
            channel: Channel::ALL[rng.gen_range(0..3)],
            external_id: None,
            category: Category::ALL[rng.gen_range(0..Category::ALL.len())],
            urgency: if rng.gen_bool(0.15) {
                Urgency::Urgent
            } else {
                Urgency::Normal
            },
            title: format!("诉求{i}"),
            content: "市民反映情况，请处理。".into(),
            citizen_name: None,
            citizen_phone: (!rng.gen_bool(0.1)).then(|| "13800001234".into()),
            address: None,
            district: [None, Some("donghu"), Some("xihu")][rng.gen_range(0..3)]
                .map(|d| DepartmentCode::parse(d).expect("code")),
            created_by: "agent".into(),
        };
        let mut t = store
            .create_tickets(std::slice::from_ref(&appeal), at)
            .await
            .pop()
            .expect("one result")
            .expect("created")
            .ticket;
        let mut now = at;
        let mut pending = None;
        for _ in 0..14 {
            let current = to_domain(&t).expect("domain");
            let merge_into = created.last().copied();
            let Some((actor, mut action, when)) =
                propose(&mut rng, &current, now, &departments, pending, merge_into)
            else {
                break;
            };
            if let Action::Merge {
                into,
                into_ticket_no,
                into_state,
            } = &mut action
            {
                let target = store
                    .ticket(*into, &hotline::store::tickets::Scope::All)
                    .await;
                let target = target.expect("load").expect("merge target");
                *into_ticket_no = target.ticket_no.clone();
                *into_state = target.state.parse().expect("state");
            }
            let Ok((after, event)) = lifecycle::apply(&rules, &current, &actor, &action, when)
            else {
                continue;
            };
            let side = match &action {
                Action::RequestExtension {
                    working_days,
                    reason,
                } => SideEffect::NewExtension {
                    working_days: *working_days,
                    reason: reason.clone(),
                    department: current.department.clone().unwrap_or_default(),
                },
                Action::DecideExtension {
                    extension_id,
                    approve,
                    ..
                } => SideEffect::DecideExtension {
                    id: *extension_id,
                    approve: *approve,
                    note: None,
                },
                _ => SideEffect::None,
            };
            let write = TransitionWrite {
                before: &t,
                after: &after,
                event: &event,
                actor: &actor.name,
                side: &side,
                outbox: &[],
            };
            let Ok(Some((next, ext))) = store.commit_transition(&write, when).await else {
                // A second pending request, or a decided one: refused whole.
                continue;
            };
            match (&action, ext) {
                (Action::RequestExtension { working_days, .. }, Some(e)) => {
                    pending = Some((e.id, *working_days))
                }
                (Action::DecideExtension { .. }, _) => pending = None,
                _ => {}
            }
            t = next;
            now = when;
        }
        assert!(t.state.parse::<TicketState>().is_ok());
        created.push(t.id);
    }
}

fn check_store(backend: Backend, seed: u64, checks: &[(u64, u64, usize, bool)]) {
    actix_web::rt::System::new().block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some(store) = fresh_store(backend, dir.path()).await else {
            return;
        };
        let start = city_tz()
            .with_ymd_and_hms(2026, 9, 20, 8, 0, 0)
            .single()
            .expect("time")
            .with_timezone(&Utc);
        random_histories(&store, seed, 25, start).await;

        // The rollups the transactions kept equal a count from scratch.
        let raw = store.raw_rollup().await.expect("raw");
        let stored = store.stored_rollup().await.expect("stored");
        assert_eq!(stored, raw, "seed {seed}");

        // And every figure query over them answers what the raw data says.
        let base = NaiveDate::from_ymd_opt(2026, 9, 15).expect("date");
        for (offset, len, group, scoped) in checks {
            let from = base + Days::new(*offset);
            let period = Period {
                from,
                to: from + Days::new(*len),
            };
            let group_by = [
                None,
                Some(GroupBy::Department),
                Some(GroupBy::Channel),
                Some(GroupBy::Category),
                Some(GroupBy::District),
            ][*group];
            let only = scoped.then_some(DEPARTMENTS[(seed % 4) as usize]);
            let got = store.stats(period, group_by, only).await.expect("stats");
            assert_eq!(
                got,
                query_rollup(&raw, period, group_by, only),
                "seed {seed}, {period:?}, {group_by:?}, {only:?}"
            );
        }

        // On PostgreSQL registration appended its rollup rows to
        // `stats_pending`, counted from there; a fold moves them into
        // `stats_daily`, and two folds at once move them once.
        let pending = || async {
            use sea_orm::ConnectionTrait;
            if backend != Backend::Postgres {
                return 0;
            }
            let r = store
                .db
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SELECT COUNT(*) FROM stats_pending",
                ))
                .await
                .expect("count")
                .expect("row");
            r.try_get_by_index::<i64>(0).expect("count")
        };
        let before = pending().await;
        assert_eq!(before > 0, backend == Backend::Postgres, "seed {seed}");
        let (a, b) =
            futures_util::future::join(store.fold_live_pending(), store.fold_live_pending()).await;
        assert_eq!(a.expect("fold") + b.expect("fold"), before as u64);
        assert_eq!(pending().await, 0);
        assert_eq!(store.stored_rollup().await.expect("stored"), raw, "folded");
        let (offset, len, group, scoped) = checks[0];
        let from = base + Days::new(offset);
        let period = Period {
            from,
            to: from + Days::new(len),
        };
        let group_by = [None, Some(GroupBy::Department), Some(GroupBy::District)][group % 3];
        let only = scoped.then_some(DEPARTMENTS[(seed % 4) as usize]);
        assert_eq!(
            store.stats(period, group_by, only).await.expect("stats"),
            query_rollup(&raw, period, group_by, only),
            "folded, seed {seed}"
        );

        // A rebuild lands on the same rows.
        store.rebuild_stats().await.expect("rebuild");
        assert_eq!(store.stored_rollup().await.expect("stored"), raw);
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn rollups_equal_the_raw_figures_sqlite(
        seed in any::<u64>(),
        checks in proptest::collection::vec((0u64..90, 0u64..70, 0usize..5, any::<bool>()), 12),
    ) {
        check_store(Backend::Sqlite, seed, &checks);
    }

    #[test]
    fn rollups_equal_the_raw_figures_postgres(
        seed in any::<u64>(),
        checks in proptest::collection::vec((0u64..90, 0u64..70, 0usize..5, any::<bool>()), 12),
    ) {
        check_store(Backend::Postgres, seed, &checks);
    }
}

fn today() -> NaiveDate {
    Utc::now().with_timezone(&city_tz()).date_naive()
}

fn period_query(group_by: &str) -> String {
    let from = today();
    let to = from + Days::new(1);
    format!("/api/v1/stats?from={from}&to={to}&group_by={group_by}")
}

both!(
    the_stats_endpoint_counts_todays_work_by_role,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        // 1: answered directly; 2: dispatched, signed, replied, called back;
        // 3: dispatched to gas, which returns it.
        let id1 = app
            .post("/api/v1/tickets", &o.agent, &appeal("咨询公积金"))
            .await
            .expect(201)["id"]
            .as_i64()
            .unwrap();
        app.post(
            &format!("/api/v1/tickets/{id1}/close"),
            &o.agent,
            &json!({"resolution": "direct_answer", "note": "已答复"}),
        )
        .await
        .expect(200);
        let t2 = app
            .dispatched_ticket(&o.agent, &o.dispatcher, "water", "停水")
            .await;
        let id2 = t2["id"].as_i64().unwrap();
        for (path, token, body) in [
            ("sign", &o.water, json!({})),
            (
                "reply",
                &o.water,
                json!({"content": "已恢复供水", "resolved": true}),
            ),
            (
                "callback",
                &o.dispatcher,
                json!({"satisfaction": "basically_satisfied", "resolved": true}),
            ),
        ] {
            app.post(&format!("/api/v1/tickets/{id2}/{path}"), token, &body)
                .await
                .expect(200);
        }
        let t3 = app
            .dispatched_ticket(&o.agent, &o.dispatcher, "gas", "燃气费")
            .await;
        app.post(
            &format!("/api/v1/tickets/{}/return", t3["id"]),
            &o.gas,
            &json!({"reason": "不属于本单位"}),
        )
        .await
        .expect(200);

        let city = app.get(&period_query(""), &o.leader).await;
        let body = city.expect(200);
        assert_eq!(body["from"], today().to_string());
        let f = &body["figures"];
        assert_eq!(f["intake"], json!({"numerator": 3}));
        assert_eq!(f["direct_answer_rate"]["denominator"], 3, "{f}");
        assert_eq!(f["direct_answer_rate"]["numerator"], 1);
        assert_eq!(
            f["return_rate"],
            json!({"numerator": 1, "denominator": 2, "rate": 0.5})
        );
        assert_eq!(
            f["first_dispatch_accuracy"],
            json!({"numerator": 1, "denominator": 2, "rate": 0.5})
        );
        assert_eq!(
            f["satisfaction_rate"],
            json!({"numerator": 1, "denominator": 1, "rate": 1.0})
        );
        assert_eq!(f["resolution_rate"]["numerator"], 1);
        assert_eq!(
            f["rework_rate"],
            json!({"numerator": 0, "denominator": 1, "rate": 0.0})
        );
        // Nothing falls due today: an empty denominator is null, not 0.
        assert_eq!(
            f["closure_rate"],
            json!({"numerator": 0, "denominator": 0, "rate": null})
        );
        assert_eq!(f["overdue_open"], json!({"numerator": 0}));

        let by = app.get(&period_query("department"), &o.supervisor).await;
        let by = by.expect(200);
        assert_eq!(by["group_by"], "department");
        let groups = by["groups"].as_array().expect("groups");
        let water = groups.iter().find(|g| g["key"] == "water").expect("water");
        assert_eq!(water["name"], "water 部门");
        assert_eq!(water["figures"]["intake"]["numerator"], 1);
        let gas = groups.iter().find(|g| g["key"] == "gas").expect("gas");
        assert_eq!(gas["figures"]["return_rate"]["rate"], 1.0);
        // The returned ticket has no lead: its intake is 未派单.
        let none = groups.iter().find(|g| g["key"] == "").expect("unassigned");
        assert_eq!(none["figures"]["intake"]["numerator"], 2);

        // A dept_head sees their own department only.
        let own = app.get(&period_query("channel"), &o.water_head).await;
        let own = own.expect(200);
        assert_eq!(own["department"], "water");
        assert_eq!(own["groups"][0]["key"], "hotline");
        assert_eq!(own["groups"][0]["figures"]["intake"]["numerator"], 1);
        let q = format!("{}&department=gas", period_query(""));
        app.get(&q, &o.water_head)
            .await
            .expect_problem(403, "forbidden");
        for token in [&o.water, &o.agent] {
            app.get(&period_query(""), token)
                .await
                .expect_problem(403, "forbidden");
        }
        app.get(&period_query(""), "")
            .await
            .expect_problem(401, "unauthorized");
    }
);

both!(bad_periods_are_refused, |app: TestApp| async move {
    let leader = app.user("leader1", "leader", None).await;
    for q in [
        "",
        "?from=2026-11-01",
        "?from=2026-13-01&to=2026-12-01",
        "?from=2026-12-01&to=2026-11-01",
        "?from=2010-01-01&to=2026-11-01",
        "?from=2026-11-01T08:00:00%2B08:00&to=2026-12-01",
        "?from=2026-11-01&to=2026-12-01&group_by=street",
    ] {
        let r = app.get(&format!("/api/v1/stats{q}"), &leader).await;
        r.expect_problem(422, "validation_failed");
    }
    app.get("/api/v1/stats?from=2026-11-01&to=2026-11-01", &leader)
        .await
        .expect(200);
});

both!(
    periods_past_year_9999_are_refused_by_stats_and_export,
    |app: TestApp| async move {
        // Found by tests/schemathesis: an instant at the city midnight of
        // 10000-01-01 was taken, and `from`/`to` went out as "+10000-01-01",
        // which is no `YYYY-MM-DD` date.
        let leader = app.user("leader1", "leader", None).await;
        let q = "from=9999-12-31T16:00:00Z&to=9999-12-31T16:00:00Z";
        for path in ["/api/v1/stats", "/api/v1/export"] {
            app.get(&format!("{path}?{q}"), &leader)
                .await
                .expect_problem(422, "validation_failed");
        }
        let r = app
            .get("/api/v1/stats?from=9999-12-30&to=9999-12-31", &leader)
            .await;
        assert_eq!(r.expect(200)["to"], "9999-12-31");
    }
);

/// `hotline generate` bulk-loads tickets, events and rollups (COPY on
/// PostgreSQL, flushed every 250,000 tickets and at the end): the rollups it
/// writes equal the ones its raw rows give, and a second run is refused.
fn generated_rollups_match(backend: Backend) {
    actix_web::rt::System::new().block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some(store) = fresh_store(backend, dir.path()).await else {
            return;
        };
        let data_dir = dir.path().display().to_string();
        let settings = hotline::config::Settings::load_from(
            &config_dir(),
            hotline::config::Environment::Test,
            &[("data_dir", data_dir.as_str())],
        )
        .expect("settings");
        let calendar = hotline::startup::calendar(&settings).expect("calendar");
        let args = hotline::cli::generate::GenerateArgs {
            tickets: 3000,
            years: 1,
            seed: 5,
            batch: 700,
        };
        hotline::cli::generate::run(&settings, &store, calendar.clone(), args)
            .await
            .expect("generate");
        assert_eq!(store.count_tickets().await.unwrap(), 3000);
        let raw = store.raw_rollup().await.expect("raw");
        assert_eq!(store.stored_rollup().await.expect("stored"), raw);
        let today = Utc::now().with_timezone(&city_tz()).date_naive();
        let year = Period {
            from: today - Days::new(366),
            to: today + Days::new(1),
        };
        let city = store.stats(year, None, None).await.expect("stats");
        assert_eq!(city[""].0.get(hotline::domain::figures::Col::Created), 3000);
        let again = hotline::cli::generate::GenerateArgs {
            tickets: 10,
            years: 1,
            seed: 5,
            batch: 10,
        };
        assert!(
            hotline::cli::generate::run(&settings, &store, calendar, again)
                .await
                .is_err()
        );
    });
}

#[test]
fn generated_rollups_match_the_raw_rows_sqlite() {
    generated_rollups_match(Backend::Sqlite);
}

#[test]
fn generated_rollups_match_the_raw_rows_postgres() {
    generated_rollups_match(Backend::Postgres);
}
