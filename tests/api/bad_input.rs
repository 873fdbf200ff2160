use serde_json::json;

use crate::both;
use crate::helpers::*;

both!(
    bad_bodies_get_problem_json_and_change_nothing,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let json_ct = "application/json";
        app.post_raw("/api/v1/tickets", &o.agent, json_ct, b"{not json".to_vec())
            .await
            .expect_problem(400, "malformed_json");
        app.post_raw("/api/v1/tickets", &o.agent, json_ct, b"".to_vec())
            .await
            .expect_problem(400, "malformed_json");
        let mut a = appeal("坏输入");
        a["category"] = json!("gossip");
        app.post("/api/v1/tickets", &o.agent, &a)
            .await
            .expect_problem(422, "validation_failed");
        let mut a = appeal("坏输入");
        a.as_object_mut().unwrap().remove("title");
        app.post("/api/v1/tickets", &o.agent, &a)
            .await
            .expect_problem(422, "validation_failed");
        let mut a = appeal("坏输入");
        a["citizen"]["phone"] = json!("call me maybe");
        let r = app.post("/api/v1/tickets", &o.agent, &a).await;
        r.expect_problem(422, "validation_failed");
        assert!(r.body["detail"].as_str().unwrap().contains("citizen.phone"));
        let mut a = appeal("坏输入");
        a["title"] = json!("   ");
        app.post("/api/v1/tickets", &o.agent, &a)
            .await
            .expect_problem(422, "validation_failed");
        let mut a = appeal("坏输入");
        a["urgency"] = json!(7);
        app.post("/api/v1/tickets", &o.agent, &a)
            .await
            .expect_problem(422, "validation_failed");
        let big = "长".repeat(400_000);
        let mut a = appeal("太大");
        a["content"] = json!(big);
        app.post("/api/v1/tickets", &o.agent, &a)
            .await
            .expect_problem(413, "payload_too_large");
        let mut a = appeal("稍长");
        a["content"] = json!("字".repeat(10_001));
        app.post("/api/v1/tickets", &o.agent, &a)
            .await
            .expect_problem(422, "validation_failed");
        assert_eq!(app.count_tickets().await, 0, "nothing half-written");
    }
);

both!(
    bad_paths_methods_and_queries_get_problem_json,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        app.get("/api/v1/tickets/abc", &o.agent)
            .await
            .expect_problem(404, "not_found");
        app.get("/api/v1/tickets/-1", &o.agent)
            .await
            .expect_problem(404, "not_found");
        app.get("/api/v1/tickets/99999999999999999999", &o.agent)
            .await
            .expect_problem(404, "not_found");
        app.get("/api/v1/tickets/42", &o.agent)
            .await
            .expect_problem(404, "not_found");
        app.post("/api/v1/tickets/42/sign", &o.water, &json!({}))
            .await
            .expect_problem(404, "not_found");
        app.get("/api/v1/nothing-here", &o.agent)
            .await
            .expect_problem(404, "not_found");
        app.get("/api/v1/tickets/1/sign", &o.agent)
            .await
            .expect_problem(405, "method_not_allowed");
        for q in [
            "per_page=501",
            "per_page=0",
            "page=0",
            "state=lost",
            "overdue=maybe",
            "created_from=yesterday",
            "escalation_level=9",
            "department=Bad-Code",
        ] {
            app.get(&format!("/api/v1/tickets?{q}"), &o.agent)
                .await
                .expect_problem(422, "validation_failed");
        }
        app.post(
            "/api/v1/tickets/1/dispatch",
            &o.dispatcher,
            &json!({"department": 5}),
        )
        .await
        .expect_problem(422, "validation_failed");
    }
);

both!(
    pages_past_the_last_servable_one_are_refused_on_every_list,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        // `(page - 1) * per_page` overflowed and killed the request (found
        // by tests/schemathesis); now anything past page 1,000,000 is 422.
        for list in [
            "/api/v1/tickets",
            "/api/v1/outbox",
            "/api/v1/access-log",
            "/api/v1/catalogue/versions",
        ] {
            for page in ["18446744073709551615", "9223372036854775807", "1000001"] {
                app.get(&format!("{list}?page={page}&per_page=500"), &app.admin)
                    .await
                    .expect_problem(422, "validation_failed");
            }
            let last = app
                .get(&format!("{list}?page=1000000&per_page=500"), &app.admin)
                .await;
            assert_eq!(last.expect(200)["items"], json!([]), "{list}");
        }
        app.get("/api/v1/tickets?page=18446744073709551615", &o.agent)
            .await
            .expect_problem(422, "validation_failed");
    }
);

both!(
    nul_characters_are_refused_before_they_reach_the_database,
    |app: TestApp| async move {
        // Found by tests/schemathesis: PostgreSQL cannot store U+0000, so a
        // name, note or search holding it was a 500 there. Every text that
        // comes in is now refused first, on every backend.
        let o = Office::new(&app).await;
        let admin = &app.admin;
        let refused = |r: Resp| r.expect_problem(422, "validation_failed");
        refused(
            app.post(
                "/api/v1/departments",
                admin,
                &json!({"code": "nul_dept", "name": "水\u{0}务", "kind": "functional"}),
            )
            .await,
        );
        refused(
            app.post(
                "/api/v1/users",
                admin,
                &json!({"username": "nul_user", "password": "password-1", "role": "agent",
                        "display_name": "a\u{0}b"}),
            )
            .await,
        );
        refused(
            app.post(
                "/api/v1/auth/login",
                "",
                &json!({"username": "agent1\u{0}", "password": "x"}),
            )
            .await,
        );
        let mut a = appeal("空字符");
        a["citizen"]["name"] = json!("张\u{0}三");
        refused(app.post("/api/v1/tickets", &o.agent, &a).await);
        let t = app
            .post("/api/v1/tickets", &o.agent, &appeal("空字符"))
            .await;
        let id = t.expect(201)["id"].as_i64().unwrap();
        refused(
            app.post(
                &format!("/api/v1/tickets/{id}/notes"),
                &o.dispatcher,
                &json!({"content": "a\u{0}b"}),
            )
            .await,
        );
        let letter = json!({"phone": "13800000000", "category": "help", "title": "t",
                            "content": "c", "name": "a\u{0}b"});
        refused(app.post("/api/v1/public/mailbox", "", &letter).await);
        let form = "phone=13800000000&category=help&title=t&content=c&address=a%00b";
        refused(
            app.post_raw(
                "/api/v1/public/mailbox",
                "",
                "application/x-www-form-urlencoded",
                form.as_bytes().to_vec(),
            )
            .await,
        );
        refused(app.get("/api/v1/tickets?q=a%00b", &o.agent).await);
        let period = "from=2026-11-01&to=2026-12-01";
        refused(
            app.get(&format!("/api/v1/stats?{period}&department=a%00"), admin)
                .await,
        );
        refused(
            app.get(
                &format!("/api/v1/export?{period}&unmasked=true&reason=a%00"),
                admin,
            )
            .await,
        );
        let r = app
            .get("/open311/v2/requests.json?service_code=a%00", "")
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.body[0]["code"], 400, "{}", r.body);
        assert_eq!(app.count_tickets().await, 1, "only the clean appeal");
    }
);
