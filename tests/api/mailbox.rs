//! 市长信箱 and /track over raw HTTP, as a citizen's browser or a script
//! would send them: JSON and form posts, HTML answers for browsers, every
//! refusal with its stable code (and `Retry-After` when rate limited), and
//! no ticket left behind by any refusal. With `TEST_REDIS_URL`, two
//! instances on one database and one Redis share one limit.

use serde_json::{Value, json};

use crate::both;
use crate::helpers::*;

const PATH: &str = "/api/v1/public/mailbox";
const FORM: &str = "application/x-www-form-urlencoded";
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// A response with the headers these tests look at.
struct Raw {
    status: u16,
    content_type: String,
    retry_after: Option<u64>,
    text: String,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    #[track_caller]
    fn expect(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "body: {}", self.text);
        self.json()
    }

    #[track_caller]
    fn expect_problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(
            self.content_type, "application/problem+json",
            "{}",
            self.text
        );
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert!(body["detail"].is_string(), "{body}");
        body
    }

    #[track_caller]
    fn expect_page(&self, status: u16) -> &str {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert!(
            self.content_type.starts_with("text/html"),
            "{}: {}",
            self.content_type,
            self.text
        );
        &self.text
    }

    #[track_caller]
    fn expect_limited(&self, at_most_secs: u64) -> u64 {
        self.expect_problem(429, "rate_limited");
        let secs = self.retry_after.expect("Retry-After header");
        assert!(
            (1..=at_most_secs).contains(&secs),
            "Retry-After {secs} not within 1..={at_most_secs}"
        );
        secs
    }
}

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Raw {
    let mut req = match method {
        "GET" => app.client.get(app.url(path)),
        _ => app.client.post(app.url(path)),
    };
    for (name, value) in headers {
        req = req.insert_header((*name, *value));
    }
    let mut res = req.send_body(body).await.expect("request sent");
    let header = |name: &str| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type").unwrap_or_default();
    let retry_after = header("retry-after").and_then(|v| v.parse().ok());
    let bytes = res.body().limit(8 << 20).await.expect("body");
    Raw {
        status: res.status().as_u16(),
        content_type,
        retry_after,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn letter(phone: &str, title: &str) -> Value {
    json!({
        "name": "李四",
        "phone": phone,
        "category": "complaint",
        "title": title,
        "content": format!("{title}：小区门口路灯坏了一个月，晚上出行不便，请尽快维修。"),
        "address": "东湖区某小区北门",
    })
}

async fn post_json(app: &TestApp, body: &Value, headers: &[(&str, &str)]) -> Raw {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    send(app, "POST", PATH, &all, serde_json::to_vec(body).unwrap()).await
}

/// Form-encodes `pairs` as a browser does (UTF-8, percent-escapes, `+`).
fn form_body(pairs: &[(&str, &str)]) -> Vec<u8> {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

async fn post_form(app: &TestApp, pairs: &[(&str, &str)], headers: &[(&str, &str)]) -> Raw {
    let mut all = vec![("content-type", FORM)];
    all.extend_from_slice(headers);
    send(app, "POST", PATH, &all, form_body(pairs)).await
}

async fn get_page(app: &TestApp, path: &str) -> Raw {
    send(app, "GET", path, &[("accept", BROWSER_ACCEPT)], Vec::new()).await
}

fn form_letter<'a>(phone: &'a str, title: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("category", "help"),
        ("title", title),
        ("content", "楼道灯坏了 & 没人修，“请”尽快处理 <谢谢>"),
        ("address", ""),
        ("district", ""),
        ("name", ""),
        ("phone", phone),
        ("website", ""),
    ]
}

both!(
    letters_arrive_as_json_or_form_and_become_mailbox_tickets,
    |app: TestApp| async move {
        app.post(
            "/api/v1/departments",
            &app.admin,
            &json!({"code": "donghu", "name": "东湖区人民政府", "kind": "district"}),
        )
        .await
        .expect(201);
        let page = get_page(&app, "/mailbox").await;
        let html = page.expect_page(200);
        assert!(html.contains("lang=\"zh-CN\""));
        assert!(html.contains("name=\"viewport\""));
        assert!(html.contains("action=\"/api/v1/public/mailbox\""));
        assert!(
            html.contains("name=\"website\""),
            "the honeypot is on the form"
        );
        assert!(html.contains("value=\"donghu\""), "districts are offered");
        assert!(!html.contains("None"), "empty fields are empty: {html}");
        assert!(!html.contains("<script"));

        let r = post_json(&app, &letter("13800001234", "路灯不亮"), &[]).await;
        let t = r.expect(201);
        let no = t["ticket_no"].as_str().unwrap().to_owned();
        assert_eq!(&no[8..9], "M", "{t}");
        assert_eq!(t["query_code"].as_str().unwrap().len(), 6);

        // A script posting the form gets JSON; a browser gets a page.
        let mut pairs = form_letter("139 0000 1111", "楼道灯坏了");
        pairs[4] = ("district", "donghu");
        let r = post_form(&app, &pairs, &[]).await;
        let f = r.expect(201);
        assert_eq!(&f["ticket_no"].as_str().unwrap()[8..9], "M");
        let r = post_form(
            &app,
            &form_letter("13900002222", "电梯故障"),
            &[("accept", BROWSER_ACCEPT)],
        )
        .await;
        let html = r.expect_page(201).to_owned();
        assert!(html.contains("提交成功"), "{html}");
        assert!(html.contains("工单号") && html.contains("查询码"));
        assert_eq!(app.count_tickets().await, 3);

        let list = app.get("/api/v1/tickets?channel=mailbox", &app.admin).await;
        let list = list.expect(200);
        assert_eq!(list["total"], 3);
        let form_ticket = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["ticket_no"] == f["ticket_no"])
            .expect("the form's ticket")
            .clone();
        let full = app
            .get(
                &format!("/api/v1/tickets/{}", form_ticket["id"]),
                &app.admin,
            )
            .await;
        let full = full.expect(200);
        assert_eq!(full["channel"], "mailbox");
        assert_eq!(full["category"], "help");
        assert_eq!(full["district"], "donghu");
        assert_eq!(full["content"], "楼道灯坏了 & 没人修，“请”尽快处理 <谢谢>");
        let phone = full["citizen"]["phone"].as_str().unwrap();
        assert!(
            phone.starts_with("139") && phone.ends_with("1111"),
            "{full}"
        );
    }
);

both!(
    bad_letters_are_refused_with_stable_codes_and_leave_nothing,
    |app: TestApp| async move {
        let mut no_phone = letter("", "t");
        no_phone.as_object_mut().unwrap().remove("phone");
        let p = post_json(&app, &no_phone, &[])
            .await
            .expect_problem(422, "validation_failed");
        assert!(p["errors"][0].as_str().unwrap().contains("`phone`"), "{p}");
        let p = post_json(&app, &letter("12ab", "t"), &[])
            .await
            .expect_problem(422, "validation_failed");
        assert!(p["detail"].as_str().unwrap().contains("`phone`"), "{p}");
        let mut bad = letter("13800001234", "");
        bad["category"] = json!("gossip");
        bad["district"] = json!("Not A Code");
        let p = post_json(&app, &bad, &[])
            .await
            .expect_problem(422, "validation_failed");
        assert_eq!(p["errors"].as_array().unwrap().len(), 3, "{p}");
        let mut long = letter("13800001234", "t");
        long["content"] = json!("长".repeat(10_001));
        post_json(&app, &long, &[])
            .await
            .expect_problem(422, "validation_failed");
        post_json(&app, &json!(["not", "an", "object"]), &[])
            .await
            .expect_problem(422, "validation_failed");
        send(
            &app,
            "POST",
            PATH,
            &[("content-type", "application/json")],
            b"{\"phone\":".to_vec(),
        )
        .await
        .expect_problem(400, "malformed_json");
        send(
            &app,
            "POST",
            PATH,
            &[("content-type", "text/plain")],
            b"hello".to_vec(),
        )
        .await
        .expect_problem(415, "unsupported_media_type");
        send(&app, "GET", PATH, &[], Vec::new())
            .await
            .expect_problem(405, "method_not_allowed");

        // A browser gets the form back with its errors and its own values,
        // escaped.
        let mut pairs = form_letter("not-a-phone", "<script>alert(1)</script>");
        pairs[0] = ("category", "");
        let r = post_form(&app, &pairs, &[("accept", BROWSER_ACCEPT)]).await;
        let html = r.expect_page(422);
        assert!(html.contains("请修改以下内容"), "{html}");
        assert!(
            html.contains("`phone`") && html.contains("`category`"),
            "{html}"
        );
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
                || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("value=\"not-a-phone\""), "{html}");
        assert_eq!(app.count_tickets().await, 0);
    }
);

both!(
    a_filled_honeypot_is_told_success_and_nothing_is_registered,
    |app: TestApp| async move {
        let mut bot = letter("13800001234", "优惠活动");
        bot["website"] = json!("http://spam.example");
        let t = post_json(&app, &bot, &[]).await.expect(201);
        let (no, code) = (
            t["ticket_no"].as_str().unwrap(),
            t["query_code"].as_str().unwrap(),
        );
        assert_eq!(no.len(), 15);
        assert_eq!(code.len(), 6);
        let mut pairs = form_letter("13800001234", "优惠活动");
        pairs[7] = ("website", "http://spam.example");
        let r = post_form(&app, &pairs, &[("accept", BROWSER_ACCEPT)]).await;
        assert!(r.expect_page(201).contains("提交成功"));
        assert_eq!(app.count_tickets().await, 0);
        app.get(&format!("/api/v1/public/tickets/{no}?code={code}"), "")
            .await
            .expect_problem(404, "not_found");
    }
);

#[actix_web::test]
async fn bodies_over_the_cap_are_refused_before_anything_else() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = TestApp::spawn_with(backend, &[("mailbox.max_body_bytes", "2048")]).await
        else {
            eprintln!("TEST_DATABASE_URL unset: PostgreSQL case skipped");
            continue;
        };
        let mut big = letter("13800001234", "长信");
        big["content"] = json!("很长的内容".repeat(200));
        let p = post_json(&app, &big, &[])
            .await
            .expect_problem(413, "payload_too_large");
        assert!(p["detail"].as_str().unwrap().contains("2048"), "{p}");
        let pairs = [
            ("phone", "13800001234"),
            ("content", &"长".repeat(1000)[..]),
        ];
        post_form(&app, &pairs, &[])
            .await
            .expect_problem(413, "payload_too_large");
        let r = post_form(&app, &pairs, &[("accept", BROWSER_ACCEPT)]).await;
        assert!(r.expect_page(413).contains("内容过长"));
        assert_eq!(app.count_tickets().await, 0);
        // Just under the cap is fine.
        big["content"] = json!("内容".repeat(200));
        post_json(&app, &big, &[]).await.expect(201);
        assert_eq!(app.count_tickets().await, 1);
    }
}

both!(
    the_same_letter_twice_within_ten_minutes_is_one_ticket,
    |app: TestApp| async move {
        let first = post_json(&app, &letter("13800001234", "噪音扰民"), &[])
            .await
            .expect(201);
        // The same phone written differently, the title with spaces around.
        let mut same = letter("138-0000-1234", "噪音扰民");
        same["title"] = json!(" 噪音扰民 ");
        let again = post_json(&app, &same, &[]).await.expect(200);
        assert_eq!(again["ticket_no"], first["ticket_no"]);
        assert_eq!(again["query_code"], first["query_code"]);
        // From the browser, the page says it was already received.
        let mut pairs = form_letter("13800001234", "噪音扰民");
        let content = format!(
            "{}：小区门口路灯坏了一个月，晚上出行不便，请尽快维修。",
            "噪音扰民"
        );
        pairs[1] = ("title", "噪音扰民");
        pairs[2] = ("content", &content);
        pairs[0] = ("category", "complaint");
        let r = post_form(&app, &pairs, &[("accept", BROWSER_ACCEPT)]).await;
        let html = r.expect_page(200);
        assert!(html.contains("已提交过相同的诉求"), "{html}");
        assert!(html.contains(first["ticket_no"].as_str().unwrap()));
        // Another phone, or other words, is another letter.
        post_json(&app, &letter("13900009999", "噪音扰民"), &[])
            .await
            .expect(201);
        let mut other = letter("13800001234", "噪音扰民");
        other["content"] = json!("晚上十点以后仍有施工噪音。");
        post_json(&app, &other, &[]).await.expect(201);
        assert_eq!(app.count_tickets().await, 3);
    }
);

both!(
    citizens_track_progress_on_the_page_with_number_and_code,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let t = post_json(&app, &letter("13800001234", "井盖缺失"), &[])
            .await
            .expect(201);
        let no = t["ticket_no"].as_str().unwrap().to_owned();
        let code = t["query_code"].as_str().unwrap().to_owned();

        let empty = get_page(&app, "/track").await;
        let html = empty.expect_page(200);
        assert!(html.contains("name=\"no\"") && html.contains("name=\"code\""));
        let r = get_page(
            &app,
            &format!("/track?no={no}&code={}", code.to_lowercase()),
        )
        .await;
        let html = r.expect_page(200).to_owned();
        assert!(html.contains(&no) && html.contains("已受理"), "{html}");
        assert!(
            !html.contains("13800001234") && !html.contains("李四"),
            "no personal data"
        );
        assert!(!html.contains("东湖区某小区北门"), "no address either");
        let r = get_page(&app, &format!("/track?no={no}&code=AAAAAA")).await;
        assert!(r.expect_page(404).contains("未找到"));
        let r = get_page(&app, "/track?no=garbage&code=AAAAAA").await;
        r.expect_page(404);
        let r = get_page(&app, &format!("/track?no={no}")).await;
        r.expect_page(422);
        // The JSON look-up says the same.
        app.get(&format!("/api/v1/public/tickets/{no}?code=AAAAAA"), "")
            .await
            .expect_problem(404, "not_found");
        let j = app
            .get(&format!("/api/v1/public/tickets/{no}?code={code}"), "")
            .await;
        assert_eq!(j.expect(200)["state"], "registered");

        // Dispatched, signed and replied by the department: the reply shows.
        let list = app
            .get("/api/v1/tickets?channel=mailbox", &o.dispatcher)
            .await;
        let id = list.expect(200)["items"][0]["id"].as_i64().unwrap();
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
            &json!({"content": "已安排人员补装井盖 <已完成>。", "resolved": true}),
        )
        .await
        .expect(200);
        let r = get_page(&app, &format!("/track?no={no}&code={code}")).await;
        let html = r.expect_page(200);
        assert!(html.contains("已答复"), "{html}");
        assert!(
            html.contains("已安排人员补装井盖 &lt;已完成&gt;。"),
            "{html}"
        );
        assert!(
            html.contains("water 部门"),
            "the department's name shows: {html}"
        );
    }
);

both!(
    a_phone_gets_five_a_minute_then_429_with_retry_after,
    |app: TestApp| async move {
        for i in 0..5 {
            post_json(&app, &letter("13800001234", &format!("第{i}件事")), &[])
                .await
                .expect(201);
        }
        let r = post_json(&app, &letter("13800001234", "第六件事"), &[]).await;
        let secs = r.expect_limited(12);
        assert!(secs >= 11, "one more every 12 s: {secs}");
        // A browser is told in words, with the same header.
        let r = post_form(
            &app,
            &form_letter("13800001234", "第七件事"),
            &[("accept", BROWSER_ACCEPT)],
        )
        .await;
        assert!(r.expect_page(429).contains("提交过于频繁"));
        assert!(r.retry_after.is_some());
        assert_eq!(app.count_tickets().await, 5);
        // Resending a letter already registered is not a new submission.
        post_json(&app, &letter("13800001234", "第0件事"), &[])
            .await
            .expect(200);
        // Another phone is not affected.
        post_json(&app, &letter("13900001234", "第六件事"), &[])
            .await
            .expect(201);
        assert_eq!(app.count_tickets().await, 6);
    }
);

#[actix_web::test]
async fn a_phone_gets_its_daily_allowance_then_waits_hours() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = TestApp::spawn_with(
            backend,
            &[
                ("mailbox.per_phone_per_minute", "0"),
                ("mailbox.per_phone_per_day", "3"),
            ],
        )
        .await
        else {
            eprintln!("TEST_DATABASE_URL unset: PostgreSQL case skipped");
            continue;
        };
        for i in 0..3 {
            post_json(&app, &letter("13800001234", &format!("第{i}件事")), &[])
                .await
                .expect(201);
        }
        let r = post_json(&app, &letter("13800001234", "第四件事"), &[]).await;
        let secs = r.expect_limited(8 * 3600);
        assert!(secs > 7 * 3600, "one more every 8 hours: {secs}");
        assert_eq!(app.count_tickets().await, 3);
    }
}

#[actix_web::test]
async fn an_address_is_limited_whatever_it_sends() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = TestApp::spawn_with(
            backend,
            &[
                ("mailbox.per_address_per_minute", "3"),
                ("mailbox.per_address_per_day", "0"),
                ("mailbox.client_ip_header", "X-Real-IP"),
            ],
        )
        .await
        else {
            eprintln!("TEST_DATABASE_URL unset: PostgreSQL case skipped");
            continue;
        };
        let from = |ip: &'static str| [("x-real-ip", ip)];
        post_json(&app, &letter("13800000001", "一"), &from("203.0.113.7"))
            .await
            .expect(201);
        // Refused requests count too: a flood of junk is still a flood.
        post_json(&app, &json!({}), &from("203.0.113.7"))
            .await
            .expect_problem(422, "validation_failed");
        post_json(&app, &letter("13800000003", "三"), &from("203.0.113.7"))
            .await
            .expect(201);
        let r = post_json(&app, &letter("13800000004", "四"), &from("203.0.113.7")).await;
        r.expect_limited(20);
        let r = send(
            &app,
            "POST",
            PATH,
            &[("content-type", "text/plain"), ("x-real-ip", "203.0.113.7")],
            Vec::new(),
        )
        .await;
        r.expect_limited(20);
        // Another address (and, behind a proxy, the header's last entry).
        post_json(&app, &letter("13800000004", "四"), &from("198.51.100.1"))
            .await
            .expect(201);
        post_json(
            &app,
            &letter("13800000005", "五"),
            &[("x-real-ip", "203.0.113.7, 198.51.100.2")],
        )
        .await
        .expect(201);
        // IPv6 is limited by its /64.
        for i in 0..3 {
            let ip = format!("2001:db8:1:2::{i}");
            post_json(
                &app,
                &letter(&format!("1380000010{i}"), "六"),
                &[("x-real-ip", ip.as_str())],
            )
            .await
            .expect(201);
        }
        post_json(
            &app,
            &letter("13800000200", "七"),
            &[("x-real-ip", "2001:db8:1:2:ffff::1")],
        )
        .await
        .expect_limited(20);
        assert_eq!(app.count_tickets().await, 7);
    }
}

#[actix_web::test]
async fn without_a_reachable_redis_limits_are_kept_in_process() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("redis.url", "redis://127.0.0.1:1"),
            ("mailbox.per_phone_per_minute", "2"),
        ],
    )
    .await
    .expect("app");
    post_json(&app, &letter("13800001234", "一"), &[])
        .await
        .expect(201);
    post_json(&app, &letter("13800001234", "二"), &[])
        .await
        .expect(201);
    post_json(&app, &letter("13800001234", "三"), &[])
        .await
        .expect_limited(30);
    assert_eq!(app.count_tickets().await, 2);
}

#[actix_web::test]
async fn two_instances_sharing_redis_share_one_limit() {
    let Some((redis, backend)) = shared_redis("shared rate-limit test") else {
        return;
    };
    // A prefix of its own, so no other run or test shares these counters.
    let prefix = format!(
        "hotline:test:{}:{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    );
    let overrides = [
        ("redis.url", redis.as_str()),
        ("mailbox.redis_prefix", prefix.as_str()),
        ("mailbox.per_phone_per_minute", "4"),
        ("mailbox.per_address_per_minute", "6"),
        ("mailbox.client_ip_header", "X-Real-IP"),
    ];
    let (a, b) = TestApp::pair(backend, &overrides).await;
    // One phone, alternating instances (and addresses): four in all.
    let ip = |i: usize| {
        if i.is_multiple_of(2) {
            "198.51.100.10"
        } else {
            "198.51.100.11"
        }
    };
    for i in 0..4_usize {
        let app = if i.is_multiple_of(2) { &a } else { &b };
        post_json(
            app,
            &letter("13800001234", &format!("第{i}件事")),
            &[("x-real-ip", ip(i))],
        )
        .await
        .expect(201);
    }
    for app in [&a, &b] {
        post_json(
            app,
            &letter("13800001234", "又一件事"),
            &[("x-real-ip", "198.51.100.12")],
        )
        .await
        .expect_limited(15);
    }
    // One address, six in all across both instances, each with its own phone.
    for i in 0..6_usize {
        let app = if i.is_multiple_of(2) { &a } else { &b };
        let phone = format!("1390000000{i}");
        post_json(
            app,
            &letter(&phone, "路面塌陷"),
            &[("x-real-ip", "203.0.113.9")],
        )
        .await
        .expect(201);
    }
    for app in [&a, &b] {
        post_json(
            app,
            &letter("13700000000", "路面塌陷"),
            &[("x-real-ip", "203.0.113.9")],
        )
        .await
        .expect_limited(10);
    }
    assert_eq!(a.count_tickets().await, 10);
    assert_eq!(b.count_tickets().await, 10);
}
