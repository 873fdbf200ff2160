use crate::both;
use crate::helpers::*;

both!(
    due_dates_follow_the_worked_examples,
    |app: TestApp| async move {
        let r = app
            .get(
                "/api/v1/calendar/due?from=2026-09-30T10:00:00%2B08:00&working_days=5",
                "",
            )
            .await;
        assert_eq!(r.expect(200)["due_at"], "2026-10-13T17:30:00+08:00");
        let r = app
            .get(
                "/api/v1/calendar/due?from=2026-11-20T16:30:00%2B08:00&working_hours=2",
                "",
            )
            .await;
        assert_eq!(r.expect(200)["due_at"], "2026-11-23T09:30:00+08:00");
        let r = app
            .get(
                "/api/v1/calendar/due?from=2026-11-20T16:30:00%2B08:00&hours=24",
                "",
            )
            .await;
        assert_eq!(r.expect(200)["due_at"], "2026-11-21T16:30:00+08:00");
        // Spring Festival 2026 and its make-up Saturday.
        let r = app
            .get(
                "/api/v1/calendar/due?from=2026-02-13T09:00:00%2B08:00&working_days=1",
                "",
            )
            .await;
        assert_eq!(r.expect(200)["due_at"], "2026-02-14T17:30:00+08:00");
        let r = app
            .get(
                "/api/v1/calendar/due?from=2026-02-14T09:00:00%2B08:00&working_days=1",
                "",
            )
            .await;
        assert_eq!(r.expect(200)["due_at"], "2026-02-24T17:30:00+08:00");
        for bad in [
            "/api/v1/calendar/due?working_days=5",
            "/api/v1/calendar/due?from=yesterday&working_days=5",
            "/api/v1/calendar/due?from=2026-09-30T10:00:00%2B08:00",
            "/api/v1/calendar/due?from=2026-09-30T10:00:00%2B08:00&working_days=5&hours=1",
            "/api/v1/calendar/due?from=2026-09-30T10:00:00%2B08:00&working_days=-1",
        ] {
            app.get(bad, "")
                .await
                .expect_problem(422, "validation_failed");
        }
    }
);

both!(
    due_dates_past_year_9999_are_refused_not_written_as_five_digit_years,
    |app: TestApp| async move {
        // Found by tests/schemathesis: `from` and `due_at` went out as
        // "+10000-01-01T…", which is not RFC 3339 (four-digit years).
        for bad in [
            "/api/v1/calendar/due?from=9999-12-31T23:59:59Z&hours=1",
            "/api/v1/calendar/due?from=9999-12-31T10:00:00%2B08:00&working_days=100000",
            "/api/v1/calendar/due?from=0000-01-01T00:00:00%2B23:59&working_days=1",
        ] {
            app.get(bad, "")
                .await
                .expect_problem(422, "validation_failed");
        }
        let r = app
            .get(
                "/api/v1/calendar/due?from=9999-12-31T10:00:00%2B08:00&hours=1",
                "",
            )
            .await;
        assert_eq!(r.expect(200)["due_at"], "9999-12-31T11:00:00+08:00");
    }
);

both!(
    citizens_follow_progress_with_number_and_code_only,
    |app: TestApp| async move {
        let o = Office::new(&app).await;
        let t = app.post("/api/v1/tickets", &o.agent, &appeal("查询")).await;
        let t = t.expect(201).clone();
        let no = t["ticket_no"].as_str().unwrap();
        let code = t["query_code"].as_str().unwrap();
        let r = app
            .get(&format!("/api/v1/public/tickets/{no}?code={code}"), "")
            .await;
        let r = r.expect(200);
        assert_eq!(r["state"], "registered");
        assert!(r.get("citizen").is_none());
        assert!(!r.to_string().contains("13800001234"));
        app.get(&format!("/api/v1/public/tickets/{no}?code=AAAAAA"), "")
            .await
            .expect_problem(404, "not_found");
        app.get("/api/v1/public/tickets/20260101H999999?code=AAAAAA", "")
            .await
            .expect_problem(404, "not_found");
        app.get("/api/v1/public/tickets/garbage?code=AAAAAA", "")
            .await
            .expect_problem(404, "not_found");
        app.get(&format!("/api/v1/public/tickets/{no}"), "")
            .await
            .expect_problem(422, "validation_failed");
        let lower = code.to_lowercase();
        app.get(&format!("/api/v1/public/tickets/{no}?code={lower}"), "")
            .await
            .expect(200);
    }
);

both!(
    health_readiness_and_the_api_document_answer,
    |app: TestApp| async move {
        assert_eq!(app.get("/healthz", "").await.expect(200)["status"], "ok");
        let r = app.get("/readyz", "").await;
        let r = r.expect(200);
        assert_eq!(r["checks"]["database"]["status"], "ok");
        let doc = app.get("/api/openapi.json", "").await;
        let doc = doc.expect(200);
        assert_eq!(doc["openapi"], "3.1.0");
        for path in [
            "/api/v1/auth/login",
            "/api/v1/users",
            "/api/v1/departments",
            "/api/v1/tickets",
            "/api/v1/tickets/{id}",
            "/api/v1/tickets/{id}/dispatch",
            "/api/v1/tickets/{id}/sign",
            "/api/v1/tickets/{id}/return",
            "/api/v1/tickets/{id}/extensions",
            "/api/v1/tickets/{id}/extensions/{ext_id}/decision",
            "/api/v1/tickets/{id}/reply",
            "/api/v1/tickets/{id}/callback",
            "/api/v1/tickets/{id}/close",
            "/api/v1/tickets/{id}/merge",
            "/api/v1/tickets/{id}/reveal",
            "/api/v1/public/tickets/{ticket_no}",
            "/api/v1/calendar/due",
            "/healthz",
            "/readyz",
        ] {
            assert!(
                doc["paths"][path].is_object(),
                "{path} missing from the OpenAPI document"
            );
        }
        let docs = app.get("/api/docs", "").await;
        assert_eq!(docs.status, 200);
        assert!(docs.body.as_str().unwrap().contains("invalid_transition"));
    }
);
