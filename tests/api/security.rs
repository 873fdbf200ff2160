//! Security around the API and pages: log-in brute-force limits, token
//! revocation (log-out, password change, disabled users), no CORS, the
//! security headers, and an access-log row for every reveal.

use std::time::Duration;

use awc::http::Method;
use serde_json::{Value, json};

use crate::both;
use crate::helpers::*;

/// A response with its headers.
struct Raw {
    status: u16,
    headers: awc::http::header::HeaderMap,
    text: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// 429 `rate_limited` problem+json with a `Retry-After` of at most 15 min.
    #[track_caller]
    fn expect_limited(&self) {
        assert_eq!(self.status, 429, "{}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(self.json()["code"], "rate_limited", "{}", self.text);
        let secs: u64 = self
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .expect("Retry-After");
        assert!((1..=15 * 60).contains(&secs), "Retry-After {secs}");
    }
}

async fn raw(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Raw {
    let client = awc::Client::builder()
        .disable_redirects()
        .timeout(Duration::from_secs(30))
        .finish();
    let mut req = client.request(
        Method::from_bytes(method.as_bytes()).unwrap(),
        app.url(path),
    );
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let mut res = match body {
        Some(b) => req.send_body(b).await,
        None => req.send().await,
    }
    .expect("request sent");
    let bytes = res.body().limit(8 << 20).await.expect("body");
    Raw {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn login_raw(app: &TestApp, username: &str, password: &str, headers: &[(&str, &str)]) -> Raw {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    let body = json!({"username": username, "password": password}).to_string();
    raw(
        app,
        "POST",
        "/api/v1/auth/login",
        &all,
        Some(body.into_bytes()),
    )
    .await
}

both!(
    after_five_failures_a_user_is_locked_out_without_the_password_being_checked,
    |app: TestApp| async move {
        app.user("agent1", "agent", None).await;
        for _ in 0..5 {
            let r = login_raw(&app, "agent1", "wrong-password", &[]).await;
            assert_eq!(r.status, 401, "{}", r.text);
        }
        // The sixth attempt is refused unchecked: the right password too.
        login_raw(&app, "agent1", "wrong-password", &[])
            .await
            .expect_limited();
        login_raw(&app, "agent1", "agent1-password", &[])
            .await
            .expect_limited();
        // User names are counted without case.
        login_raw(&app, "AGENT1", "agent1-password", &[])
            .await
            .expect_limited();
        // Other users (from the same address) are not locked out.
        app.login("admin", ADMIN_PASSWORD).await;
    }
);

both!(
    a_successful_login_clears_the_users_failures,
    |app: TestApp| async move {
        app.user("agent1", "agent", None).await;
        for _ in 0..4 {
            assert_eq!(
                login_raw(&app, "agent1", "wrong-password", &[])
                    .await
                    .status,
                401
            );
        }
        app.login("agent1", "agent1-password").await;
        for _ in 0..5 {
            assert_eq!(
                login_raw(&app, "agent1", "wrong-password", &[])
                    .await
                    .status,
                401
            );
        }
        login_raw(&app, "agent1", "agent1-password", &[])
            .await
            .expect_limited();
    }
);

#[actix_web::test]
async fn failures_are_counted_per_address_across_user_names_and_forwarded_for_is_not_trusted() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("auth.max_failed_logins_per_address", "3")],
    )
    .await
    .expect("app");
    for (i, name) in ["a1", "a2", "a3"].iter().enumerate() {
        // A forged X-Forwarded-For does not make another client.
        let xff = format!("10.9.8.{i}");
        let r = login_raw(&app, name, "guess-guess", &[("x-forwarded-for", &xff)]).await;
        assert_eq!(r.status, 401, "{}", r.text);
    }
    login_raw(
        &app,
        "a4",
        "guess-guess",
        &[("x-forwarded-for", "10.1.1.1")],
    )
    .await
    .expect_limited();
    login_raw(&app, "admin", ADMIN_PASSWORD, &[])
        .await
        .expect_limited();
}

#[actix_web::test]
async fn behind_a_configured_proxy_its_header_names_the_client() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("auth.max_failed_logins_per_address", "2"),
            ("auth.client_ip_header", "X-Real-IP"),
        ],
    )
    .await
    .expect("app");
    for name in ["a1", "a2"] {
        let r = login_raw(&app, name, "guess-guess", &[("x-real-ip", "203.0.113.7")]).await;
        assert_eq!(r.status, 401);
    }
    login_raw(&app, "a3", "guess-guess", &[("x-real-ip", "203.0.113.7")])
        .await
        .expect_limited();
    let ok = login_raw(
        &app,
        "admin",
        ADMIN_PASSWORD,
        &[("x-real-ip", "203.0.113.8")],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[actix_web::test]
async fn instances_sharing_redis_share_the_failure_counts() {
    let Some((redis, backend)) = shared_redis("shared log-in limits") else {
        return;
    };
    // A prefix of its own: counters from earlier runs do not interfere.
    let prefix = format!(
        "hotline:test:login:{}",
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    );
    let overrides = [
        ("redis.url", redis.as_str()),
        ("auth.redis_prefix", prefix.as_str()),
    ];
    let (a, b) = TestApp::pair(backend, &overrides).await;
    a.user("agent1", "agent", None).await;
    for app in [&a, &b, &a, &b, &a] {
        let r = login_raw(app, "agent1", "wrong-password", &[]).await;
        assert_eq!(r.status, 401, "{}", r.text);
    }
    login_raw(&b, "agent1", "agent1-password", &[])
        .await
        .expect_limited();
    login_raw(&a, "agent1", "agent1-password", &[])
        .await
        .expect_limited();
    let _ = backend;
}

/// The value of `name="csrf" value="…"` on a page.
fn csrf_of(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    body[at..].split('"').next().unwrap().to_owned()
}

both!(
    the_login_page_is_limited_too_and_says_so_in_chinese,
    |app: TestApp| async move {
        app.user("agent1", "agent", None).await;
        let form = raw(&app, "GET", "/login", &[], None).await;
        let csrf = csrf_of(&form.text);
        let cookie = form
            .headers
            .get_all("set-cookie")
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("hotline_login_csrf="))
            .and_then(|c| c.split(';').next())
            .expect("login csrf cookie")
            .to_owned();
        let post = |password: &'static str| {
            let body = format!("csrf={csrf}&next=%2F&username=agent1&password={password}");
            let cookie = cookie.clone();
            let app = &app;
            async move {
                raw(
                    app,
                    "POST",
                    "/login",
                    &[
                        ("content-type", "application/x-www-form-urlencoded"),
                        ("accept", "text/html"),
                        ("cookie", &cookie),
                    ],
                    Some(body.into_bytes()),
                )
                .await
            }
        };
        // The API and the page count together.
        for _ in 0..3 {
            assert_eq!(
                login_raw(&app, "agent1", "wrong-password", &[])
                    .await
                    .status,
                401
            );
        }
        for _ in 0..2 {
            let p = post("wrong").await;
            assert_eq!(p.status, 401, "{}", p.text);
            assert!(p.text.contains("用户名或密码错误"));
        }
        let p = post("agent1-password").await;
        assert_eq!(p.status, 429, "{}", p.text);
        assert!(p.header("content-type").unwrap().starts_with("text/html"));
        assert!(p.text.contains("登录失败次数过多"), "{}", p.text);
        assert!(p.text.contains("分钟后再试"), "{}", p.text);
        assert!(p.header("retry-after").is_some());
        assert!(
            p.headers
                .get_all("set-cookie")
                .filter_map(|v| v.to_str().ok())
                .all(|c| !c.starts_with("hotline_session=")),
            "no session for a refused log-in"
        );
    }
);

both!(
    logout_revokes_the_callers_token_at_once,
    |app: TestApp| async move {
        app.user("agent1", "agent", None).await;
        let token = app.login("agent1", "agent1-password").await;
        let other = app.login("agent1", "agent1-password").await;
        // Cached by the first request; the log-out must still end it.
        app.get("/api/v1/auth/me", &token).await.expect(200);
        let r = app.post("/api/v1/auth/logout", &token, &json!({})).await;
        assert_eq!(r.status, 204, "{}", r.body);
        app.get("/api/v1/auth/me", &token)
            .await
            .expect_problem(401, "unauthorized");
        app.post("/api/v1/auth/logout", &token, &json!({}))
            .await
            .expect_problem(401, "unauthorized");
        // Only that token: the user's other session goes on.
        app.get("/api/v1/auth/me", &other).await.expect(200);
    }
);

both!(
    changing_ones_password_revokes_every_token,
    |app: TestApp| async move {
        app.user("agent1", "agent", None).await;
        let token = app.login("agent1", "agent1-password").await;
        let other = app.login("agent1", "agent1-password").await;
        app.get("/api/v1/auth/me", &other).await.expect(200);
        let change =
            |current: &str, new: &str| json!({"current_password": current, "new_password": new});
        app.post(
            "/api/v1/auth/password",
            &token,
            &change("agent1-password", "short"),
        )
        .await
        .expect_problem(422, "validation_failed");
        app.post(
            "/api/v1/auth/password",
            &token,
            &change("not-my-password", "a-new-password-1"),
        )
        .await
        .expect_problem(422, "validation_failed");
        app.post(
            "/api/v1/auth/password",
            &token,
            &json!({"new_password": "x"}),
        )
        .await
        .expect_problem(422, "validation_failed");
        let r = app
            .post(
                "/api/v1/auth/password",
                &token,
                &change("agent1-password", "a-new-password-1"),
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.body);
        for t in [&token, &other] {
            app.get("/api/v1/auth/me", t)
                .await
                .expect_problem(401, "unauthorized");
        }
        login_raw(&app, "agent1", "agent1-password", &[]).await;
        let fresh = app.login("agent1", "a-new-password-1").await;
        app.get("/api/v1/auth/me", &fresh).await.expect(200);
    }
);

both!(
    admins_disable_users_and_set_passwords_which_revokes_their_tokens,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let users = app.get("/api/v1/users", &app.admin).await;
        let id_of = |name: &str| {
            users.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u["username"] == name)
                .unwrap()["id"]
                .as_i64()
                .unwrap()
        };
        let agent = id_of("agent1");
        let admin = id_of("admin");
        let path = format!("/api/v1/users/{agent}");
        let patch = |path: String, token: String, body: Value| {
            let app = &app;
            async move {
                let req = app.client.patch(app.url(&path)).bearer_auth(token);
                let mut res = req.send_json(&body).await.expect("sent");
                let status = res.status().as_u16();
                let bytes = res.body().await.expect("body");
                (
                    status,
                    serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
                )
            }
        };
        let (status, body) =
            patch(path.clone(), o.dispatcher.clone(), json!({"active": false})).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));

        // Disabling: the cached token stops working at once, log-in fails.
        app.get("/api/v1/auth/me", &o.agent).await.expect(200);
        let (status, body) = patch(path.clone(), app.admin.clone(), json!({"active": false})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["active"], false);
        app.get("/api/v1/auth/me", &o.agent)
            .await
            .expect_problem(401, "unauthorized");
        assert_eq!(
            login_raw(&app, "agent1", "agent1-password", &[])
                .await
                .status,
            401
        );
        let (status, _) = patch(path.clone(), app.admin.clone(), json!({"active": true})).await;
        assert_eq!(status, 200);
        // Re-enabled: old tokens stay revoked, a new log-in works.
        app.get("/api/v1/auth/me", &o.agent)
            .await
            .expect_problem(401, "unauthorized");
        let token = app.login("agent1", "agent1-password").await;

        // Setting the password revokes the tokens too.
        let (status, body) = patch(
            path.clone(),
            app.admin.clone(),
            json!({"password": "reset-password-1", "display_name": "坐席一号"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["display_name"], "坐席一号");
        assert!(body.get("password_hash").is_none());
        app.get("/api/v1/auth/me", &token)
            .await
            .expect_problem(401, "unauthorized");
        let token = app.login("agent1", "reset-password-1").await;

        // A new role applies to the very next request.
        app.get("/api/v1/hotspots", &token)
            .await
            .expect_problem(403, "forbidden");
        let (status, body) = patch(
            path.clone(),
            app.admin.clone(),
            json!({"role": "dispatcher"}),
        )
        .await;
        assert_eq!((status, body["role"].as_str()), (200, Some("dispatcher")));
        app.get("/api/v1/hotspots", &token).await.expect(200);

        for bad in [
            json!({"role": "handler"}),
            json!({"role": "handler", "department": "nowhere"}),
            json!({"password": "short"}),
            json!({"email": "not-an-address"}),
            json!({"activ": false}),
            json!({"active": "no"}),
        ] {
            let (status, body) = patch(path.clone(), app.admin.clone(), bad.clone()).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (422, Some("validation_failed")),
                "{bad}: {body}"
            );
        }
        let (status, body) = patch(
            path.clone(),
            app.admin.clone(),
            json!({"role": "handler", "department": "water", "email": null}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (body["department"].as_str(), body["email"].as_str()),
            (Some("water"), None)
        );
        // The last word on users stays with an admin.
        let (status, _) = patch(
            format!("/api/v1/users/{admin}"),
            app.admin.clone(),
            json!({"active": false}),
        )
        .await;
        assert_eq!(status, 422);
        let (status, _) = patch(
            format!("/api/v1/users/{admin}"),
            app.admin.clone(),
            json!({"password": "taken-over-1"}),
        )
        .await;
        assert_eq!(status, 422, "own password only with the current one");
        let (status, _) = patch(
            "/api/v1/users/999999".into(),
            app.admin.clone(),
            json!({"active": false}),
        )
        .await;
        assert_eq!(status, 404);
        let (status, _) = patch("/api/v1/users/abc".into(), app.admin.clone(), json!({})).await;
        assert_eq!(status, 404);
    }
);

both!(
    cors_is_off_even_for_a_preflight,
    |app: TestApp| async move {
        let origin = ("origin", "https://evil.example");
        let preflight = [
            origin,
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ];
        for path in ["/api/v1/tickets", "/api/v1/auth/login"] {
            let r = raw(&app, "OPTIONS", path, &preflight, None).await;
            assert_eq!(r.status, 405, "{path}: {}", r.text);
            assert_eq!(r.header("content-type"), Some("application/problem+json"));
            assert_eq!(r.json()["code"], "method_not_allowed");
            assert!(
                r.headers
                    .keys()
                    .all(|k| !k.as_str().starts_with("access-control-")),
                "{path}: {:?}",
                r.headers
            );
        }
        let r = raw(&app, "OPTIONS", "/api/v1/nowhere", &preflight, None).await;
        assert_eq!(r.status, 404);
        assert!(r.header("access-control-allow-origin").is_none());
        let auth = format!("Bearer {}", app.admin);
        let r = raw(
            &app,
            "GET",
            "/api/v1/auth/me",
            &[origin, ("authorization", &auth)],
            None,
        )
        .await;
        assert_eq!(r.status, 200);
        assert!(
            r.headers
                .keys()
                .all(|k| !k.as_str().starts_with("access-control-"))
        );
    }
);

both!(
    pages_api_and_errors_carry_the_security_headers,
    |app: TestApp| async move {
        let auth = format!("Bearer {}", app.admin);
        for (path, headers) in [
            ("/login", vec![]),
            ("/mailbox", vec![]),
            ("/api/docs", vec![]),
            ("/api/v1/auth/me", vec![("authorization", auth.as_str())]),
            ("/api/v1/tickets", vec![]),
            ("/no/such/page", vec![]),
            ("/static/pages.js", vec![]),
        ] {
            let r = raw(&app, "GET", path, &headers, None).await;
            let csp = r.header("content-security-policy").unwrap_or_default();
            for directive in [
                "default-src 'none'",
                "script-src 'self'",
                "frame-ancestors 'none'",
                "form-action 'self'",
                "base-uri 'none'",
            ] {
                assert!(csp.contains(directive), "{path}: {csp}");
            }
            assert!(
                !csp.contains("script-src 'self' 'unsafe-inline'"),
                "{path}: {csp}"
            );
            assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
            assert_eq!(
                r.header("x-content-type-options"),
                Some("nosniff"),
                "{path}"
            );
            assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{path}");
            // Served over plain HTTP here: no HSTS (see `pages` for HTTPS).
            assert_eq!(r.header("strict-transport-security"), None, "{path}");
            if r.header("content-type")
                .is_some_and(|c| c.starts_with("text/html"))
            {
                // Nothing inline the policy would block.
                assert!(!r.text.contains("<script>"), "{path}: inline script");
                assert!(!r.text.contains(" onclick="), "{path}: inline handler");
            }
        }
    }
);

both!(
    every_reveal_writes_its_own_access_log_row,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let id = app
            .dispatched_ticket(&o.agent, &o.dispatcher, "water", "反复查看")
            .await["id"]
            .as_i64()
            .unwrap();
        for (token, reason) in [
            (&o.water, "第一次核实"),
            (&o.water, "第二次核实"),
            (&o.leader, "领导查看"),
        ] {
            app.post(
                &format!("/api/v1/tickets/{id}/reveal"),
                token,
                &json!({"reason": reason}),
            )
            .await
            .expect(200);
        }
        let log = app
            .get(&format!("/api/v1/access-log?ticket_id={id}"), &app.admin)
            .await;
        let log = log.expect(200);
        assert_eq!(log["total"], 3, "{log}");
        let rows = log["items"].as_array().unwrap();
        assert_eq!(rows[0]["username"], "leader1");
        assert_eq!(rows[0]["reason"], "领导查看");
        assert_eq!(rows[2]["username"], "water1");
        assert_eq!(rows[2]["action"], "reveal");
        assert!(
            rows.iter()
                .all(|r| r["at"].is_string() && r["ticket_id"] == id)
        );
    }
);

both!(
    a_wrong_method_is_told_which_methods_the_path_takes,
    |app: TestApp| async move {
        use hotline::api::openapi::OPERATIONS;
        use std::collections::{BTreeMap, BTreeSet};
        let mut allowed: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for o in OPERATIONS {
            allowed
                .entry(o.path)
                .or_default()
                .insert(o.method.to_uppercase());
        }
        let auth = format!("Bearer {}", app.admin);
        for (path, methods) in &allowed {
            // No route takes DELETE: every path refuses it.
            assert!(!methods.contains("DELETE"), "{path}");
            let concrete: String = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "1" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let r = raw(&app, "DELETE", &concrete, &[("authorization", &auth)], None).await;
            assert_eq!(r.status, 405, "{concrete}: {}", r.text);
            assert_eq!(r.json()["code"], "method_not_allowed", "{concrete}");
            let allow: BTreeSet<String> = r
                .header("allow")
                .unwrap_or_else(|| panic!("{concrete}: no Allow header"))
                .split(',')
                .map(|m| m.trim().to_owned())
                .collect();
            assert_eq!(&allow, methods, "{concrete}");
        }
    }
);

/// Polls `token` on `app` until it is refused, for at most `within`.
async fn refused_within(app: &TestApp, token: &str, within: Duration) -> bool {
    let until = std::time::Instant::now() + within;
    loop {
        if app.get("/api/v1/auth/me", token).await.status == 401 {
            return true;
        }
        if std::time::Instant::now() > until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_revocation_on_one_instance_reaches_the_others_cache_at_once() {
    let Some((redis, backend)) = shared_redis("cross-instance token revocation test") else {
        return;
    };
    let overrides = [("redis.url", redis.as_str())];
    let (a, b) = TestApp::pair(backend, &overrides).await;
    // Both subscriptions reach Redis (a subscription made later empties
    // the cache, which would pass this test for the wrong reason).
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.user("agent1", "agent", None).await;
    a.user("agent2", "agent", None).await;
    let out = a.login("agent1", "agent1-password").await;
    let kept = a.login("agent1", "agent1-password").await;
    let disabled = a.login("agent2", "agent2-password").await;
    // Each token is cached by instance b (30 s without a word from a).
    for t in [&out, &kept, &disabled] {
        b.get("/api/v1/auth/me", t).await.expect(200);
        b.get("/api/v1/auth/me", t).await.expect(200);
    }

    // Log-out on a: b refuses the token well inside its cache time.
    let r = a.post("/api/v1/auth/logout", &out, &json!({})).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(
        refused_within(&b, &out, Duration::from_secs(3)).await,
        "b still honours a token logged out on a"
    );
    b.get("/api/v1/auth/me", &kept).await.expect(200);

    // A user disabled on a: b refuses their tokens too.
    let users = a.get("/api/v1/users", &a.admin).await;
    let id = users.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "agent2")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let res = a
        .client
        .patch(a.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&a.admin)
        .send_json(&json!({"active": false}))
        .await
        .expect("sent");
    assert_eq!(res.status().as_u16(), 200);
    assert!(
        refused_within(&b, &disabled, Duration::from_secs(3)).await,
        "b still honours the token of a user disabled on a"
    );
    b.get("/api/v1/auth/me", &kept).await.expect(200);
}
