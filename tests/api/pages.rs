//! The staff pages over raw HTTP, as a browser without JavaScript uses
//! them: log-in and the session cookie, CSRF refusals, which role sees
//! which page, and the whole day of a ticket posted through the forms.

use std::time::Duration;

use awc::Client;

use crate::both;
use crate::helpers::*;

struct Page {
    status: u16,
    location: String,
    cookies: Vec<String>,
    body: String,
}

/// A cookie-keeping client that does not follow redirects.
struct Browser<'a> {
    app: &'a TestApp,
    client: Client,
    cookies: Vec<(String, String)>,
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The value of the first `name="csrf" value="…"` on the page.
fn csrf_of(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    body[at..].split('"').next().unwrap().to_owned()
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Browser {
            app,
            client: Client::builder()
                .disable_redirects()
                .timeout(Duration::from_secs(30))
                .finish(),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: awc::ClientRequest, body: Option<String>) -> Page {
        let req = req.insert_header(("accept", "text/html"));
        let req = if self.cookies.is_empty() {
            req
        } else {
            req.insert_header(("cookie", self.cookie_header()))
        };
        let mut res = match body {
            Some(b) => req
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .send_body(b)
                .await
                .expect("sent"),
            None => req.send().await.expect("sent"),
        };
        let header = |n: &str| {
            res.headers()
                .get_all(n)
                .filter_map(|v| v.to_str().ok())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let location = header("location").pop().unwrap_or_default();
        let cookies = header("set-cookie");
        for c in &cookies {
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !v.is_empty() && !attrs.contains("Max-Age=0") {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
        let bytes = res.body().limit(8 << 20).await.expect("body");
        Page {
            status: res.status().as_u16(),
            location,
            cookies,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.client.get(self.app.url(path));
        self.send(req, None).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let req = self.client.post(self.app.url(path));
        self.send(req, Some(form(fields))).await
    }

    /// Posts a form with this session's CSRF token (read from `from`).
    async fn submit(&mut self, from: &str, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = csrf_of(&self.get(from).await.body);
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all).await
    }

    async fn login(&mut self, username: &str) -> Page {
        let login = self.get("/login").await;
        assert_eq!(login.status, 200);
        assert!(login.body.contains("id=\"login-form\""));
        let csrf = csrf_of(&login.body);
        let password = format!("{username}-password");
        self.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("next", "/"),
                ("username", username),
                ("password", &password),
            ],
        )
        .await
    }
}

/// A logged-in browser for `username` (made by `Office::new`).
async fn logged_in<'a>(app: &'a TestApp, username: &str) -> Browser<'a> {
    let mut b = Browser::new(app);
    let p = b.login(username).await;
    assert_eq!(p.status, 303, "{}", p.body);
    b
}

/// The id in `/agent?created=<id>&…`.
fn created_id(location: &str) -> i64 {
    location
        .split("created=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no created id in {location}"))
}

const CALL: &[(&str, &str)] = &[
    ("channel", "hotline"),
    ("category", "complaint"),
    ("urgency", "normal"),
    ("citizen_name", "张三"),
    ("citizen_phone", "13800001234"),
    ("address", "东湖区某小区3栋"),
    ("district", ""),
    ("title", "小区停水三天"),
    (
        "content",
        "市民来电反映小区停水三天，请自来水公司尽快恢复供水。",
    ),
];

both!(
    login_sets_a_safe_session_cookie_and_logout_revokes_it,
    |app: TestApp| async move {
        Office::new(&app).await;
        let mut b = Browser::new(&app);
        let p = b.get("/agent").await;
        assert_eq!(p.status, 303);
        assert_eq!(p.location, "/login?next=/agent");
        let anon = b.get("/").await;
        assert_eq!(anon.status, 200);
        for link in ["href=\"/login\"", "href=\"/mailbox\"", "href=\"/track\""] {
            assert!(anon.body.contains(link), "{link}");
        }

        let p = b.login("agent1").await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(p.location, "/");
        let session = p
            .cookies
            .iter()
            .find(|c| c.starts_with("hotline_session="))
            .expect("session cookie");
        for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(session.contains(attr), "{session}");
        }
        assert!(!session.contains("Secure"), "http base_url: {session}");
        let home = b.get("/").await;
        // minijinja escapes `/` in values as `&#x2f;`; browsers read it back.
        assert!(
            home.body.contains("href=\"&#x2f;agent\">坐席受理"),
            "{}",
            home.body
        );
        assert!(home.body.contains("id=\"logout-form\""));
        let token = b
            .cookies
            .iter()
            .find(|(k, _)| k == "hotline_session")
            .unwrap()
            .1
            .clone();
        assert_eq!(app.get("/api/v1/auth/me", &token).await.status, 200);

        let out = b.submit("/", "/logout", &[]).await;
        assert_eq!(out.status, 303);
        assert_eq!(out.location, "/login");
        assert!(out.cookies.iter().any(|c| c.contains("Max-Age=0")));
        assert_eq!(app.get("/api/v1/auth/me", &token).await.status, 401);
        // The old cookie no longer opens a page.
        b.cookies.push(("hotline_session".into(), token));
        assert_eq!(b.get("/agent").await.status, 303);
    }
);

#[actix_web::test]
async fn the_cookie_is_secure_behind_https() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("server.base_url", "https://12345.example.cn")],
    )
    .await
    .expect("app");
    Office::new(&app).await;
    let mut b = Browser::new(&app);
    let p = b.login("agent1").await;
    assert!(
        p.cookies
            .iter()
            .any(|c| c.starts_with("hotline_session=") && c.contains("; Secure")),
        "{:?}",
        p.cookies
    );
    // Published over HTTPS: browsers are told to keep to it.
    let r = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(
        r.headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000")
    );
}

both!(
    wrong_passwords_and_foreign_next_urls_are_refused,
    |app: TestApp| async move {
        Office::new(&app).await;
        let mut b = Browser::new(&app);
        let csrf = csrf_of(&b.get("/login?next=//evil.example").await.body);
        let p = b
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("username", "agent1"),
                    ("password", "nope"),
                ],
            )
            .await;
        assert_eq!(p.status, 401);
        assert!(p.body.contains("用户名或密码错误"));
        assert!(p.body.contains("value=\"agent1\""), "username kept");
        // No login-form cookie (a cross-site post): refused.
        let mut other = Browser::new(&app);
        let p = other
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("username", "agent1"),
                    ("password", "agent1-password"),
                ],
            )
            .await;
        assert_eq!(p.status, 403);
        assert!(other.cookies.iter().all(|(k, _)| k != "hotline_session"));
        let csrf = csrf_of(&b.get("/login").await.body);
        let p = b
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("next", "//evil.example/x"),
                    ("username", "agent1"),
                    ("password", "agent1-password"),
                ],
            )
            .await;
        assert_eq!(p.status, 303);
        assert_eq!(p.location, "/");
    }
);

both!(
    posts_without_the_session_csrf_token_are_refused,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let mut b = logged_in(&app, "agent1").await;
        let p = b.post("/agent", CALL).await;
        assert_eq!(p.status, 403);
        assert!(p.body.contains("CSRF"));
        let mut wrong = vec![("csrf", "0123456789abcdef")];
        wrong.extend_from_slice(CALL);
        assert_eq!(b.post("/agent", &wrong).await.status, 403);
        assert_eq!(app.count_tickets().await, 0);
        // Another session's token is no good either.
        let mut d = logged_in(&app, "dispatcher1").await;
        let theirs = csrf_of(&d.get("/dispatch").await.body);
        let mut foreign = vec![("csrf", theirs.as_str())];
        foreign.extend_from_slice(CALL);
        assert_eq!(b.post("/agent", &foreign).await.status, 403);
        assert_eq!(b.post("/logout", &[]).await.status, 403);
        let t = app
            .dispatched_ticket(&o.agent, &o.dispatcher, "water", "路灯不亮")
            .await;
        let id = t["id"].as_i64().unwrap();
        let mut w = logged_in(&app, "water1").await;
        let p = w.post(&format!("/tickets/{id}/sign"), &[]).await;
        assert_eq!(p.status, 403);
        let t = app.get(&format!("/api/v1/tickets/{id}"), &o.water).await;
        assert_eq!(t.expect(200)["state"], "dispatched");
    }
);

both!(
    each_page_renders_for_its_roles_and_refuses_the_others,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let t = app
            .dispatched_ticket(&o.agent, &o.dispatcher, "water", "井盖缺失")
            .await;
        let id = t["id"].as_i64().unwrap();
        let ticket = format!("/tickets/{id}");
        let cases: &[(&str, &[(&str, u16)])] = &[
            (
                "agent1",
                &[
                    ("/agent", 200),
                    ("/dispatch", 403),
                    ("/inbox", 403),
                    ("/", 200),
                ],
            ),
            (
                "dispatcher1",
                &[("/dispatch", 200), ("/agent", 200), ("/inbox", 403)],
            ),
            (
                "water1",
                &[("/inbox", 200), ("/agent", 403), ("/dispatch", 403)],
            ),
            ("waterhead", &[("/inbox", 200), ("/dispatch", 403)]),
            ("leader1", &[("/", 200), ("/agent", 403), ("/inbox", 403)]),
        ];
        for (user, pages) in cases {
            let mut b = logged_in(&app, user).await;
            for (path, status) in *pages {
                let p = b.get(path).await;
                assert_eq!(p.status, *status, "{user} {path}: {}", p.body);
                assert!(p.body.contains("<html lang=\"zh-CN\">"), "{user} {path}");
            }
            let p = b.get(&ticket).await;
            assert_eq!(p.status, 200, "{user} sees the ticket");
            assert!(p.body.contains("井盖缺失"));
        }
        // Out of scope is not found, exactly as the API says.
        let mut gas = logged_in(&app, "gas1").await;
        let p = gas.get(&ticket).await;
        assert_eq!(p.status, 404);
        assert!(!p.body.contains("井盖缺失"));
        assert_eq!(gas.get("/tickets/999999").await.status, 404);
        assert_eq!(gas.get("/tickets/abc").await.status, 404);
        let p = gas
            .submit("/inbox", &format!("/tickets/{id}/sign"), &[])
            .await;
        assert_eq!(p.status, 404);
        // A department user sees the phone masked, the leader too.
        let mut w = logged_in(&app, "water1").await;
        let p = w.get(&ticket).await;
        assert!(p.body.contains("138****1234"), "{}", p.body);
        assert!(!p.body.contains("13800001234"));
        assert!(p.body.contains("id=\"sign-button\""));
        let mut leader = logged_in(&app, "leader1").await;
        let p = leader.get(&ticket).await;
        assert!(!p.body.contains("<form id=\"sign-form\""));
        assert!(!p.body.contains("id=\"dispatch-form\""));
    }
);

both!(
    a_ticket_goes_from_call_to_callback_through_the_pages,
    |app: TestApp| async move {
        Office::new(&app).await;
        // The agent logs the call.
        let mut agent = logged_in(&app, "agent1").await;
        let form = agent.get("/agent").await;
        assert!(form.body.contains("id=\"intake-form\""));
        assert!(form.body.contains("autofocus"));
        let p = agent.submit("/agent", "/agent", CALL).await;
        assert_eq!(p.status, 303, "{}", p.body);
        let id = created_id(&p.location);
        let done = agent.get(&p.location).await;
        assert!(done.body.contains("id=\"ticket-no\""), "{}", done.body);
        assert!(done.body.contains("id=\"direct-answer-form\""));
        let no = {
            let at = done.body.find("id=\"ticket-no\"").unwrap();
            let rest = &done.body[at..];
            let start = rest.find('>').unwrap() + 1;
            rest[start..start + 15].to_owned()
        };
        assert!(no.contains('H'), "{no}");
        let recent = agent.get("/agent").await;
        assert!(recent.body.contains(&no), "recent tickets list it");

        // The dispatcher sees it queued and dispatches it to water.
        let mut d = logged_in(&app, "dispatcher1").await;
        let q = d.get("/dispatch").await;
        assert!(q.body.contains(&no), "{}", q.body);
        assert!(q.body.contains(&format!("id=\"dispatch-form-{id}\"")));
        // Its form offers every department, the router's choice selected.
        let form = {
            let at = q.body.find(&format!("id=\"dispatch-form-{id}\"")).unwrap();
            let rest = &q.body[at..];
            rest[..rest.find("</form>").unwrap()].to_owned()
        };
        for code in ["water", "gas"] {
            assert!(
                form.contains(&format!("<option value=\"{code}\"")),
                "{form}"
            );
        }
        assert_eq!(form.matches(" selected>").count(), 1, "{form}");
        let p = d
            .submit(
                "/dispatch",
                &format!("/tickets/{id}/dispatch"),
                &[
                    ("department", "water"),
                    ("co_departments", "gas"),
                    ("back", "/dispatch"),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(p.location, "/dispatch?done=dispatch");
        assert!(d.get(&p.location).await.body.contains("已派单"));

        // The handler finds it in the inbox with a countdown, signs and replies.
        let mut w = logged_in(&app, "water1").await;
        let inbox = w.get("/inbox").await;
        assert!(inbox.body.contains(&no), "{}", inbox.body);
        assert!(inbox.body.contains("签收剩余"), "{}", inbox.body);
        assert!(inbox.body.contains(&format!("id=\"sign-{id}\"")));
        let p = w
            .submit(
                "/inbox",
                &format!("/tickets/{id}/sign"),
                &[("back", "/inbox?state=dispatched&page=1")],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let page = w.get(&format!("/tickets/{id}")).await;
        assert!(
            page.body.contains("data-state=\"in_progress\""),
            "{}",
            page.body
        );
        assert!(page.body.contains("答复剩余"));
        assert!(page.body.contains("id=\"reply-form\""));
        let p = w
            .submit(
                &format!("/tickets/{id}"),
                &format!("/tickets/{id}/reply"),
                &[("content", "已抢修管道，恢复供水。"), ("resolved", "true")],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(p.location, format!("/tickets/{id}?done=reply"));

        // The dispatcher calls the citizen back.
        let q = d.get("/dispatch").await;
        let cb = q.body.find("id=\"queue-callback\"").unwrap();
        assert!(q.body[cb..].contains(&no), "awaiting callback");
        let page = d.get(&format!("/tickets/{id}")).await;
        assert!(page.body.contains("id=\"callback-form\""));
        let p = d
            .submit(
                &format!("/tickets/{id}"),
                &format!("/tickets/{id}/callback"),
                &[
                    ("satisfaction", "satisfied"),
                    ("resolved", "true"),
                    ("note", "市民表示满意"),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let page = d.get(&p.location).await;
        assert!(page.body.contains("data-state=\"closed\""), "{}", page.body);
        assert!(page.body.contains("已记录回访"));
        let timeline = &page.body[page.body.find("id=\"timeline\"").unwrap()..];
        for step in ["受理登记", "派单", "签收", "答复", "回访"] {
            assert!(timeline.contains(step), "{step}");
        }
        for actor in ["agent1", "dispatcher1", "water1"] {
            assert!(timeline.contains(actor), "{actor}");
        }
        assert!(timeline.contains("已抢修管道"));
    }
);

both!(
    errors_are_shown_on_the_page_with_the_values_kept,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let mut agent = logged_in(&app, "agent1").await;
        let mut bad: Vec<(&str, &str)> = CALL
            .iter()
            .filter(|(k, _)| *k != "title")
            .copied()
            .collect();
        bad.push(("title", ""));
        let p = agent.submit("/agent", "/agent", &bad).await;
        assert_eq!(p.status, 422, "{}", p.body);
        assert!(p.content_is_html());
        assert!(p.body.contains("id=\"intake-errors\""));
        assert!(p.body.contains("市民来电反映小区停水三天"), "content kept");
        assert!(p.body.contains("value=\"13800001234\""), "phone kept");
        assert_eq!(app.count_tickets().await, 0);

        let t = app
            .dispatched_ticket(&o.agent, &o.dispatcher, "water", "噪音扰民")
            .await;
        let id = t["id"].as_i64().unwrap();
        let mut w = logged_in(&app, "water1").await;
        let here = format!("/tickets/{id}");
        // Replying before signing: the lifecycle says no, on the page.
        let p = w
            .submit(
                &here,
                &format!("/tickets/{id}/reply"),
                &[("content", "已处理"), ("resolved", "true")],
            )
            .await;
        assert_eq!(p.status, 409, "{}", p.body);
        assert!(p.body.contains("id=\"error\""));
        assert!(p.body.contains("工单当前状态不允许此操作"));
        w.submit(&here, &format!("/tickets/{id}/sign"), &[]).await;
        let p = w
            .submit(
                &here,
                &format!("/tickets/{id}/extension"),
                &[("working_days", "abc"), ("reason", "需要协调多个部门")],
            )
            .await;
        assert_eq!(p.status, 422);
        assert!(p.body.contains("需要协调多个部门"), "reason kept");
        // A good extension request reaches the dispatcher's queue.
        let p = w
            .submit(
                &here,
                &format!("/tickets/{id}/extension"),
                &[("working_days", "3"), ("reason", "需要协调多个部门")],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let mut d = logged_in(&app, "dispatcher1").await;
        let q = d.get("/dispatch").await;
        let ext = q.body.find("id=\"queue-extensions\"").unwrap();
        assert!(q.body[ext..].contains("需要协调多个部门"));
        let ext_id = app.app_state.store.extensions(id).await.unwrap()[0].id;
        let p = d
            .submit(
                "/dispatch",
                &format!("/tickets/{id}/decide"),
                &[
                    ("extension_id", &ext_id.to_string()),
                    ("approve", "true"),
                    ("back", "/dispatch"),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let t = app.get(&format!("/api/v1/tickets/{id}"), &o.water).await;
        assert_eq!(t.expect(200)["extension_count"], 1);

        // Revealing the phone needs a reason and is logged.
        let p = w
            .submit(&here, &format!("/tickets/{id}/reveal"), &[("reason", "")])
            .await;
        assert_eq!(p.status, 422);
        assert!(!p.body.contains("13800001234"));
        let p = w
            .submit(
                &here,
                &format!("/tickets/{id}/reveal"),
                &[("reason", "需电话核实噪音时段")],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("13800001234"));
        let log = app
            .get(&format!("/api/v1/access-log?ticket_id={id}"), &app.admin)
            .await;
        assert_eq!(log.expect(200)["items"][0]["reason"], "需电话核实噪音时段");
    }
);

both!(
    the_agent_closes_a_consultation_directly,
    |app: TestApp| async move {
        Office::new(&app).await;
        let mut agent = logged_in(&app, "agent1").await;
        let mut call: Vec<(&str, &str)> = CALL
            .iter()
            .filter(|(k, _)| *k != "category")
            .copied()
            .collect();
        call.push(("category", "consult"));
        let p = agent.submit("/agent", "/agent", &call).await;
        let id = created_id(&p.location);
        let p = agent
            .submit(
                &p.location,
                &format!("/tickets/{id}/close"),
                &[
                    ("resolution", "direct_answer"),
                    ("note", "已告知停水公告及恢复时间"),
                    ("back", "/agent"),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(p.location, "/agent?done=close");
        let page = agent.get(&format!("/tickets/{id}")).await;
        assert!(page.body.contains("data-state=\"closed\""));
        assert!(page.body.contains("直办结"));
    }
);

impl Page {
    fn content_is_html(&self) -> bool {
        self.body.starts_with("<!doctype html>")
    }
}
