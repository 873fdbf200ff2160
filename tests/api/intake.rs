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

both!(
    a_mixed_batch_answers_each_appeal_with_its_stored_row,
    |app: TestApp| async move {
        use hotline::domain::appeal::{NewAppeal, RawAppeal};
        use hotline::store::entities::{ticket, ticket_event};
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let parse = |v: serde_json::Value| -> NewAppeal {
            serde_json::from_value::<RawAppeal>(v)
                .unwrap()
                .parse("agent1")
                .unwrap()
        };
        let leak = |phone: &str| {
            json!({
                "channel": "hotline", "category": "complaint", "urgency": "normal",
                "title": "楼上漏水", "content": "楼上住户家中水管漏水，渗到我家天花板。",
                "citizen": {"name": "李四", "phone": phone}, "district": "donghu",
            })
        };
        let pushed = |ext: &str| {
            json!({
                "channel": "wenzheng", "external_id": ext, "category": "consult",
                "urgency": "urgent", "title": "咨询社保", "content": "咨询社保转移接续办理流程。",
                "citizen": {"name": null, "phone": null},
                "address": "东湖区八一大道1号",
            })
        };
        let store = &app.app_state.store;
        let now = hotline::store::now();
        // Already stored: a push, and a call the batch's last appeal repeats.
        let before = store
            .create_tickets(&[parse(pushed("post-1")), parse(leak("13900000001"))], now)
            .await;
        let stored_push = before[0].as_ref().unwrap().ticket.clone();
        let stored_call = before[1].as_ref().unwrap().ticket.clone();

        let mut letter = leak("13900000002");
        letter["channel"] = json!("mailbox");
        let batch = vec![
            parse(leak("13900000002")), // new
            parse(pushed("post-1")),    // stored already
            parse(pushed("post-2")),    // new
            parse(pushed("post-2")),    // the same push again in the batch
            parse(letter),              // repeats the first, another channel
            parse(leak("13900000001")), // repeats the stored call
        ];
        let out: Vec<_> = store
            .create_tickets(&batch, now)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        let created: Vec<bool> = out.iter().map(|c| c.created).collect();
        assert_eq!(created, [true, false, true, false, true, true]);
        assert_eq!(out[1].ticket, stored_push);
        assert_eq!(out[3].ticket, out[2].ticket);
        assert_eq!(out[0].ticket.possible_duplicate_of, None);
        assert_eq!(
            out[4].ticket.possible_duplicate_of.as_deref(),
            Some(out[0].ticket.ticket_no.as_str())
        );
        assert_eq!(
            out[5].ticket.possible_duplicate_of.as_deref(),
            Some(stored_call.ticket_no.as_str())
        );
        // Numbers continue each channel's day: H2, H3 after H1; W2 after W1.
        let tail = |t: &ticket::Model| t.ticket_no[8..].to_owned();
        assert_eq!(tail(&out[0].ticket), "H000002");
        assert_eq!(tail(&out[5].ticket), "H000003");
        assert_eq!(tail(&out[2].ticket), "W000002");
        assert_eq!(tail(&out[4].ticket), "M000001");
        // What each appeal was answered with is the row as stored, with one
        // `created` event.
        for c in out.iter().filter(|c| c.created) {
            let row = ticket::Entity::find_by_id(c.ticket.id)
                .one(&store.db)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row, c.ticket);
            let events = ticket_event::Entity::find()
                .filter(ticket_event::Column::TicketId.eq(c.ticket.id))
                .all(&store.db)
                .await
                .unwrap();
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].kind, "created");
            assert_eq!(events[0].actor, "agent1");
            assert_eq!(events[0].at, now);
            let payload: serde_json::Value = serde_json::from_str(&events[0].payload).unwrap();
            assert_eq!(
                payload,
                json!({
                    "ticket_no": c.ticket.ticket_no, "channel": c.ticket.channel,
                    "category": c.ticket.category, "urgency": c.ticket.urgency,
                })
            );
        }
        assert_eq!(store.count_tickets().await.unwrap(), 6);
    }
);

both!(
    the_repeat_look_up_reads_tickets_only_by_phone_and_address,
    |app: TestApp| async move {
        // The intake's statements are planned once, and here on an empty
        // table, where the estimates are poorest. Reading `tickets` through
        // any index but the phone and address ones would read every ticket
        // of the last three days for each batch.
        use sea_orm::sqlx::{self, Connection, Row};
        if app.backend == Backend::Sqlite {
            let file = app
                .db_url
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .unwrap()
                .to_owned();
            let conn = rusqlite::Connection::open(file).unwrap();
            let sql = format!(
                "EXPLAIN QUERY PLAN {}",
                hotline::store::intake_sqlite::EARLIER_SQLITE
            );
            let mut st = conn.prepare(&sql).unwrap();
            let plan: Vec<String> = st
                .query_map(
                    rusqlite::params![
                        "[\"13900000001\"]",
                        "[\"八一大道1号\"]",
                        "2099",
                        "merged",
                        1000
                    ],
                    |r| r.get::<_, String>(3),
                )
                .unwrap()
                .map(Result::unwrap)
                .collect();
            // A full scan is `SCAN tickets …`, even through an index.
            let plan = plan.join("\n");
            assert!(!plan.contains("SCAN tickets"), "{plan}");
            reads_tickets_by_phone_and_address(&plan, "SEARCH tickets ");
            return;
        }
        let mut conn = sqlx::PgConnection::connect(&app.db_url).await.unwrap();
        for (k, v) in hotline::store::intake_pg::SESSION_OPTIONS {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET {k} = {v}")))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let prepare = format!(
            "PREPARE allocate(text, text[], int8[], timestamptz, text[], text[]) AS {}",
            hotline::store::intake_pg::ALLOCATE.as_str()
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(prepare))
            .execute(&mut conn)
            .await
            .unwrap();
        let rows = sqlx::raw_sql(
            "EXPLAIN EXECUTE allocate('20990101', '{hotline}', '{1}', \
             '2099-01-01T00:00:00Z', '{13900000001}', '{八一大道1号}')",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let plan: Vec<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
        reads_tickets_by_phone_and_address(&plan.join("\n"), " on tickets");
    }
);

/// `plan` reads `tickets` twice, in lines marked by `reading`, each through
/// the phone or the address index.
fn reads_tickets_by_phone_and_address(plan: &str, reading: &str) {
    let reads: Vec<&str> = plan.lines().filter(|l| l.contains(reading)).collect();
    assert_eq!(reads.len(), 2, "{plan}");
    for l in reads {
        assert!(
            l.contains("idx_tickets_citizen_phone ") || l.contains("idx_tickets_address_created "),
            "{plan}"
        );
    }
}

/// The intake writers hold their PostgreSQL sessions themselves (not in a
/// pool). Sessions the server drops (a restart, an administrator) are
/// replaced: after a second idle, before the batch is put on them; under
/// load, the batch that finds one dead fails and the next one opens both of
/// its writer's sessions afresh.
#[actix_web::test]
async fn intake_sessions_the_server_dropped_are_replaced() {
    use sea_orm::{ConnectionTrait, Database, Statement};
    // One writer, so that every appeal meets the same two sessions.
    let Some(app) =
        TestApp::spawn_on(Backend::Postgres, None, &[("database.intake_writers", "1")]).await
    else {
        eprintln!("TEST_DATABASE_URL unset: PostgreSQL case skipped");
        return;
    };
    let office = Office::new(&app).await;
    let admin = Database::connect(std::env::var("TEST_DATABASE_URL").unwrap())
        .await
        .unwrap();
    let db_name = app.db_url.rsplit('/').next().unwrap().to_owned();
    let kill = || async {
        let r = admin
            .query_one_raw(Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!(
                    "SELECT COUNT(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
                     WHERE datname = '{db_name}' AND pid <> pg_backend_pid()"
                ),
            ))
            .await
            .unwrap()
            .unwrap();
        r.try_get::<i64>("", "n").unwrap()
    };
    app.post("/api/v1/tickets", &office.agent, &appeal("路灯不亮 1"))
        .await
        .expect(201);

    // Dropped while idle: found dead before use, so no appeal fails.
    assert!(kill().await > 0);
    actix_web::rt::time::sleep(std::time::Duration::from_millis(1200)).await;
    app.post("/api/v1/tickets", &office.agent, &appeal("路灯不亮 2"))
        .await
        .expect(201);

    // Dropped just after use: the first appeal may find a dead session
    // (503, nothing stored), the next one gets a fresh session.
    assert!(kill().await > 0);
    let first = app
        .post("/api/v1/tickets", &office.agent, &appeal("路灯不亮 3"))
        .await;
    assert!(
        first.status == 201 || first.status == 503,
        "{}: {}",
        first.status,
        first.body
    );
    app.post("/api/v1/tickets", &office.agent, &appeal("路灯不亮 4"))
        .await
        .expect(201);
    let expected = if first.status == 201 { 4 } else { 3 };
    assert_eq!(app.count_tickets().await, expected);
}
