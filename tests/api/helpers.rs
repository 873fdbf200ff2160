//! `TestApp`: the real server on port 0 with its own database — a fresh
//! SQLite file, or a fresh PostgreSQL database when `TEST_DATABASE_URL` is set.

use std::path::PathBuf;
use std::time::Duration;

use awc::Client;
use hotline::config::{Environment, Settings};
use hotline::startup::Application;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

pub const ADMIN_PASSWORD: &str = "admin-password-1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    pub db_url: String,
    pub client: Client,
    pub admin: String,
    pub backend: Backend,
    pub app_state: actix_web::web::Data<hotline::api::AppState>,
    _dir: tempfile::TempDir,
}

/// A test body that reads only some fields of its `TestApp` (say
/// `app.app_state`) would, by Rust 2021's disjoint closure captures, let the
/// rest drop at once: the temporary directory holding the SQLite file among
/// it. A `Drop` impl makes every capture take the whole `TestApp`.
impl Drop for TestApp {
    fn drop(&mut self) {}
}

pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Resp {
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        &self.body
    }

    /// Asserts a problem+json error with this status and code.
    #[track_caller]
    pub fn expect_problem(&self, status: u16, code: &str) {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(
            self.content_type, "application/problem+json",
            "body: {}",
            self.body
        );
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert!(self.body["detail"].is_string(), "body: {}", self.body);
    }
}

/// For tests of several instances on one Redis: `TEST_REDIS_URL` and the
/// database they share (PostgreSQL when `TEST_DATABASE_URL` is set), or
/// `None` — with a note naming `what` as skipped — without Redis.
pub fn shared_redis(what: &str) -> Option<(String, Backend)> {
    let Some(redis) = std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        eprintln!("TEST_REDIS_URL unset: {what} skipped");
        return None;
    };
    let backend = if std::env::var("TEST_DATABASE_URL").is_ok_and(|s| !s.is_empty()) {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    Some((redis, backend))
}

/// A fresh PostgreSQL database on the server of `TEST_DATABASE_URL`.
pub async fn fresh_pg_database(admin_url: &str) -> String {
    let db = Database::connect(admin_url)
        .await
        .expect("connect TEST_DATABASE_URL");
    drop_stale_databases(&db).await;
    let name = format!(
        "hl_t_{}_{}",
        chrono::Utc::now().format("%Y%m%d%H%M%S"),
        rand_suffix()
    );
    db.execute_raw(Statement::from_string(
        sea_orm::DbBackend::Postgres,
        format!("CREATE DATABASE {name}"),
    ))
    .await
    .expect("create test database");
    let _ = db.close().await;
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(admin_url);
    format!("{base}/{name}")
}

/// Test databases are left behind for inspection; ones older than an hour
/// go. A database still in use cannot be dropped, so parallel runs are safe.
async fn drop_stale_databases(db: &sea_orm::DatabaseConnection) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let mut first = false;
    ONCE.call_once(|| first = true);
    if !first {
        return;
    }
    let cutoff = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("hl_t_%Y%m%d%H%M%S")
        .to_string();
    let Ok(rows) = db
        .query_all_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT datname FROM pg_database WHERE datname LIKE 'hl\\_t\\_%'",
        ))
        .await
    else {
        return;
    };
    for row in rows {
        let Ok(name) = row.try_get_by_index::<String>(0) else {
            continue;
        };
        if name.len() >= 19 && name[..19] < *cutoff.as_str() {
            let _ = db
                .execute_raw(Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    format!("DROP DATABASE IF EXISTS {name}"),
                ))
                .await;
        }
    }
}

fn rand_suffix() -> String {
    use rand::Rng;
    let mut r = rand::thread_rng();
    (0..10)
        .map(|_| (b'a' + r.gen_range(0..26)) as char)
        .collect()
}

pub fn config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, &[]).await
    }

    /// `None` when the backend is PostgreSQL and `TEST_DATABASE_URL` is unset.
    pub async fn spawn_with(backend: Backend, overrides: &[(&str, &str)]) -> Option<TestApp> {
        Self::spawn_on(backend, None, overrides).await
    }

    /// A second instance on the same database as `db_url` (its own port and
    /// data directory), or a fresh database when `db_url` is `None`.
    pub async fn spawn_on(
        backend: Backend,
        db_url: Option<&str>,
        overrides: &[(&str, &str)],
    ) -> Option<TestApp> {
        let dir = tempfile::tempdir().expect("tempdir");
        let db_url = match (backend, db_url) {
            (_, Some(u)) => u.to_owned(),
            (Backend::Sqlite, None) => format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("hotline.db").display()
            ),
            (Backend::Postgres, None) => {
                let admin = std::env::var("TEST_DATABASE_URL")
                    .ok()
                    .filter(|s| !s.is_empty())?;
                fresh_pg_database(&admin).await
            }
        };
        let data_dir = dir.path().display().to_string();
        let mut all: Vec<(&str, &str)> = vec![
            ("server.port", "0"),
            ("server.host", "127.0.0.1"),
            ("server.workers", "2"),
            ("data_dir", &data_dir),
            ("database.url", &db_url),
            ("database.max_connections", "8"),
            // Tests drive sweeps and deliveries themselves.
            ("sweep.interval", "3600"),
            ("mail.deliver_interval", "3600"),
        ];
        all.extend_from_slice(overrides);
        let settings =
            Settings::load_from(&config_dir(), Environment::Test, &all).expect("settings");
        let app = Application::build(settings, Some(ADMIN_PASSWORD.to_owned()))
            .await
            .expect("build app");
        let port = app.port();
        let app_state = app.state.clone();
        actix_web::rt::spawn(app.into_server());
        let client = Client::builder().timeout(Duration::from_secs(30)).finish();
        let mut t = TestApp {
            base: format!("http://127.0.0.1:{port}"),
            db_url: db_url.clone(),
            client,
            admin: String::new(),
            backend,
            app_state,
            _dir: dir,
        };
        t.admin = t.login("admin", ADMIN_PASSWORD).await;
        Some(t)
    }

    /// Two instances on one fresh database with the same overrides: for
    /// what instances share (Redis, the database).
    pub async fn pair(backend: Backend, overrides: &[(&str, &str)]) -> (TestApp, TestApp) {
        let a = TestApp::spawn_with(backend, overrides)
            .await
            .expect("instance a");
        let b = TestApp::spawn_on(backend, Some(&a.db_url), overrides)
            .await
            .expect("instance b");
        (a, b)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn finish(
        &self,
        res: Result<
            awc::ClientResponse<
                impl futures_util::Stream<
                    Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>,
                > + Unpin,
            >,
            awc::error::SendRequestError,
        >,
    ) -> Resp {
        let mut res = res.expect("request sent");
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = res.body().limit(8 << 20).await.expect("body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Resp {
            status,
            content_type,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        let mut req = self.client.get(self.url(path));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        self.finish(req.send().await).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
        let mut req = self.client.post(self.url(path));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        self.finish(req.send_json(body).await).await
    }

    pub async fn put(&self, path: &str, token: &str, body: &Value) -> Resp {
        let mut req = self.client.put(self.url(path));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        self.finish(req.send_json(body).await).await
    }

    /// POST with a raw body and content type.
    pub async fn post_raw(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Resp {
        let mut req = self
            .client
            .post(self.url(path))
            .insert_header(("content-type", content_type));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        self.finish(req.send_body(body).await).await
    }

    /// POST a JSON body (raw bytes) with extra headers and no token, as an
    /// outside system such as a signed channel push would.
    pub async fn post_with_headers(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Resp {
        let mut req = self
            .client
            .post(self.url(path))
            .insert_header(("content-type", "application/json"));
        for (name, value) in headers {
            req = req.insert_header((*name, value.clone()));
        }
        self.finish(req.send_body(body).await).await
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let r = self
            .post(
                "/api/v1/auth/login",
                "",
                &json!({"username": username, "password": password}),
            )
            .await;
        r.expect(200)["token"].as_str().expect("token").to_owned()
    }

    pub async fn department(&self, code: &str) {
        self.post(
            "/api/v1/departments",
            &self.admin,
            &json!({"code": code, "name": format!("{code} 部门"), "kind": "functional", "email": format!("{code}@example.cn")}),
        )
        .await
        .expect(201);
    }

    /// Creates a user with an e-mail address and returns a token for them.
    pub async fn user_with_email(
        &self,
        username: &str,
        role: &str,
        department: Option<&str>,
    ) -> String {
        let password = format!("{username}-password");
        self.post(
            "/api/v1/users",
            &self.admin,
            &json!({"username": username, "password": password, "role": role,
                    "department": department, "email": format!("{username}@example.cn")}),
        )
        .await
        .expect(201);
        self.login(username, &password).await
    }

    /// Creates a user and returns a token for them.
    pub async fn user(&self, username: &str, role: &str, department: Option<&str>) -> String {
        let password = format!("{username}-password");
        self.post(
            "/api/v1/users",
            &self.admin,
            &json!({"username": username, "password": password, "role": role, "department": department}),
        )
        .await
        .expect(201);
        self.login(username, &password).await
    }

    /// Logs in a demo user with the password the demo wrote down.
    pub async fn login_demo(&self, username: &str) -> String {
        let path = self
            .app_state
            .settings
            .data_dir
            .join("demo-credentials.txt");
        let text = std::fs::read_to_string(path).expect("demo credentials");
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(username))
            .expect("demo user listed");
        let password = line.split_whitespace().last().expect("password");
        self.login(username, password).await
    }

    /// Registers an appeal as `agent` and dispatches it to `department`;
    /// returns the dispatched ticket.
    pub async fn dispatched_ticket(
        &self,
        agent: &str,
        dispatcher: &str,
        department: &str,
        title: &str,
    ) -> Value {
        let id = self
            .post("/api/v1/tickets", agent, &appeal(title))
            .await
            .expect(201)["id"]
            .as_i64()
            .expect("id");
        self.post(
            &format!("/api/v1/tickets/{id}/dispatch"),
            dispatcher,
            &json!({"department": department}),
        )
        .await
        .expect(200)
        .clone()
    }

    pub async fn count_tickets(&self) -> u64 {
        self.app_state.store.count_tickets().await.expect("count")
    }
}

/// The cast of a typical office: two departments and one user per role.
pub struct Office {
    pub agent: String,
    pub dispatcher: String,
    pub water: String,
    pub water_head: String,
    pub gas: String,
    pub supervisor: String,
    pub leader: String,
}

impl Office {
    pub async fn new(app: &TestApp) -> Office {
        app.department("water").await;
        app.department("gas").await;
        Office {
            agent: app.user("agent1", "agent", None).await,
            dispatcher: app.user("dispatcher1", "dispatcher", None).await,
            water: app.user("water1", "handler", Some("water")).await,
            water_head: app.user("waterhead", "dept_head", Some("water")).await,
            gas: app.user("gas1", "handler", Some("gas")).await,
            supervisor: app.user("super1", "supervisor", None).await,
            leader: app.user("leader1", "leader", None).await,
        }
    }
}

pub fn appeal(title: &str) -> Value {
    json!({
        "channel": "hotline",
        "category": "complaint",
        "urgency": "normal",
        "title": title,
        "content": format!("市民来电反映：{title}，请尽快处理。"),
        "citizen": {"name": "张三", "phone": "13800001234"},
        "address": "东湖区某小区",
        "district": "donghu",
    })
}

/// Runs a test body on SQLite, and on PostgreSQL when configured.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[actix_web::test]
            async fn sqlite() {
                let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite app");
                ($body)(app).await;
            }

            #[actix_web::test]
            async fn postgres() {
                match TestApp::spawn(Backend::Postgres).await {
                    Some(app) => ($body)(app).await,
                    None => eprintln!("TEST_DATABASE_URL unset: PostgreSQL case skipped"),
                }
            }
        }
    };
}
