use serde_json::json;

use crate::both;
use crate::helpers::*;

both!(
    department_users_see_only_their_tickets_and_others_get_404,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let mut ids = Vec::new();
        for (i, dept) in ["water", "water", "gas"].iter().enumerate() {
            let id = app
                .dispatched_ticket(&o.agent, &o.dispatcher, dept, &format!("工单{i}"))
                .await["id"]
                .as_i64()
                .unwrap();
            ids.push(id);
        }
        let unassigned = app
            .post("/api/v1/tickets", &o.agent, &appeal("未派"))
            .await
            .expect(201)["id"]
            .as_i64()
            .unwrap();
        let water = app.get("/api/v1/tickets", &o.water).await;
        assert_eq!(water.expect(200)["total"], 2);
        let gas = app.get("/api/v1/tickets", &o.gas).await;
        assert_eq!(gas.expect(200)["total"], 1);
        app.get(&format!("/api/v1/tickets/{}", ids[2]), &o.water)
            .await
            .expect_problem(404, "not_found");
        app.get(&format!("/api/v1/tickets/{unassigned}"), &o.gas)
            .await
            .expect_problem(404, "not_found");
        app.post(
            &format!("/api/v1/tickets/{}/reveal", ids[2]),
            &o.water,
            &json!({"reason": "回访"}),
        )
        .await
        .expect_problem(404, "not_found");
        let all = app.get("/api/v1/tickets", &o.leader).await;
        assert_eq!(all.expect(200)["total"], 4);
        // Filters.
        let r = app
            .get(
                "/api/v1/tickets?state=dispatched&department=water&per_page=1",
                &o.dispatcher,
            )
            .await;
        let r = r.expect(200);
        assert_eq!(r["total"], 2);
        assert_eq!(r["items"].as_array().unwrap().len(), 1);
        assert_eq!(r["per_page"], 1);
        let r = app
            .get("/api/v1/tickets?state=registered", &o.dispatcher)
            .await;
        assert_eq!(r.expect(200)["total"], 1);
        let r = app.get("/api/v1/tickets?overdue=true", &o.dispatcher).await;
        assert_eq!(r.expect(200)["total"], 0);
        let r = app
            .get("/api/v1/tickets?q=%E5%B7%A5%E5%8D%951", &o.dispatcher)
            .await; // 工单1
        assert_eq!(r.expect(200)["total"], 1);
        let r = app
            .get(
                "/api/v1/tickets?channel=hotline&category=complaint&escalation_level=0",
                &o.dispatcher,
            )
            .await;
        assert_eq!(r.expect(200)["total"], 4);
    }
);

both!(
    citizen_data_is_masked_for_departments_and_revealed_with_a_logged_reason,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let id = app
            .post("/api/v1/tickets", &o.agent, &appeal("隐私"))
            .await
            .expect(201)["id"]
            .as_i64()
            .unwrap();
        app.post(
            &format!("/api/v1/tickets/{id}/dispatch"),
            &o.dispatcher,
            &json!({"department": "water"}),
        )
        .await
        .expect(200);
        let t = app.get(&format!("/api/v1/tickets/{id}"), &o.water).await;
        let t = t.expect(200);
        assert_eq!(t["citizen"]["phone"], "138****1234");
        assert_eq!(t["citizen"]["name"], "张*");
        assert!(t.get("query_code").is_none());
        let t = app.get(&format!("/api/v1/tickets/{id}"), &o.leader).await;
        assert_eq!(t.expect(200)["citizen"]["phone"], "138****1234");
        let t = app.get(&format!("/api/v1/tickets/{id}"), &o.agent).await;
        assert_eq!(t.expect(200)["citizen"]["phone"], "13800001234");
        app.post(
            &format!("/api/v1/tickets/{id}/reveal"),
            &o.water,
            &json!({"reason": " "}),
        )
        .await
        .expect_problem(422, "validation_failed");
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/reveal"),
                &o.water,
                &json!({"reason": "需电话核实地址"}),
            )
            .await;
        assert_eq!(r.expect(200)["citizen"]["phone"], "13800001234");
        app.get("/api/v1/access-log", &o.water)
            .await
            .expect_problem(403, "forbidden");
        let log = app
            .get(&format!("/api/v1/access-log?ticket_id={id}"), &o.supervisor)
            .await;
        let log = log.expect(200);
        assert_eq!(log["total"], 1);
        assert_eq!(log["items"][0]["username"], "water1");
        assert_eq!(log["items"][0]["reason"], "需电话核实地址");
    }
);

/// `(total for the department's view of one state)`, over the list API.
async fn seen(app: &TestApp, token: &str, state: &str) -> u64 {
    app.get(&format!("/api/v1/tickets?state={state}"), token)
        .await
        .expect(200)["total"]
        .as_u64()
        .unwrap()
}

both!(
    a_departments_tabs_follow_its_tickets_state_through_return_and_redispatch,
    |app: TestApp| async move {
        // The scope rows carry the ticket's state for the inbox's tabs; they
        // must follow every transition, also for a department that handed
        // the ticket back and still sees it.
        let o = Office::new(&app).await;
        let id = app
            .dispatched_ticket(&o.agent, &o.dispatcher, "gas", "漏气")
            .await["id"]
            .as_i64()
            .unwrap();
        assert_eq!(seen(&app, &o.gas, "dispatched").await, 1);
        assert_eq!(seen(&app, &o.water, "dispatched").await, 0);
        app.post(
            &format!("/api/v1/tickets/{id}/return"),
            &o.gas,
            &json!({"reason": "应属供水"}),
        )
        .await
        .expect(200);
        assert_eq!(seen(&app, &o.gas, "dispatched").await, 0);
        assert_eq!(seen(&app, &o.gas, "returned").await, 1);
        app.post(
            &format!("/api/v1/tickets/{id}/dispatch"),
            &o.dispatcher,
            &json!({"department": "water"}),
        )
        .await
        .expect(200);
        for (tok, n) in [(&o.gas, 1), (&o.water, 1)] {
            assert_eq!(seen(&app, tok, "dispatched").await, n);
            assert_eq!(seen(&app, tok, "returned").await, 0);
        }
        app.post(&format!("/api/v1/tickets/{id}/sign"), &o.water, &json!({}))
            .await
            .expect(200);
        app.post(
            &format!("/api/v1/tickets/{id}/reply"),
            &o.water,
            &json!({"content": "已处理", "resolved": true}),
        )
        .await
        .expect(200);
        for tok in [&o.gas, &o.water] {
            assert_eq!(seen(&app, tok, "dispatched").await, 0);
            assert_eq!(seen(&app, tok, "in_progress").await, 0);
            assert_eq!(seen(&app, tok, "replied").await, 1);
            // The list's rows agree with its count, and a second filter
            // (which counts through the join) agrees with the first.
            let r = app
                .get("/api/v1/tickets?state=replied&channel=hotline", tok)
                .await;
            let r = r.expect(200);
            assert_eq!(r["total"], 1);
            assert_eq!(r["items"][0]["id"], id);
            assert_eq!(r["items"][0]["state"], "replied");
        }
        // A second ticket, still waiting to be signed and past nothing yet.
        app.dispatched_ticket(&o.agent, &o.dispatcher, "water", "停水")
            .await;
        assert_eq!(seen(&app, &o.water, "dispatched").await, 1);
        let all = app.get("/api/v1/tickets", &o.water).await;
        assert_eq!(all.expect(200)["total"], 2);
        let late = app.get("/api/v1/tickets?overdue=false", &o.water).await;
        assert_eq!(late.expect(200)["total"], 2);
        let late = app.get("/api/v1/tickets?overdue=true", &o.water).await;
        assert_eq!(late.expect(200)["total"], 0);
    }
);

both!(
    a_capped_count_stops_one_past_its_cap_and_pages_still_list_everything,
    |app: TestApp| async move {
        use hotline::domain::types::TicketState;
        use hotline::store::tickets::{Scope, TicketFilter};
        let o = Office::new(&app).await;
        for i in 0..5 {
            app.dispatched_ticket(&o.agent, &o.dispatcher, "water", &format!("积水{i}"))
                .await;
            app.post("/api/v1/tickets", &o.agent, &appeal(&format!("待派{i}")))
                .await
                .expect(201);
        }
        let store = &app.app_state.store;
        let now = chrono::Utc::now();
        for (scope, state) in [
            (Scope::All, TicketState::Registered),
            (Scope::Department("water".into()), TicketState::Dispatched),
        ] {
            for (cap, want) in [
                (None, 5),
                (Some(2), 3),
                (Some(4), 5),
                (Some(5), 5),
                (Some(9), 5),
            ] {
                let f = TicketFilter {
                    state: Some(state),
                    page: 2,
                    per_page: 2,
                    count_at_most: cap,
                    ..TicketFilter::default()
                };
                let (rows, total) = store.list_tickets(&f, &scope, now).await.unwrap();
                assert_eq!(total, want, "{scope:?} {state:?} at most {cap:?}");
                // The cap limits the count, never the rows of a page.
                assert_eq!(rows.len(), 2);
                assert!(rows.iter().all(|t| t.state == state.as_str()));
            }
        }
        // The same through a filter that counts through the join.
        let f = TicketFilter {
            state: Some(TicketState::Dispatched),
            channel: Some(hotline::domain::types::Channel::Hotline),
            page: 1,
            per_page: 50,
            count_at_most: Some(3),
            ..TicketFilter::default()
        };
        let scope = Scope::Department("water".into());
        let (rows, total) = store.list_tickets(&f, &scope, now).await.unwrap();
        assert_eq!((rows.len(), total), (5, 4));
    }
);
