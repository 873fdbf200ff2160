//! Channels: 问政江西 pushes signed posts over raw HTTP, built by hand as the
//! platform would. A good push makes one ticket; a replay answers with the
//! same one; unsigned, badly signed, stale or malformed pushes are refused
//! with their code and leave nothing behind.

use serde_json::{Value, json};

use crate::both;
use crate::helpers::*;

const SECRET: &str = "wenzheng-test-secret";
const PATH: &str = "/api/v1/channels/wenzheng/appeals";

fn post_body(post_id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "post_id": post_id,
        "title": "小区门口道路积水",
        "content": "东湖区某小区门口道路积水严重，雨天无法通行，请尽快处理。",
        "poster": {"nickname": "热心市民", "phone": "13900001111"},
        "region": "东湖区",
        "posted_at": "2026-11-22T09:00:00+08:00",
        "attachments": ["https://wz.example.cn/a/1.jpg"]
    }))
    .unwrap()
}

async fn push(app: &TestApp, ts: i64, body: Vec<u8>, signature: Option<String>) -> Resp {
    let stamp = ts.to_string();
    let sig = signature.unwrap_or_else(|| hotline::domain::wenzheng::sign(SECRET, &stamp, &body));
    app.post_with_headers(
        PATH,
        &[
            ("X-Wenzheng-Timestamp", stamp),
            ("X-Wenzheng-Signature", sig),
        ],
        body,
    )
    .await
}

async fn wenzheng_app(backend: Backend) -> Option<TestApp> {
    let app = TestApp::spawn_with(backend, &[("channels.wenzheng.secret", SECRET)]).await?;
    app.post(
        "/api/v1/departments",
        &app.admin,
        &json!({"code": "donghu", "name": "东湖区人民政府", "kind": "district"}),
    )
    .await
    .expect(201);
    Some(app)
}

async fn signed_posts_become_tickets_once(app: TestApp) {
    let now = chrono::Utc::now().timestamp();
    let first = push(&app, now, post_body("wz-1001"), None).await;
    let t = first.expect(201).clone();
    assert_eq!(t["post_id"], "wz-1001");
    assert!(t["ticket_no"].as_str().unwrap().contains('W'), "{t}");
    // The very same request again (a replay), and a re-push later: one ticket.
    let again = push(&app, now, post_body("wz-1001"), None).await;
    assert_eq!(again.expect(200)["id"], t["id"]);
    let later = push(&app, now + 60, post_body("wz-1001"), None).await;
    assert_eq!(later.expect(200)["id"], t["id"]);
    assert_eq!(app.count_tickets().await, 1);

    let ticket = app
        .get(&format!("/api/v1/tickets/{}", t["id"]), &app.admin)
        .await;
    let ticket = ticket.expect(200);
    assert_eq!(ticket["channel"], "wenzheng");
    assert_eq!(ticket["district"], "donghu");

    // Refusals, none of which leaves a ticket behind.
    push(&app, now, post_body("wz-2"), Some("sha256=00".into()))
        .await
        .expect_problem(401, "invalid_signature");
    let other =
        hotline::domain::wenzheng::sign("wrong-secret", &now.to_string(), &post_body("wz-2"));
    push(&app, now, post_body("wz-2"), Some(other))
        .await
        .expect_problem(401, "invalid_signature");
    push(&app, now - 301, post_body("wz-2"), None)
        .await
        .expect_problem(401, "stale_request");
    // Well past the window ahead: `now` was read before the requests above,
    // and a slow machine may take seconds over them.
    push(&app, now + 400, post_body("wz-2"), None)
        .await
        .expect_problem(401, "stale_request");
    let unsigned = app
        .post_raw(PATH, "", "application/json", post_body("wz-2"))
        .await;
    unsigned.expect_problem(401, "invalid_signature");
    push(&app, now, b"{not json".to_vec(), None)
        .await
        .expect_problem(400, "malformed_json");
    let mut bad: Value = serde_json::from_slice(&post_body("wz-3")).unwrap();
    bad["region"] = json!("火星区");
    push(&app, now, serde_json::to_vec(&bad).unwrap(), None)
        .await
        .expect_problem(422, "validation_failed");
    let mut bad: Value = serde_json::from_slice(&post_body("wz-4")).unwrap();
    bad.as_object_mut().unwrap().remove("title");
    push(&app, now, serde_json::to_vec(&bad).unwrap(), None)
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(app.count_tickets().await, 1);
}

mod wenzheng_pushes {
    use super::*;

    #[actix_web::test]
    async fn sqlite() {
        let app = wenzheng_app(Backend::Sqlite).await.expect("app");
        signed_posts_become_tickets_once(app).await;
    }

    #[actix_web::test]
    async fn postgres() {
        match wenzheng_app(Backend::Postgres).await {
            Some(app) => signed_posts_become_tickets_once(app).await,
            None => eprintln!("TEST_DATABASE_URL unset: PostgreSQL case skipped"),
        }
    }
}

both!(
    without_a_secret_the_channel_is_unavailable,
    |app: TestApp| async move {
        let r = app
            .post_raw(PATH, "", "application/json", post_body("x"))
            .await;
        r.expect_problem(503, "unavailable");
        assert_eq!(app.count_tickets().await, 0);
    }
);
