use crate::both;
use crate::helpers::*;

both!(
    the_demo_fills_every_state_through_the_real_lifecycle,
    |app: TestApp| async move {
        let s = &app.app_state;
        hotline::cli::demo::load(&s.settings, &s.store, &s.calendar, 180)
            .await
            .expect("demo loads");
        let leader = app.login_demo("leader1").await;
        let total = app.get("/api/v1/tickets?per_page=1", &leader).await;
        assert_eq!(total.expect(200)["total"], 180);
        for state in [
            "registered",
            "dispatched",
            "in_progress",
            "returned",
            "replied",
            "closed",
            "merged",
        ] {
            let r = app
                .get(
                    &format!("/api/v1/tickets?state={state}&per_page=1"),
                    &app.admin,
                )
                .await;
            assert!(
                r.expect(200)["total"].as_u64().unwrap() > 0,
                "no demo ticket is {state}"
            );
        }
        // Every ticket's history starts with its registration.
        let one = app
            .get("/api/v1/tickets?state=closed&per_page=1", &app.admin)
            .await;
        let id = one.expect(200)["items"][0]["id"].as_i64().unwrap();
        let t = app.get(&format!("/api/v1/tickets/{id}"), &app.admin).await;
        assert_eq!(t.expect(200)["events"][0]["kind"], "created");
        // Running it again adds tickets but no duplicate departments or users.
        hotline::cli::demo::load(&s.settings, &s.store, &s.calendar, 5)
            .await
            .expect("demo loads twice");
        let d = app.get("/api/v1/departments", &app.admin).await;
        assert_eq!(d.expect(200)["total"], 28);
    }
);
