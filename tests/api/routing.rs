//! 智能派单 over raw HTTP: ranked suggestions with reasons, for agents and
//! dispatchers only; auto-dispatch above `routing.auto_dispatch_threshold`
//! (off by default), recorded as the `router`'s event; the catalogue edited
//! through the API — checked, versioned, in force at once and after a
//! restart; and a model that learns from closed tickets never returned.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::both;
use crate::helpers::*;

const GAS_LEAK: (&str, &str) = (
    "小区燃气泄漏",
    "市民来电反映：小区楼道里闻到很浓的煤气味，怀疑燃气泄漏，请尽快处理。",
);
const UNPAID_WAGES: (&str, &str) = (
    "公司拖欠工资",
    "市民来电反映：公司老板欠薪三个月，一直不发工资，请帮忙讨薪。",
);
const VAGUE: (&str, &str) = ("我想反映一个问题", "市民来电反映一个情况，请尽快处理。");

/// Registers an appeal as `token` and returns the ticket.
async fn register(
    app: &TestApp,
    token: &str,
    category: &str,
    (title, content): (&str, &str),
) -> Value {
    app.post(
        "/api/v1/tickets",
        token,
        &json!({
            "channel": "hotline", "category": category, "title": title, "content": content,
            "citizen": {"name": "张三", "phone": "13800001234"},
            "address": "东湖区某小区", "district": "donghu",
        }),
    )
    .await
    .expect(201)
    .clone()
}

fn id(t: &Value) -> i64 {
    t["id"].as_i64().expect("ticket id")
}

async fn suggestions(app: &TestApp, token: &str, id: i64) -> Vec<Value> {
    app.get(&format!("/api/v1/tickets/{id}/route"), token)
        .await
        .expect(200)["suggestions"]
        .as_array()
        .expect("suggestions")
        .clone()
}

async fn top(app: &TestApp, token: &str, id: i64) -> Value {
    suggestions(app, token, id).await[0].clone()
}

/// The first model trains in the background after start-up; the tests that
/// register before asking for a route wait for it here.
async fn trained(app: &TestApp) {
    app.app_state.routing.trained().await;
}

async fn act(app: &TestApp, token: &str, id: i64, action: &str, body: Value) {
    app.post(&format!("/api/v1/tickets/{id}/{action}"), token, &body)
        .await
        .expect(200);
}

/// The catalogue as GET shows it, which PUT takes back.
async fn catalogue(app: &TestApp) -> Value {
    app.get("/api/v1/catalogue", &app.admin)
        .await
        .expect(200)
        .clone()
}

both!(
    clear_appeals_are_routed_to_their_department_with_a_reason,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let gas = register(&app, &o.agent, "complaint", GAS_LEAK).await;
        let wages = register(&app, &o.agent, "help", UNPAID_WAGES).await;

        let s = suggestions(&app, &o.dispatcher, id(&gas)).await;
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(s[0]["department"], "gas", "{s:?}");
        assert_eq!(s[0]["name"], "南昌燃气");
        let reason = s[0]["reason"].as_str().unwrap();
        assert!(reason.contains("燃气泄漏"), "{reason}");
        let c: Vec<f64> = s
            .iter()
            .map(|x| x["confidence"].as_f64().unwrap())
            .collect();
        assert!(c[0] > 0.5 && c[0] <= 1.0, "{c:?}");
        assert!(c.windows(2).all(|w| w[0] >= w[1]), "{c:?}");
        assert!(c.iter().sum::<f64>() <= 1.0 + 1e-9, "{c:?}");

        let s = suggestions(&app, &o.agent, id(&wages)).await;
        assert_eq!(s[0]["department"], "hrss", "{s:?}");
        assert!(s[0]["reason"].as_str().unwrap().contains("欠薪"), "{s:?}");

        let path = format!("/api/v1/tickets/{}/route", id(&gas));
        let one = app.get(&format!("{path}?limit=1"), &o.dispatcher).await;
        assert_eq!(one.expect(200)["suggestions"].as_array().unwrap().len(), 1);
        let ten = app.get(&format!("{path}?limit=10"), &o.dispatcher).await;
        assert!(ten.expect(200)["suggestions"].as_array().unwrap().len() > 3);
        for bad in ["0", "11", "three"] {
            app.get(&format!("{path}?limit={bad}"), &o.dispatcher)
                .await
                .expect_problem(422, "validation_failed");
        }

        // Off by default: suggestions only, nothing dispatched.
        let t = app
            .get(&format!("/api/v1/tickets/{}", id(&gas)), &o.dispatcher)
            .await;
        let t = t.expect(200);
        assert_eq!(t["state"], "registered");
        assert_eq!(t["events"].as_array().unwrap().len(), 1, "{t}");
    }
);

both!(
    only_agents_and_dispatchers_may_ask_and_others_never_learn_of_foreign_tickets,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let admin = app.admin.clone();
        let t = register(&app, &o.agent, "complaint", GAS_LEAK).await;
        let path = format!("/api/v1/tickets/{}/route", id(&t));
        // Department users: not their ticket, so it does not exist.
        for token in [&o.water, &o.water_head, &o.gas] {
            app.get(&path, token).await.expect_problem(404, "not_found");
        }
        for token in [&o.supervisor, &o.leader, &admin] {
            app.get(&path, token).await.expect_problem(403, "forbidden");
        }
        app.get(&path, "").await.expect_problem(401, "unauthorized");
        for missing in ["/api/v1/tickets/999999/route", "/api/v1/tickets/abc/route"] {
            app.get(missing, &o.dispatcher)
                .await
                .expect_problem(404, "not_found");
        }
        // Once it is theirs they may see it, but routing is not their job.
        act(
            &app,
            &o.dispatcher,
            id(&t),
            "dispatch",
            json!({"department": "water"}),
        )
        .await;
        app.get(&path, &o.water)
            .await
            .expect_problem(403, "forbidden");
        app.get(&path, &o.water_head)
            .await
            .expect_problem(403, "forbidden");
        app.get(&path, &o.gas)
            .await
            .expect_problem(404, "not_found");
        app.get(&path, &o.agent).await.expect(200);
    }
);

async fn auto_dispatch_app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, &[("routing.auto_dispatch_threshold", "0.9")]).await
}

async fn confident_new_tickets_are_dispatched_by_the_router(app: TestApp) {
    let o = Office::new(&app).await;
    trained(&app).await;

    let t = register(&app, &o.agent, "complaint", GAS_LEAK).await;
    assert_eq!(
        t["state"], "dispatched",
        "the answer shows the dispatch: {t}"
    );
    assert_eq!(t["department"], "gas");
    assert!(
        t["sign_due_at"].is_string() && t["reply_due_at"].is_string(),
        "{t}"
    );
    let full = app
        .get(&format!("/api/v1/tickets/{}", id(&t)), &o.gas)
        .await;
    let full = full.expect(200);
    let events = full["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["created", "dispatched"]);
    let e = &events[1];
    assert_eq!(e["actor"], "router");
    assert_eq!(e["department"], "gas");
    assert_eq!(e["from_state"], "registered");
    assert!(e["payload"]["confidence"].as_f64().unwrap() >= 0.9, "{e}");
    assert!(
        e["payload"]["reason"].as_str().unwrap().contains("燃气"),
        "{e}"
    );
    // The department works it as any dispatched ticket.
    act(&app, &o.gas, id(&t), "sign", json!({})).await;

    // Left to a dispatcher: possible repeats (to merge), consultations (the
    // agent may answer them directly), unsure suggestions, and departments
    // not set up here.
    let again = register(&app, &o.agent, "complaint", GAS_LEAK).await;
    assert!(again["possible_duplicate_of"].is_string(), "{again}");
    assert_eq!(again["state"], "registered");
    let consult = register(&app, &o.agent, "consult", GAS_LEAK).await;
    assert_eq!(consult["state"], "registered");
    let vague = register(&app, &o.agent, "complaint", VAGUE).await;
    assert_eq!(vague["state"], "registered");
    let wages = register(&app, &o.agent, "help", UNPAID_WAGES).await;
    assert_eq!(
        wages["state"], "registered",
        "hrss is not a department here"
    );
    assert_eq!(
        top(&app, &o.dispatcher, id(&wages)).await["department"],
        "hrss"
    );

    // Every channel: a letter to the public mailbox too.
    let letter = json!({
        "name": "李四", "phone": "13900005678", "category": "report",
        "title": "燃气管道漏气", "content": "小区楼下燃气管道漏气，煤气味很重，怀疑燃气泄漏，请马上派人处理。",
        "address": "东湖区某小区北门",
    });
    app.post_with_headers(
        "/api/v1/public/mailbox",
        &[],
        serde_json::to_vec(&letter).unwrap(),
    )
    .await
    .expect(201);
    let list = app
        .get("/api/v1/tickets?channel=mailbox", &o.dispatcher)
        .await;
    let list = list.expect(200);
    assert_eq!(list["items"][0]["state"], "dispatched", "{list}");
    assert_eq!(list["items"][0]["department"], "gas", "{list}");
}

mod confident_new_tickets_are_dispatched_by_the_router {
    use super::*;

    #[actix_web::test]
    async fn sqlite() {
        let app = auto_dispatch_app(Backend::Sqlite).await.expect("app");
        confident_new_tickets_are_dispatched_by_the_router(app).await;
    }

    #[actix_web::test]
    async fn postgres() {
        match auto_dispatch_app(Backend::Postgres).await {
            Some(app) => confident_new_tickets_are_dispatched_by_the_router(app).await,
            None => eprintln!("TEST_DATABASE_URL unset: PostgreSQL case skipped"),
        }
    }
}

both!(
    catalogue_edits_are_checked_and_versioned,
    |app: TestApp| async move {
        let agent = app.user("agent1", "agent", None).await;
        let dispatcher = app.user("dispatcher1", "dispatcher", None).await;
        let c = app.get("/api/v1/catalogue", &agent).await;
        let mut c = c.expect(200).clone();
        assert_eq!(c["version"], 0, "the configured file");
        assert_eq!(c["departments"].as_array().unwrap().len(), 28);
        assert!(c["topics"].as_array().unwrap().len() > 50);
        let v = app.get("/api/v1/catalogue/versions", &agent).await;
        assert_eq!(v.expect(200)["total"], 0);

        app.put("/api/v1/catalogue", &dispatcher, &c)
            .await
            .expect_problem(403, "forbidden");
        app.put("/api/v1/catalogue", "", &c)
            .await
            .expect_problem(401, "unauthorized");

        // Every problem at once.
        let mut bad = c.clone();
        bad["topics"][0]["department"] = json!("nowhere");
        bad["topics"][1]["keywords"] = json!([]);
        let dup = bad["departments"][0].clone();
        bad["departments"].as_array_mut().unwrap().push(dup);
        let r = app.put("/api/v1/catalogue", &app.admin, &bad).await;
        r.expect_problem(422, "validation_failed");
        let errors: Vec<&str> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("nowhere")), "{errors:?}");
        assert!(
            errors.iter().any(|e| e.contains("no keywords")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("listed twice")),
            "{errors:?}"
        );
        for shape in [
            json!({"departments": "all of them"}),
            json!({"departments": [{"code": "Bad Code", "name": "x", "kind": "functional"}]}),
            json!({"departments": c["departments"], "topics": c["topics"], "colour": "blue"}),
        ] {
            app.put("/api/v1/catalogue", &app.admin, &shape)
                .await
                .expect_problem(422, "validation_failed");
        }
        let v = app.get("/api/v1/catalogue/versions", &agent).await;
        assert_eq!(v.expect(200)["total"], 0, "refused edits leave nothing");

        // A new topic: stored as version 1, in force at once, Open311 too.
        c["topics"].as_array_mut().unwrap().push(json!({
            "code": "gas_meter_seal", "name": "燃气表封条", "department": "gas",
            "keywords": ["燃气表封条", "表封脱落"], "description": null,
        }));
        let r = app.put("/api/v1/catalogue", &app.admin, &c).await;
        assert_eq!(r.expect(200)["version"], 1);
        let now = app.get("/api/v1/catalogue", &agent).await;
        let now = now.expect(200);
        assert_eq!(now["version"], 1);
        assert!(
            now["topics"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["code"] == "gas_meter_seal")
        );
        let services = app.get("/open311/v2/services.json", "").await;
        let services = services.expect(200).to_string();
        assert!(services.contains("gas_meter_seal"), "{services}");

        let v = app.get("/api/v1/catalogue/versions", &agent).await;
        let v = v.expect(200);
        assert_eq!(v["total"], 1);
        assert_eq!(v["items"][0]["version"], 1);
        assert_eq!(v["items"][0]["author"], "admin");
        assert!(v["items"][0]["created_at"].is_string());
        let one = app.get("/api/v1/catalogue/versions/1", &agent).await;
        let one = one.expect(200);
        assert_eq!(one["author"], "admin");
        assert!(
            one["topics"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["code"] == "gas_meter_seal")
        );
        app.get("/api/v1/catalogue/versions/2", &agent)
            .await
            .expect_problem(404, "not_found");

        // An edit of version 0 now would undo version 1: refused.
        let mut stale = c.clone();
        stale["version"] = json!(0);
        app.put("/api/v1/catalogue", &app.admin, &stale)
            .await
            .expect_problem(409, "conflict");
        let mut fresh = c.clone();
        fresh["version"] = json!(1);
        let r = app.put("/api/v1/catalogue", &app.admin, &fresh).await;
        assert_eq!(r.expect(200)["version"], 2);
        let v = app.get("/api/v1/catalogue/versions", &agent).await;
        let v = v.expect(200);
        assert_eq!(v["total"], 2);
        assert_eq!(v["items"][0]["version"], 2, "newest first");
    }
);

both!(
    a_keyword_added_through_the_api_changes_the_suggestion_at_once_and_after_a_restart,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let words = ["蓝鲸积木", "紫色鹦鹉", "星空滑梯"];
        let t = register(
            &app,
            &o.agent,
            "complaint",
            (
                "蓝鲸积木",
                "市民来电反映：蓝鲸积木、紫色鹦鹉和星空滑梯的问题，请尽快处理。",
            ),
        )
        .await;
        let before = top(&app, &o.dispatcher, id(&t)).await;
        assert_ne!(before["department"], "gas", "{before}");

        let mut c = catalogue(&app).await;
        let topic = c["topics"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|t| t["department"] == "gas")
            .expect("a gas topic");
        for w in words {
            topic["keywords"].as_array_mut().unwrap().push(json!(w));
        }
        app.put("/api/v1/catalogue", &app.admin, &c)
            .await
            .expect(200);

        // The rule counts at once (a keyword is soft evidence: it moves the
        // department up), and the retraining the edit asks for teaches the
        // model the new words, which puts the department first.
        let all = app
            .get(
                &format!("/api/v1/tickets/{}/route?limit=10", id(&t)),
                &o.dispatcher,
            )
            .await;
        let all = all.expect(200)["suggestions"].as_array().unwrap().clone();
        let gas = all.iter().find(|s| s["department"] == "gas");
        let gas = gas.unwrap_or_else(|| panic!("gas among the first ten: {all:?}"));
        assert!(
            gas["reason"].as_str().unwrap().contains("蓝鲸积木"),
            "{gas}"
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let after = loop {
            let s = top(&app, &o.dispatcher, id(&t)).await;
            if s["department"] == "gas" || Instant::now() > deadline {
                break s;
            }
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(after["department"], "gas", "{after}");
        assert!(
            after["reason"].as_str().unwrap().contains("蓝鲸积木"),
            "{after}"
        );

        // A restarted instance routes by the stored version, not the file.
        let again = TestApp::spawn_on(app.backend, Some(&app.db_url), &[])
            .await
            .expect("second instance");
        let c = again.get("/api/v1/catalogue", &again.admin).await;
        assert_eq!(c.expect(200)["version"], 1);
        let dispatcher = again.login("dispatcher1", "dispatcher1-password").await;
        assert_eq!(top(&again, &dispatcher, id(&t)).await["department"], "gas");
    }
);

/// Registers, dispatches to `department` and closes a ticket after a
/// satisfied callback; `returned_by` first has it returned once.
async fn closed_ticket(
    app: &TestApp,
    o: &Office,
    appeal: (&str, &str),
    department: &str,
    returned_by: Option<&str>,
) {
    let t = register(app, &o.agent, "complaint", appeal).await;
    let n = id(&t);
    let handler = if department == "water" {
        &o.water
    } else {
        &o.gas
    };
    if let Some(first) = returned_by {
        act(
            app,
            &o.dispatcher,
            n,
            "dispatch",
            json!({"department": first}),
        )
        .await;
        let who = if first == "water" { &o.water } else { &o.gas };
        act(app, who, n, "return", json!({"reason": "不属于本单位职责"})).await;
    }
    act(
        app,
        &o.dispatcher,
        n,
        "dispatch",
        json!({"department": department}),
    )
    .await;
    act(app, handler, n, "sign", json!({})).await;
    act(
        app,
        handler,
        n,
        "reply",
        json!({"content": "已处理", "resolved": true}),
    )
    .await;
    act(
        app,
        &o.dispatcher,
        n,
        "callback",
        json!({"satisfaction": "satisfied", "resolved": true}),
    )
    .await;
}

both!(
    the_model_learns_from_closed_tickets_never_returned,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        // Invented words, so that only history can teach them.
        let blocks = register(&app, &o.agent, "complaint", ("蓝鲸积木", "蓝鲸积木")).await;
        trained(&app).await;
        assert_ne!(
            top(&app, &o.dispatcher, id(&blocks)).await["department"],
            "water"
        );
        for i in 0..3 {
            let content = format!("市民来电反映：小区门口的蓝鲸积木第{i}次出问题，请尽快处理。");
            closed_ticket(&app, &o, ("蓝鲸积木又坏了", &content), "water", None).await;
            // Returned once before it found its department: not learned from.
            let content = format!("市民来电反映：小区门口的紫色鹦鹉第{i}次出问题，请尽快处理。");
            closed_ticket(&app, &o, ("紫色鹦鹉又坏了", &content), "water", Some("gas")).await;
        }
        let parrot = register(&app, &o.agent, "complaint", ("紫色鹦鹉", "紫色鹦鹉")).await;
        // A catalogue edit asks for a retraining now (else it waits for
        // `routing.retrain_interval`).
        let c = catalogue(&app).await;
        app.put("/api/v1/catalogue", &app.admin, &c)
            .await
            .expect(200);
        let deadline = Instant::now() + Duration::from_secs(60);
        let learned = loop {
            let s = top(&app, &o.dispatcher, id(&blocks)).await;
            if s["department"] == "water" || Instant::now() > deadline {
                break s;
            }
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(learned["department"], "water", "{learned}");
        let reason = learned["reason"].as_str().unwrap();
        assert!(reason.contains("分类模型依据"), "{reason}");
        // The returned tickets taught it nothing (only the shared boilerplate
        // of their text, which this appeal does not have).
        let p = top(&app, &o.dispatcher, id(&parrot)).await;
        assert_ne!(p["department"], "water", "{p}");
        assert!(!p["reason"].as_str().unwrap().contains("鹦鹉"), "{p}");
    }
);

/// An app that also learns from a corpus file (kept alive with the app).
async fn corpus_app(backend: Backend) -> Option<(TestApp, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("corpus.jsonl");
    let lines: Vec<String> = (0..3)
        .map(|i| {
            json!({"id": format!("C{i}"), "title": "青铜风铃", "content": format!("青铜风铃第{i}回"),
                   "district": null, "address": null, "department": "water"})
            .to_string()
        })
        .chain(["not json".to_owned()])
        .collect();
    std::fs::write(&path, lines.join("\n")).expect("write corpus");
    let path = path.display().to_string();
    let app = TestApp::spawn_with(backend, &[("routing.corpus", &path)]).await?;
    Some((app, dir))
}

async fn the_corpus_file_teaches_the_first_model((app, _dir): (TestApp, tempfile::TempDir)) {
    let o = Office::new(&app).await;
    let t = register(&app, &o.agent, "complaint", ("青铜风铃", "青铜风铃")).await;
    let s = top(&app, &o.dispatcher, id(&t)).await;
    assert_eq!(s["department"], "water", "{s}");
    assert!(s["reason"].as_str().unwrap().contains("风铃"), "{s}");
}

mod the_corpus_file_teaches_the_first_model {
    use super::*;

    #[actix_web::test]
    async fn sqlite() {
        let app = corpus_app(Backend::Sqlite).await.expect("app");
        the_corpus_file_teaches_the_first_model(app).await;
    }

    #[actix_web::test]
    async fn postgres() {
        match corpus_app(Backend::Postgres).await {
            Some(app) => the_corpus_file_teaches_the_first_model(app).await,
            None => eprintln!("TEST_DATABASE_URL unset: PostgreSQL case skipped"),
        }
    }
}
