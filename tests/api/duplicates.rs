//! Repeat appeals (重复件): a new appeal from the same phone with similar
//! text, or naming the same address with the same category, within 72 hours
//! carries `possible_duplicate_of` (the earlier ticket's number) for the
//! dispatcher to merge — whatever channel either came through.

use chrono::{Duration, Utc};
use hotline::store::entities::ticket;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::both;
use crate::helpers::*;

const SECRET: &str = "duplicates-wenzheng-secret";

fn appeal_from(phone: Option<&str>, address: Option<&str>, title: &str, content: &str) -> Value {
    json!({
        "channel": "hotline",
        "category": "complaint",
        "urgency": "normal",
        "title": title,
        "content": content,
        "citizen": {"name": "李四", "phone": phone},
        "address": address,
    })
}

async fn register(app: &TestApp, agent: &str, body: &Value) -> Value {
    app.post("/api/v1/tickets", agent, body)
        .await
        .expect(201)
        .clone()
}

/// Makes a ticket look registered `hours` ago.
async fn age(app: &TestApp, id: i64, hours: i64) {
    ticket::Entity::update_many()
        .col_expr(
            ticket::Column::CreatedAt,
            Expr::value(Utc::now() - Duration::hours(hours)),
        )
        .filter(ticket::Column::Id.eq(id))
        .exec(&app.app_state.store.db)
        .await
        .expect("age a ticket");
}

both!(
    same_phone_with_similar_text_is_flagged_and_other_text_is_not,
    |app: TestApp| async move {
        let agent = app.user("agent1", "agent", None).await;
        let first = register(
            &app,
            &agent,
            &appeal_from(
                Some("13812345678"),
                None,
                "小区门口路灯不亮",
                "市民来电反映：小区门口路灯不亮，晚上很黑，请尽快处理。",
            ),
        )
        .await;
        assert_eq!(first["possible_duplicate_of"], Value::Null);
        let again = register(
            &app,
            &agent,
            &appeal_from(
                Some("13812345678"),
                None,
                "路灯不亮",
                "市民来电反映：小区门口路灯不亮，已经一个星期了，还没有人来修。",
            ),
        )
        .await;
        assert_eq!(again["possible_duplicate_of"], first["ticket_no"]);
        // Read back, and in lists: the flag is stored.
        let id = again["id"].as_i64().unwrap();
        let read = app.get(&format!("/api/v1/tickets/{id}"), &agent).await;
        assert_eq!(
            read.expect(200)["possible_duplicate_of"],
            first["ticket_no"]
        );
        // The same citizen about something else: not a repeat.
        let other = register(
            &app,
            &agent,
            &appeal_from(
                Some("13812345678"),
                None,
                "公积金提取咨询",
                "市民来电反映：想咨询住房公积金提取需要哪些材料，请尽快处理。",
            ),
        )
        .await;
        assert_eq!(other["possible_duplicate_of"], Value::Null);
        // Someone else with the same words: not by phone.
        let stranger = register(
            &app,
            &agent,
            &appeal_from(
                Some("13900000000"),
                None,
                "小区门口路灯不亮",
                "市民来电反映：小区门口路灯不亮，晚上很黑，请尽快处理。",
            ),
        )
        .await;
        assert_eq!(stranger["possible_duplicate_of"], Value::Null);
        // The dispatcher merges by the number the flag gives.
        let dispatcher = app.user("dispatcher1", "dispatcher", None).await;
        let merged = app
            .post(
                &format!("/api/v1/tickets/{id}/merge"),
                &dispatcher,
                &json!({"into": again["possible_duplicate_of"]}),
            )
            .await;
        assert_eq!(merged.expect(200)["merged_into"], first["id"]);
    }
);

both!(
    same_address_and_category_is_flagged,
    |app: TestApp| async move {
        let agent = app.user("agent1", "agent", None).await;
        let first = register(
            &app,
            &agent,
            &appeal_from(
                Some("13811110000"),
                Some("东湖区阳明路100号"),
                "夜间施工噪音",
                "工地夜间施工，噪音很大。",
            ),
        )
        .await;
        let neighbour = register(
            &app,
            &agent,
            &appeal_from(
                Some("13822220000"),
                Some("东湖区阳明路100号"),
                "工地扰民",
                "晚上十一点还在打桩。",
            ),
        )
        .await;
        assert_eq!(neighbour["possible_duplicate_of"], first["ticket_no"]);
        let anonymous = register(
            &app,
            &agent,
            &appeal_from(None, Some("东湖区阳明路100号"), "施工", "半夜施工。"),
        )
        .await;
        assert_eq!(anonymous["possible_duplicate_of"], first["ticket_no"]);
        // Same place, another kind of appeal: not a repeat.
        let mut consult = appeal_from(
            Some("13833330000"),
            Some("东湖区阳明路100号"),
            "施工许可",
            "想问这个工地的施工许可时间。",
        );
        consult["category"] = json!("consult");
        assert_eq!(
            register(&app, &agent, &consult).await["possible_duplicate_of"],
            Value::Null
        );
        let elsewhere = register(
            &app,
            &agent,
            &appeal_from(
                Some("13844440000"),
                Some("东湖区阳明路200号"),
                "夜间施工噪音",
                "另一个工地。",
            ),
        )
        .await;
        assert_eq!(elsewhere["possible_duplicate_of"], Value::Null);
    }
);

both!(
    nothing_older_than_72_hours_is_a_repeat,
    |app: TestApp| async move {
        let agent = app.user("agent1", "agent", None).await;
        let body = appeal_from(
            Some("13855556666"),
            Some("东湖区八一大道1号"),
            "井盖缺失",
            "八一大道1号门口井盖缺失，存在安全隐患。",
        );
        let old = register(&app, &agent, &body).await;
        age(&app, old["id"].as_i64().unwrap(), 73).await;
        let later = register(&app, &agent, &body).await;
        assert_eq!(later["possible_duplicate_of"], Value::Null);
        // Within the window it would have been (71 hours).
        age(&app, later["id"].as_i64().unwrap(), 71).await;
        let third = register(&app, &agent, &body).await;
        assert_eq!(third["possible_duplicate_of"], later["ticket_no"]);
    }
);

both!(
    repeats_are_found_across_channels,
    |app: TestApp| async move {
        let app = TestApp::spawn_on(
            app.backend,
            Some(&app.db_url),
            &[("channels.wenzheng.secret", SECRET)],
        )
        .await
        .expect("instance with the wenzheng secret");
        app.post(
            "/api/v1/departments",
            &app.admin,
            &json!({"code": "donghu", "name": "东湖区人民政府", "kind": "district"}),
        )
        .await
        .expect(201);
        let agent = app.user("agent1", "agent", None).await;
        let call = register(
            &app,
            &agent,
            &appeal_from(
                Some("13977778888"),
                None,
                "小区门口道路积水",
                "东湖区某小区门口道路积水严重，雨天无法通行。",
            ),
        )
        .await;
        let body = serde_json::to_vec(&json!({
            "post_id": "dup-1",
            "title": "小区门口道路积水",
            "content": "东湖区某小区门口道路积水严重，雨天根本无法通行，请处理。",
            "poster": {"nickname": "热心市民", "phone": "13977778888"},
            "region": "东湖区",
            "posted_at": "2026-11-22T09:00:00+08:00",
        }))
        .unwrap();
        let ts = Utc::now().timestamp().to_string();
        let sig = hotline::domain::wenzheng::sign(SECRET, &ts, &body);
        let pushed = app
            .post_with_headers(
                "/api/v1/channels/wenzheng/appeals",
                &[("X-Wenzheng-Timestamp", ts), ("X-Wenzheng-Signature", sig)],
                body,
            )
            .await;
        let id = pushed.expect(201)["id"].as_i64().unwrap();
        let t = app.get(&format!("/api/v1/tickets/{id}"), &agent).await;
        let t = t.expect(200);
        assert_eq!(t["channel"], "wenzheng");
        assert_eq!(t["possible_duplicate_of"], call["ticket_no"]);
    }
);

both!(
    repeats_within_one_intake_batch_are_flagged,
    |app: TestApp| async move {
        // One group-commit batch, as the intake writers form under load: the
        // later appeals point at the first, which is not yet stored.
        let body = appeal_from(
            Some("13866667777"),
            None,
            "楼上漏水",
            "楼上住户家中水管漏水，渗到我家天花板。",
        );
        let raw: hotline::domain::appeal::RawAppeal = serde_json::from_value(body).unwrap();
        let item = raw.parse("agent1").unwrap();
        let batch = vec![item.clone(), item.clone(), item];
        let created = app
            .app_state
            .store
            .create_tickets(&batch, hotline::store::now())
            .await;
        let tickets: Vec<_> = created.into_iter().map(|r| r.unwrap().ticket).collect();
        assert_eq!(tickets[0].possible_duplicate_of, None);
        for t in &tickets[1..] {
            assert_eq!(
                t.possible_duplicate_of.as_deref(),
                Some(tickets[0].ticket_no.as_str())
            );
        }
    }
);
