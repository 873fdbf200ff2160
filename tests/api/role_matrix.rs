//! Who may call what: every route under `/api/v1`, for every role and for
//! anonymous callers, against DESIGN.md's "who" column (README's "Choices"
//! where the design is silent). The table is checked against the routes in
//! `src/api/mod.rs`, so a new route without a row fails here.

use std::cell::Cell;

use awc::http::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// `(method, path under /api/v1, who, status when allowed)`. `who`:
/// `anyone` (no account needed), `all` (every role, not anonymous),
/// `signed` (a channel's signature, never a bearer token), or the roles.
/// Paths under `/tickets/{id}` are department-scoped besides: a handler or
/// dept_head of another department gets 404, whatever their role.
const TABLE: &[(&str, &str, &str, u16)] = &[
    ("POST", "/auth/login", "anyone", 200),
    ("GET", "/auth/me", "all", 200),
    ("POST", "/auth/logout", "all", 204),
    // A too-short new password: past the role gate, refused as invalid.
    ("POST", "/auth/password", "all", 422),
    ("POST", "/users", "admin", 201),
    ("GET", "/users", "admin", 200),
    ("PATCH", "/users/{id}", "admin", 200),
    ("GET", "/departments", "all", 200),
    ("POST", "/departments", "admin", 201),
    ("GET", "/catalogue", "all", 200),
    ("PUT", "/catalogue", "admin", 200),
    ("GET", "/catalogue/versions", "all", 200),
    ("GET", "/catalogue/versions/{version}", "all", 200),
    // DESIGN: "all"; README: the deadline arithmetic is open to anyone.
    ("GET", "/calendar/due", "anyone", 200),
    (
        "GET",
        "/stats",
        "leader supervisor dispatcher admin dept_head",
        200,
    ),
    (
        "GET",
        "/hotspots",
        "leader supervisor dispatcher admin",
        200,
    ),
    ("POST", "/channels/wenzheng/appeals", "signed", 0),
    (
        "GET",
        "/export",
        "leader supervisor dispatcher admin dept_head",
        200,
    ),
    ("GET", "/events/stream", "all", 200),
    ("GET", "/access-log", "admin supervisor", 200),
    ("GET", "/outbox", "admin", 200),
    ("POST", "/outbox/{id}/retry", "admin", 200),
    ("GET", "/public/tickets/{ticket_no}", "anyone", 200),
    ("POST", "/public/mailbox", "anyone", 201),
    ("POST", "/tickets", "agent dispatcher", 201),
    ("GET", "/tickets", "all", 200),
    ("GET", "/tickets/{id}", "all", 200),
    ("GET", "/tickets/{id}/route", "agent dispatcher", 200),
    ("POST", "/tickets/{id}/dispatch", "dispatcher", 200),
    ("POST", "/tickets/{id}/sign", "handler dept_head", 200),
    ("POST", "/tickets/{id}/return", "handler dept_head", 200),
    ("POST", "/tickets/{id}/extensions", "handler dept_head", 201),
    (
        "POST",
        "/tickets/{id}/extensions/{ext_id}/decision",
        "dispatcher",
        200,
    ),
    ("POST", "/tickets/{id}/reply", "handler dept_head", 200),
    ("POST", "/tickets/{id}/callback", "dispatcher", 200),
    ("POST", "/tickets/{id}/close", "agent dispatcher", 200),
    ("POST", "/tickets/{id}/merge", "dispatcher", 200),
    // README: co-departments' notes; the leader changes nothing.
    (
        "POST",
        "/tickets/{id}/notes",
        "agent dispatcher handler dept_head supervisor admin",
        200,
    ),
    ("POST", "/tickets/{id}/reveal", "all", 200),
];

/// The callers: one user per role (handler and dept_head of `water`, which
/// every ticket here is dispatched to), the two department roles of `gas`,
/// and nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Agent,
    Dispatcher,
    Handler,
    DeptHead,
    Supervisor,
    Leader,
    Admin,
    OtherHandler,
    OtherDeptHead,
}

const CALLERS: [Who; 10] = [
    Who::Anonymous,
    Who::Agent,
    Who::Dispatcher,
    Who::Handler,
    Who::DeptHead,
    Who::Supervisor,
    Who::Leader,
    Who::Admin,
    Who::OtherHandler,
    Who::OtherDeptHead,
];

impl Who {
    fn role(self) -> &'static str {
        match self {
            Who::Anonymous => "",
            Who::Agent => "agent",
            Who::Dispatcher => "dispatcher",
            Who::Handler | Who::OtherHandler => "handler",
            Who::DeptHead | Who::OtherDeptHead => "dept_head",
            Who::Supervisor => "supervisor",
            Who::Leader => "leader",
            Who::Admin => "admin",
        }
    }

    fn username(self) -> &'static str {
        match self {
            Who::Anonymous => "",
            Who::Agent => "m_agent",
            Who::Dispatcher => "m_dispatcher",
            Who::Handler => "m_water",
            Who::DeptHead => "m_water_head",
            Who::Supervisor => "m_supervisor",
            Who::Leader => "m_leader",
            Who::Admin => "admin",
            Who::OtherHandler => "m_gas",
            Who::OtherDeptHead => "m_gas_head",
        }
    }

    fn password(self) -> String {
        match self {
            Who::Admin => ADMIN_PASSWORD.to_owned(),
            w => format!("{}-password", w.username()),
        }
    }

    fn department(self) -> Option<&'static str> {
        match self {
            Who::Handler | Who::DeptHead => Some("water"),
            Who::OtherHandler | Who::OtherDeptHead => Some("gas"),
            _ => None,
        }
    }

    fn out_of_department(self) -> bool {
        matches!(self, Who::OtherHandler | Who::OtherDeptHead)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Allowed(u16),
    Unauthorized,
    BadSignature,
    Forbidden,
    NotFound,
}

fn expected(path: &str, who: &str, ok: u16, caller: Who) -> Expect {
    if who == "signed" {
        return Expect::BadSignature;
    }
    if who == "anyone" {
        return Expect::Allowed(ok);
    }
    if caller == Who::Anonymous {
        return Expect::Unauthorized;
    }
    if path.starts_with("/tickets/{id}") && caller.out_of_department() {
        return Expect::NotFound;
    }
    if who == "all" || who.split_whitespace().any(|r| r == caller.role()) {
        Expect::Allowed(ok)
    } else {
        Expect::Forbidden
    }
}

/// The `(method, path)` pairs `api::routes` registers under `/api/v1`.
fn routes_in_source() -> Vec<(String, String)> {
    let src = include_str!("../../src/api/mod.rs");
    let start = src
        .find("web::scope(\"/api/v1\")")
        .expect("the /api/v1 scope in src/api/mod.rs");
    let rest = &src.as_bytes()[start..];
    let end = find(rest, b"open311::scope()").unwrap_or(rest.len());
    let rest = &rest[..end];
    let mut out = Vec::new();
    let mut path = String::new();
    let mut i = 0;
    while i < rest.len() {
        let here = &rest[i..];
        if here.starts_with(b"resource(\"") {
            let from = i + "resource(\"".len();
            let len = find(&rest[from..], b"\"").expect("closing quote");
            path = String::from_utf8(rest[from..from + len].to_vec()).expect("utf-8 path");
            i = from + len;
        } else if here.starts_with(b".route(") {
            let mut from = i + ".route(".len();
            while rest[from].is_ascii_whitespace() {
                from += 1;
            }
            if rest[from..].starts_with(b"web::") {
                from += "web::".len();
            }
            let len = find(&rest[from..], b"(").expect("method call");
            let method = String::from_utf8(rest[from..from + len].to_vec())
                .expect("utf-8 method")
                .to_ascii_uppercase();
            out.push((method, path.clone()));
            i = from + len;
        }
        i += 1;
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn the_table_has_one_row_for_every_api_route() {
    let mut in_source = routes_in_source();
    assert!(
        in_source.len() >= 30,
        "parsed too few routes: {in_source:?}"
    );
    in_source.sort();
    let mut in_table: Vec<(String, String)> = TABLE
        .iter()
        .map(|(m, p, _, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    in_table.sort();
    let missing: Vec<_> = in_source.iter().filter(|r| !in_table.contains(r)).collect();
    let stale: Vec<_> = in_table.iter().filter(|r| !in_source.contains(r)).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "routes without a row: {missing:?}; rows without a route: {stale:?}"
    );
    for (_, _, who, _) in TABLE {
        for w in who.split_whitespace() {
            assert!(
                [
                    "anyone",
                    "all",
                    "signed",
                    "agent",
                    "dispatcher",
                    "handler",
                    "dept_head",
                    "supervisor",
                    "leader",
                    "admin"
                ]
                .contains(&w),
                "unknown role `{w}`"
            );
        }
    }
}

/// Everything the requests refer to: tokens, a ticket number, ids.
struct World {
    tokens: Vec<(Who, String)>,
    bystander: i64,
    catalogue: Value,
    public_no: String,
    public_code: String,
    outbox_id: i64,
    merge_target: i64,
    counter: Cell<u32>,
}

impl World {
    async fn new(app: &TestApp) -> World {
        app.department("water").await;
        app.department("gas").await;
        let mut tokens = vec![
            (Who::Anonymous, String::new()),
            (Who::Admin, app.admin.clone()),
        ];
        for w in CALLERS {
            if matches!(w, Who::Anonymous | Who::Admin) {
                continue;
            }
            app.post(
                "/api/v1/users",
                &app.admin,
                &json!({"username": w.username(), "password": w.password(), "role": w.role(),
                        "department": w.department()}),
            )
            .await
            .expect(201);
            tokens.push((w, app.login(w.username(), &w.password()).await));
        }
        let bystander = app
            .post(
                "/api/v1/users",
                &app.admin,
                &json!({"username": "bystander", "password": "bystander-pw", "role": "agent"}),
            )
            .await
            .expect(201)["id"]
            .as_i64()
            .unwrap();
        let mut catalogue = app
            .get("/api/v1/catalogue", &app.admin)
            .await
            .expect(200)
            .clone();
        // Without `version`, a replacement applies to whatever is current.
        catalogue.as_object_mut().unwrap().remove("version");
        // A stored version for `/catalogue/versions/{version}`.
        app.put("/api/v1/catalogue", &app.admin, &catalogue)
            .await
            .expect(200);
        let mut w = World {
            tokens,
            bystander,
            catalogue,
            public_no: String::new(),
            public_code: String::new(),
            outbox_id: 0,
            merge_target: 0,
            counter: Cell::new(0),
        };
        let created = app
            .post(
                "/api/v1/tickets",
                w.token(Who::Agent),
                &appeal("公开查询的诉求"),
            )
            .await
            .expect(201)
            .clone();
        w.public_no = created["ticket_no"].as_str().unwrap().to_owned();
        w.public_code = created["query_code"].as_str().unwrap().to_owned();
        w.merge_target = created["id"].as_i64().unwrap();
        // A dispatch notice gives the outbox a row.
        w.dispatched(app).await;
        let outbox = app.get("/api/v1/outbox", &app.admin).await;
        w.outbox_id = outbox.expect(200)["items"][0]["id"]
            .as_i64()
            .expect("an outbox row");
        w
    }

    fn token(&self, who: Who) -> &str {
        &self
            .tokens
            .iter()
            .find(|(w, _)| *w == who)
            .expect("a token for every caller")
            .1
    }

    fn next(&self) -> u32 {
        self.counter.set(self.counter.get() + 1);
        self.counter.get()
    }

    async fn registered(&self, app: &TestApp) -> i64 {
        let title = format!("权限矩阵诉求{}", self.next());
        app.post("/api/v1/tickets", self.token(Who::Agent), &appeal(&title))
            .await
            .expect(201)["id"]
            .as_i64()
            .unwrap()
    }

    /// A ticket dispatched to `water`.
    async fn dispatched(&self, app: &TestApp) -> i64 {
        let id = self.registered(app).await;
        app.post(
            &format!("/api/v1/tickets/{id}/dispatch"),
            self.token(Who::Dispatcher),
            &json!({"department": "water"}),
        )
        .await
        .expect(200);
        id
    }

    async fn signed(&self, app: &TestApp) -> i64 {
        let id = self.dispatched(app).await;
        app.post(
            &format!("/api/v1/tickets/{id}/sign"),
            self.token(Who::Handler),
            &json!({}),
        )
        .await
        .expect(200);
        id
    }

    async fn replied(&self, app: &TestApp) -> i64 {
        let id = self.signed(app).await;
        app.post(
            &format!("/api/v1/tickets/{id}/reply"),
            self.token(Who::Handler),
            &json!({"content": "已处理完毕。", "resolved": true}),
        )
        .await
        .expect(200);
        id
    }

    /// Returned by `water`, which can still read it.
    async fn returned(&self, app: &TestApp) -> i64 {
        let id = self.dispatched(app).await;
        app.post(
            &format!("/api/v1/tickets/{id}/return"),
            self.token(Who::Handler),
            &json!({"reason": "不属于本部门职责"}),
        )
        .await
        .expect(200);
        id
    }

    async fn pending_extension(&self, app: &TestApp) -> (i64, i64) {
        let id = self.dispatched(app).await;
        let ext = app
            .post(
                &format!("/api/v1/tickets/{id}/extensions"),
                self.token(Who::Handler),
                &json!({"working_days": 3, "reason": "需要协调多个部门"}),
            )
            .await;
        (id, ext.expect(201)["id"].as_i64().unwrap())
    }

    /// The concrete request for a table row: path with query, and body.
    fn request(&self, path: &str) -> (String, Option<Value>) {
        let n = self.next();
        let body = |v: Value| Some(v);
        match path {
            "/auth/login" => (
                path.into(),
                body(json!({"username": "admin", "password": ADMIN_PASSWORD})),
            ),
            "/auth/password" => (
                path.into(),
                body(json!({"current_password": "whatever", "new_password": "short"})),
            ),
            "/users" => (
                path.into(),
                body(
                    json!({"username": format!("new_user_{n}"), "password": "password-123",
                            "role": "agent"}),
                ),
            ),
            "/users/{id}" => (
                format!("/users/{}", self.bystander),
                body(json!({"display_name": format!("旁观者{n}")})),
            ),
            "/departments" => (
                path.into(),
                body(
                    json!({"code": format!("extra_{n}"), "name": format!("新部门{n}"),
                            "kind": "functional"}),
                ),
            ),
            "/catalogue" => (path.into(), body(self.catalogue.clone())),
            "/catalogue/versions/{version}" => ("/catalogue/versions/1".into(), None),
            "/calendar/due" => (
                "/calendar/due?from=2026-03-02T09:00:00%2B08:00&working_days=1".into(),
                None,
            ),
            "/stats" | "/export" => (format!("{path}?from=2026-01-01&to=2026-02-01"), None),
            "/channels/wenzheng/appeals" => (path.into(), body(json!({"post_id": "p1"}))),
            "/outbox/{id}/retry" => (format!("/outbox/{}/retry", self.outbox_id), None),
            "/public/tickets/{ticket_no}" => (
                format!(
                    "/public/tickets/{}?code={}",
                    self.public_no, self.public_code
                ),
                None,
            ),
            "/public/mailbox" => (
                path.into(),
                body(json!({
                    "name": "王五", "phone": format!("1390000{n:04}"), "category": "complaint",
                    "title": format!("信箱来信{n}"),
                    "content": format!("第{n}封来信：小区门口路灯坏了一个月，晚上出行不便，请尽快维修。"),
                    "address": "东湖区某小区北门",
                })),
            ),
            "/tickets" => (path.into(), body(appeal(&format!("新登记诉求{n}")))),
            _ => (path.into(), None),
        }
    }

    /// A fresh ticket in the state a ticket action needs, and its request.
    async fn ticket_request(&self, app: &TestApp, path: &str) -> (String, Option<Value>) {
        let action = path.trim_start_matches("/tickets/{id}");
        let (id, body) = match action {
            "" | "/route" => (self.dispatched(app).await, None),
            "/dispatch" => (
                self.dispatched(app).await,
                Some(json!({"department": "water"})),
            ),
            "/sign" => (self.dispatched(app).await, Some(json!({}))),
            "/return" => (
                self.dispatched(app).await,
                Some(json!({"reason": "不属于本部门职责"})),
            ),
            "/extensions" => (
                self.dispatched(app).await,
                Some(json!({"working_days": 3, "reason": "需要协调多个部门"})),
            ),
            "/extensions/{ext_id}/decision" => {
                let (id, ext) = self.pending_extension(app).await;
                return (
                    format!("/tickets/{id}/extensions/{ext}/decision"),
                    Some(json!({"approve": true})),
                );
            }
            "/reply" => (
                self.signed(app).await,
                Some(json!({"content": "已处理完毕。", "resolved": true})),
            ),
            "/callback" => (
                self.replied(app).await,
                Some(json!({"satisfaction": "satisfied", "resolved": true})),
            ),
            "/close" => (
                self.returned(app).await,
                Some(json!({"resolution": "direct_answer", "note": "已直接答复市民"})),
            ),
            "/merge" => (
                self.dispatched(app).await,
                Some(json!({"into": self.merge_target})),
            ),
            "/notes" => (
                self.dispatched(app).await,
                Some(json!({"content": "已电话联系市民"})),
            ),
            "/reveal" => (
                self.dispatched(app).await,
                Some(json!({"reason": "需电话核实地址"})),
            ),
            other => panic!("no fixture for ticket action `{other}`"),
        };
        (format!("/tickets/{id}{action}"), body)
    }
}

/// Status and body (the event stream's body is not read: it never ends).
async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = app
        .client
        .request(method, app.url(&format!("/api/v1{path}")));
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    let sent = match body {
        Some(b) => req.send_json(b).await,
        None => req.send().await,
    };
    let mut res = sent.expect("request sent");
    let status = res.status().as_u16();
    if path.starts_with("/events/stream") && status == 200 {
        return (status, String::new());
    }
    let bytes = res.body().limit(8 << 20).await.expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn code_of(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn every_route_answers_every_role_as_the_design_says(backend: Backend) {
    let Some(app) =
        TestApp::spawn_with(backend, &[("channels.wenzheng.secret", "matrix-secret")]).await
    else {
        eprintln!("TEST_DATABASE_URL unset: PostgreSQL case skipped");
        return;
    };
    let world = World::new(&app).await;
    let mut failures = Vec::new();
    for (method, path, who, ok) in TABLE {
        for caller in CALLERS {
            let expect = expected(path, who, *ok, caller);
            let (url, body) = if path.starts_with("/tickets/{id}") {
                world.ticket_request(&app, path).await
            } else {
                world.request(path)
            };
            // Log-out ends the token it is called with: use a spare one.
            let spare;
            let token = if *path == "/auth/logout" && caller != Who::Anonymous {
                spare = app.login(caller.username(), &caller.password()).await;
                spare.as_str()
            } else {
                world.token(caller)
            };
            let (status, text) = send(&app, method, &url, token, body.as_ref()).await;
            let code = code_of(&text);
            let good = match expect {
                Expect::Allowed(s) => status == s,
                Expect::Unauthorized => status == 401 && code == "unauthorized",
                Expect::BadSignature => status == 401 && code == "invalid_signature",
                Expect::Forbidden => status == 403 && code == "forbidden",
                Expect::NotFound => status == 404 && code == "not_found",
            };
            if !good {
                let short: String = text.chars().take(200).collect();
                failures.push(format!(
                    "{method} /api/v1{path} as {caller:?}: expected {expect:?}, got {status} {short}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree with the table:\n{}",
        failures.len(),
        TABLE.len() * CALLERS.len(),
        failures.join("\n")
    );
}

#[actix_web::test]
async fn every_route_answers_every_role_as_the_design_says_sqlite() {
    every_route_answers_every_role_as_the_design_says(Backend::Sqlite).await;
}

#[actix_web::test]
async fn every_route_answers_every_role_as_the_design_says_postgres() {
    every_route_answers_every_role_as_the_design_says(Backend::Postgres).await;
}
