use serde_json::{Value, json};

use crate::both;
use crate::helpers::*;

async fn new_ticket(app: &TestApp, office: &Office, title: &str) -> i64 {
    app.post("/api/v1/tickets", &office.agent, &appeal(title))
        .await
        .expect(201)["id"]
        .as_i64()
        .unwrap()
}

async fn act(app: &TestApp, token: &str, id: i64, action: &str, body: Value) -> Resp {
    app.post(&format!("/api/v1/tickets/{id}/{action}"), token, &body)
        .await
}

fn kinds(t: &Value) -> Vec<String> {
    t["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

both!(
    a_ticket_goes_from_call_to_closed_with_one_event_per_step,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let id = new_ticket(&app, &o, "停水三天").await;
        let t = act(
            &app,
            &o.dispatcher,
            id,
            "dispatch",
            json!({"department": "water", "co_departments": ["gas"], "note": "请尽快"}),
        )
        .await;
        let t = t.expect(200);
        assert_eq!(t["state"], "dispatched");
        assert_eq!(t["department"], "water");
        assert_eq!(t["co_departments"], json!(["gas"]));
        assert!(t["sign_due_at"].is_string() && t["reply_due_at"].is_string());
        let t = act(&app, &o.water, id, "sign", json!({})).await;
        assert_eq!(t.expect(200)["state"], "in_progress");
        let t = act(
            &app,
            &o.water,
            id,
            "reply",
            json!({"content": "已恢复供水", "resolved": true}),
        )
        .await;
        let t = t.expect(200);
        assert_eq!(t["state"], "replied");
        assert_eq!(t["reply"]["content"], "已恢复供水");
        let t = act(
            &app,
            &o.dispatcher,
            id,
            "callback",
            json!({"satisfaction": "satisfied", "resolved": true}),
        )
        .await;
        let t = t.expect(200);
        assert_eq!(t["state"], "closed");
        assert_eq!(t["resolution"], "answered");
        assert_eq!(t["satisfaction"], "satisfied");
        assert_eq!(
            kinds(t),
            ["created", "dispatched", "signed", "replied", "callback"]
        );
        let events = t["events"].as_array().unwrap();
        assert_eq!(events[1]["from_state"], "registered");
        assert_eq!(events[1]["to_state"], "dispatched");
        assert_eq!(events[1]["actor"], "dispatcher1");
        assert_eq!(events[1]["department"], "water");
        assert_eq!(events[2]["actor"], "water1");
        for a in ["sign", "reply", "dispatch", "callback"] {
            let tok = if a == "dispatch" || a == "callback" {
                &o.dispatcher
            } else {
                &o.water
            };
            act(&app, tok, id, a, json!({"department": "water", "content": "x", "resolved": true, "satisfaction": "satisfied"}))
            .await
            .expect_problem(409, "invalid_transition");
        }
    }
);

both!(
    actions_out_of_order_or_by_the_wrong_role_are_refused,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let id = new_ticket(&app, &o, "顺序").await;
        act(&app, &o.water, id, "sign", json!({}))
            .await
            .expect_problem(404, "not_found");
        act(
            &app,
            &o.agent,
            id,
            "dispatch",
            json!({"department": "water"}),
        )
        .await
        .expect_problem(403, "forbidden");
        act(
            &app,
            &o.leader,
            id,
            "dispatch",
            json!({"department": "water"}),
        )
        .await
        .expect_problem(403, "forbidden");
        act(
            &app,
            &o.dispatcher,
            id,
            "dispatch",
            json!({"department": "nowhere"}),
        )
        .await
        .expect_problem(422, "validation_failed");
        act(
            &app,
            &o.dispatcher,
            id,
            "dispatch",
            json!({"department": "water"}),
        )
        .await
        .expect(200);
        act(
            &app,
            &o.water,
            id,
            "reply",
            json!({"content": "先答复", "resolved": true}),
        )
        .await
        .expect_problem(409, "invalid_transition");
        // The co-department cannot act for the lead; the dispatcher cannot sign.
        act(&app, &o.dispatcher, id, "sign", json!({}))
            .await
            .expect_problem(403, "forbidden");
        act(&app, &o.water_head, id, "sign", json!({}))
            .await
            .expect(200);
        act(
            &app,
            &o.dispatcher,
            id,
            "close",
            json!({"resolution": "direct_answer", "note": "x"}),
        )
        .await
        .expect_problem(409, "invalid_transition");
        // Nothing refused left a trace.
        let t = app
            .get(&format!("/api/v1/tickets/{id}"), &o.dispatcher)
            .await;
        assert_eq!(kinds(t.expect(200)), ["created", "dispatched", "signed"]);
    }
);

both!(
    returns_are_limited_and_the_last_dispatch_is_final,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let id = new_ticket(&app, &o, "退单").await;
        act(
            &app,
            &o.dispatcher,
            id,
            "dispatch",
            json!({"department": "gas"}),
        )
        .await
        .expect(200);
        act(&app, &o.gas, id, "return", json!({"reason": ""}))
            .await
            .expect_problem(422, "validation_failed");
        let t = act(&app, &o.gas, id, "return", json!({"reason": "不属于燃气"})).await;
        let t = t.expect(200);
        assert_eq!(t["state"], "returned");
        assert_eq!(t["return_count"], 1);
        assert_eq!(t["department"], Value::Null);
        // The department that returned it still sees it (it once was theirs).
        app.get(&format!("/api/v1/tickets/{id}"), &o.gas)
            .await
            .expect(200);
        act(
            &app,
            &o.dispatcher,
            id,
            "dispatch",
            json!({"department": "water"}),
        )
        .await
        .expect(200);
        act(&app, &o.water, id, "sign", json!({})).await.expect(200);
        act(&app, &o.water, id, "return", json!({"reason": "应属燃气"}))
            .await
            .expect(200);
        let t = act(
            &app,
            &o.dispatcher,
            id,
            "dispatch",
            json!({"department": "gas"}),
        )
        .await;
        assert_eq!(t.expect(200)["final_dispatch"], true);
        act(&app, &o.gas, id, "return", json!({"reason": "再退"}))
            .await
            .expect_problem(409, "invalid_transition");
    }
);

both!(
    an_approved_extension_moves_the_reply_deadline_by_working_days,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let id = new_ticket(&app, &o, "延期").await;
        act(
            &app,
            &o.dispatcher,
            id,
            "dispatch",
            json!({"department": "water"}),
        )
        .await
        .expect(200);
        act(&app, &o.water, id, "sign", json!({})).await.expect(200);
        let r = act(
            &app,
            &o.water,
            id,
            "extensions",
            json!({"working_days": 3, "reason": "需协调施工"}),
        )
        .await;
        let ext = r.expect(201).clone();
        assert_eq!(ext["status"], "pending");
        assert_eq!(ext["working_days"], 3);
        act(
            &app,
            &o.water,
            id,
            "extensions",
            json!({"working_days": 2, "reason": "again"}),
        )
        .await
        .expect_problem(409, "conflict");
        act(
            &app,
            &o.water,
            id,
            "extensions",
            json!({"working_days": 0, "reason": "zero"}),
        )
        .await
        .expect_problem(422, "validation_failed");
        let ext_id = ext["id"].as_i64().unwrap();
        let before = app
            .get(&format!("/api/v1/tickets/{id}"), &o.dispatcher)
            .await
            .expect(200)["reply_due_at"]
            .clone();
        let path = format!("/api/v1/tickets/{id}/extensions/{ext_id}/decision");
        app.post(&path, &o.water, &json!({"approve": true}))
            .await
            .expect_problem(403, "forbidden");
        let t = app
            .post(
                &path,
                &o.dispatcher,
                &json!({"approve": true, "note": "同意"}),
            )
            .await;
        let t = t.expect(200);
        let cal = &app.app_state.calendar;
        let old = chrono::DateTime::parse_from_rfc3339(before.as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc);
        let want = cal.due(
            old,
            hotline::domain::calendar::WorkingDuration::WorkingDays(3),
        );
        let got =
            chrono::DateTime::parse_from_rfc3339(t["reply_due_at"].as_str().unwrap()).unwrap();
        assert_eq!(got, want);
        assert_eq!(t["extension_count"], 1);
        assert_eq!(t["extensions"][0]["status"], "approved");
        app.post(&path, &o.dispatcher, &json!({"approve": false}))
            .await
            .expect_problem(409, "invalid_transition");
        app.post(
            &format!("/api/v1/tickets/{id}/extensions/99999/decision"),
            &o.dispatcher,
            &json!({"approve": true}),
        )
        .await
        .expect_problem(404, "not_found");
    }
);

both!(
    a_dissatisfied_callback_reopens_until_reworks_run_out,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let id = new_ticket(&app, &o, "重办").await;
        act(
            &app,
            &o.dispatcher,
            id,
            "dispatch",
            json!({"department": "water"}),
        )
        .await
        .expect(200);
        act(&app, &o.water, id, "sign", json!({})).await.expect(200);
        for round in 1..=2 {
            act(
                &app,
                &o.water,
                id,
                "reply",
                json!({"content": "已处理", "resolved": false}),
            )
            .await
            .expect(200);
            let t = act(
                &app,
                &o.dispatcher,
                id,
                "callback",
                json!({"satisfaction": "dissatisfied", "resolved": false}),
            )
            .await;
            let t = t.expect(200);
            assert_eq!(t["state"], "in_progress");
            assert_eq!(t["department"], "water");
            assert_eq!(t["rework_count"], round);
            assert_eq!(t["reply"], Value::Null);
        }
        act(
            &app,
            &o.water,
            id,
            "reply",
            json!({"content": "第三次", "resolved": false}),
        )
        .await
        .expect(200);
        let t = act(
            &app,
            &o.dispatcher,
            id,
            "callback",
            json!({"satisfaction": "dissatisfied", "resolved": false}),
        )
        .await;
        let t = t.expect(200);
        assert_eq!(t["state"], "closed");
        assert_eq!(t["escalation_level"], 3, "flagged for 督办");
        assert_eq!(kinds(t).iter().filter(|k| *k == "reopened").count(), 2);
    }
);

both!(
    direct_answers_rejections_and_merges_close_without_dispatch,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let a = new_ticket(&app, &o, "咨询").await;
        act(
            &app,
            &o.agent,
            a,
            "close",
            json!({"resolution": "direct_answer"}),
        )
        .await
        .expect_problem(422, "validation_failed");
        act(
            &app,
            &o.agent,
            a,
            "close",
            json!({"resolution": "answered", "note": "x"}),
        )
        .await
        .expect_problem(422, "validation_failed");
        let t = act(
            &app,
            &o.agent,
            a,
            "close",
            json!({"resolution": "direct_answer", "note": "已答复政策"}),
        )
        .await;
        assert_eq!(t.expect(200)["resolution"], "direct_answer");
        let b = new_ticket(&app, &o, "报警").await;
        let t = act(
            &app,
            &o.dispatcher,
            b,
            "close",
            json!({"resolution": "transferred_emergency", "note": "转110"}),
        )
        .await;
        assert_eq!(t.expect(200)["state"], "closed");
        let c = new_ticket(&app, &o, "重复").await;
        let d = new_ticket(&app, &o, "原件").await;
        act(&app, &o.dispatcher, c, "merge", json!({"into": c}))
            .await
            .expect_problem(422, "validation_failed");
        let t = act(&app, &o.dispatcher, c, "merge", json!({"into": d})).await;
        let t = t.expect(200);
        assert_eq!(t["state"], "merged");
        assert_eq!(t["merged_into"], d);
        act(&app, &o.dispatcher, d, "merge", json!({"into": c}))
            .await
            .expect_problem(409, "invalid_transition");
    }
);

both!(
    anonymous_appeals_close_at_reply_and_cannot_be_called_back,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let mut a = appeal("匿名");
        a["citizen"] = json!({});
        let id = app.post("/api/v1/tickets", &o.agent, &a).await.expect(201)["id"]
            .as_i64()
            .unwrap();
        act(
            &app,
            &o.dispatcher,
            id,
            "dispatch",
            json!({"department": "water"}),
        )
        .await
        .expect(200);
        act(&app, &o.water, id, "sign", json!({})).await.expect(200);
        let t = act(
            &app,
            &o.water,
            id,
            "reply",
            json!({"content": "已处理", "resolved": true}),
        )
        .await;
        let t = t.expect(200);
        assert_eq!(t["state"], "closed");
        assert_eq!(t["resolution"], "answered");
        act(
            &app,
            &o.dispatcher,
            id,
            "callback",
            json!({"satisfaction": "satisfied", "resolved": true}),
        )
        .await
        .expect_problem(409, "invalid_transition");
    }
);

both!(
    co_departments_see_and_note_but_cannot_sign,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let id = new_ticket(&app, &o, "协办").await;
        act(
            &app,
            &o.dispatcher,
            id,
            "dispatch",
            json!({"department": "water", "co_departments": ["gas"]}),
        )
        .await
        .expect(200);
        app.get(&format!("/api/v1/tickets/{id}"), &o.gas)
            .await
            .expect(200);
        act(&app, &o.gas, id, "sign", json!({}))
            .await
            .expect_problem(403, "forbidden");
        let t = act(
            &app,
            &o.gas,
            id,
            "notes",
            json!({"content": "燃气管线已排查"}),
        )
        .await;
        assert_eq!(kinds(t.expect(200)).last().unwrap(), "note");
        act(&app, &o.leader, id, "notes", json!({"content": "领导批示"}))
            .await
            .expect_problem(403, "forbidden");
    }
);
