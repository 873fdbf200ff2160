//! Hotspots (苗头性、倾向性问题): similar appeals from one place become one
//! cluster at `GET /api/v1/hotspots`, and supervisors get one mail per new
//! cluster, however often and on however many instances the job runs.

use hotline::domain::hotspots::Matcher;
use hotline::jobs::hotspots::{HotspotReport, run_once};
use hotline::store::entities::outbox;
use serde_json::{Value, json};

use crate::helpers::*;

/// Runs a test on SQLite, and on PostgreSQL when configured, with the
/// background detector off: the tests run it themselves.
macro_rules! both_driven {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[actix_web::test]
            async fn sqlite() {
                let app = spawn(Backend::Sqlite, None).await.expect("sqlite app");
                ($body)(app).await;
            }

            #[actix_web::test]
            async fn postgres() {
                match spawn(Backend::Postgres, None).await {
                    Some(app) => ($body)(app).await,
                    None => eprintln!("TEST_DATABASE_URL unset: PostgreSQL case skipped"),
                }
            }
        }
    };
}

async fn spawn(backend: Backend, db_url: Option<&str>) -> Option<TestApp> {
    TestApp::spawn_on(backend, db_url, &[("hotspots.enabled", "false")]).await
}

/// One detector run on `app`, as of now.
async fn detect(app: &TestApp) -> hotline::store::StoreResult<HotspotReport> {
    let s = &app.app_state;
    let catalogue = s.settings.load_catalogue().expect("catalogue");
    run_once(
        &s.store,
        &Matcher::new(&catalogue),
        &s.settings.hotspots.rules(),
        "http://hotline.test",
        hotline::store::now(),
    )
    .await
}

async fn hotspot_mails(app: &TestApp) -> Vec<outbox::Model> {
    let rows = app.app_state.store.outbox_rows(None).await.expect("outbox");
    rows.into_iter().filter(|r| r.kind == "hotspot").collect()
}

/// Registers an appeal about a street light at `address`; returns its number.
async fn street_light(app: &TestApp, agent: &str, address: &str, district: &str) -> String {
    let body = json!({
        "channel": "hotline",
        "category": "complaint",
        "urgency": "normal",
        "title": "路灯不亮",
        "content": format!("市民来电反映：{address}门口的路灯坏了，晚上一片漆黑。"),
        "citizen": {"name": "张三", "phone": "13800001234"},
        "address": address,
        "district": district,
    });
    let t = app.post("/api/v1/tickets", agent, &body).await;
    t.expect(201)["ticket_no"]
        .as_str()
        .expect("ticket_no")
        .to_owned()
}

async fn hotspots(app: &TestApp, token: &str) -> Vec<Value> {
    app.get("/api/v1/hotspots", token).await.expect(200)["items"]
        .as_array()
        .expect("items")
        .clone()
}

both_driven!(
    five_street_light_appeals_from_one_compound_are_one_hotspot_mailed_once,
    |app: TestApp| async move {
        let agent = app.user("agent1", "agent", None).await;
        let leader = app.user_with_email("leader1", "leader", None).await;
        app.user_with_email("super1", "supervisor", None).await;

        let mut nos = Vec::new();
        for i in 0..4 {
            let address = format!("青山湖区幸福小区{}栋", i + 1);
            nos.push(street_light(&app, &agent, &address, "qingshanhu").await);
        }
        // Not the same place, or not the same topic: never part of it.
        street_light(&app, &agent, "东湖区光明小区2栋", "donghu").await;
        let mut water = appeal("小区停水");
        water["content"] = json!("幸福小区从早上开始停水，没有通知。");
        water["address"] = json!("青山湖区幸福小区");
        water["district"] = json!("qingshanhu");
        app.post("/api/v1/tickets", &agent, &water)
            .await
            .expect(201);

        let r = detect(&app).await.expect("run");
        assert_eq!((r.clusters, r.new), (0, 0), "{r:?}");
        assert!(hotspots(&app, &leader).await.is_empty());
        assert!(hotspot_mails(&app).await.is_empty());

        nos.push(street_light(&app, &agent, "青山湖区幸福小区东门", "qingshanhu").await);
        let r = detect(&app).await.expect("run");
        assert_eq!((r.clusters, r.new, r.grown), (1, 1, 0), "{r:?}");

        let items = hotspots(&app, &leader).await;
        assert_eq!(items.len(), 1, "{items:#?}");
        let h = &items[0];
        assert_eq!(h["topic"], "streetlights");
        assert_eq!(h["topic_name"], "道路路灯");
        assert_eq!(h["district"], "qingshanhu");
        assert_eq!(h["place"], "幸福小区");
        assert_eq!(h["count"], 5);
        assert_eq!(h["ticket_nos"], json!(nos));
        assert!(h["first_at"].as_str().unwrap() <= h["last_at"].as_str().unwrap());
        assert!(h["id"].as_i64().is_some());

        let mails = hotspot_mails(&app).await;
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].recipient, "super1@example.cn");
        assert!(
            mails[0].subject.contains("幸福小区"),
            "{}",
            mails[0].subject
        );
        assert!(mails[0].body.contains(&nos[0]), "{}", mails[0].body);

        // The next run knows it: no second mail.
        let r = detect(&app).await.expect("run");
        assert_eq!((r.clusters, r.new, r.grown), (1, 0, 0), "{r:?}");
        assert_eq!(hotspot_mails(&app).await.len(), 1);

        // A sixth appeal grows the same hotspot, still without a mail.
        nos.push(street_light(&app, &agent, "青山湖区幸福小区5栋", "qingshanhu").await);
        let r = detect(&app).await.expect("run");
        assert_eq!((r.clusters, r.new, r.grown), (1, 0, 1), "{r:?}");
        let items = hotspots(&app, &leader).await;
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["id"], h["id"]);
        assert_eq!(items[0]["count"], 6);
        assert_eq!(items[0]["ticket_nos"], json!(nos));
        assert_eq!(hotspot_mails(&app).await.len(), 1);
    }
);

both_driven!(
    two_instances_finding_the_same_hotspot_mail_once,
    |app: TestApp| async move {
        let other = spawn(app.backend, Some(&app.db_url))
            .await
            .expect("second instance");
        let agent = app.user("agent1", "agent", None).await;
        app.user_with_email("super1", "supervisor", None).await;
        for i in 0..5 {
            let address = format!("青山湖区幸福小区{}栋", i + 1);
            street_light(&app, &agent, &address, "qingshanhu").await;
        }
        let (a, b) = futures_util::future::join(detect(&app), detect(&other)).await;
        // On SQLite the loser of the write may be told to retry next round.
        let new: usize = [a, b]
            .into_iter()
            .filter_map(Result::ok)
            .map(|r| r.new)
            .sum();
        assert_eq!(new, 1);
        detect(&other).await.expect("run");
        detect(&app).await.expect("run");
        assert_eq!(hotspot_mails(&app).await.len(), 1);
        assert_eq!(hotspots(&other, &other.admin).await.len(), 1);
    }
);

both_driven!(hotspots_are_for_the_office, |app: TestApp| async move {
    let office = Office::new(&app).await;
    for token in [
        &office.leader,
        &office.supervisor,
        &office.dispatcher,
        &app.admin,
    ] {
        let r = app.get("/api/v1/hotspots", token).await;
        assert_eq!(r.expect(200)["items"], json!([]));
    }
    for token in [&office.agent, &office.water, &office.water_head] {
        app.get("/api/v1/hotspots", token)
            .await
            .expect_problem(403, "forbidden");
    }
    app.get("/api/v1/hotspots", "")
        .await
        .expect_problem(401, "unauthorized");
});
