//! `hotline bench intake`: registers tickets over HTTP against a running
//! server at N concurrent connections, prints tickets/s, p50 and p99, and
//! counts the rows in the database to prove none was lost. `bench wenzheng`
//! does the same with signed 问政江西 pushes.

use std::time::{Duration, Instant};

use clap::Subcommand;
use serde_json::{Value, json};

use crate::config::Settings;
use crate::startup::StartupError;
use crate::store::Store;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Ticket registration over HTTP.
    Intake {
        /// Base URL of a running `hotline serve`.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// An admin account, used to create the benchmark's agent.
        #[arg(long, default_value = "admin")]
        username: String,
        #[arg(long, env = "HOTLINE_ADMIN_PASSWORD")]
        password: String,
        /// Tickets to register (after a warm-up of 2% of them).
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// 问政江西 pushes over HTTP: signed posts (HMAC-SHA256 over
    /// timestamp.body), each with its own post_id.
    Wenzheng {
        /// Base URL of a running `hotline serve`.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The shared secret; default: `channels.wenzheng.secret` of this
        /// configuration (e.g. HOTLINE__CHANNELS__WENZHENG__SECRET).
        #[arg(long)]
        secret: Option<String>,
        /// The posts' `region` (a district name or code the server knows;
        /// empty = none).
        #[arg(long, default_value = "")]
        region: String,
        /// Posts to push (after a warm-up of 2% of them).
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// `GET /api/v1/stats` latency over HTTP: one-year periods grouped by
    /// department, and the whole city over three years.
    Stats {
        /// Base URL of a running `hotline serve`.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// An account that may read figures (admin, leader, …).
        #[arg(long, default_value = "admin")]
        username: String,
        #[arg(long, env = "HOTLINE_ADMIN_PASSWORD")]
        password: String,
        /// Requests per query shape (after 10 warm-up requests).
        #[arg(long, default_value_t = 200)]
        requests: usize,
    },
    /// Page rendering over HTTP: the dashboard over a year, the inbox of a
    /// department with `--inbox-open` open tickets, and the other staff
    /// pages (p50/p99 each).
    Pages(crate::cli::bench_pages::PagesArgs),
    /// The router, in process: latency of one routing on one thread, and
    /// retraining on a million synthetic historic tickets.
    Route(crate::cli::route_eval::BenchRouteArgs),
    /// The soak test's load generator: the whole ticket lifecycle at a
    /// steady rate over several instances (tests/soak/run.sh).
    Soak(crate::cli::soak::SoakArgs),
    /// The soak test's checker: proves from the database, the generator's
    /// acknowledgements and the SMTP sink that nothing was lost or doubled.
    SoakCheck(crate::cli::soak::CheckArgs),
    /// A local SMTP server recording each accepted message's Message-ID.
    SmtpSink(crate::cli::soak::SinkArgs),
}

/// The `p` quantile of sorted latencies, in milliseconds.
pub(crate) fn quantile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

pub(crate) async fn login(
    client: &awc::Client,
    url: &str,
    username: &str,
    password: &str,
) -> Result<String, StartupError> {
    let (s, body) = post(
        client,
        &format!("{url}/api/v1/auth/login"),
        None,
        &json!({"username": username, "password": password}),
    )
    .await?;
    if s != 200 {
        return Err(err(format!("login as {username} failed ({s}): {body}")));
    }
    Ok(body["token"].as_str().unwrap_or_default().to_owned())
}

async fn stats(
    url: &str,
    username: &str,
    password: &str,
    requests: usize,
) -> Result<(), StartupError> {
    use rand::Rng;
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish();
    let token = login(&client, url, username, password).await?;
    let today = crate::domain::figures::city_day(crate::store::now());
    let tomorrow = today + chrono::Days::new(1);
    let three_years = today - chrono::Days::new(3 * 365);
    let mut rng = rand::thread_rng();
    type Query = Box<dyn Fn(&mut rand::rngs::ThreadRng) -> String>;
    let shapes: [(&str, Query); 3] = [
        (
            "year_by_department",
            Box::new(move |r: &mut rand::rngs::ThreadRng| {
                let from = three_years + chrono::Days::new(r.gen_range(0..2 * 365));
                let to = from + chrono::Days::new(365);
                format!("from={from}&to={to}&group_by=department")
            }),
        ),
        (
            "city_three_years",
            Box::new(move |_: &mut rand::rngs::ThreadRng| {
                format!("from={three_years}&to={tomorrow}")
            }),
        ),
        (
            "month_by_channel",
            Box::new(move |r: &mut rand::rngs::ThreadRng| {
                let from = three_years + chrono::Days::new(r.gen_range(0..3 * 365 - 30));
                let to = from + chrono::Days::new(30);
                format!("from={from}&to={to}&group_by=channel")
            }),
        ),
    ];
    for (name, query) in &shapes {
        let mut lat = Vec::with_capacity(requests);
        for i in 0..requests + 10 {
            let q = query(&mut rng);
            let t0 = Instant::now();
            let mut res = client
                .get(format!("{url}/api/v1/stats?{q}"))
                .bearer_auth(&token)
                .send()
                .await
                .map_err(err)?;
            let body = res.body().limit(16 << 20).await.map_err(err)?;
            if res.status().as_u16() != 200 {
                return Err(err(format!(
                    "stats {q} answered {}: {}",
                    res.status(),
                    String::from_utf8_lossy(&body)
                )));
            }
            if i >= 10 {
                lat.push(t0.elapsed());
            }
        }
        lat.sort_unstable();
        println!(
            "stats shape={name} requests={requests} p50={:.2}ms p99={:.2}ms max={:.2}ms",
            quantile_ms(&lat, 0.50),
            quantile_ms(&lat, 0.99),
            quantile_ms(&lat, 1.0),
        );
    }
    Ok(())
}

fn err(e: impl std::fmt::Display) -> StartupError {
    StartupError::Bootstrap(e.to_string())
}

pub(crate) async fn post(
    client: &awc::Client,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> Result<(u16, Value), StartupError> {
    let mut req = client.post(url).timeout(Duration::from_secs(30));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let mut res = req.send_json(body).await.map_err(err)?;
    let status = res.status().as_u16();
    let v = res
        .json::<Value>()
        .limit(4 << 20)
        .await
        .unwrap_or(Value::Null);
    Ok((status, v))
}

pub async fn run(settings: &Settings, cmd: BenchCommand) -> Result<(), StartupError> {
    let (url, username, password, requests, concurrency) = match cmd {
        BenchCommand::Intake {
            url,
            username,
            password,
            requests,
            concurrency,
        } => (url, username, password, requests, concurrency),
        BenchCommand::Stats {
            url,
            username,
            password,
            requests,
        } => return stats(&url, &username, &password, requests).await,
        BenchCommand::Route(args) => return crate::cli::route_eval::bench(settings, args),
        BenchCommand::Soak(args) => return crate::cli::soak::soak(args).await,
        BenchCommand::SmtpSink(args) => return crate::cli::soak::smtp_sink(args).await,
        BenchCommand::SoakCheck(args) => {
            let store = crate::startup::open_store(settings).await?;
            return crate::cli::soak::check(&store, args).await;
        }
        BenchCommand::Pages(args) => return crate::cli::bench_pages::run(settings, args).await,
        BenchCommand::Wenzheng {
            url,
            secret,
            region,
            requests,
            concurrency,
        } => {
            let secret = secret.unwrap_or_else(|| settings.channels.wenzheng.secret.clone());
            return wenzheng(settings, &url, &secret, &region, requests, concurrency).await;
        }
    };
    let client = awc::Client::default();
    let admin = login(&client, &url, &username, &password).await?;
    let agent = format!("bench_{}", std::process::id());
    let agent_pw = format!(
        "pw-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp()
    );
    let (s, body) = post(
        &client,
        &format!("{url}/api/v1/users"),
        Some(&admin),
        &json!({"username": agent, "password": agent_pw, "role": "agent"}),
    )
    .await?;
    if s != 201 && s != 409 {
        return Err(err(format!(
            "creating the bench agent failed ({s}): {body}"
        )));
    }
    let (_, login) = post(
        &client,
        &format!("{url}/api/v1/auth/login"),
        None,
        &json!({"username": agent, "password": agent_pw}),
    )
    .await?;
    let token = login["token"].as_str().unwrap_or_default().to_owned();

    let store = Store::connect(&settings.database_url(), 2).await?;
    let before = store.count_tickets().await?;

    let warmup = (requests / 50).max(concurrency);
    let (_, ok_w, _) = drive(&url, &token, warmup, concurrency).await;
    let started = Instant::now();
    let (mut lat, ok, failed) = drive(&url, &token, requests, concurrency).await;
    let secs = started.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| quantile_ms(&lat, p);
    let after = store.count_tickets().await?;
    let stored = after - before;
    let acked = (ok + ok_w) as u64;
    println!(
        "intake backend={} concurrency={concurrency} tickets={ok} failed={failed} seconds={secs:.2} rate={:.0}/s p50={:.2}ms p99={:.2}ms",
        format!("{:?}", store.backend()).to_lowercase(),
        ok as f64 / secs,
        pct(0.50),
        pct(0.99),
    );
    println!(
        "intake check: acknowledged={acked} (incl. {ok_w} warm-up) stored={stored} lost={}",
        acked.saturating_sub(stored)
    );
    if stored < acked {
        return Err(err(
            "tickets acknowledged with 201 are missing from the database",
        ));
    }
    Ok(())
}

/// `n` registrations over `concurrency` connections; latencies of the 201s.
async fn drive(
    url: &str,
    token: &str,
    n: usize,
    concurrency: usize,
) -> (Vec<Duration>, usize, usize) {
    let mut handles = Vec::new();
    for w in 0..concurrency {
        let share = n / concurrency + usize::from(w < n % concurrency);
        let url = format!("{url}/api/v1/tickets");
        let token = token.to_owned();
        handles.push(actix_web::rt::spawn(async move {
            let client = awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish();
            let mut lat = Vec::with_capacity(share);
            let mut failed = 0;
            for i in 0..share {
                let category = ["complaint", "consult", "help", "report"][i % 4];
                let body = json!({
                    "channel": "hotline",
                    "category": category,
                    "urgency": "normal",
                    "title": "小区门口路灯不亮",
                    "content": format!("市民来电反映：小区门口路灯连续多日不亮，夜间出行不便，请尽快维修。({w}-{i})"),
                    "citizen": {"name": "测试", "phone": format!("139{:08}", (w * 1_000_000 + i) % 100_000_000)},
                    "district": "donghu",
                });
                let t0 = Instant::now();
                let res = client.post(&url).bearer_auth(&token).send_json(&body).await;
                match res {
                    Ok(mut r) if r.status().as_u16() == 201 => {
                        let _ = r.body().await;
                        lat.push(t0.elapsed());
                    }
                    Ok(mut r) => {
                        failed += 1;
                        let _ = r.body().await;
                    }
                    Err(_) => failed += 1,
                }
            }
            (lat, failed)
        }));
    }
    let mut all = Vec::with_capacity(n);
    let mut failed = 0;
    for h in handles {
        if let Ok((l, f)) = h.await {
            all.extend(l);
            failed += f;
        }
    }
    let ok = all.len();
    (all, ok, failed)
}

/// `bench wenzheng`: signed posts at `concurrency` connections; appeals/s,
/// p50, p99, and the count of new tickets found in the database afterwards.
async fn wenzheng(
    settings: &Settings,
    url: &str,
    secret: &str,
    region: &str,
    requests: usize,
    concurrency: usize,
) -> Result<(), StartupError> {
    if secret.is_empty() {
        return Err(err(
            "no secret: pass --secret or set channels.wenzheng.secret (HOTLINE__CHANNELS__WENZHENG__SECRET)",
        ));
    }
    let store = Store::connect(&settings.database_url(), 2).await?;
    let before = store.count_tickets().await?;
    let run = format!(
        "bench-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp()
    );
    let warmup = (requests / 50).max(concurrency);
    let w = drive_wenzheng(
        url,
        secret,
        region,
        &format!("{run}-w"),
        warmup,
        concurrency,
    )
    .await?;
    let started = Instant::now();
    let mut r = drive_wenzheng(
        url,
        secret,
        region,
        &format!("{run}-r"),
        requests,
        concurrency,
    )
    .await?;
    let secs = started.elapsed().as_secs_f64();
    r.0.sort_unstable();
    let (lat, ok, failed) = r;
    let stored = store.count_tickets().await? - before;
    let acked = (ok + w.1) as u64;
    println!(
        "wenzheng backend={} concurrency={concurrency} appeals={ok} failed={failed} seconds={secs:.2} rate={:.0}/s p50={:.2}ms p99={:.2}ms",
        format!("{:?}", store.backend()).to_lowercase(),
        ok as f64 / secs,
        quantile_ms(&lat, 0.50),
        quantile_ms(&lat, 0.99),
    );
    println!(
        "wenzheng check: acknowledged={acked} (incl. {} warm-up) found_in_database={stored} lost={}",
        w.1,
        acked.saturating_sub(stored)
    );
    if stored < acked {
        return Err(err(
            "posts acknowledged with 201 are missing from the database",
        ));
    }
    Ok(())
}

/// `n` signed pushes over `concurrency` connections, post ids `{run}-{w}-{i}`;
/// latencies of the 201s, their count, and the failures.
async fn drive_wenzheng(
    url: &str,
    secret: &str,
    region: &str,
    run: &str,
    n: usize,
    concurrency: usize,
) -> Result<(Vec<Duration>, usize, usize), StartupError> {
    let mut handles = Vec::new();
    for w in 0..concurrency {
        let share = n / concurrency + usize::from(w < n % concurrency);
        let url = format!("{url}/api/v1/channels/wenzheng/appeals");
        let (secret, region, run) = (secret.to_owned(), region.to_owned(), run.to_owned());
        handles.push(actix_web::rt::spawn(async move {
            let client = awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish();
            let mut lat = Vec::with_capacity(share);
            let (mut failed, mut first_error) = (0, None);
            for i in 0..share {
                let body = json!({
                    "post_id": format!("{run}-{w}-{i}"),
                    "title": "小区门口道路积水",
                    "content": format!("小区门口道路积水严重，雨天无法通行，请尽快处理。({w}-{i})"),
                    "poster": {"nickname": "网友", "phone": format!("137{:08}", (w * 1_000_000 + i) % 100_000_000)},
                    "region": region,
                    "posted_at": chrono::Utc::now().to_rfc3339(),
                });
                let body = serde_json::to_vec(&body).unwrap_or_default();
                let t0 = Instant::now();
                let ts = chrono::Utc::now().timestamp().to_string();
                let sig = crate::domain::wenzheng::sign(&secret, &ts, &body);
                let res = client
                    .post(&url)
                    .insert_header(("content-type", "application/json"))
                    .insert_header(("x-wenzheng-timestamp", ts))
                    .insert_header(("x-wenzheng-signature", sig))
                    .send_body(body)
                    .await;
                match res {
                    Ok(mut r) if r.status().as_u16() == 201 => {
                        let _ = r.body().await;
                        lat.push(t0.elapsed());
                    }
                    Ok(mut r) => {
                        failed += 1;
                        let b = r.body().await.unwrap_or_default();
                        first_error.get_or_insert_with(|| {
                            format!("{}: {}", r.status(), String::from_utf8_lossy(&b))
                        });
                    }
                    Err(e) => {
                        failed += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            (lat, failed, first_error)
        }));
    }
    let mut all = Vec::with_capacity(n);
    let mut failed = 0;
    for h in handles {
        if let Ok((l, f, e)) = h.await {
            all.extend(l);
            failed += f;
            if let Some(e) = e {
                eprintln!("wenzheng: first refusal on a connection: {e}");
            }
        }
    }
    let ok = all.len();
    Ok((all, ok, failed))
}
