use std::collections::HashSet;

use serde_json::json;

use crate::both;
use crate::helpers::*;

both!(
    a_new_appeal_gets_a_number_a_query_code_and_a_created_event,
    |app: TestApp| async move {
        let office = Office::new(&app).await;
        let r = app
            .post("/api/v1/tickets", &office.agent, &appeal("路灯不亮"))
            .await;
        let t = r.expect(201);
        let no = t["ticket_no"].as_str().unwrap();
        let today = chrono::Utc::now()
            .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
            .format("%Y%m%d")
            .to_string();
        assert_eq!(no, format!("{today}H000001"));
        assert_eq!(t["query_code"].as_str().unwrap().len(), 6);
        assert_eq!(t["state"], "registered");
        assert_eq!(t["citizen"]["phone"], "13800001234");
        assert!(t["created_at"].as_str().unwrap().ends_with("+08:00"));
        let id = t["id"].as_i64().unwrap();
        let detail = app
            .get(&format!("/api/v1/tickets/{id}"), &office.agent)
            .await;
        let events = detail.expect(200)["events"].as_array().unwrap().clone();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["kind"], "created");
        assert_eq!(events[0]["actor"], "agent1");
        assert_eq!(events[0]["to_state"], "registered");
        // Mailbox appeals get their own letter and sequence.
        let mut m = appeal("信件");
        m["channel"] = json!("mailbox");
        let r = app.post("/api/v1/tickets", &office.dispatcher, &m).await;
        assert!(
            r.expect(201)["ticket_no"]
                .as_str()
                .unwrap()
                .ends_with("M000001")
        );
    }
);

both!(
    the_same_external_id_returns_the_existing_ticket_with_200,
    |app: TestApp| async move {
        let office = Office::new(&app).await;
        let mut a = appeal("重复推送");
        a["channel"] = json!("wenzheng");
        a["external_id"] = json!("post-42");
        let first = app.post("/api/v1/tickets", &office.agent, &a).await;
        let id = first.expect(201)["id"].clone();
        let again = app.post("/api/v1/tickets", &office.agent, &a).await;
        assert_eq!(again.expect(200)["id"], id);
        // Same external id on another channel is another ticket.
        a["channel"] = json!("mailbox");
        app.post("/api/v1/tickets", &office.agent, &a)
            .await
            .expect(201);
        assert_eq!(app.count_tickets().await, 2);
    }
);

both!(
    ticket_numbers_stay_unique_under_concurrent_creation,
    |app: TestApp| async move {
        let office = Office::new(&app).await;
        let n = 120;
        let mut handles = Vec::new();
        for i in 0..n {
            let client = app.client.clone();
            let url = app.url("/api/v1/tickets");
            let token = office.agent.clone();
            let mut body = appeal(&format!("并发 {i}"));
            if i % 3 == 0 {
                // A third are idempotent re-sends racing each other.
                body["external_id"] = json!(format!("ext-{}", i % 9));
            }
            handles.push(actix_web::rt::spawn(async move {
                let mut r = client
                    .post(url)
                    .bearer_auth(token)
                    .send_json(&body)
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let v: serde_json::Value = r.json().await.unwrap();
                (
                    status,
                    v["ticket_no"].as_str().unwrap().to_owned(),
                    v["id"].as_i64().unwrap(),
                )
            }));
        }
        let mut numbers = HashSet::new();
        let mut ids = HashSet::new();
        let mut created = 0;
        for h in handles {
            let (status, no, id) = h.await.unwrap();
            assert!(status == 201 || status == 200, "status {status}");
            if status == 201 {
                created += 1;
                assert!(numbers.insert(no), "duplicate ticket number");
            }
            ids.insert(id);
        }
        // 80 plain appeals + 3 distinct external ids (0, 3, 6 mod 9).
        assert_eq!(created, 83);
        assert_eq!(ids.len(), 83);
        assert_eq!(app.count_tickets().await, 83);
        if app.backend == Backend::Sqlite {
            // One writer: the day's numbers have no gaps. (On PostgreSQL a
            // batch that loses an idempotency race gives its numbers up.)
            let mut seqs: Vec<u32> = numbers.iter().map(|n| n[9..].parse().unwrap()).collect();
            seqs.sort_unstable();
            assert_eq!(seqs, (1..=83).collect::<Vec<_>>(), "no gaps");
        }
    }
);
