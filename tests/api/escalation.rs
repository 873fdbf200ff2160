use chrono::{DateTime, Duration, Utc};
use hotline::domain::lifecycle::Rules;
use hotline::jobs::sweeper::sweep;
use serde_json::{Value, json};

use crate::both;
use crate::helpers::*;

fn ts(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("timestamp"))
        .expect("rfc3339")
        .with_timezone(&Utc)
}

/// Agent, dispatcher, and people with e-mail addresses to be told.
async fn office(app: &TestApp) -> (String, String) {
    app.department("water").await;
    let agent = app.user("agent1", "agent", None).await;
    let dispatcher = app.user("dispatcher1", "dispatcher", None).await;
    app.user_with_email("waterhead", "dept_head", Some("water"))
        .await;
    app.user_with_email("super1", "supervisor", None).await;
    app.user_with_email("leader1", "leader", None).await;
    (agent, dispatcher)
}

async fn dispatched(app: &TestApp, agent: &str, dispatcher: &str, title: &str) -> Value {
    app.dispatched_ticket(agent, dispatcher, "water", title)
        .await
}

async fn dispatched_many(
    app: &TestApp,
    agent: &str,
    dispatcher: &str,
    n: usize,
    title: &str,
) -> Vec<i64> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let t = dispatched(app, agent, dispatcher, &format!("{title}{i}")).await;
        ids.push(t["id"].as_i64().unwrap());
    }
    ids
}

async fn sweep_at(app: &TestApp, at: DateTime<Utc>) -> hotline::jobs::sweeper::SweepReport {
    let s = &app.app_state;
    let rules = Rules {
        calendar: &s.calendar,
        sla: &s.settings.sla,
    };
    sweep(&s.store, &rules, "http://hotline.test", at)
        .await
        .expect("sweep")
}

/// Each ticket has exactly one `escalated` event per sign level, in order.
async fn assert_each_climbed_the_sign_ladder_once(app: &TestApp, token: &str, ids: &[i64]) {
    for id in ids {
        let t = app.get(&format!("/api/v1/tickets/{id}"), token).await;
        assert_eq!(
            escalations(t.expect(200)),
            [(1, "sign".into()), (2, "sign".into()), (3, "sign".into())],
            "ticket {id}"
        );
    }
}

fn escalations(t: &Value) -> Vec<(i64, String)> {
    t["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "escalated")
        .map(|e| {
            (
                e["payload"]["level"].as_i64().unwrap(),
                e["payload"]["clock"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

both!(
    the_sign_clock_climbs_its_ladder_one_level_and_one_mail_at_a_time,
    |app: TestApp| async move {
        let (agent, dispatcher) = office(&app).await;
        let t = dispatched(&app, &agent, &dispatcher, "阶梯").await;
        let id = t["id"].as_i64().unwrap();
        let outbox = |app: &TestApp| {
            let store = app.app_state.store.clone();
            async move { store.outbox_rows(Some(id)).await.unwrap() }
        };
        // The dispatch itself told the department.
        let rows = outbox(&app).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].kind, "dispatched");
        assert_eq!(rows[0].recipient, "water@example.cn");

        let warn_at = ts(&t["next_check_at"]);
        assert!(warn_at <= ts(&t["sign_due_at"]));
        assert_eq!(
            sweep_at(&app, warn_at - Duration::seconds(1)).await.levels,
            0
        );
        let r = sweep_at(&app, warn_at).await;
        assert_eq!((r.changed, r.levels), (1, 1));
        let t = app
            .get(&format!("/api/v1/tickets/{id}"), &dispatcher)
            .await
            .expect(200)
            .clone();
        assert_eq!(t["escalation_level"], 1, "{t:#}");
        assert_eq!(escalations(&t), [(1, "sign".to_owned())]);
        // Sweeping the same instant again changes nothing.
        assert_eq!(sweep_at(&app, warn_at).await.levels, 0);

        let overdue_at = ts(&t["next_check_at"]);
        assert_eq!(overdue_at, ts(&t["sign_due_at"]));
        sweep_at(&app, overdue_at).await;
        let t = app
            .get(&format!("/api/v1/tickets/{id}"), &dispatcher)
            .await
            .expect(200)
            .clone();
        assert_eq!(t["escalation_level"], 2);
        let r = app
            .get("/api/v1/tickets?escalation_level=2", &dispatcher)
            .await;
        assert_eq!(r.expect(200)["total"], 1);

        let supervise_at = ts(&t["next_check_at"]);
        sweep_at(&app, supervise_at).await;
        let t = app
            .get(&format!("/api/v1/tickets/{id}"), &dispatcher)
            .await
            .expect(200)
            .clone();
        assert_eq!(t["escalation_level"], 3);
        assert_eq!(t["next_check_at"], Value::Null);
        assert_eq!(
            escalations(&t),
            [(1, "sign".into()), (2, "sign".into()), (3, "sign".into())]
        );
        assert!(
            t["events"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["kind"] != "escalated" || e["actor"] == "sweeper")
        );

        let rows = outbox(&app).await;
        let mut got: Vec<(String, String)> = rows
            .iter()
            .map(|r| (r.kind.clone(), r.recipient.clone()))
            .collect();
        got.sort();
        // One notification per change, to everyone its audience includes.
        let mut want: Vec<(String, String)> = [
            ("dispatched", "water@example.cn"),
            ("warning", "water@example.cn"),
            ("overdue", "water@example.cn, waterhead@example.cn"),
            ("supervised", "super1@example.cn, leader1@example.cn"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        want.sort();
        assert_eq!(got, want);
        let overdue = rows.iter().find(|r| r.kind == "overdue").unwrap();
        assert!(
            overdue.subject.contains("催办")
                && overdue.subject.contains(t["ticket_no"].as_str().unwrap())
        );
        assert!(overdue.body.contains("http://hotline.test/tickets/"));

        // Signing late resets the ladder onto the reply clock.
        let handler = app.user("water1", "handler", Some("water")).await;
        let t = app
            .post(&format!("/api/v1/tickets/{id}/sign"), &handler, &json!({}))
            .await;
        let t = t.expect(200);
        assert_eq!(t["escalation_level"], 0);
        assert!(ts(&t["next_check_at"]) < ts(&t["reply_due_at"]));
    }
);

both!(
    a_week_of_downtime_climbs_each_ladder_once_and_mails_once,
    |app: TestApp| async move {
        let (agent, dispatcher) = office(&app).await;
        let ids = dispatched_many(&app, &agent, &dispatcher, 25, "停机").await;
        let back = Utc::now() + Duration::days(30);
        let r = sweep_at(&app, back).await;
        assert_eq!((r.changed, r.levels), (25, 75));
        assert_eq!(sweep_at(&app, back + Duration::days(1)).await.levels, 0);
        assert_each_climbed_the_sign_ladder_once(&app, &dispatcher, &ids).await;
        // Every notification is delivered once (file transport here).
        let s = &app.app_state;
        let total = s.store.outbox_rows(None).await.unwrap().len();
        assert_eq!(total, 25 * 4);
        let first = hotline::jobs::outbox::deliver_due(&s.store, &s.mailer, &s.settings.mail.from)
            .await
            .unwrap();
        assert_eq!((first.sent, first.failed), (total, 0));
        let again = hotline::jobs::outbox::deliver_due(&s.store, &s.mailer, &s.settings.mail.from)
            .await
            .unwrap();
        assert_eq!(again.sent, 0);
        let files = std::fs::read_dir(s.settings.data_dir.join("outbox"))
            .unwrap()
            .count();
        assert_eq!(files, total);
        let ready = app.get("/readyz", "").await;
        assert_eq!(ready.expect(200)["checks"]["outbox"]["pending"], 0);
    }
);

both!(
    three_sweeper_processes_record_each_level_exactly_once,
    |app: TestApp| async move {
        let (agent, dispatcher) = office(&app).await;
        let ids = dispatched_many(&app, &agent, &dispatcher, 120, "并发").await;
        let at = (Utc::now() + Duration::days(20)).to_rfc3339();
        let mut children = Vec::new();
        for _ in 0..3 {
            children.push(
                std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
                    .args(["sweep", "--at", &at])
                    .env("HOTLINE_ENV", "test")
                    .env("HOTLINE_CONFIG_DIR", config_dir())
                    .env("HOTLINE__DATABASE__URL", &app.db_url)
                    .env("HOTLINE__DATA_DIR", app.app_state.settings.data_dir.clone())
                    .env("RUST_LOG", "warn")
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn sweeper"),
            );
        }
        let mut levels = 0;
        for c in children {
            let out = c.wait_with_output().expect("sweeper ran");
            assert!(out.status.success());
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let n: usize = text
                .split_whitespace()
                .find_map(|w| w.strip_prefix("levels="))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no levels= in {text}"));
            levels += n;
        }
        assert_eq!(
            levels,
            120 * 3,
            "the three processes together recorded each level once"
        );
        assert_each_climbed_the_sign_ladder_once(&app, &dispatcher, &ids).await;
        let rows = app.app_state.store.outbox_rows(None).await.unwrap();
        // dispatched, warning, overdue, supervised: one row each per ticket.
        assert_eq!(rows.len(), 120 * 4);
    }
);
