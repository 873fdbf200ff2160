//! 领导驾驶舱 over HTTP with the session cookie: who may open it, what the
//! figures count, a dept_head's own department only, the escalated lists,
//! the live fragment, and a bad period.

use chrono::{Duration, Utc};
use hotline::domain::lifecycle::Rules;
use hotline::jobs::sweeper::sweep;
use serde_json::json;

use crate::both;
use crate::helpers::*;

struct Html {
    status: u16,
    location: String,
    body: String,
}

async fn page(app: &TestApp, path: &str, token: &str) -> Html {
    let client = awc::Client::builder()
        .disable_redirects()
        .timeout(std::time::Duration::from_secs(30))
        .finish();
    let mut req = client
        .get(app.url(path))
        .insert_header(("accept", "text/html"));
    if !token.is_empty() {
        req = req.insert_header(("cookie", format!("hotline_session={token}")));
    }
    let mut res = req.send().await.expect("request sent");
    let location = res
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = res.body().limit(8 << 20).await.expect("body");
    Html {
        status: res.status().as_u16(),
        location,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// The text of the first element with `id`, tags stripped.
fn text_of(body: &str, id: &str) -> String {
    let at = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let rest = &body[at..];
    let rest = &rest[rest.find('>').map_or(0, |i| i + 1)..];
    let end = rest.find("</div></div>").unwrap_or(rest.len().min(600));
    let mut out = String::new();
    let mut tag = false;
    for c in rest[..end].chars() {
        match c {
            '<' => tag = true,
            '>' => {
                tag = false;
                out.push(' ');
            }
            c if !tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&#x2f;", "/")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A ticket of `department` taken through the whole loop to a satisfied,
/// resolved callback.
async fn closed_ticket(app: &TestApp, o: &Office, handler: &str, department: &str) -> i64 {
    let t = app
        .dispatched_ticket(&o.agent, &o.dispatcher, department, "路灯不亮")
        .await;
    let id = t["id"].as_i64().unwrap();
    app.post(&format!("/api/v1/tickets/{id}/sign"), handler, &json!({}))
        .await
        .expect(200);
    app.post(
        &format!("/api/v1/tickets/{id}/reply"),
        handler,
        &json!({"content": "已修复", "resolved": true}),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/v1/tickets/{id}/callback"),
        &o.dispatcher,
        &json!({"satisfaction": "satisfied", "resolved": true}),
    )
    .await
    .expect(200);
    id
}

both!(
    the_dashboard_counts_a_closed_ticket_and_is_for_figure_readers_only,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        closed_ticket(&app, &o, &o.water, "water").await;
        app.dispatched_ticket(&o.agent, &o.dispatcher, "gas", "燃气味")
            .await;

        let p = page(&app, "/dashboard", &o.leader).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("领导驾驶舱"));
        assert_eq!(text_of(&p.body, "kpi-intake"), "受理量 2 本期新登记工单");
        let sat = text_of(&p.body, "kpi-satisfaction");
        assert!(sat.contains("100.0% 1/1"), "{sat}");
        assert!(text_of(&p.body, "kpi-resolution").contains("100.0% 1/1"));
        assert!(p.body.contains("data-department=\"water\""));
        assert!(p.body.contains("data-department=\"gas\""));
        assert_eq!(p.body.matches("<svg").count(), 3, "three charts");
        assert!(p.body.contains("src=\"/static/dashboard.js\""));

        // The figures fragment alone, for the live reload.
        let live = page(&app, "/dashboard/live", &o.leader).await;
        assert_eq!(live.status, 200);
        assert!(live.body.contains("id=\"kpi-intake\"") && !live.body.contains("<html"));

        // Who may not: department handlers, agents; nobody logged out.
        for token in [&o.water, &o.agent] {
            assert_eq!(page(&app, "/dashboard", token).await.status, 403);
            assert_eq!(page(&app, "/dashboard/live", token).await.status, 403);
        }
        let out = page(&app, "/dashboard", "").await;
        assert_eq!(out.status, 303);
        assert!(
            out.location.starts_with("/login?next=/dashboard"),
            "{}",
            out.location
        );
        for token in [&o.supervisor, &o.dispatcher, &app.admin] {
            assert_eq!(page(&app, "/dashboard", token).await.status, 200);
        }

        // A dept_head sees their own department's figures only.
        let head = page(&app, "/dashboard", &o.water_head).await;
        assert_eq!(head.status, 200);
        assert!(head.body.contains("仅显示本单位数据"));
        assert!(head.body.contains("data-department=\"water\""));
        assert!(!head.body.contains("data-department=\"gas\""));
        assert!(
            !head.body.contains("id=\"hotspots\""),
            "hotspots are the office's"
        );

        // A period the form cannot read falls back to this month, saying so.
        let bad = page(&app, "/dashboard?from=yesterday&to=2026-01-01", &o.leader).await;
        assert_eq!(bad.status, 422);
        assert!(bad.body.contains("id=\"period-error\""));
        assert!(bad.body.contains("id=\"kpi-intake\""));
        // An explicit period that holds nothing shows zeros and dashes.
        let empty = page(&app, "/dashboard?from=2020-01-01&to=2020-01-31", &o.leader).await;
        assert_eq!(empty.status, 200);
        assert!(text_of(&empty.body, "kpi-intake").contains(" 0 "));
        assert!(text_of(&empty.body, "kpi-satisfaction").contains("— 0/0"));
    }
);

both!(
    overdue_and_supervised_tickets_are_listed_with_links,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let t = app
            .dispatched_ticket(&o.agent, &o.dispatcher, "water", "井盖缺失")
            .await;
        let id = t["id"].as_i64().unwrap();
        let no = t["ticket_no"].as_str().unwrap().to_owned();
        let s = &app.app_state;
        let rules = Rules {
            calendar: &s.calendar,
            sla: &s.settings.sla,
        };
        // Unsigned for a day: past the sign deadline (30 working minutes
        // to 2 working hours), not yet two working days late.
        sweep(
            &s.store,
            &rules,
            "http://hotline.test",
            Utc::now() + Duration::days(1),
        )
        .await
        .expect("sweep");
        let p = page(&app, "/dashboard", &o.leader).await;
        let overdue = &p.body[p.body.find("id=\"overdue-list\"").unwrap()..];
        let overdue = &overdue[..overdue.find("id=\"supervised-list\"").unwrap()];
        assert!(
            overdue.contains(&format!("<a href=\"/tickets/{id}\">{no}</a>")),
            "{overdue}"
        );
        assert!(overdue.contains("共 1 件"));
        // Ten days later it is under 督办.
        sweep(
            &s.store,
            &rules,
            "http://hotline.test",
            Utc::now() + Duration::days(10),
        )
        .await
        .expect("sweep");
        let p = page(&app, "/dashboard", &o.supervisor).await;
        let supervised = &p.body[p.body.find("id=\"supervised-list\"").unwrap()..];
        assert!(supervised.contains(&format!("/tickets/{id}")));
        assert!(supervised.contains("共 1 件"));
        // The water head sees it; another department's head would not.
        let head = page(&app, "/dashboard", &o.water_head).await;
        assert!(head.body.contains(&format!("/tickets/{id}")));
    }
);
