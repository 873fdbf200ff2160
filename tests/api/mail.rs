//! Mail over a real SMTP exchange: lettre talks SMTP to an embedded SMTP
//! server (mailin-embedded) listening on loopback.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use hotline::infra::mail::Mailer;
use hotline::jobs::outbox::deliver_due;
use hotline::store::entities::outbox;
use mailin_embedded::response::{self, Response};
use mailin_embedded::{Handler, Server, SslConfig};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::both;
use crate::helpers::*;

/// Messages received: envelope recipients and raw data.
type Inbox = Arc<Mutex<Vec<(Vec<String>, String)>>>;

#[derive(Clone, Default)]
struct Sink {
    current: (Vec<String>, Vec<u8>),
    received: Inbox,
}

impl Handler for Sink {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = (to.to_vec(), Vec::new());
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.1.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let (to, data) = std::mem::take(&mut self.current);
        self.received
            .lock()
            .unwrap()
            .push((to, String::from_utf8_lossy(&data).into_owned()));
        response::OK
    }
}

/// Starts an SMTP server on a free loopback port; returns its URL and inbox.
fn smtp_sink() -> (String, Inbox) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sink = Sink::default();
    let received = sink.received.clone();
    let mut server = Server::new(sink);
    server
        .with_name("sink.test")
        .with_ssl(SslConfig::None)
        .unwrap()
        .with_num_threads(80)
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    (format!("smtp://127.0.0.1:{port}"), received)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

both!(
    notifications_survive_a_refusing_smtp_server_and_arrive_once,
    |app: TestApp| async move {
        app.department("water").await;
        let agent = app.user("agent1", "agent", None).await;
        let dispatcher = app.user("dispatcher1", "dispatcher", None).await;
        app.user_with_email("water1", "handler", Some("water"))
            .await;
        let mut numbers = Vec::new();
        for i in 0..12 {
            let t = app
                .post("/api/v1/tickets", &agent, &appeal(&format!("邮件{i}")))
                .await;
            let id = t.expect(201)["id"].as_i64().unwrap();
            let t = app
                .post(
                    &format!("/api/v1/tickets/{id}/dispatch"),
                    &dispatcher,
                    &json!({"department": "water"}),
                )
                .await;
            numbers.push(t.expect(200)["ticket_no"].as_str().unwrap().to_owned());
        }
        let s = &app.app_state;
        let from = &s.settings.mail.from;
        // Department mailbox + the handler: two notices per dispatch.
        // One notice per dispatch, to the department mailbox and the handler.
        let rows = s.store.outbox_rows(None).await.unwrap();
        assert_eq!(rows.len(), 12);
        assert!(
            rows.iter()
                .all(|r| r.recipient == "water@example.cn, water1@example.cn")
        );
        // Each notice names its own ticket.
        for no in &numbers {
            let naming = rows.iter().filter(|r| r.subject.contains(no.as_str()));
            assert_eq!(naming.count(), 1, "{no}");
        }

        // Nobody listening: every delivery fails, nothing is lost.
        let down = Mailer::from_settings(
            &format!("smtp://127.0.0.1:{}", free_port()),
            &s.settings.data_dir,
        )
        .unwrap();
        let r = deliver_due(&s.store, &down, from).await.unwrap();
        assert_eq!((r.sent, r.failed), (0, 12));
        let rows = s.store.outbox_rows(None).await.unwrap();
        assert!(
            rows.iter()
                .all(|r| r.status == "pending" && r.attempts == 1 && r.last_error.is_some())
        );
        assert!(
            rows.iter().all(|r| r.next_attempt_at > Utc::now()),
            "backed off"
        );
        let ready = app.get("/readyz", "").await;
        assert_eq!(ready.expect(200)["checks"]["outbox"]["pending"], 12);
        let metrics = app.get("/metrics", "").await;
        assert!(
            metrics
                .body
                .as_str()
                .unwrap()
                .contains("hotline_outbox_pending 12")
        );

        // The server comes up; once the back-off has passed, everything arrives once.
        let (url, inbox) = smtp_sink();
        let up = Mailer::from_settings(&url, &s.settings.data_dir).unwrap();
        assert_eq!(
            deliver_due(&s.store, &up, from).await.unwrap().sent,
            0,
            "still backing off"
        );
        outbox::Entity::update_many()
            .col_expr(
                outbox::Column::NextAttemptAt,
                Expr::value(Utc::now() - chrono::Duration::seconds(1)),
            )
            .filter(outbox::Column::Status.eq("pending"))
            .exec(&s.store.db)
            .await
            .unwrap();
        let r = deliver_due(&s.store, &up, from).await.unwrap();
        assert_eq!((r.sent, r.failed), (12, 0));
        assert_eq!(deliver_due(&s.store, &up, from).await.unwrap().sent, 0);
        let got = inbox.lock().unwrap().clone();
        assert_eq!(got.len(), 12);
        let both = [
            "water@example.cn".to_owned(),
            "water1@example.cn".to_owned(),
        ];
        assert!(got.iter().all(|(to, _)| to == &both), "{got:?}");
        assert!(got.iter().all(
            |(_, data)| data.contains("Subject:") && data.contains("noreply@12345.example.cn")
        ));
        let rows = s.store.outbox_rows(None).await.unwrap();
        assert!(
            rows.iter()
                .all(|r| r.status == "sent" && r.sent_at.is_some() && r.attempts == 2)
        );
    }
);

both!(
    two_workers_never_send_the_same_row,
    |app: TestApp| async move {
        app.department("water").await;
        let agent = app.user("agent1", "agent", None).await;
        let dispatcher = app.user("dispatcher1", "dispatcher", None).await;
        for i in 0..40 {
            let t = app
                .post("/api/v1/tickets", &agent, &appeal(&format!("并发邮件{i}")))
                .await;
            let id = t.expect(201)["id"].as_i64().unwrap();
            app.post(
                &format!("/api/v1/tickets/{id}/dispatch"),
                &dispatcher,
                &json!({"department": "water"}),
            )
            .await
            .expect(200);
        }
        let s = &app.app_state;
        let (url, inbox) = smtp_sink();
        let mailer = Mailer::from_settings(&url, &s.settings.data_dir).unwrap();
        let from = s.settings.mail.from.clone();
        let (a, b) = tokio::join!(
            deliver_due(&s.store, &mailer, &from),
            deliver_due(&s.store, &mailer, &from)
        );
        assert_eq!(a.unwrap().sent + b.unwrap().sent, 40);
        assert_eq!(inbox.lock().unwrap().len(), 40);
    }
);
