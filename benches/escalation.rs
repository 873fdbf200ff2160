//! Escalation and delivery benchmarks (issue 3), printed, never asserted:
//! - a sweep over N open tickets of which M have passed a threshold;
//! - a sweep with nothing due over the same N (median of 7);
//! - delivering K queued notifications to a local SMTP server.
//!
//! SQLite always; PostgreSQL too when `BENCH_DATABASE_URL` (or
//! `TEST_DATABASE_URL`) names a server where we may CREATE DATABASE.
//! Sizes: `BENCH_TICKETS` (default 1,000,000), `BENCH_DUE` (100,000),
//! `BENCH_MAILS` (10,000). Run: `cargo bench --bench escalation`.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{Duration, Utc};
use hotline::config::{Environment, Settings};
use hotline::domain::lifecycle::Rules;
use hotline::infra::mail::Mailer;
use hotline::jobs::{outbox, sweeper};
use hotline::store::Store;
use hotline::store::escalations::{OutboxDraft, outbox_model};
use mailin_embedded::response::{self, Response};
use mailin_embedded::{Handler, Server, SslConfig};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Statement, Value};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Default)]
struct Counter(Arc<Mutex<usize>>);

impl Handler for Counter {
    fn data_end(&mut self) -> Response {
        *self.0.lock().unwrap() += 1;
        response::OK
    }
}

async fn fill(store: &Store, n: usize, due: usize, at: chrono::DateTime<Utc>) {
    let b = store.backend();
    let (series, no) = match b {
        DbBackend::Postgres => (
            "SELECT g AS x FROM generate_series(1, $1) AS g".to_owned(),
            "'B' || lpad(x::text, 14, '0')",
        ),
        _ => (
            "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < $1) SELECT x FROM s"
                .to_owned(),
            "printf('B%014d', x)",
        ),
    };
    let sql = format!(
        "INSERT INTO tickets (ticket_no, query_code, channel, category, urgency, title, content, state, \
         department, co_departments, created_by, created_at, updated_at, dispatched_at, sign_due_at, \
         reply_due_at, next_check_at, escalation_level, rework_count, return_count, extension_count, \
         final_dispatch, version) \
         SELECT {no}, 'BENCH1', 'hotline', 'complaint', 'normal', '路灯不亮', '基准测试工单', 'dispatched', \
         'water', '[]', 'bench', $2, $2, $2, \
         CASE WHEN x <= $3 THEN $4 ELSE $5 END, $5, \
         CASE WHEN x <= $3 THEN $4 ELSE $6 END, \
         CASE WHEN x <= $3 THEN 1 ELSE 0 END, 0, 0, 0, false, 0 \
         FROM ({series}) AS series"
    );
    let values: Vec<Value> = vec![
        (n as i64).into(),
        (at - Duration::hours(3)).into(),
        (due as i64).into(),
        (at - Duration::minutes(1)).into(),
        (at + Duration::days(40)).into(),
        (at + Duration::days(39)).into(),
    ];
    // SQLite numbers its parameters `?N`; PostgreSQL `$N`.
    let sql = if b == DbBackend::Postgres {
        sql
    } else {
        sql.replace('$', "?")
    };
    store
        .db
        .execute_raw(Statement::from_sql_and_values(b, sql, values))
        .await
        .expect("fill tickets");
    // A live database has planner statistics; a table filled a moment ago
    // has none until autovacuum gets to it.
    store
        .db
        .execute_unprepared("ANALYZE tickets")
        .await
        .expect("analyze");
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

async fn run(label: &str, url: &str, data_dir: &std::path::Path) {
    let n = env_usize("BENCH_TICKETS", 1_000_000);
    let due = env_usize("BENCH_DUE", 100_000);
    let mails = env_usize("BENCH_MAILS", 10_000);
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let dd = data_dir.display().to_string();
    let settings = Settings::load_from(
        &dir,
        Environment::Test,
        &[("database.url", url), ("data_dir", &dd)],
    )
    .expect("settings");
    let store = Store::connect(url, 8).await.expect("connect");
    store.migrate().await.expect("migrate");
    let cal = settings.load_calendar().expect("calendar");
    let now = Utc::now();
    store
        .create_department(
            "water",
            "市水务集团",
            "functional",
            Some("water@example.cn"),
            now,
        )
        .await
        .expect("department");
    store
        .create_user(
            "head",
            "x",
            "dept_head",
            Some("water"),
            Some("head@example.cn"),
            None,
            now,
        )
        .await
        .expect("user");

    let at = now + Duration::hours(1);
    let t0 = Instant::now();
    fill(&store, n, due, at).await;
    println!(
        "{label}: generated {n} open tickets ({due} due) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let rules = Rules {
        calendar: &cal,
        sla: &settings.sla,
    };

    let mut idle = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let r = sweeper::sweep(&store, &rules, "http://bench", at - Duration::minutes(30))
            .await
            .expect("sweep");
        assert_eq!(r.levels, 0);
        idle.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "{label}: sweep with nothing due over {n} open tickets: median {:.2} ms (of 7)",
        median(idle)
    );

    let t = Instant::now();
    let r = sweeper::sweep(&store, &rules, "http://bench", at)
        .await
        .expect("sweep");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{label}: sweep escalating {} tickets ({} level changes, {} examined) in {secs:.2} s = {:.0} tickets/s",
        r.changed,
        r.levels,
        r.examined,
        r.changed as f64 / secs
    );
    let again = sweeper::sweep(&store, &rules, "http://bench", at)
        .await
        .expect("sweep");
    println!(
        "{label}: same sweep again: {} level changes (exactly once)",
        again.levels
    );

    // Delivery: K fresh notifications to a local SMTP server.
    use sea_orm::ColumnTrait;
    use sea_orm::QueryFilter;
    hotline::store::entities::outbox::Entity::delete_many()
        .filter(hotline::store::entities::outbox::Column::Id.gt(0))
        .exec(&store.db)
        .await
        .expect("clear outbox");
    let drafts: Vec<_> = (0..mails)
        .map(|i| {
            outbox_model(
                &OutboxDraft {
                    kind: "bench".into(),
                    ticket_id: None,
                    recipient: format!("dept{}@example.cn", i % 50),
                    subject: format!("【12345派单】基准测试 {i}"),
                    body: "12345热线向你单位派发工单，请及时签收办理。".into(),
                },
                Utc::now(),
            )
        })
        .collect();
    for chunk in drafts.chunks(1000) {
        hotline::store::entities::outbox::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&store.db)
            .await
            .expect("queue");
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let counter = Counter::default();
    let received = counter.0.clone();
    let mut server = Server::new(counter);
    server
        .with_name("bench.sink")
        .with_ssl(SslConfig::None)
        .unwrap()
        .with_num_threads(64)
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    let mailer =
        Mailer::from_settings(&format!("smtp://127.0.0.1:{port}"), data_dir).expect("mailer");
    let t = Instant::now();
    let r = outbox::deliver_due(&store, &mailer, &settings.mail.from)
        .await
        .expect("deliver");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{label}: delivered {} notifications ({} failed) over SMTP in {secs:.2} s = {:.0}/s; server received {}",
        r.sent,
        r.failed,
        r.sent as f64 / secs,
        *received.lock().unwrap()
    );
}

fn main() {
    actix_web::rt::System::new().block_on(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let url = format!(
            "sqlite://{}?mode=rwc",
            tmp.path().join("bench.db").display()
        );
        run("sqlite", &url, tmp.path()).await;
        let pg = std::env::var("BENCH_DATABASE_URL")
            .or_else(|_| std::env::var("TEST_DATABASE_URL"))
            .ok()
            .filter(|s| !s.is_empty());
        if let Some(admin) = pg {
            let db = sea_orm::Database::connect(&admin).await.expect("connect");
            let name = format!("hl_bench_{}", std::process::id());
            db.execute_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("CREATE DATABASE {name}"),
            ))
            .await
            .expect("create database");
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b)
                .unwrap_or(&admin)
                .to_owned();
            let tmp2 = tempfile::tempdir().expect("tempdir");
            run("postgres", &format!("{base}/{name}"), tmp2.path()).await;
            let _ = db
                .execute_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!("DROP DATABASE {name} WITH (FORCE)"),
                ))
                .await;
        } else {
            println!("postgres: skipped (set BENCH_DATABASE_URL or TEST_DATABASE_URL)");
        }
    });
}
