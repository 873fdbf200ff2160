//! DESIGN.md, Personal data: "Logs never print phone numbers in full". The
//! real binary runs at `RUST_LOG=debug` through a whole appeal — intake, a
//! search by phone, dispatch, reveal, reply, callback, a failed log-in,
//! validation errors quoting the phone, the public mailbox, an unmasked
//! export — and its whole output is searched for the citizen's phone and name.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use awc::Client;
use serde_json::{Value, json};

use crate::helpers::*;

const PHONE: &str = "13812345678";
const NAME: &str = "欧阳娜娜";
const MAILBOX_PHONE: &str = "15987654321";
const MAILBOX_NAME: &str = "司马晓燕";

/// The server process, its output collected as it runs, killed on drop.
struct Server {
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
}

impl Server {
    async fn start(db_url: Option<String>) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let db_url = db_url.unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("hotline.db").display()
            )
        });
        let port = free_port();
        let root = env!("CARGO_MANIFEST_DIR");
        let mut child = Command::new(env!("CARGO_BIN_EXE_hotline"))
            .arg("serve")
            .current_dir(root)
            .env("HOTLINE_ENV", "test")
            .env("HOTLINE_CONFIG_DIR", config_dir())
            .env("HOTLINE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("HOTLINE__SERVER__HOST", "127.0.0.1")
            .env("HOTLINE__SERVER__PORT", port.to_string())
            .env("HOTLINE__SERVER__WORKERS", "2")
            .env("HOTLINE__DATA_DIR", dir.path())
            .env("HOTLINE__DATABASE__URL", &db_url)
            .env("HOTLINE__DATABASE__MAX_CONNECTIONS", "4")
            .env("HOTLINE__MAIL__DELIVER_INTERVAL", "1")
            .env("RUST_LOG", "debug")
            .env_remove("HOTLINE__REDIS__URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the hotline binary");
        let output = Arc::new(Mutex::new(Vec::new()));
        collect(child.stdout.take().unwrap(), output.clone());
        collect(child.stderr.take().unwrap(), output.clone());
        let server = Server {
            child,
            output,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let client = Client::default();
        let started = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", server.base)).send().await
                && r.status().is_success()
            {
                break server;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "the server did not come up:\n{}",
                server.text()
            );
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }
}

/// Status and JSON (or text) of one request.
async fn call(
    client: &Client,
    base: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client.request(method, format!("{base}{path}"));
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    let mut res = match body {
        Some(b) => req.send_json(&b).await,
        None => req.send().await,
    }
    .expect("request sent");
    let bytes = res.body().limit(8 << 20).await.expect("body");
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (res.status().as_u16(), value)
}

/// Every place in `text` that reads as a mobile number — `1[3-9]` and nine
/// more digits, not part of a longer run of letters or digits.
fn phone_numbers(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    let alnum = |i: usize| b.get(i).is_some_and(|c| c.is_ascii_alphanumeric());
    for i in 0..b.len().saturating_sub(10) {
        let w = &b[i..i + 11];
        if w[0] == b'1'
            && (b'3'..=b'9').contains(&w[1])
            && w.iter().all(u8::is_ascii_digit)
            && (i == 0 || !alnum(i - 1))
            && !alnum(i + 11)
        {
            found.push(String::from_utf8_lossy(w).into_owned());
        }
    }
    found
}

#[test]
fn the_phone_scan_finds_numbers_but_not_longer_digit_runs() {
    assert_eq!(phone_numbers("phone=13812345678,"), vec!["13812345678"]);
    assert_eq!(phone_numbers("13812345678"), vec!["13812345678"]);
    assert!(phone_numbers("138****5678 12345678901 1381234567890 a13812345678").is_empty());
}

async fn a_whole_appeal_leaves_no_phone_number_or_name_in_the_log(backend: Backend) {
    let db_url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => match std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|s| !s.is_empty())
        {
            Some(admin) => Some(fresh_pg_database(&admin).await),
            None => {
                eprintln!("TEST_DATABASE_URL unset: PostgreSQL case skipped");
                return;
            }
        },
    };
    let server = Server::start(db_url).await;
    let client = Client::builder().timeout(Duration::from_secs(30)).finish();
    let base = server.base.as_str();
    let api = |method: &'static str, path: String, token: String, body: Option<Value>| {
        let client = &client;
        async move { call(client, base, method, &path, &token, body).await }
    };
    let login = |user: &'static str, password: String| {
        let api = &api;
        async move {
            let (status, body) = api(
                "POST",
                "/api/v1/auth/login".into(),
                String::new(),
                Some(json!({"username": user, "password": password})),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            body["token"].as_str().unwrap().to_owned()
        }
    };
    let admin = login("admin", ADMIN_PASSWORD.into()).await;
    let (s, b) = api(
        "POST",
        "/api/v1/departments".into(),
        admin.clone(),
        Some(
            json!({"code": "water", "name": "市水务局", "kind": "functional",
                    "email": "water@example.cn"}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    for (user, role, dept) in [
        ("agent1", "agent", None),
        ("dispatcher1", "dispatcher", None),
        ("water1", "handler", Some("water")),
    ] {
        let (s, b) = api(
            "POST",
            "/api/v1/users".into(),
            admin.clone(),
            Some(
                json!({"username": user, "password": format!("{user}-password"),
                        "role": role, "department": dept}),
            ),
        )
        .await;
        assert_eq!(s, 201, "{b}");
    }
    let agent = login("agent1", "agent1-password".into()).await;
    let dispatcher = login("dispatcher1", "dispatcher1-password".into()).await;
    let water = login("water1", "water1-password".into()).await;

    let appeal = json!({
        "channel": "hotline", "category": "complaint", "urgency": "normal",
        "title": "小区停水三天",
        "content": format!("市民{NAME}来电（{PHONE}）反映小区停水三天，请尽快处理。"),
        "citizen": {"name": NAME, "phone": PHONE},
        "address": "东湖区某小区", "district": "donghu",
    });
    let (s, t) = api(
        "POST",
        "/api/v1/tickets".into(),
        agent.clone(),
        Some(appeal.clone()),
    )
    .await;
    assert_eq!(s, 201, "{t}");
    let id = t["id"].as_i64().unwrap();
    // The same caller again (a repeat call), and a search by phone and name.
    let (s, _) = api(
        "POST",
        "/api/v1/tickets".into(),
        agent.clone(),
        Some(appeal.clone()),
    )
    .await;
    assert!(s == 200 || s == 201, "{s}");
    for q in [PHONE, "%E6%AC%A7%E9%98%B3%E5%A8%9C%E5%A8%9C"] {
        let (s, b) = api("GET", format!("/api/v1/tickets?q={q}"), agent.clone(), None).await;
        assert_eq!(s, 200, "{b}");
    }
    let steps = [
        (
            dispatcher.clone(),
            "dispatch",
            json!({"department": "water"}),
        ),
        (water.clone(), "sign", json!({})),
        (water.clone(), "reveal", json!({"reason": "需电话核实地址"})),
        (
            water.clone(),
            "reply",
            json!({"content": format!("已联系{NAME}（{PHONE}），已恢复供水。"), "resolved": true}),
        ),
        (
            dispatcher.clone(),
            "callback",
            json!({"satisfaction": "satisfied", "resolved": true,
                   "note": format!("回访{PHONE}满意")}),
        ),
    ];
    for (token, action, body) in steps {
        let (s, b) = api(
            "POST",
            format!("/api/v1/tickets/{id}/{action}"),
            token,
            Some(body),
        )
        .await;
        assert_eq!(s, 200, "{action}: {b}");
    }
    // A failed log-in, with a phone number as the user name.
    let (s, _) = api(
        "POST",
        "/api/v1/auth/login".into(),
        String::new(),
        Some(json!({"username": PHONE, "password": PHONE})),
    )
    .await;
    assert_eq!(s, 401);
    // Validation errors that quote the phone back.
    for bad in [
        json!({"channel": "hotline", "category": PHONE, "urgency": "normal", "title": "t",
               "content": "c", "citizen": {"name": NAME, "phone": PHONE}}),
        json!({"channel": "hotline", "category": "complaint", "urgency": "normal",
               "title": "", "content": "", "citizen": {"name": NAME, "phone": format!("{PHONE}9")}}),
    ] {
        let (s, b) = api("POST", "/api/v1/tickets".into(), agent.clone(), Some(bad)).await;
        assert_eq!(s, 422, "{b}");
    }
    let (s, b) = api(
        "GET",
        format!("/api/v1/tickets?q={PHONE}&state={PHONE}"),
        agent.clone(),
        None,
    )
    .await;
    assert_eq!(s, 422, "{b}");
    // The public mailbox, as JSON and with a bad field.
    let letter = json!({
        "name": MAILBOX_NAME, "phone": MAILBOX_PHONE, "category": "complaint",
        "title": "路灯不亮",
        "content": format!("我是{MAILBOX_NAME}，电话{MAILBOX_PHONE}。小区门口路灯坏了一个月，晚上出行不便。"),
        "address": "东湖区某小区北门",
    });
    let (s, b) = api(
        "POST",
        "/api/v1/public/mailbox".into(),
        String::new(),
        Some(letter.clone()),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let mut bad_letter = letter.clone();
    bad_letter["category"] = json!(MAILBOX_PHONE);
    let (s, b) = api(
        "POST",
        "/api/v1/public/mailbox".into(),
        String::new(),
        Some(bad_letter),
    )
    .await;
    assert_eq!(s, 422, "{b}");
    // An unmasked export (the admin's, with a reason).
    let (s, b) = api(
        "GET",
        "/api/v1/export?from=2020-01-01&to=2030-01-01&unmasked=true&reason=%E6%A0%B8%E6%9F%A5"
            .into(),
        admin.clone(),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(b.as_str().unwrap_or_default().contains(PHONE));
    // Let the outbox worker deliver the dispatch notice (it names the ticket).
    actix_web::rt::time::sleep(Duration::from_millis(2500)).await;

    let text = server.text();
    drop(server);
    assert!(
        text.lines().count() > 20,
        "too little output to mean anything:\n{text}"
    );
    let leaks: Vec<&str> = text
        .lines()
        .filter(|l| {
            !phone_numbers(l).is_empty()
                || l.contains(PHONE)
                || l.contains(MAILBOX_PHONE)
                || l.contains(NAME)
                || l.contains(MAILBOX_NAME)
        })
        .collect();
    assert!(
        leaks.is_empty(),
        "{} log lines carry personal data:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

#[actix_web::test]
async fn a_whole_appeal_leaves_no_phone_number_or_name_in_the_log_sqlite() {
    a_whole_appeal_leaves_no_phone_number_or_name_in_the_log(Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_whole_appeal_leaves_no_phone_number_or_name_in_the_log_postgres() {
    a_whole_appeal_leaves_no_phone_number_or_name_in_the_log(Backend::Postgres).await;
}
