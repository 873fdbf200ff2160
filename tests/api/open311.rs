//! Open311 GeoReport v2 over raw HTTP, as a city app speaks it: form-encoded
//! POSTs built by hand, JSON and XML read back. A keyed request becomes a
//! ticket at once and reads back without the reporter's name, phone or
//! e-mail; every refused request answers in the spec's error form and leaves
//! nothing behind.

use chrono::{DateTime, Duration, Utc};
use hotline::domain::appeal::{RawAppeal, RawCitizen};
use hotline::domain::catalogue::{Catalogue, DISTRICT_TARGET, Topic};
use hotline::domain::types::{Category, Channel, Urgency};
use hotline::store::entities::ticket;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::*;

const KEY: &str = "open311-test-key";
const FORM: &str = "application/x-www-form-urlencoded";

fn catalogue() -> Catalogue {
    Catalogue::parse(include_str!("../../config/catalogue.toml")).expect("catalogue")
}

/// A topic its own department handles, and one that goes to the district.
fn topics() -> (Topic, Topic) {
    let c = catalogue();
    let functional = c
        .topics
        .iter()
        .find(|t| t.department != DISTRICT_TARGET)
        .expect("a functional topic")
        .clone();
    let local = c
        .topics
        .iter()
        .find(|t| t.department == DISTRICT_TARGET)
        .expect("a district topic")
        .clone();
    (functional, local)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn form(fields: &[(&str, &str)]) -> Vec<u8> {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

async fn submit(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> Resp {
    app.post_raw(path, "", FORM, form(fields)).await
}

/// The first `<name>…</name>` of an XML text.
fn tag<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

/// A spec error in JSON: the status, and an array of `{code, description}`.
#[track_caller]
fn expect_errors(r: &Resp, status: u16) -> usize {
    assert_eq!(r.status, status, "body: {}", r.body);
    assert!(
        r.content_type.starts_with("application/json"),
        "{}",
        r.content_type
    );
    let errors = r.body.as_array().expect("an array of errors");
    assert!(!errors.is_empty());
    for e in errors {
        assert_eq!(e["code"], status, "{e}");
        assert!(e["description"].as_str().is_some_and(|d| !d.is_empty()));
    }
    errors.len()
}

/// A spec error in XML.
#[track_caller]
fn expect_xml_errors(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "body: {}", r.body);
    assert!(r.content_type.starts_with("text/xml"), "{}", r.content_type);
    let xml = r.body.as_str().expect("xml text");
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<errors><error>"));
    assert_eq!(tag(xml, "code"), Some(status.to_string().as_str()));
    assert!(tag(xml, "description").is_some_and(|d| !d.is_empty()));
}

#[track_caller]
fn xml(r: &Resp, status: u16) -> &str {
    assert_eq!(r.status, status, "body: {}", r.body);
    assert!(r.content_type.starts_with("text/xml"), "{}", r.content_type);
    let text = r.body.as_str().expect("xml text");
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"));
    text
}

fn w3c(t: DateTime<Utc>) -> String {
    t.with_timezone(&hotline::domain::calendar::city_tz())
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

fn instant(v: &Value) -> i64 {
    DateTime::parse_from_rfc3339(v.as_str().expect("a time"))
        .expect("RFC 3339")
        .timestamp()
}

async fn open311_app(backend: Backend, key: Option<&str>) -> Option<TestApp> {
    let overrides: Vec<(&str, &str)> = key.map(|k| ("open311.api_key", k)).into_iter().collect();
    let app = TestApp::spawn_with(backend, &overrides).await?;
    app.post(
        "/api/v1/departments",
        &app.admin,
        &json!({"code": "donghu", "name": "东湖区人民政府", "kind": "district"}),
    )
    .await
    .expect(201);
    Some(app)
}

/// Runs a test on SQLite, and on PostgreSQL when configured, with `key` as
/// `open311.api_key`.
macro_rules! open311 {
    ($name:ident, $key:expr, $body:expr) => {
        mod $name {
            use super::*;

            #[actix_web::test]
            async fn sqlite() {
                let app = open311_app(Backend::Sqlite, $key).await.expect("app");
                ($body)(app).await;
            }

            #[actix_web::test]
            async fn postgres() {
                match open311_app(Backend::Postgres, $key).await {
                    Some(app) => ($body)(app).await,
                    None => eprintln!("TEST_DATABASE_URL unset: PostgreSQL case skipped"),
                }
            }
        }
    };
}

/// A request as a typical app sends it: key and jurisdiction in the body,
/// two photos, the spec's optional extras.
fn full_request(service: &str) -> Vec<(&'static str, String)> {
    vec![
        ("api_key", KEY.into()),
        ("jurisdiction_id", "nc.gov.cn".into()),
        ("service_code", service.into()),
        ("lat", "28.68".into()),
        ("long", "115.89".into()),
        ("address_string", "东湖区八一大道 100 号".into()),
        ("email", "zhang@example.cn".into()),
        ("first_name", "三".into()),
        ("last_name", "张".into()),
        ("phone", "13800001234".into()),
        ("description", "路灯 <不亮> & 闪烁".into()),
        ("media_url", "https://img.example.cn/1.jpg".into()),
        ("media_url", "https://img.example.cn/2.jpg".into()),
        ("device_id", "tt222111".into()),
        ("account_id", "123456".into()),
        ("attribute[WHISPAWN]", "1".into()),
    ]
}

fn borrowed<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

open311!(
    discovery_and_services_describe_the_catalogue,
    Some(KEY),
    |app: TestApp| async move {
        let d = app.get("/open311/v2/discovery.json", "").await;
        let d = d.expect(200);
        assert!(d["changeset"].is_string() && d["contact"].is_string());
        assert!(d["key_service"].is_string());
        let e = &d["endpoints"][0];
        assert_eq!(e["specification"], "http://wiki.open311.org/GeoReport_v2");
        assert!(e["url"].as_str().unwrap().ends_with("/open311/v2"), "{e}");
        assert_eq!(e["type"], "test");
        assert_eq!(e["formats"], json!(["text/xml", "application/json"]));
        let r = app.get("/open311/v2/discovery.xml", "").await;
        let x = xml(&r, 200);
        assert!(
            x.contains(
                "<formats><format>text/xml</format><format>application/json</format></formats>"
            ),
            "{x}"
        );
        assert!(tag(x, "specification").is_some());

        let c = catalogue();
        let (functional, local) = topics();
        let r = app.get("/open311/v2/services.json", "").await;
        assert!(r.content_type.starts_with("application/json"));
        let list = r.expect(200).as_array().unwrap().clone();
        assert_eq!(list.len(), c.topics.len());
        let find = |code: &str| {
            list.iter()
                .find(|s| s["service_code"] == code)
                .cloned()
                .unwrap()
        };
        let s = find(&functional.code);
        let dept = c
            .departments
            .iter()
            .find(|d| d.code.as_str() == functional.department)
            .unwrap();
        assert_eq!(s["service_name"], functional.name.as_str());
        assert_eq!(s["description"], json!(functional.description));
        assert_eq!(s["metadata"], false);
        assert_eq!(s["type"], "realtime");
        assert_eq!(s["keywords"], functional.keywords.join(","));
        assert_eq!(s["group"], dept.name.as_str());
        assert_eq!(find(&local.code)["group"], "属地区县人民政府");
        // The department's name as the office keeps it wins over the file's.
        app.post(
            "/api/v1/departments",
            &app.admin,
            &json!({"code": functional.department, "name": "改名后的部门", "kind": "functional"}),
        )
        .await
        .expect(201);
        let list = app.get("/open311/v2/services.json", "").await;
        let s = list
            .expect(200)
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service_code"] == functional.code.as_str())
            .cloned()
            .unwrap();
        assert_eq!(s["group"], "改名后的部门");
        let r = app.get("/open311/v2/services.xml", "").await;
        let x = xml(&r, 200);
        assert_eq!(x.matches("<service>").count(), c.topics.len());
        assert!(x.contains(&format!("<service_code>{}</service_code>", functional.code)));
        assert!(x.contains("<metadata>false</metadata><type>realtime</type>"));

        let path = format!("/open311/v2/services/{}.json", functional.code);
        let def = app.get(&path, "").await;
        assert_eq!(
            def.expect(200),
            &json!({"service_code": functional.code, "attributes": []})
        );
        let path = format!("/open311/v2/services/{}.xml", functional.code);
        let r = app.get(&path, "").await;
        assert!(xml(&r, 200).contains(&format!(
            "<service_definition><service_code>{}</service_code><attributes/></service_definition>",
            functional.code
        )));

        // Unknown services, formats and paths; wrong methods.
        expect_errors(
            &app.get("/open311/v2/services/no_such_service.json", "")
                .await,
            404,
        );
        expect_xml_errors(
            &app.get("/open311/v2/services/no_such_service.xml", "")
                .await,
            404,
        );
        expect_errors(&app.get("/open311/v2/services.yaml", "").await, 404);
        expect_errors(&app.get("/open311/v2/services", "").await, 404);
        expect_xml_errors(&app.get("/open311/v2/tokens/1.xml", "").await, 404);
        expect_errors(
            &app.post_raw("/open311/v2/services.json", "", FORM, Vec::new())
                .await,
            400,
        );
        expect_xml_errors(
            &app.post_raw("/open311/v2/discovery.xml", "", FORM, Vec::new())
                .await,
            400,
        );
    }
);

open311!(
    a_posted_request_is_a_ticket_at_once_and_reads_back_without_personal_data,
    Some(KEY),
    |app: TestApp| async move {
        let (functional, local) = topics();
        let fields = full_request(&functional.code);
        let r = submit(&app, "/open311/v2/requests.json", &borrowed(&fields)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let created = r.body.as_array().expect("an array");
        assert_eq!(created.len(), 1);
        let keys: Vec<&str> = created[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 3, "{keys:?}");
        assert!(created[0]["account_id"].is_null());
        assert!(created[0]["service_notice"].is_string());
        assert!(created[0].get("token").is_none());
        let no = created[0]["service_request_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(no.contains('O'), "{no}");

        // The ticket, as the office sees it.
        let list = app
            .get(&format!("/api/v1/tickets?q={no}"), &app.admin)
            .await;
        let t = list.expect(200)["items"][0].clone();
        assert_eq!(t["ticket_no"], no.as_str());
        assert_eq!(t["channel"], "open311");
        assert_eq!(t["category"], "report");
        assert_eq!(t["state"], "registered");
        assert_eq!(t["title"], functional.name.as_str());
        assert_eq!(t["district"], "donghu");
        assert_eq!(t["address"], "东湖区八一大道 100 号");
        let content = t["content"].as_str().unwrap();
        assert!(
            content.starts_with("路灯 <不亮> & 闪烁\n位置（WGS84）：28.68, 115.89"),
            "{content}"
        );
        assert!(content.contains("附件：https://img.example.cn/1.jpg"));
        assert!(content.contains("附件：https://img.example.cn/2.jpg"));

        // The public view: every field, none of the reporter's data.
        let r = app
            .get(&format!("/open311/v2/requests/{no}.json"), "")
            .await;
        let body = r.expect(200);
        let text = body.to_string();
        for private in ["13800001234", "zhang@example.cn", "张三", "\"三\""] {
            assert!(!text.contains(private), "{private} in {text}");
        }
        let v = &body[0];
        assert_eq!(v["service_request_id"], no.as_str());
        assert_eq!(v["status"], "open");
        assert!(v["status_notes"].is_null());
        assert_eq!(v["service_code"], functional.code.as_str());
        assert_eq!(v["service_name"], functional.name.as_str());
        assert_eq!(v["description"], "路灯 <不亮> & 闪烁");
        assert!(v["agency_responsible"].is_null());
        assert!(v["expected_datetime"].is_null());
        assert_eq!(v["address"], "东湖区八一大道 100 号");
        assert_eq!(v["lat"], 28.68);
        assert_eq!(v["long"], 115.89);
        assert_eq!(v["media_url"], "https://img.example.cn/1.jpg");
        assert!(
            v["requested_datetime"]
                .as_str()
                .unwrap()
                .ends_with("+08:00")
        );
        assert_eq!(instant(&v["requested_datetime"]), instant(&t["created_at"]));
        let r = app.get(&format!("/open311/v2/requests/{no}.xml"), "").await;
        let x = xml(&r, 200);
        assert!(x.contains("<service_requests><request>"), "{x}");
        assert_eq!(tag(x, "service_request_id"), Some(no.as_str()));
        assert_eq!(tag(x, "description"), Some("路灯 &lt;不亮&gt; &amp; 闪烁"));
        assert_eq!(tag(x, "lat"), Some("28.68"));
        assert!(x.contains("<status_notes/>") && !x.contains("13800001234"));

        // An XML client, no pin (#NOTPINPOINTED#), no description.
        let r = submit(
            &app,
            "/open311/v2/requests.xml",
            &[
                ("api_key", KEY),
                ("service_code", &local.code),
                ("address_id", "#NOTPINPOINTED#"),
            ],
        )
        .await;
        let x = xml(&r, 201).to_owned();
        assert!(
            x.contains("<service_requests><request><service_request_id>"),
            "{x}"
        );
        assert!(
            x.contains("<account_id/></request></service_requests>"),
            "{x}"
        );
        assert!(!x.contains("<token>"));
        let second = tag(&x, "service_request_id").unwrap().to_owned();
        let r = app
            .get(&format!("/open311/v2/requests/{second}.json"), "")
            .await;
        let v = &r.expect(200)[0];
        assert_eq!(v["service_code"], local.code.as_str());
        assert!(v["lat"].is_null() && v["address_id"].is_null() && v["media_url"].is_null());
        assert!(v["description"].is_null() && v["address"].is_null());
        let list = app
            .get(&format!("/api/v1/tickets?q={second}"), &app.admin)
            .await;
        assert_eq!(list.expect(200)["items"][0]["content"], local.name.as_str());

        // The key in the query string, a description of exactly 4,000 characters.
        let long = "灯".repeat(4_000);
        let r = submit(
            &app,
            &format!("/open311/v2/requests.json?api_key={KEY}&jurisdiction_id=nc.gov.cn"),
            &[
                ("service_code", &functional.code),
                ("address_string", "红谷滩区"),
                ("description", &long),
            ],
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(app.count_tickets().await, 3);

        // Dispatched, replied and closed: the request follows.
        let o = Office::new(&app).await;
        let id = t["id"].as_i64().unwrap();
        let step = |token: String, action: &'static str, body: Value| {
            let app = &app;
            async move {
                app.post(&format!("/api/v1/tickets/{id}/{action}"), &token, &body)
                    .await
                    .expect(200)
                    .clone()
            }
        };
        let d = step(
            o.dispatcher.clone(),
            "dispatch",
            json!({"department": "water"}),
        )
        .await;
        let v = app
            .get(&format!("/open311/v2/requests/{no}.json"), "")
            .await
            .expect(200)[0]
            .clone();
        assert_eq!(v["status"], "open");
        assert_eq!(v["agency_responsible"], "water 部门");
        assert_eq!(
            instant(&v["expected_datetime"]),
            instant(&d["reply_due_at"])
        );
        step(o.water.clone(), "sign", json!({})).await;
        step(
            o.water.clone(),
            "reply",
            json!({"content": "已更换灯泡", "resolved": true}),
        )
        .await;
        let closed = step(
            o.dispatcher.clone(),
            "callback",
            json!({"satisfaction": "satisfied", "resolved": true}),
        )
        .await;
        assert_eq!(closed["state"], "closed");
        let v = app
            .get(&format!("/open311/v2/requests/{no}.json"), "")
            .await
            .expect(200)[0]
            .clone();
        assert_eq!(v["status"], "closed");
        assert_eq!(v["status_notes"], "已更换灯泡");
        assert_eq!(
            instant(&v["updated_datetime"]),
            instant(&closed["closed_at"])
        );
        let r = app.get(&format!("/open311/v2/requests/{no}.xml"), "").await;
        let x = xml(&r, 200);
        assert_eq!(tag(x, "status"), Some("closed"));
        assert_eq!(tag(x, "agency_responsible"), Some("water 部门"));
    }
);

/// Registers an Open311 ticket directly, as if posted some time ago.
async fn aged(app: &TestApp, no: &str, days: i64) {
    ticket::Entity::update_many()
        .col_expr(
            ticket::Column::CreatedAt,
            Expr::value(Utc::now() - Duration::days(days)),
        )
        .filter(ticket::Column::TicketNo.eq(no))
        .exec(&app.app_state.store.db)
        .await
        .expect("age a ticket");
}

async fn post_one(app: &TestApp, service: &str) -> String {
    let r = submit(
        app,
        "/open311/v2/requests.json",
        &[
            ("api_key", KEY),
            ("service_code", service),
            ("lat", "28.7"),
            ("long", "115.9"),
        ],
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body[0]["service_request_id"].as_str().unwrap().to_owned()
}

fn numbers(r: &Resp) -> Vec<String> {
    r.body
        .as_array()
        .unwrap_or_else(|| panic!("an array: {}", r.body))
        .iter()
        .map(|v| v["service_request_id"].as_str().unwrap().to_owned())
        .collect()
}

open311!(
    requests_are_found_by_number_service_status_and_window,
    Some(KEY),
    |app: TestApp| async move {
        let (s1, s2) = topics();
        let o = Office::new(&app).await;
        let a = post_one(&app, &s1.code).await;
        let b = post_one(&app, &s2.code).await;
        let c = post_one(&app, &s1.code).await;
        let id = app
            .get(&format!("/api/v1/tickets?q={c}"), &app.admin)
            .await
            .expect(200)["items"][0]["id"]
            .as_i64()
            .unwrap();
        app.post(
            &format!("/api/v1/tickets/{id}/close"),
            &o.agent,
            &json!({"resolution": "direct_answer", "note": "已当场答复"}),
        )
        .await
        .expect(200);
        // Tickets from other channels are never listed.
        let hotline = app
            .post("/api/v1/tickets", &o.agent, &appeal("停水"))
            .await
            .expect(201)["ticket_no"]
            .as_str()
            .unwrap()
            .to_owned();

        let get = |q: String| {
            let app = &app;
            async move { app.get(&format!("/open311/v2/requests.json{q}"), "").await }
        };
        let all = get(String::new()).await;
        assert_eq!(all.status, 200);
        assert_eq!(
            numbers(&all),
            [c.as_str(), b.as_str(), a.as_str()],
            "newest first"
        );
        assert_eq!(
            numbers(&get(format!("?service_code={}", s1.code)).await),
            [c.as_str(), a.as_str()]
        );
        assert_eq!(
            numbers(&get(format!("?service_code={},{}", s1.code, s2.code)).await).len(),
            3
        );
        assert_eq!(
            numbers(
                &get(format!(
                    "?service_code={}&service_code={}",
                    s1.code, s2.code
                ))
                .await
            )
            .len(),
            3
        );
        assert_eq!(
            numbers(&get("?service_code=no_such_service".into()).await).len(),
            0
        );
        assert_eq!(
            numbers(&get("?status=open".into()).await),
            [b.as_str(), a.as_str()]
        );
        assert_eq!(numbers(&get("?status=closed".into()).await), [c.as_str()]);
        assert_eq!(
            numbers(&get("?status=open,closed&jurisdiction_id=nc.gov.cn".into()).await).len(),
            3
        );
        // The ids override every other argument.
        assert_eq!(
            numbers(&get(format!("?service_request_id={a},{c}&status=open")).await),
            [c.as_str(), a.as_str()]
        );
        assert_eq!(
            numbers(&get(format!("?service_request_id={hotline}")).await).len(),
            0
        );
        let x = app
            .get(
                &format!("/open311/v2/requests.xml?service_request_id={b}"),
                "",
            )
            .await;
        let x = xml(&x, 200);
        assert_eq!(x.matches("<request>").count(), 1);
        assert_eq!(tag(x, "service_request_id"), Some(b.as_str()));

        // Windows: W3C times with a zone; a `+` left unencoded still works.
        let now = Utc::now();
        let window = |from: DateTime<Utc>, to: DateTime<Utc>| {
            format!("?start_date={}&end_date={}", enc(&w3c(from)), enc(&w3c(to)))
        };
        assert_eq!(
            numbers(&get(window(now - Duration::hours(1), now + Duration::hours(1))).await).len(),
            3
        );
        assert_eq!(
            numbers(&get(window(now + Duration::hours(1), now + Duration::hours(2))).await).len(),
            0
        );
        let raw_plus = format!("?start_date={}", w3c(now - Duration::hours(1)));
        assert!(raw_plus.contains('+'));
        assert_eq!(numbers(&get(raw_plus).await).len(), 3);
        assert_eq!(
            numbers(&get(format!("?end_date={}", enc(&w3c(now - Duration::days(1))))).await).len(),
            0
        );
        let z = (now - Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
        assert_eq!(numbers(&get(format!("?start_date={z}")).await).len(), 3);
        // By default, the last 90 days.
        aged(&app, &a, 100).await;
        assert_eq!(numbers(&get(String::new()).await), [c.as_str(), b.as_str()]);
        let old = window(now - Duration::days(101), now - Duration::days(99));
        assert_eq!(numbers(&get(old).await), [a.as_str()]);
        // The old one is still found by its number.
        let one = app.get(&format!("/open311/v2/requests/{a}.json"), "").await;
        assert_eq!(one.expect(200)[0]["service_request_id"], a.as_str());

        // Bad arguments.
        expect_errors(&get("?status=pending".into()).await, 400);
        expect_errors(&get("?start_date=yesterday".into()).await, 400);
        expect_errors(&get("?start_date=2026-11-01T00:00:00".into()).await, 400);
        expect_errors(&get(window(now, now - Duration::days(1))).await, 400);
        expect_errors(&get(window(now - Duration::days(91), now)).await, 400);
        assert_eq!(
            expect_errors(&get("?status=x&end_date=never".into()).await, 400),
            2
        );
        expect_xml_errors(
            &app.get("/open311/v2/requests.xml?status=pending", "").await,
            400,
        );
        // Unknown requests: a hotline ticket's number, a free number, nonsense.
        expect_errors(
            &app.get(&format!("/open311/v2/requests/{hotline}.json"), "")
                .await,
            404,
        );
        expect_errors(
            &app.get("/open311/v2/requests/20261122O999999.json", "")
                .await,
            404,
        );
        expect_xml_errors(&app.get("/open311/v2/requests/nonsense.xml", "").await, 404);
        expect_errors(
            &app.get(&format!("/open311/v2/requests/{a}.html"), "").await,
            404,
        );
        let put = app
            .client
            .put(app.url("/open311/v2/requests.json"))
            .send()
            .await
            .expect("sent");
        assert_eq!(put.status().as_u16(), 400);

        // At most 1,000 answers.
        let appeals: Vec<_> = (0..1_001)
            .map(|i| {
                RawAppeal {
                    channel: Channel::Open311,
                    external_id: None,
                    category: Category::Report,
                    urgency: Urgency::Normal,
                    title: format!("批量 {i}"),
                    content: "批量".into(),
                    citizen: RawCitizen::default(),
                    address: None,
                    district: None,
                }
                .parse("test")
                .expect("appeal")
            })
            .collect();
        for chunk in appeals.chunks(250) {
            for r in app.app_state.store.create_tickets(chunk, Utc::now()).await {
                r.expect("created");
            }
        }
        let many = get(String::new()).await;
        assert_eq!(numbers(&many).len(), 1_000);
    }
);

open311!(
    refused_requests_answer_in_the_spec_form_and_leave_nothing_behind,
    Some(KEY),
    |app: TestApp| async move {
        let (service, _) = topics();
        let code = service.code.as_str();
        let path = "/open311/v2/requests.json";
        let ok = |extra: &[(&'static str, &'static str)]| {
            let mut f: Vec<(&str, &str)> = vec![
                ("api_key", KEY),
                ("service_code", code),
                ("lat", "28.68"),
                ("long", "115.89"),
            ];
            for (k, v) in extra {
                f.retain(|(key, _)| key != k);
                f.push((k, v));
            }
            f
        };
        // The key: wrong, missing, blank — in both formats.
        expect_errors(&submit(&app, path, &ok(&[("api_key", "wrong")])).await, 403);
        expect_xml_errors(
            &submit(
                &app,
                "/open311/v2/requests.xml",
                &ok(&[("api_key", "wrong")]),
            )
            .await,
            403,
        );
        let mut no_key = ok(&[]);
        no_key.retain(|(k, _)| *k != "api_key");
        expect_errors(&submit(&app, path, &no_key).await, 403);
        expect_errors(&submit(&app, path, &ok(&[("api_key", "")])).await, 403);
        // A wrong key is refused before anything else is looked at.
        expect_errors(
            &submit(
                &app,
                path,
                &[("api_key", "wrong"), ("service_code", "no_such_service")],
            )
            .await,
            403,
        );

        // The service.
        expect_errors(
            &submit(&app, path, &ok(&[("service_code", "no_such_service")])).await,
            404,
        );
        expect_xml_errors(
            &submit(
                &app,
                "/open311/v2/requests.xml",
                &ok(&[("service_code", "no_such_service")]),
            )
            .await,
            404,
        );
        expect_errors(&submit(&app, path, &ok(&[("service_code", "")])).await, 400);

        // The location.
        let nowhere = [("api_key", KEY), ("service_code", code)];
        expect_errors(&submit(&app, path, &nowhere).await, 400);
        expect_xml_errors(
            &submit(&app, "/open311/v2/requests.xml", &nowhere).await,
            400,
        );
        expect_errors(
            &submit(
                &app,
                path,
                &[("api_key", KEY), ("service_code", code), ("lat", "28.68")],
            )
            .await,
            400,
        );
        expect_errors(&submit(&app, path, &ok(&[("lat", "north")])).await, 400);
        expect_errors(&submit(&app, path, &ok(&[("long", "181")])).await, 400);

        // The fields.
        let too_long = "灯".repeat(4_001);
        let r = submit(
            &app,
            path,
            &[
                ("api_key", KEY),
                ("service_code", code),
                ("address_string", "东湖区"),
                ("description", &too_long),
            ],
        )
        .await;
        expect_errors(&r, 400);
        assert!(
            r.body[0]["description"].as_str().unwrap().contains("4,000"),
            "{}",
            r.body
        );
        expect_errors(
            &submit(&app, path, &ok(&[("description", "a\u{7}b")])).await,
            400,
        );
        expect_errors(
            &submit(&app, path, &ok(&[("media_url", "ftp://x.cn/1.jpg")])).await,
            400,
        );
        // Everything wrong at once is listed at once.
        let r = submit(
            &app,
            path,
            &ok(&[
                ("phone", "call me"),
                ("email", "nobody"),
                ("media_url", "javascript:x"),
            ]),
        )
        .await;
        assert_eq!(expect_errors(&r, 400), 3);

        // The body itself.
        let r = app
            .post_raw(
                path,
                "",
                "application/json",
                br#"{"api_key":"open311-test-key"}"#.to_vec(),
            )
            .await;
        expect_errors(&r, 400);
        let r = app
            .post_raw(path, "", FORM, b"api_key=\xff\xfe".to_vec())
            .await;
        expect_errors(&r, 400);
        let r = app.post_raw(path, "", FORM, vec![b'a'; 2 << 20]).await;
        expect_errors(&r, 400);

        assert_eq!(app.count_tickets().await, 0);
        let listed = app.get(path, "").await;
        assert_eq!(listed.expect(200), &json!([]));
        let rows = hotline::store::entities::open311_request::Entity::find()
            .all(&app.app_state.store.db)
            .await
            .expect("rows");
        assert!(rows.is_empty());
    }
);

open311!(
    without_a_configured_key_every_post_is_refused,
    None,
    |app: TestApp| async move {
        let (service, _) = topics();
        for key in ["", "anything", KEY] {
            let r = submit(
                &app,
                "/open311/v2/requests.json",
                &[
                    ("api_key", key),
                    ("service_code", &service.code),
                    ("address_string", "东湖区"),
                ],
            )
            .await;
            expect_errors(&r, 403);
        }
        assert_eq!(app.count_tickets().await, 0);
        // Reading needs no key.
        assert_eq!(app.get("/open311/v2/services.json", "").await.status, 200);
        assert_eq!(
            app.get("/open311/v2/requests.json", "").await.expect(200),
            &json!([])
        );
    }
);
