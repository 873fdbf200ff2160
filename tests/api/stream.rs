//! The live event stream: scoped like every read, and live across instances
//! when they share Redis.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::both;
use crate::helpers::*;

/// Opens the stream and returns a reader that yields `data:` payloads.
async fn open(
    app: &TestApp,
    token: &str,
) -> awc::ClientResponse<
    impl futures_util::Stream<Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>>
    + Unpin,
> {
    let client = awc::Client::builder().disable_timeout().finish();
    let mut res = client
        .get(app.url("/api/v1/events/stream"))
        .bearer_auth(token)
        .send()
        .await
        .expect("stream opens");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    // The first chunk is the greeting: the subscription is live after it.
    let first = res.next().await.expect("greeting").expect("bytes");
    assert!(String::from_utf8_lossy(&first).contains("connected"));
    res
}

/// Collects event payloads for `wait`.
async fn events<S>(res: &mut awc::ClientResponse<S>, wait: Duration) -> Vec<Value>
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>>
        + Unpin,
{
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, res.next()).await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
    buf.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect()
}

async fn ticket(app: &TestApp, agent: &str, dispatcher: &str, dept: &str) -> i64 {
    app.dispatched_ticket(agent, dispatcher, dept, "直播").await["id"]
        .as_i64()
        .unwrap()
}

both!(
    live_events_reach_only_the_departments_that_may_see_them,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let mut water = open(&app, &o.water).await;
        let mut leader = open(&app, &o.leader).await;
        let w = ticket(&app, &o.agent, &o.dispatcher, "water").await;
        let g = ticket(&app, &o.agent, &o.dispatcher, "gas").await;
        let seen_by_water = events(&mut water, Duration::from_millis(800)).await;
        let seen_by_leader = events(&mut leader, Duration::from_millis(300)).await;
        let ids = |v: &[Value]| {
            v.iter()
                .map(|e| e["ticket_id"].as_i64().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&seen_by_water), [w]);
        assert_eq!(seen_by_water[0]["kind"], "dispatched");
        assert_eq!(seen_by_water[0]["state"], "dispatched");
        // Leaders also hear of registrations (no department sees those yet).
        assert_eq!(ids(&seen_by_leader), [w, w, g, g]);
        app.get("/api/v1/events/stream", "")
            .await
            .expect_problem(401, "unauthorized");
    }
);

#[actix_web::test]
async fn two_instances_sharing_redis_both_hear_events_made_on_either() {
    let Some((redis, backend)) = shared_redis("cross-instance stream test") else {
        return;
    };
    let overrides = [("redis.url", redis.as_str())];
    let (a, b) = TestApp::pair(backend, &overrides).await;
    let o = Office::new(&a).await;
    let leader_b = b.login("leader1", "leader1-password").await;
    let leader_a = a.login("leader1", "leader1-password").await;
    let mut on_b = open(&b, &leader_b).await;
    let mut on_a = open(&a, &leader_a).await;
    // Give both subscriptions a moment to reach Redis.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let made_on_a = ticket(&a, &o.agent, &o.dispatcher, "water").await;
    let handler_b = b.login("water1", "water1-password").await;
    b.post(
        &format!("/api/v1/tickets/{made_on_a}/sign"),
        &handler_b,
        &json!({}),
    )
    .await
    .expect(200);
    for (name, stream) in [("b", &mut on_b), ("a", &mut on_a)] {
        let got = events(stream, Duration::from_millis(1500)).await;
        let kinds: Vec<&str> = got
            .iter()
            .filter(|e| e["ticket_id"] == made_on_a)
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["created", "dispatched", "signed"],
            "instance {name} heard: {got:?}"
        );
    }
    let ready = a.get("/readyz", "").await;
    assert_eq!(ready.expect(200)["checks"]["redis"]["status"], "ok");
}

#[actix_web::test]
async fn with_redis_down_the_service_keeps_working_on_in_process_fallbacks() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let app = TestApp::spawn_with(Backend::Sqlite, &[("redis.url", url.as_str())])
        .await
        .expect("app starts without Redis");
    let o = Office::new(&app).await;
    let ready = app.get("/readyz", "").await;
    let ready = ready.expect(200);
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["redis"]["status"], "degraded");
    let mut water = open(&app, &o.water).await;
    let id = ticket(&app, &o.agent, &o.dispatcher, "water").await;
    let got = events(&mut water, Duration::from_millis(800)).await;
    assert_eq!(got.len(), 1, "delivered in-process: {got:?}");
    assert_eq!(got[0]["ticket_id"], id);
    let metrics = app.get("/metrics", "").await;
    assert!(
        metrics
            .body
            .as_str()
            .unwrap()
            .contains("hotline_redis_up 0")
    );
}

#[actix_web::test]
async fn only_one_instance_holds_the_sweeper_lease_at_a_time() {
    let Some(url) = std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        eprintln!("TEST_REDIS_URL unset: lease test skipped");
        return;
    };
    use hotline::infra::lease::Lease;
    use hotline::infra::redis::RedisHandle;
    let name = format!("test-{}", rand_name());
    let a = Lease::new(Some(RedisHandle::new(&url).unwrap()));
    let b = Lease::new(Some(RedisHandle::new(&url).unwrap()));
    let ttl = Duration::from_millis(600);
    assert!(a.try_acquire(&name, ttl).await);
    assert!(!b.try_acquire(&name, ttl).await, "held by a");
    assert!(a.try_acquire(&name, ttl).await, "a renews its own lease");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(b.try_acquire(&name, ttl).await, "expired: b takes over");
    assert!(!a.try_acquire(&name, ttl).await);
    // Without Redis every instance may sweep: the database keeps it exact.
    assert!(Lease::new(None).try_acquire(&name, ttl).await);
}

fn rand_name() -> String {
    format!("{}-{}", std::process::id(), rand::random::<u32>())
}
