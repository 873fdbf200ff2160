//! 问政江西 reply push: when a wenzheng ticket is replied and when it closes,
//! the reply goes back to the platform, signed, through the outbox. A real
//! HTTP server on a loopback port stands in for the platform: it checks
//! every signature, records what it got and answers what the test scripts
//! (500, 400, 429, then 200).

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::{Duration, Utc};
use hotline::infra::webhook::WebhookSender;
use hotline::jobs::outbox::{DeliveryReport, deliver_webhooks};
use hotline::store::entities::outbox;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::*;

const SECRET: &str = "wenzheng-push-secret";
const APPEALS: &str = "/api/v1/channels/wenzheng/appeals";

/// One request the platform received.
#[derive(Debug, Clone)]
struct Received {
    /// The signature verified with the shared secret over timestamp.body.
    signed: bool,
    /// `X-Wenzheng-Timestamp` minus the platform's clock, in seconds.
    skew: i64,
    body: Value,
    answered: u16,
}

#[derive(Clone, Default)]
struct Platform {
    /// Statuses to answer, in order; 200 once they run out.
    script: Arc<Mutex<VecDeque<u16>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Platform {
    fn answer_next(&self, statuses: &[u16]) {
        self.script.lock().unwrap().extend(statuses);
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The pushes it accepted (answered 2xx).
    fn accepted(&self) -> Vec<Value> {
        self.received()
            .into_iter()
            .filter(|r| r.answered == 200)
            .map(|r| r.body)
            .collect()
    }
}

async fn platform_endpoint(
    req: HttpRequest,
    body: web::Bytes,
    p: web::Data<Platform>,
) -> HttpResponse {
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
    let now = Utc::now();
    let signed = hotline::domain::wenzheng::verify(
        SECRET,
        header("x-wenzheng-timestamp"),
        header("x-wenzheng-signature"),
        &body,
        now,
    )
    .is_ok();
    let skew = header("x-wenzheng-timestamp")
        .and_then(|t| t.parse::<i64>().ok())
        .map_or(i64::MAX, |t| t - now.timestamp());
    let answered = if signed {
        p.script.lock().unwrap().pop_front().unwrap_or(200)
    } else {
        401
    };
    p.received.lock().unwrap().push(Received {
        signed,
        skew,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        answered,
    });
    let mut res = HttpResponse::build(actix_web::http::StatusCode::from_u16(answered).unwrap());
    if answered == 429 {
        res.insert_header(("Retry-After", "1"));
    }
    res.json(json!({"ok": answered == 200}))
}

/// Starts the stand-in platform; returns its reply URL.
fn platform() -> (String, Platform) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let p = Platform::default();
    let data = web::Data::new(p.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/replies", web::post().to(platform_endpoint))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    (format!("http://127.0.0.1:{port}/replies"), p)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Setup {
    app: TestApp,
    office: Office,
    platform: Platform,
}

async fn setup(backend: Backend, reply_url: Option<&str>) -> Option<Setup> {
    let (url, platform) = platform();
    let reply_url = reply_url.map_or(url, str::to_owned);
    let app = TestApp::spawn_with(
        backend,
        &[
            ("channels.wenzheng.secret", SECRET),
            ("channels.wenzheng.reply_url", &reply_url),
        ],
    )
    .await?;
    app.post(
        "/api/v1/departments",
        &app.admin,
        &json!({"code": "donghu", "name": "东湖区人民政府", "kind": "district"}),
    )
    .await
    .expect(201);
    let office = Office::new(&app).await;
    Some(Setup {
        app,
        office,
        platform,
    })
}

/// Pushes a signed post as the platform would; returns the ticket id.
async fn post(app: &TestApp, post_id: &str, content: &str) -> i64 {
    let body = serde_json::to_vec(&json!({
        "post_id": post_id,
        "title": "小区门口道路积水",
        "content": content,
        "poster": {"nickname": "热心市民", "phone": format!("1390000{:04}", post_id.len() * 37 % 10_000)},
        "region": "东湖区",
        "posted_at": "2026-11-22T09:00:00+08:00",
    }))
    .unwrap();
    let ts = Utc::now().timestamp().to_string();
    let sig = hotline::domain::wenzheng::sign(SECRET, &ts, &body);
    let r = app
        .post_with_headers(
            APPEALS,
            &[("X-Wenzheng-Timestamp", ts), ("X-Wenzheng-Signature", sig)],
            body,
        )
        .await;
    r.expect(201)["id"].as_i64().unwrap()
}

/// Dispatches to water, signs and replies.
async fn reply(s: &Setup, id: i64, content: &str) -> Value {
    let (app, o) = (&s.app, &s.office);
    app.post(
        &format!("/api/v1/tickets/{id}/dispatch"),
        &o.dispatcher,
        &json!({"department": "water"}),
    )
    .await
    .expect(200);
    app.post(&format!("/api/v1/tickets/{id}/sign"), &o.water, &json!({}))
        .await
        .expect(200);
    app.post(
        &format!("/api/v1/tickets/{id}/reply"),
        &o.water,
        &json!({"content": content, "resolved": true}),
    )
    .await
    .expect(200)
    .clone()
}

async fn deliver(app: &TestApp) -> DeliveryReport {
    deliver_webhooks(&app.app_state.store, &WebhookSender::new(SECRET))
        .await
        .expect("deliver")
}

/// Lets every backing-off row be due now, as if its back-off had passed.
async fn back_off_passes(app: &TestApp) {
    outbox::Entity::update_many()
        .col_expr(
            outbox::Column::NextAttemptAt,
            Expr::value(Utc::now() - Duration::seconds(1)),
        )
        .filter(outbox::Column::Status.eq("pending"))
        .exec(&app.app_state.store.db)
        .await
        .unwrap();
}

async fn pushes(app: &TestApp) -> Vec<outbox::Model> {
    app.app_state
        .store
        .outbox_rows(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.transport == "webhook")
        .collect()
}

async fn a_failed_push_is_retried_and_lands_once_then_the_close_pushes_too(s: Setup) {
    let app = &s.app;
    let id = post(app, "wz-501", "东湖区某小区门口道路积水严重，请尽快处理。").await;
    let replied = reply(&s, id, "已组织疏通排水管道，积水已排除。").await;
    let no = replied["ticket_no"].as_str().unwrap().to_owned();
    let rows = pushes(app).await;
    assert_eq!(rows.len(), 1, "one push queued with the reply");
    assert_eq!(rows[0].status, "pending");
    assert_eq!(rows[0].ticket_id, Some(id));
    // Queued long ago: what is signed is the moment of sending, not of queueing.
    outbox::Entity::update_many()
        .col_expr(
            outbox::Column::CreatedAt,
            Expr::value(Utc::now() - Duration::hours(2)),
        )
        .exec(&app.app_state.store.db)
        .await
        .unwrap();

    // The platform is down (500): the row backs off, nothing is lost.
    s.platform.answer_next(&[500]);
    let r = deliver(app).await;
    assert_eq!((r.sent, r.failed, r.parked), (0, 1, 0));
    let row = &pushes(app).await[0];
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 1));
    assert!(row.next_attempt_at > Utc::now(), "backed off");
    assert!(row.last_error.as_deref().unwrap().contains("500"));
    assert_eq!(deliver(app).await.sent, 0, "still backing off");
    assert_eq!(s.platform.received().len(), 1);

    back_off_passes(app).await;
    let r = deliver(app).await;
    assert_eq!((r.sent, r.failed, r.parked), (1, 0, 0));
    assert_eq!(deliver(app).await.sent, 0, "delivered once");
    let got = s.platform.received();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.signed), "{got:?}");
    assert!(
        got.iter().all(|r| r.skew.abs() <= 5),
        "signed when sent: {got:?}"
    );
    let accepted = s.platform.accepted();
    assert_eq!(accepted.len(), 1);
    let push = &accepted[0];
    assert_eq!(push["post_id"], "wz-501");
    assert_eq!(push["ticket_no"], no.as_str());
    assert_eq!(push["state"], "replied");
    assert_eq!(push["reply"], "已组织疏通排水管道，积水已排除。");
    assert_eq!(push["department"], "water 部门");
    assert_eq!(push["replied_at"], replied["replied_at"]);
    let keys: Vec<&String> = push.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        6,
        "post_id, ticket_no, state, reply, replied_at, department: {push}"
    );
    let row = &pushes(app).await[0];
    assert_eq!((row.status.as_str(), row.attempts), ("sent", 2));

    // The callback closes it: the platform hears that too.
    app.post(
        &format!("/api/v1/tickets/{id}/callback"),
        &s.office.dispatcher,
        &json!({"satisfaction": "satisfied", "resolved": true}),
    )
    .await
    .expect(200);
    assert_eq!(deliver(app).await.sent, 1);
    let accepted = s.platform.accepted();
    assert_eq!(accepted.len(), 2);
    assert_eq!(accepted[1]["state"], "closed");
    assert_eq!(accepted[1]["post_id"], "wz-501");
    assert_eq!(accepted[1]["reply"], "已组织疏通排水管道，积水已排除。");
    // A hotline ticket's reply goes nowhere near the platform.
    let t = app
        .dispatched_ticket(&s.office.agent, &s.office.dispatcher, "water", "热线诉求")
        .await;
    let hid = t["id"].as_i64().unwrap();
    app.post(
        &format!("/api/v1/tickets/{hid}/sign"),
        &s.office.water,
        &json!({}),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/tickets/{hid}/reply"),
        &s.office.water,
        &json!({"content": "已处理", "resolved": true}),
    )
    .await
    .expect(200);
    assert_eq!(pushes(app).await.len(), 2);
}

async fn a_refused_push_is_parked_shown_and_retried_by_an_admin(s: Setup) {
    let app = &s.app;
    let id = post(app, "wz-400", "东湖区某路段井盖缺失，存在安全隐患。").await;
    reply(&s, id, "已补装井盖。").await;
    s.platform.answer_next(&[400]);
    let r = deliver(app).await;
    assert_eq!((r.sent, r.failed, r.parked), (0, 0, 1));
    let row = pushes(app).await.remove(0);
    assert_eq!(row.status, "failed");
    // Parked: no more attempts, however much time passes.
    back_off_passes(app).await;
    assert_eq!(deliver(app).await, DeliveryReport::default());
    assert_eq!(s.platform.received().len(), 1);

    // Readiness shows it and stays 200: the service itself works.
    let ready = app.get("/readyz", "").await;
    let body = ready.expect(200);
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["outbox"]["failed"], 1);
    assert_eq!(body["checks"]["outbox"]["status"], "degraded");
    let metrics = app.get("/metrics", "").await;
    assert!(
        metrics
            .body
            .as_str()
            .unwrap()
            .contains("hotline_outbox_failed 1")
    );

    // Admins see it; nobody else does.
    let list = app.get("/api/v1/outbox?status=failed", &app.admin).await;
    let list = list.expect(200);
    assert_eq!(list["total"], 1);
    assert_eq!(list["page"], 1);
    assert_eq!(list["per_page"], 50);
    let item = &list["items"][0];
    assert_eq!(item["id"], row.id);
    assert_eq!(item["kind"], "wenzheng_reply");
    assert_eq!(item["transport"], "webhook");
    assert_eq!(item["ticket_id"], id);
    assert!(
        item["last_error"].as_str().unwrap().contains("400"),
        "{item}"
    );
    let pushed: Value = serde_json::from_str(item["body"].as_str().unwrap()).unwrap();
    assert_eq!(pushed["post_id"], "wz-400");
    let none = app
        .get("/api/v1/outbox?status=failed&transport=mail", &app.admin)
        .await;
    assert_eq!(none.expect(200)["total"], 0);
    app.get("/api/v1/outbox?status=failed", &s.office.dispatcher)
        .await
        .expect_problem(403, "forbidden");
    app.get("/api/v1/outbox?status=lost", &app.admin)
        .await
        .expect_problem(422, "validation_failed");
    app.post(
        &format!("/api/v1/outbox/{}/retry", row.id),
        &s.office.supervisor,
        &json!({}),
    )
    .await
    .expect_problem(403, "forbidden");

    // The platform is fixed; the admin retries; it lands once.
    let retried = app
        .post(
            &format!("/api/v1/outbox/{}/retry", row.id),
            &app.admin,
            &json!({}),
        )
        .await;
    assert_eq!(retried.expect(200)["status"], "pending");
    assert_eq!(deliver(app).await.sent, 1);
    assert_eq!(s.platform.accepted().len(), 1);
    let body = app.get("/readyz", "").await;
    assert_eq!(body.expect(200)["checks"]["outbox"]["failed"], 0);
    app.post(
        &format!("/api/v1/outbox/{}/retry", row.id),
        &app.admin,
        &json!({}),
    )
    .await
    .expect_problem(409, "invalid_transition");
    app.post("/api/v1/outbox/999999/retry", &app.admin, &json!({}))
        .await
        .expect_problem(404, "not_found");
}

async fn too_many_requests_and_timeouts_are_retried_not_parked(s: Setup) {
    let app = &s.app;
    let id = post(app, "wz-429", "东湖区某小区垃圾清运不及时。").await;
    reply(&s, id, "已督促环卫公司每日清运。").await;
    s.platform.answer_next(&[429, 408]);
    for _ in 0..2 {
        let r = deliver(app).await;
        assert_eq!((r.sent, r.failed, r.parked), (0, 1, 0));
        assert_eq!(pushes(app).await[0].status, "pending");
        back_off_passes(app).await;
    }
    assert_eq!(deliver(app).await.sent, 1);
    assert_eq!(s.platform.accepted().len(), 1);
    assert_eq!(pushes(app).await[0].attempts, 3);
}

async fn an_unreachable_platform_is_retried(s: Setup) {
    let app = &s.app;
    let id = post(app, "wz-down", "东湖区某路口红绿灯故障。").await;
    reply(&s, id, "已修复信号灯。").await;
    for attempt in 1..=2 {
        let r = deliver(app).await;
        assert_eq!((r.sent, r.failed, r.parked), (0, 1, 0));
        let row = &pushes(app).await[0];
        assert_eq!((row.status.as_str(), row.attempts), ("pending", attempt));
        back_off_passes(app).await;
    }
}

async fn merged_wenzheng_tickets_get_their_own_push(s: Setup) {
    let (app, o) = (&s.app, &s.office);
    let master = post(app, "wz-m1", "阳明路与八一大道路口积水，车辆无法通行。").await;
    let merged = post(app, "wz-m2", "阳明路八一大道路口积水严重，请处理。").await;
    // A hotline appeal about the same thing, merged too.
    let hotline = app
        .post("/api/v1/tickets", &o.agent, &appeal("阳明路路口积水"))
        .await;
    let hotline = hotline.expect(201).clone();
    for m in [merged, hotline["id"].as_i64().unwrap()] {
        app.post(
            &format!("/api/v1/tickets/{m}/merge"),
            &o.dispatcher,
            &json!({"into": master}),
        )
        .await
        .expect(200);
    }
    let replied = reply(&s, master, "已抽排积水并疏通雨水井。").await;
    assert_eq!(deliver(app).await.sent, 2);
    let mut got = s.platform.accepted();
    got.sort_by_key(|v| v["post_id"].as_str().unwrap().to_owned());
    assert_eq!(got[0]["post_id"], "wz-m1");
    assert_eq!(got[0]["ticket_no"], replied["ticket_no"]);
    let merged_no = app
        .get(&format!("/api/v1/tickets/{merged}"), &o.agent)
        .await
        .expect(200)["ticket_no"]
        .clone();
    assert_eq!(got[1]["post_id"], "wz-m2");
    assert_eq!(got[1]["ticket_no"], merged_no, "its own ticket number");
    for g in &got {
        assert_eq!(g["state"], "replied");
        assert_eq!(g["reply"], "已抽排积水并疏通雨水井。");
        assert_eq!(g["department"], "water 部门");
    }

    // The merged hotline citizen sees the master's reply on the progress page.
    let (no, code) = (
        hotline["ticket_no"].as_str().unwrap(),
        hotline["query_code"].as_str().unwrap(),
    );
    let progress = app
        .get(&format!("/api/v1/public/tickets/{no}?code={code}"), "")
        .await;
    let progress = progress.expect(200);
    assert_eq!(progress["state"], "merged");
    assert_eq!(progress["merged"], true);
    assert_eq!(progress["reply"], "已抽排积水并疏通雨水井。");
    assert_eq!(progress["replied_at"], replied["replied_at"]);
    assert_eq!(progress["department"], "water 部门");

    // Merged after the master was answered: the platform hears it at once.
    let late = post(app, "wz-m3", "阳明路路口又积水了吗？").await;
    app.post(
        &format!("/api/v1/tickets/{late}/merge"),
        &o.dispatcher,
        &json!({"into": master}),
    )
    .await
    .expect(200);
    assert_eq!(deliver(app).await.sent, 1);
    let got = s.platform.accepted();
    assert_eq!(got.len(), 3);
    assert_eq!(got[2]["post_id"], "wz-m3");
    assert_eq!(got[2]["reply"], "已抽排积水并疏通雨水井。");
    // The callback closes the master: both posts hear "closed".
    app.post(
        &format!("/api/v1/tickets/{master}/callback"),
        &o.dispatcher,
        &json!({"satisfaction": "satisfied", "resolved": true}),
    )
    .await
    .expect(200);
    assert_eq!(deliver(app).await.sent, 3);
    let closed: Vec<Value> = s.platform.accepted().split_off(3);
    assert!(closed.iter().all(|v| v["state"] == "closed"), "{closed:?}");
}

async fn no_reply_url_records_the_push_without_sending(s: Setup) {
    let app = &s.app;
    let id = post(app, "wz-none", "东湖区某小区停电。").await;
    reply(&s, id, "已恢复供电。").await;
    let rows = pushes(app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "no_recipient");
    assert_eq!(deliver(app).await, DeliveryReport::default());
}

/// Runs `$body` with a platform on SQLite, and on PostgreSQL when configured.
macro_rules! platform_test {
    ($name:ident, $reply_url:expr) => {
        mod $name {
            use super::*;

            #[actix_web::test]
            async fn sqlite() {
                let s = setup(Backend::Sqlite, $reply_url).await.expect("app");
                super::$name(s).await;
            }

            #[actix_web::test]
            async fn postgres() {
                match setup(Backend::Postgres, $reply_url).await {
                    Some(s) => super::$name(s).await,
                    None => eprintln!("TEST_DATABASE_URL unset: PostgreSQL case skipped"),
                }
            }
        }
    };
}

platform_test!(
    a_failed_push_is_retried_and_lands_once_then_the_close_pushes_too,
    None
);
platform_test!(a_refused_push_is_parked_shown_and_retried_by_an_admin, None);
platform_test!(too_many_requests_and_timeouts_are_retried_not_parked, None);
platform_test!(
    an_unreachable_platform_is_retried,
    Some(&format!("http://127.0.0.1:{}/replies", free_port()))
);
platform_test!(merged_wenzheng_tickets_get_their_own_push, None);
platform_test!(no_reply_url_records_the_push_without_sending, Some(""));
