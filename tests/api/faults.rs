//! Faults (DESIGN.md "Bad input and faults"): a database that goes away
//! mid-service answers 503 problem+json within `server.request_timeout_secs`
//! and recovers by itself; start-up waits for a database that is not up yet
//! and gives up with the reason; SIGTERM drains and exits cleanly.
//!
//! The database is cut with a TCP proxy in front of the real PostgreSQL
//! (these run when `TEST_DATABASE_URL` is set); the SIGTERM test runs the
//! real binary on SQLite.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use hotline::config::{Environment, Settings};
use hotline::startup::Application;
use serde_json::json;

use crate::helpers::{ADMIN_PASSWORD, Backend, TestApp, config_dir, fresh_pg_database};

const FORWARD: u8 = 0;
/// New connections are closed at once; open ones are cut.
const REFUSE: u8 = 1;
/// Connections are accepted and never answered.
const BLACKHOLE: u8 = 2;

/// A TCP proxy to PostgreSQL on its own thread and runtime.
struct Proxy {
    port: u16,
    mode: Arc<AtomicU8>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    fn start(upstream: String, mode: u8) -> Proxy {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(mode));
        let (cut, cut_rx) = tokio::sync::watch::channel(0u64);
        let m = mode.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        return;
                    };
                    let mut cut_rx = cut_rx.clone();
                    cut_rx.mark_unchanged();
                    match m.load(Ordering::SeqCst) {
                        REFUSE => drop(client),
                        BLACKHOLE => {
                            tokio::spawn(async move {
                                let _ = cut_rx.changed().await;
                                drop(client);
                            });
                        }
                        _ => {
                            let upstream = upstream.clone();
                            tokio::spawn(async move {
                                let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await
                                else {
                                    return;
                                };
                                tokio::select! {
                                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                    _ = cut_rx.changed() => {}
                                }
                            });
                        }
                    }
                }
            });
        });
        Proxy { port, mode, cut }
    }

    /// Switches mode and cuts every connection open now.
    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }
}

/// `postgres://user@host:port/db` → the same database through `port`.
fn via(url: &str, port: u16) -> (String, String) {
    let (scheme_user, rest) = url.split_once('@').expect("user@host in TEST_DATABASE_URL");
    let (hostport, db) = rest.split_once('/').expect("/database");
    let hostport = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    (format!("{scheme_user}@127.0.0.1:{port}/{db}"), hostport)
}

fn pg_admin_url() -> Option<String> {
    let u = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty());
    if u.is_none() {
        eprintln!("TEST_DATABASE_URL unset: database fault tests skipped");
    }
    u
}

async fn timed_get(app: &TestApp, path: &str) -> (crate::helpers::Resp, Duration) {
    let t = Instant::now();
    let r = app.get(path, &app.admin).await;
    (r, t.elapsed())
}

#[actix_web::test]
async fn a_lost_database_answers_503_within_the_timeout_and_recovers() {
    let Some(admin_url) = pg_admin_url() else {
        return;
    };
    let db_url = fresh_pg_database(&admin_url).await;
    let (_, upstream) = via(&db_url, 1);
    let proxy = Proxy::start(upstream, FORWARD);
    let (proxied, _) = via(&db_url, proxy.port);
    let app = TestApp::spawn_on(
        Backend::Postgres,
        Some(&proxied),
        &[("server.request_timeout_secs", "3")],
    )
    .await
    .unwrap();
    app.department("water").await;
    let agent = app.user("agent_f", "agent", None).await;
    let before = app
        .post("/api/v1/tickets", &agent, &crate::helpers::appeal("停水"))
        .await;
    before.expect(201);

    // The database goes away: connections cut, new ones refused.
    proxy.set(REFUSE);
    let (r, took) = timed_get(&app, "/api/v1/tickets").await;
    assert_eq!(r.status, 503, "body: {}", r.body);
    assert_eq!(r.content_type, "application/problem+json");
    assert!(
        r.body["code"] == "unavailable" || r.body["code"] == "timeout",
        "body: {}",
        r.body
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let w = app
        .post("/api/v1/tickets", &agent, &crate::helpers::appeal("停电"))
        .await;
    assert_eq!(w.status, 503, "body: {}", w.body);
    // Liveness stays up; readiness says what is wrong, promptly.
    let (h, _) = timed_get(&app, "/healthz").await;
    assert_eq!(h.status, 200);
    let (ready, took) = timed_get(&app, "/readyz").await;
    assert_eq!(ready.status, 503, "body: {}", ready.body);
    assert_eq!(
        ready.body["checks"]["database"]["status"], "error",
        "body: {}",
        ready.body
    );
    assert!(took < Duration::from_secs(5), "readyz took {took:?}");

    // A database that accepts but never answers: cut at the request
    // timeout, never a hang.
    proxy.set(BLACKHOLE);
    let (r, took) = timed_get(&app, "/api/v1/tickets?per_page=1").await;
    assert_eq!(r.status, 503, "body: {}", r.body);
    assert!(took < Duration::from_secs(6), "took {took:?}");

    // It comes back: the service recovers without a restart.
    proxy.set(FORWARD);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = app.get("/api/v1/tickets", &app.admin).await;
        if r.status == 200 {
            // Only the acknowledged ticket exists; the refused one left
            // nothing behind.
            assert_eq!(r.body["total"], 1, "body: {}", r.body);
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {}", r.body);
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    }
    app.post("/api/v1/tickets", &agent, &crate::helpers::appeal("停气"))
        .await
        .expect(201);
    let (ready, _) = timed_get(&app, "/readyz").await;
    assert_eq!(ready.status, 200, "body: {}", ready.body);
}

fn settings_for(db_url: &str, dir: &std::path::Path, retry: &str) -> Settings {
    let data_dir = dir.display().to_string();
    Settings::load_from(
        &config_dir(),
        Environment::Test,
        &[
            ("server.port", "0"),
            ("server.host", "127.0.0.1"),
            ("server.workers", "1"),
            ("data_dir", &data_dir),
            ("database.url", db_url),
            ("database.max_connections", "4"),
            ("database.connect_retry_secs", retry),
            ("sweep.interval", "3600"),
            ("mail.deliver_interval", "3600"),
        ],
    )
    .expect("settings")
}

#[actix_web::test]
async fn start_up_waits_for_a_database_that_comes_up_late() {
    let Some(admin_url) = pg_admin_url() else {
        return;
    };
    let db_url = fresh_pg_database(&admin_url).await;
    let (_, upstream) = via(&db_url, 1);
    let proxy = Proxy::start(upstream, REFUSE);
    let (proxied, _) = via(&db_url, proxy.port);
    let dir = tempfile::tempdir().unwrap();
    let settings = settings_for(&proxied, dir.path(), "30");
    let started = Instant::now();
    let building = actix_web::rt::spawn(async move {
        Application::build(settings, Some(ADMIN_PASSWORD.to_owned())).await
    });
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    assert!(!building.is_finished(), "start-up did not wait");
    proxy.set(FORWARD);
    let app = building
        .await
        .unwrap()
        .expect("start-up after the database came up");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(app.port() > 0);
}

#[actix_web::test]
async fn start_up_gives_up_with_the_reason() {
    let Some(admin_url) = pg_admin_url() else {
        return;
    };
    let db_url = fresh_pg_database(&admin_url).await;
    let (_, upstream) = via(&db_url, 1);
    let proxy = Proxy::start(upstream, REFUSE);
    let (proxied, _) = via(&db_url, proxy.port);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let e = match Application::build(
        settings_for(&proxied, dir.path(), "2"),
        Some(ADMIN_PASSWORD.to_owned()),
    )
    .await
    {
        Ok(_) => panic!("started without a database"),
        Err(e) => e.to_string(),
    };
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        e.to_lowercase().contains("connection") || e.contains("database"),
        "the error does not say why: {e}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[actix_web::test]
async fn sigterm_drains_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .arg("serve")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HOTLINE_ENV", "test")
        .env("HOTLINE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("HOTLINE__SERVER__PORT", port.to_string())
        .env("HOTLINE__SERVER__REQUEST_TIMEOUT_SECS", "3")
        .env("HOTLINE__DATA_DIR", dir.path())
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start hotline");
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not come up");
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    let mut login = client
        .post(format!("{base}/api/v1/auth/login"))
        .send_json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .await
        .unwrap();
    let token = login.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // A live event stream stays open across the signal; it must not keep
    // the process alive past the drain.
    let stream = client
        .get(format!("{base}/api/v1/events/stream"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);

    let signalled = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if signalled.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("still running 30 s after SIGTERM");
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    };
    drop(stream);
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let log = format!("{out}{err}");
    assert!(status.success(), "exit status {status:?}; log:\n{log}");
    assert!(log.contains("stopping background jobs"), "log:\n{log}");
    assert!(!log.contains("panicked"), "log:\n{log}");
}

/// Redis that goes away under an established connection: the first failed
/// call drops the connection, and until the next attempt every call fails at
/// once instead of waiting for its own reconnection (the event fan-out is
/// awaited by every transition, so each wait slowed the whole service).
#[actix_web::test]
async fn a_lost_redis_fails_fast_until_it_is_back() {
    use hotline::infra::redis::RedisHandle;
    let Some((redis_url, _)) = crate::helpers::shared_redis("redis fault test") else {
        return;
    };
    let upstream = redis_url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    let proxy = Proxy::start(upstream, FORWARD);
    let h = RedisHandle::new(&format!("redis://127.0.0.1:{}", proxy.port)).unwrap();
    h.publish("hotline:test", "up")
        .await
        .expect("through the proxy");

    proxy.set(REFUSE);
    let mut first = None;
    let mut calls = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let r = h.publish("hotline:test", "down").await;
        calls.push(t.elapsed());
        let e = r.expect_err("Redis is unreachable");
        if first.is_none() {
            first = Some(e.to_string());
        } else {
            // Answered from the handle's own state, not the network.
            assert!(
                e.to_string().contains("waiting to reconnect"),
                "{e} (first failure: {first:?})"
            );
        }
    }
    eprintln!("publishes while Redis is cut: {calls:?}");

    proxy.set(FORWARD);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let mut back = false;
    for _ in 0..20 {
        if h.publish("hotline:test", "back").await.is_ok() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(back, "publishing works again once Redis is back");
}
