//! `hotline bench pages`: server-side rendering time of the staff pages over
//! HTTP. Creates one user per role it needs (through the admin), makes sure
//! one department's inbox holds `--inbox-open` open tickets (registering and
//! dispatching the difference through the API), logs each user in, then
//! fetches every page `--requests` times on one connection and prints p50
//! and p99 per page. A page that does not answer 200 the first time (one
//! the server does not have) is reported and skipped.

use std::time::{Duration, Instant};

use chrono::Days;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use super::bench::{login, post, quantile_ms};
use crate::config::Settings;
use crate::startup::StartupError;
use crate::store::Store;

#[derive(clap::Args, Debug)]
pub struct PagesArgs {
    /// Base URL of a running `hotline serve`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An admin account, used to create the benchmark's users.
    #[arg(long, default_value = "admin")]
    pub username: String,
    #[arg(long, env = "HOTLINE_ADMIN_PASSWORD")]
    pub password: String,
    /// Requests per page (after 10 warm-up requests).
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// The department whose inbox is measured; default: the one with the
    /// most open tickets.
    #[arg(long)]
    pub department: Option<String>,
    /// Open tickets the department's inbox must hold before measuring
    /// (registered and dispatched over the API when short; 0 = as it is).
    #[arg(long, default_value_t = 10_000)]
    pub inbox_open: u64,
    /// Measure only these pages (comma-separated names as printed, e.g.
    /// `inbox,dispatch`); default: all.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
}

fn err(e: impl std::fmt::Display) -> StartupError {
    StartupError::Bootstrap(e.to_string())
}

const OPEN: &str = "('dispatched', 'in_progress', 'replied')";

/// The department with the most open tickets, and how many it has.
async fn busiest(store: &Store, department: Option<&str>) -> Result<(String, u64), StartupError> {
    let b = store.backend();
    let sql = match department {
        Some(d) => format!(
            "SELECT department, COUNT(*) FROM tickets WHERE state IN {OPEN} AND department = '{}' GROUP BY department",
            d.replace('\'', "''")
        ),
        None => format!(
            "SELECT department, COUNT(*) FROM tickets WHERE state IN {OPEN} AND department IS NOT NULL \
             GROUP BY department ORDER BY COUNT(*) DESC LIMIT 1"
        ),
    };
    let row = store
        .db
        .query_one_raw(Statement::from_string(b, sql))
        .await
        .map_err(err)?;
    match row {
        Some(r) => Ok((
            r.try_get_by_index::<String>(0).map_err(err)?,
            r.try_get_by_index::<i64>(1).map_err(err)? as u64,
        )),
        None => Ok((department.unwrap_or("water").to_owned(), 0)),
    }
}

/// Some of the department's open tickets, for the ticket page.
async fn sample_ids(store: &Store, department: &str) -> Result<Vec<i64>, StartupError> {
    let sql = format!(
        "SELECT id FROM tickets WHERE state IN {OPEN} AND department = '{}' ORDER BY id DESC LIMIT 200",
        department.replace('\'', "''")
    );
    let rows = store
        .db
        .query_all_raw(Statement::from_string(store.backend(), sql))
        .await
        .map_err(err)?;
    rows.iter()
        .map(|r| r.try_get_by_index::<i64>(0).map_err(err))
        .collect()
}

/// Registers and dispatches `n` tickets to `department`, 16 at a time.
async fn fill(url: &str, token: &str, department: &str, n: u64) -> Result<(), StartupError> {
    let started = Instant::now();
    let workers = 16u64;
    let mut handles = Vec::new();
    for w in 0..workers {
        let share = n / workers + u64::from(w < n % workers);
        let (url, token, department) = (url.to_owned(), token.to_owned(), department.to_owned());
        handles.push(actix_web::rt::spawn(async move {
            let client = awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish();
            for i in 0..share {
                let (s, t) = post(
                    &client,
                    &format!("{url}/api/v1/tickets"),
                    Some(&token),
                    &json!({
                        "channel": "hotline", "category": "complaint", "urgency": "normal",
                        "title": format!("路面破损需修复（压测 {w}-{i}）"),
                        "content": "市民来电反映：小区门口路面破损，雨天积水，请尽快修复。",
                        "citizen": {"name": "测试", "phone": format!("137{:08}", w * 1_000_000 + i)},
                    }),
                )
                .await?;
                if s != 201 {
                    return Err(err(format!("registering failed ({s}): {t}")));
                }
                let id = t["id"].as_i64().unwrap_or_default();
                let (s, t) = post(
                    &client,
                    &format!("{url}/api/v1/tickets/{id}/dispatch"),
                    Some(&token),
                    &json!({ "department": department }),
                )
                .await?;
                if s != 200 {
                    return Err(err(format!("dispatching failed ({s}): {t}")));
                }
            }
            Ok(())
        }));
    }
    for h in handles {
        h.await.map_err(err)??;
    }
    println!(
        "pages fill: {n} tickets registered and dispatched to {department} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Creates a user through the admin and logs them in; the token is also the
/// pages' session cookie.
async fn user(
    client: &awc::Client,
    url: &str,
    admin: &str,
    role: &str,
    department: Option<&str>,
) -> Result<String, StartupError> {
    let name = format!("bench_{role}_{}", std::process::id());
    let password = format!(
        "pw-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp()
    );
    let (s, body) = post(
        client,
        &format!("{url}/api/v1/users"),
        Some(admin),
        &json!({"username": name, "password": password, "role": role, "department": department}),
    )
    .await?;
    if s != 201 {
        return Err(err(format!("creating {name} failed ({s}): {body}")));
    }
    login(client, url, &name, &password).await
}

pub async fn run(settings: &Settings, a: PagesArgs) -> Result<(), StartupError> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    let url = a.url.trim_end_matches('/');
    let admin = login(&client, url, &a.username, &a.password).await?;
    let store = Store::connect(&settings.database_url(), 2).await?;
    let (department, mut open) = busiest(&store, a.department.as_deref()).await?;
    let dispatcher = user(&client, url, &admin, "dispatcher", None).await?;
    if open < a.inbox_open {
        fill(url, &dispatcher, &department, a.inbox_open - open).await?;
        open = busiest(&store, Some(&department)).await?.1;
    }
    let ids = sample_ids(&store, &department).await?;
    println!(
        "pages department={department} open_tickets={open} backend={}",
        format!("{:?}", store.backend()).to_lowercase()
    );
    let leader = user(&client, url, &admin, "leader", None).await?;
    let agent = user(&client, url, &admin, "agent", None).await?;
    let handler = user(&client, url, &admin, "handler", Some(&department)).await?;

    let today = crate::domain::figures::city_day(crate::store::now());
    let year_ago = today - Days::new(364);
    type Path = Box<dyn Fn(usize) -> String>;
    let ids2 = ids.clone();
    let pages: Vec<(&str, &str, Path)> = vec![
        (
            "dashboard_year",
            &leader,
            Box::new(move |_| format!("/dashboard?from={year_ago}&to={today}")),
        ),
        (
            "dashboard_month",
            &leader,
            Box::new(|_| "/dashboard".into()),
        ),
        ("inbox", &handler, Box::new(|_| "/inbox".into())),
        ("dispatch", &dispatcher, Box::new(|_| "/dispatch".into())),
        ("agent", &agent, Box::new(|_| "/agent".into())),
        (
            "ticket",
            &handler,
            Box::new(move |i| match ids2.get(i % ids2.len().max(1)) {
                Some(id) => format!("/tickets/{id}"),
                None => "/tickets/0".into(),
            }),
        ),
        ("mailbox", &leader, Box::new(|_| "/mailbox".into())),
    ];
    for (name, token, path) in &pages {
        if !a.only.is_empty() && !a.only.iter().any(|o| o == name) {
            continue;
        }
        let mut lat = Vec::with_capacity(a.requests);
        let mut bytes = 0;
        let mut skipped = false;
        for i in 0..a.requests + 10 {
            let p = path(i);
            let t0 = Instant::now();
            let mut res = client
                .get(format!("{url}{p}"))
                .insert_header(("Cookie", format!("hotline_session={token}")))
                .insert_header(("Accept", "text/html"))
                .send()
                .await
                .map_err(err)?;
            let body = res.body().limit(64 << 20).await.map_err(err)?;
            let status = res.status().as_u16();
            if status != 200 && i == 0 {
                println!(
                    "pages page={name} path={p} answered {status}: skipped{}",
                    if status == 404 {
                        ""
                    } else {
                        " (an error page)"
                    }
                );
                skipped = true;
                break;
            }
            if status != 200 {
                return Err(err(format!(
                    "{p} answered {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(500)])
                )));
            }
            bytes = body.len();
            if i >= 10 {
                lat.push(t0.elapsed());
            }
        }
        if skipped {
            continue;
        }
        lat.sort_unstable();
        println!(
            "pages page={name} requests={} bytes={bytes} p50={:.2}ms p99={:.2}ms max={:.2}ms",
            a.requests,
            quantile_ms(&lat, 0.50),
            quantile_ms(&lat, 0.99),
            quantile_ms(&lat, 1.0),
        );
    }
    Ok(())
}
