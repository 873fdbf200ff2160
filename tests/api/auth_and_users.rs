use serde_json::json;

use crate::both;
use crate::helpers::*;

both!(
    login_gives_a_token_that_expires_later,
    |app: TestApp| async move {
        let r = app
            .post(
                "/api/v1/auth/login",
                "",
                &json!({"username": "admin", "password": ADMIN_PASSWORD}),
            )
            .await;
        let body = r.expect(200);
        assert_eq!(body["user"]["role"], "admin");
        assert!(body["token"].as_str().unwrap().len() >= 32);
        let exp =
            chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap()).unwrap();
        assert!(exp > chrono::Utc::now());
        let me = app
            .get("/api/v1/auth/me", body["token"].as_str().unwrap())
            .await;
        assert_eq!(me.expect(200)["username"], "admin");
    }
);

both!(
    wrong_password_and_missing_token_are_401,
    |app: TestApp| async move {
        app.post(
            "/api/v1/auth/login",
            "",
            &json!({"username": "admin", "password": "nope-nope"}),
        )
        .await
        .expect_problem(401, "unauthorized");
        app.post(
            "/api/v1/auth/login",
            "",
            &json!({"username": "ghost", "password": "whatever1"}),
        )
        .await
        .expect_problem(401, "unauthorized");
        app.get("/api/v1/tickets", "")
            .await
            .expect_problem(401, "unauthorized");
        app.get("/api/v1/tickets", "not-a-token")
            .await
            .expect_problem(401, "unauthorized");
    }
);

both!(
    only_admins_create_users_and_departments,
    |app: TestApp| async move {
        let office = Office::new(&app).await;
        app.post(
            "/api/v1/users",
            &office.dispatcher,
            &json!({"username": "x1", "password": "password1", "role": "agent"}),
        )
        .await
        .expect_problem(403, "forbidden");
        app.post(
            "/api/v1/departments",
            &office.leader,
            &json!({"code": "tax", "name": "税务局", "kind": "functional"}),
        )
        .await
        .expect_problem(403, "forbidden");
        // Duplicates are a conflict, not a crash.
        app.post(
            "/api/v1/departments",
            &app.admin,
            &json!({"code": "water", "name": "水务", "kind": "functional"}),
        )
        .await
        .expect_problem(409, "conflict");
        app.post(
            "/api/v1/users",
            &app.admin,
            &json!({"username": "agent1", "password": "password1", "role": "agent"}),
        )
        .await
        .expect_problem(409, "conflict");
        // Department users need a real department.
        app.post(
            "/api/v1/users",
            &app.admin,
            &json!({"username": "h9", "password": "password1", "role": "handler"}),
        )
        .await
        .expect_problem(422, "validation_failed");
        app.post(
        "/api/v1/users",
        &app.admin,
        &json!({"username": "h9", "password": "password1", "role": "handler", "department": "nowhere"}),
    )
    .await
    .expect_problem(422, "validation_failed");
        let list = app.get("/api/v1/departments", &office.water).await;
        assert_eq!(list.expect(200)["total"], 2);
    }
);
