//! The soak test's three parts (`tests/soak/run.sh` drives them):
//!
//! - `hotline bench soak`: a load generator. Agents register appeals,
//!   dispatchers dispatch them and record call-backs, handlers sign, return,
//!   ask for extensions and reply, leaders read figures — every ticket is
//!   walked through its whole lifecycle — at a steady rate, round-robin over
//!   several instances (a refused connection fails over to the next one, as
//!   a load balancer would). Every acknowledged (2xx) registration and
//!   transition is written to an acknowledgement file.
//! - `hotline bench smtp-sink`: a plain SMTP server that records each
//!   accepted message's Message-ID (durably, before it answers 250).
//! - `hotline bench soak-check`: proves from the database, the
//!   acknowledgements and the sink that nothing was lost or doubled.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rand::Rng;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::startup::StartupError;
use crate::store::Store;

fn err(e: impl std::fmt::Display) -> StartupError {
    StartupError::Bootstrap(e.to_string())
}

#[derive(clap::Args, Debug)]
pub struct SoakArgs {
    /// Base URLs of the instances, comma-separated (requests go round-robin).
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:8080")]
    urls: Vec<String>,
    /// The admin password (the generator creates its own users).
    #[arg(long, env = "HOTLINE_ADMIN_PASSWORD")]
    password: String,
    /// Requests per second to hold.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    /// How long to run.
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 96)]
    concurrency: usize,
    /// Where the acknowledged operations are written (for soak-check).
    #[arg(long)]
    acks: PathBuf,
    /// Where the summary is written as JSON.
    #[arg(long)]
    summary: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The generator's acknowledgement file.
    #[arg(long)]
    acks: PathBuf,
    /// The SMTP sink's record of received Message-IDs.
    #[arg(long)]
    sink: PathBuf,
    /// Only wait (up to --drain-secs) until no mail is pending, then exit.
    #[arg(long)]
    wait_only: bool,
    /// Instants (ms since 1970, one per line) at which an instance was
    /// killed: a mail the SMTP server accepted in the 5 s before such an
    /// instant (or recorded up to 2 s after it) may come again with the same
    /// Message-ID, since the instance died before it could record the
    /// acceptance.
    #[arg(long)]
    crashes: Option<PathBuf>,
    #[arg(long, default_value_t = 180)]
    drain_secs: u64,
}

#[derive(clap::Args, Debug)]
pub struct SinkArgs {
    #[arg(long, default_value_t = 2525)]
    port: u16,
    /// One line per accepted message: the instant (ms since 1970) and its
    /// Message-ID.
    #[arg(long)]
    out: PathBuf,
}

// ---------------------------------------------------------------- generator

/// What a ticket needs next.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    Dispatch,
    Sign,
    Return,
    Extend,
    Decide(i64),
    Reply,
    Callback,
    DirectClose,
}

#[derive(Debug, Clone)]
struct Work {
    id: i64,
    stage: Stage,
    department: Option<String>,
    reworks: u32,
}

#[derive(Default)]
struct Tally {
    by_status: BTreeMap<String, u64>,
    latencies_us: Vec<u32>,
    failovers: u64,
    resyncs: u64,
    requeued: u64,
    unexpected: u64,
    created: u64,
    transitions: u64,
    closed: u64,
    io_shown: u32,
}

struct Gen {
    urls: Vec<String>,
    turn: usize,
    tokens: HashMap<&'static str, String>,
    handler_tokens: HashMap<String, String>,
    departments: Vec<String>,
    ready: VecDeque<Work>,
    known: Vec<i64>,
    in_pipeline: usize,
    next_ext: u64,
    run_id: String,
    acks: std::io::BufWriter<std::fs::File>,
    tally: Tally,
    shown: u32,
}

enum Outcome {
    Status(u16, Value),
    Io(String),
}

fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(40))
        .max_http_version(awc::http::Version::HTTP_11)
        .finish()
}

/// One request, round-robin; a refused connection tries the next instance.
async fn call(
    g: &Rc<RefCell<Gen>>,
    http: &awc::Client,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Outcome {
    let (urls, start) = {
        let mut g = g.borrow_mut();
        g.turn = g.turn.wrapping_add(1);
        (g.urls.clone(), g.turn)
    };
    let began = Instant::now();
    let mut outcome = Outcome::Io("no instance".into());
    for k in 0..urls.len() {
        let url = format!("{}{path}", urls[(start + k) % urls.len()]);
        let mut req = match method {
            "GET" => http.get(&url),
            _ => http.post(&url),
        };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let sent = match body {
            Some(b) => req.send_json(b).await,
            None => req.send().await,
        };
        match sent {
            Ok(mut res) => {
                let status = res.status().as_u16();
                let v = res
                    .json::<Value>()
                    .limit(8 << 20)
                    .await
                    .unwrap_or(Value::Null);
                outcome = Outcome::Status(status, v);
                break;
            }
            Err(awc::error::SendRequestError::Connect(e)) => {
                g.borrow_mut().tally.failovers += 1;
                outcome = Outcome::Io(format!("connect: {e}"));
            }
            Err(e) => {
                outcome = Outcome::Io(e.to_string());
                break;
            }
        }
    }
    let mut gm = g.borrow_mut();
    let t = &mut gm.tally;
    t.latencies_us
        .push(began.elapsed().as_micros().min(u32::MAX as u128) as u32);
    let key = match &outcome {
        Outcome::Status(s, _) => s.to_string(),
        Outcome::Io(e) => {
            if t.io_shown < 10 {
                t.io_shown += 1;
                eprintln!("soak: {method} {path}: {e}");
            }
            "io_error".to_owned()
        }
    };
    *t.by_status.entry(key).or_default() += 1;
    outcome
}

fn stage_for(state: &str, rng: &mut impl Rng) -> Option<Stage> {
    Some(match state {
        "registered" | "returned" => Stage::Dispatch,
        "dispatched" => {
            if rng.gen_ratio(1, 12) {
                Stage::Return
            } else {
                Stage::Sign
            }
        }
        "in_progress" => {
            if rng.gen_ratio(1, 10) {
                Stage::Extend
            } else {
                Stage::Reply
            }
        }
        "replied" => Stage::Callback,
        _ => return None,
    })
}

fn ack(g: &mut Gen, line: std::fmt::Arguments<'_>) {
    let _ = g.acks.write_fmt(line);
    let _ = g.acks.write_all(b"\n");
}

/// Puts the ticket back where its state says, from the ticket JSON.
fn advance(g: &mut Gen, mut w: Work, ticket: &Value) {
    let state = ticket["state"].as_str().unwrap_or_default();
    if let Some(d) = ticket["department"].as_str() {
        w.department = Some(d.to_owned());
    }
    let mut rng = rand::thread_rng();
    match stage_for(state, &mut rng) {
        Some(s) => {
            w.stage = s;
            g.ready.push_back(w);
        }
        None => {
            g.in_pipeline -= 1;
            if state == "closed" {
                g.tally.closed += 1;
            }
        }
    }
}

fn show(g: &mut Gen, what: &str, status: u16, body: &Value) {
    g.tally.unexpected += 1;
    if g.shown < 20 {
        g.shown += 1;
        eprintln!("soak: unexpected {status} on {what}: {body}");
    }
}

const CATEGORIES: [&str; 5] = ["consult", "help", "complaint", "report", "suggestion"];

async fn create(g: &Rc<RefCell<Gen>>, http: &awc::Client) {
    let (n, token, run) = {
        let mut gm = g.borrow_mut();
        gm.next_ext += 1;
        (gm.next_ext, gm.tokens["agent"].clone(), gm.run_id.clone())
    };
    let mut rng = rand::thread_rng();
    let body = json!({
        "channel": "hotline",
        "external_id": format!("soak-{run}-{n}"),
        "category": CATEGORIES[rng.gen_range(0..CATEGORIES.len())],
        "urgency": if rng.gen_ratio(1, 10) { "urgent" } else { "normal" },
        "title": format!("小区路灯不亮 {n}"),
        "content": "市民反映小区门口路灯连续三晚不亮，夜间出行不便，请尽快维修。",
        "citizen": {"name": "测试市民", "phone": format!("139{:08}", n % 100_000_000)},
        // A city's addresses, some shared by several callers (the repeat
        // check has work to do, as at a real hotline, without every ticket
        // being every other's candidate).
        "address": format!("红谷滩区丰和中大道 {} 号", n % 997 + 1),
    });
    // The same external id makes a retry after an unknown outcome safe.
    for _ in 0..20 {
        match call(
            g,
            http,
            "POST",
            "/api/v1/tickets",
            Some(&token),
            Some(&body),
        )
        .await
        {
            Outcome::Status(200 | 201, t) => {
                let mut gm = g.borrow_mut();
                let id = t["id"].as_i64().unwrap_or_default();
                let no = t["ticket_no"].as_str().unwrap_or_default().to_owned();
                ack(&mut gm, format_args!("C {id} {no}"));
                gm.tally.created += 1;
                gm.known.push(id);
                gm.in_pipeline += 1;
                let stage = if rng.gen_ratio(1, 20) {
                    Stage::DirectClose
                } else {
                    Stage::Dispatch
                };
                gm.ready.push_back(Work {
                    id,
                    stage,
                    department: None,
                    reworks: 0,
                });
                return;
            }
            Outcome::Status(s, _) if s == 429 || s >= 500 => {}
            Outcome::Io(_) => {}
            Outcome::Status(s, b) => {
                show(&mut g.borrow_mut(), "create", s, &b);
                return;
            }
        }
        g.borrow_mut().tally.requeued += 1;
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn step(g: &Rc<RefCell<Gen>>, http: &awc::Client, w: Work) {
    let mut rng = rand::thread_rng();
    let (token, path, body, kind) = {
        let gm = g.borrow();
        let handler = w
            .department
            .as_ref()
            .and_then(|d| gm.handler_tokens.get(d))
            .cloned()
            .unwrap_or_default();
        let dispatcher = gm.tokens["dispatcher"].clone();
        let id = w.id;
        match w.stage {
            Stage::Dispatch => {
                let d = gm.departments[rng.gen_range(0..gm.departments.len())].clone();
                (
                    dispatcher,
                    format!("/api/v1/tickets/{id}/dispatch"),
                    json!({"department": d, "note": "请按时办理"}),
                    "dispatched",
                )
            }
            Stage::Sign => (
                handler,
                format!("/api/v1/tickets/{id}/sign"),
                json!({}),
                "signed",
            ),
            Stage::Return => (
                handler,
                format!("/api/v1/tickets/{id}/return"),
                json!({"reason": "不属于本单位职责"}),
                "returned",
            ),
            Stage::Extend => (
                handler,
                format!("/api/v1/tickets/{id}/extensions"),
                json!({"working_days": 3, "reason": "需协调施工单位"}),
                "extension_requested",
            ),
            Stage::Decide(ext) => (
                dispatcher,
                format!("/api/v1/tickets/{id}/extensions/{ext}/decision"),
                json!({"approve": true}),
                "extension_decided",
            ),
            Stage::Reply => (
                handler,
                format!("/api/v1/tickets/{id}/reply"),
                json!({"content": "已派人维修，路灯恢复正常。", "resolved": true}),
                "replied",
            ),
            Stage::Callback => {
                let unhappy = w.reworks == 0 && rng.gen_ratio(1, 10);
                (
                    dispatcher,
                    format!("/api/v1/tickets/{id}/callback"),
                    json!({
                        "satisfaction": if unhappy { "dissatisfied" } else { "satisfied" },
                        "resolved": !unhappy,
                    }),
                    "callback",
                )
            }
            Stage::DirectClose => (
                gm.tokens["agent"].clone(),
                format!("/api/v1/tickets/{id}/close"),
                json!({"resolution": "direct_answer", "note": "已当场解答"}),
                "closed",
            ),
        }
    };
    match call(g, http, "POST", &path, Some(&token), Some(&body)).await {
        Outcome::Status(s @ (200 | 201), v) => {
            let mut gm = g.borrow_mut();
            // An unsatisfied call-back that sends the ticket back (重办) is
            // recorded as `reopened`.
            let kind = if kind == "callback" && v["state"] != "closed" {
                "reopened"
            } else {
                kind
            };
            ack(&mut gm, format_args!("T {} {kind}", w.id));
            gm.tally.transitions += 1;
            let mut w = w;
            if kind == "reopened" {
                w.reworks += 1;
            }
            if s == 201 && kind == "extension_requested" {
                let ext = v["id"].as_i64().unwrap_or_default();
                w.stage = Stage::Decide(ext);
                gm.ready.push_back(w);
            } else {
                advance(&mut gm, w, &v);
            }
        }
        Outcome::Status(409, _) => {
            // Perhaps an earlier attempt did commit: follow the ticket.
            g.borrow_mut().tally.resyncs += 1;
            resync(g, http, w).await;
        }
        Outcome::Status(s, _) if s == 429 || s >= 500 => requeue(g, w),
        Outcome::Io(_) => requeue(g, w),
        Outcome::Status(s, v) => {
            let mut gm = g.borrow_mut();
            show(&mut gm, kind, s, &v);
            gm.in_pipeline -= 1;
        }
    }
}

fn requeue(g: &Rc<RefCell<Gen>>, w: Work) {
    let mut gm = g.borrow_mut();
    gm.tally.requeued += 1;
    gm.ready.push_back(w);
}

async fn resync(g: &Rc<RefCell<Gen>>, http: &awc::Client, w: Work) {
    let token = g.borrow().tokens["dispatcher"].clone();
    let path = format!("/api/v1/tickets/{}", w.id);
    match call(g, http, "GET", &path, Some(&token), None).await {
        Outcome::Status(200, v) => {
            let mut gm = g.borrow_mut();
            // A pending extension keeps the ticket `in_progress`: reply then.
            let mut w = w;
            if matches!(w.stage, Stage::Decide(_)) {
                w.stage = Stage::Reply;
            }
            advance(&mut gm, w, &v);
        }
        _ => requeue(g, w),
    }
}

async fn read(g: &Rc<RefCell<Gen>>, http: &awc::Client) {
    let mut rng = rand::thread_rng();
    let (token, path) = {
        let gm = g.borrow();
        match rng.gen_range(0..4) {
            0 if !gm.known.is_empty() => {
                let id = gm.known[rng.gen_range(0..gm.known.len())];
                (
                    gm.tokens["dispatcher"].clone(),
                    format!("/api/v1/tickets/{id}"),
                )
            }
            1 => {
                let d = &gm.departments[rng.gen_range(0..gm.departments.len())];
                (
                    gm.handler_tokens[d].clone(),
                    "/api/v1/tickets?state=dispatched&per_page=20".to_owned(),
                )
            }
            2 => {
                let today = crate::domain::figures::city_day(crate::store::now());
                let from = today - chrono::Days::new(30);
                let to = today + chrono::Days::new(1);
                (
                    gm.tokens["leader"].clone(),
                    format!("/api/v1/stats?from={from}&to={to}&group_by=department"),
                )
            }
            _ => (
                gm.tokens["dispatcher"].clone(),
                "/api/v1/tickets?state=replied&per_page=20".to_owned(),
            ),
        }
    };
    if let Outcome::Status(s, v) = call(g, http, "GET", &path, Some(&token), None).await
        && (400..500).contains(&s)
        && s != 429
    {
        show(&mut g.borrow_mut(), "read", s, &v);
    }
}

async fn setup(
    urls: &[String],
    password: &str,
    acks: &std::path::Path,
) -> Result<Gen, StartupError> {
    let http = client();
    let base = &urls[0];
    // Wait for the first instance.
    let mut admin = None;
    for _ in 0..120 {
        match crate::cli::bench::login(&http, base, "admin", password).await {
            Ok(t) => {
                admin = Some(t);
                break;
            }
            Err(_) => actix_web::rt::time::sleep(Duration::from_millis(500)).await,
        }
    }
    let admin = admin.ok_or_else(|| err("cannot log in as admin"))?;
    let run_id = format!("{:x}", rand::thread_rng().r#gen::<u32>());
    let departments: Vec<String> = (1..=4).map(|i| format!("soak_d{i}")).collect();
    for d in &departments {
        let (s, b) = crate::cli::bench::post(
            &http,
            &format!("{base}/api/v1/departments"),
            Some(&admin),
            &json!({"code": d, "name": format!("压测单位{d}"), "kind": "functional",
                    "email": format!("{d}@soak.example.cn")}),
        )
        .await?;
        if !(200..300).contains(&s) && s != 409 {
            return Err(err(format!("department {d}: {s} {b}")));
        }
    }
    let pw = format!("Soak-{run_id}-pw");
    let user = |name: String, role: &str, dept: Option<&str>| {
        let http = http.clone();
        let (admin, pw, base) = (admin.clone(), pw.clone(), base.clone());
        let role = role.to_owned();
        let dept = dept.map(str::to_owned);
        async move {
            let name = format!("{name}_{}", &pw[5..13]);
            let (s, b) = crate::cli::bench::post(
                &http,
                &format!("{base}/api/v1/users"),
                Some(&admin),
                &json!({"username": name, "password": pw, "role": role, "department": dept,
                        "email": format!("{name}@soak.example.cn")}),
            )
            .await?;
            if !(200..300).contains(&s) {
                return Err(err(format!("user {name}: {s} {b}")));
            }
            crate::cli::bench::login(&http, &base, &name, &pw).await
        }
    };
    let mut tokens = HashMap::new();
    tokens.insert("agent", user("soak_agent".into(), "agent", None).await?);
    tokens.insert(
        "dispatcher",
        user("soak_dispatcher".into(), "dispatcher", None).await?,
    );
    tokens.insert("leader", user("soak_leader".into(), "leader", None).await?);
    // Hotspot notices go to supervisors: without one they would be parked
    // as `no_recipient`, which the checker counts as not sent.
    tokens.insert(
        "supervisor",
        user("soak_supervisor".into(), "supervisor", None).await?,
    );
    let mut handler_tokens = HashMap::new();
    for d in &departments {
        handler_tokens.insert(
            d.clone(),
            user(format!("soak_h_{d}"), "handler", Some(d)).await?,
        );
    }
    Ok(Gen {
        urls: urls.to_vec(),
        turn: 0,
        tokens,
        handler_tokens,
        departments,
        ready: VecDeque::new(),
        known: Vec::new(),
        in_pipeline: 0,
        next_ext: 0,
        run_id,
        acks: std::io::BufWriter::new(std::fs::File::create(acks).map_err(err)?),
        tally: Tally::default(),
        shown: 0,
    })
}

/// Tickets kept in the pipeline: enough that every stage has work.
const LIVE: usize = 400;

pub async fn soak(args: SoakArgs) -> Result<(), StartupError> {
    let gen_state = Rc::new(RefCell::new(
        setup(&args.urls, &args.password, &args.acks).await?,
    ));
    let period = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
    let start = Instant::now();
    let end = start + Duration::from_secs(args.seconds);
    let next_slot = Rc::new(std::cell::Cell::new(Instant::now()));
    eprintln!(
        "soak: {} instances, {} req/s for {} s, {} in flight at most",
        args.urls.len(),
        args.rate,
        args.seconds,
        args.concurrency
    );
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let g = gen_state.clone();
        let next_slot = next_slot.clone();
        workers.push(actix_web::rt::spawn(async move {
            let http = client();
            loop {
                // Open-loop pacing: each request takes the next slot of the
                // schedule; a backlog catches up by at most a second.
                let now = Instant::now();
                let slot = next_slot
                    .get()
                    .max(now.checked_sub(Duration::from_secs(1)).unwrap_or(now));
                next_slot.set(slot + period);
                if slot >= end {
                    return;
                }
                actix_web::rt::time::sleep_until(slot.into()).await;
                let r = rand::thread_rng().gen_range(0..100);
                let work = {
                    let mut gm = g.borrow_mut();
                    if r < 25 {
                        None
                    } else if gm.in_pipeline >= LIVE || (r < 90 && !gm.ready.is_empty()) {
                        gm.ready.pop_front().map(Some)
                    } else {
                        Some(None)
                    }
                };
                match work {
                    None => read(&g, &http).await,
                    Some(Some(w)) => step(&g, &http, w).await,
                    Some(None) => create(&g, &http).await,
                }
            }
        }));
    }
    // Progress every 10 s.
    let g = gen_state.clone();
    let progress = actix_web::rt::spawn(async move {
        let mut last = (Instant::now(), 0usize);
        loop {
            actix_web::rt::time::sleep(Duration::from_secs(10)).await;
            let gm = g.borrow();
            let n = gm.tally.latencies_us.len();
            let mut recent: Vec<u32> = gm.tally.latencies_us[last.1..].to_vec();
            recent.sort_unstable();
            let p99 = recent
                .get(recent.len().saturating_sub(1) * 99 / 100)
                .copied()
                .unwrap_or(0);
            let errors: u64 = gm
                .tally
                .by_status
                .iter()
                .filter(|(k, _)| k.starts_with('5') || k.as_str() == "io_error")
                .map(|(_, v)| v)
                .sum();
            eprintln!(
                "soak: t={:>4.0}s requests={n} rate={:.0}/s p99={:.1}ms 5xx+io={errors} created={} closed={} in_pipeline={}",
                start.elapsed().as_secs_f64(),
                (n - last.1) as f64 / last.0.elapsed().as_secs_f64(),
                p99 as f64 / 1000.0,
                gm.tally.created,
                gm.tally.closed,
                gm.in_pipeline,
            );
            last = (Instant::now(), n);
        }
    });
    for w in workers {
        let _ = w.await;
    }
    progress.abort();
    let elapsed = start.elapsed().as_secs_f64();
    let mut gm = gen_state.borrow_mut();
    gm.acks.flush().map_err(err)?;
    let t = &mut gm.tally;
    t.latencies_us.sort_unstable();
    let q = |p: f64| {
        let n = t.latencies_us.len();
        if n == 0 {
            return 0.0;
        }
        t.latencies_us[((n as f64 * p).ceil() as usize).clamp(1, n) - 1] as f64 / 1000.0
    };
    let requests = t.latencies_us.len() as u64;
    let class = |pred: &dyn Fn(&str) -> bool| -> u64 {
        t.by_status
            .iter()
            .filter(|(k, _)| pred(k))
            .map(|(_, v)| v)
            .sum()
    };
    let ok = class(&|k| k.starts_with('2'));
    let e5 = class(&|k| k.starts_with('5'));
    let io = class(&|k| k == "io_error");
    let summary = json!({
        "seconds": elapsed,
        "requests": requests,
        "rate": requests as f64 / elapsed,
        "target_rate": args.rate,
        "by_status": t.by_status,
        "ok": ok,
        "error_5xx": e5,
        "io_errors": io,
        "error_rate": (e5 + io) as f64 / requests.max(1) as f64,
        "p50_ms": q(0.50),
        "p99_ms": q(0.99),
        "failovers": t.failovers,
        "resyncs_after_409": t.resyncs,
        "requeued": t.requeued,
        "unexpected_4xx": t.unexpected,
        "tickets_created": t.created,
        "tickets_closed": t.closed,
        "transitions_acked": t.transitions,
    });
    println!(
        "soak: {:.0} s, {requests} requests, {:.1} req/s (target {}), p50 {:.1} ms, p99 {:.1} ms",
        elapsed,
        requests as f64 / elapsed,
        args.rate,
        q(0.50),
        q(0.99)
    );
    println!(
        "soak: by status {}; 5xx+io error rate {:.3}%; failovers {}; 409 re-syncs {}; retried {}; unexpected 4xx {}",
        serde_json::to_string(&t.by_status).unwrap_or_default(),
        100.0 * (e5 + io) as f64 / requests.max(1) as f64,
        t.failovers,
        t.resyncs,
        t.requeued,
        t.unexpected
    );
    println!(
        "soak: tickets registered {} (acknowledged), closed {}, transitions acknowledged {}",
        t.created, t.closed, t.transitions
    );
    if let Some(p) = args.summary {
        std::fs::write(
            &p,
            serde_json::to_string_pretty(&summary).unwrap_or_default(),
        )
        .map_err(err)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- SMTP sink

/// A minimal SMTP server (RFC 5321 commands a client needs): every message
/// it accepts has its Message-ID appended to `out` and flushed before the
/// 250 reply, so "accepted" means "recorded".
pub async fn smtp_sink(args: SinkArgs) -> Result<(), StartupError> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(err)?;
    let out = std::sync::Arc::new(std::sync::Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&args.out)
            .map_err(err)?,
    ));
    eprintln!("smtp-sink: listening on 127.0.0.1:{}", args.port);
    loop {
        let (sock, _) = listener.accept().await.map_err(err)?;
        let out = out.clone();
        tokio::spawn(async move {
            let (r, mut w) = sock.into_split();
            let mut lines = BufReader::new(r);
            let _ = w.write_all(b"220 soak-sink ESMTP\r\n").await;
            let mut line = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let cmd = line.trim_end().to_ascii_uppercase();
                let reply: &[u8] = if cmd.starts_with("EHLO") {
                    b"250-soak-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
                } else if cmd.starts_with("DATA") {
                    if w.write_all(b"354 go ahead\r\n").await.is_err() {
                        return;
                    }
                    let mut id = String::from("-");
                    let mut in_headers = true;
                    loop {
                        line.clear();
                        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end_matches(['\r', '\n']);
                        if l == "." {
                            break;
                        }
                        if l.is_empty() {
                            in_headers = false;
                        }
                        if in_headers && l.to_ascii_lowercase().starts_with("message-id:") {
                            id = l[11..].trim().to_owned();
                        }
                    }
                    let ms = chrono::Utc::now().timestamp_millis();
                    let recorded = out
                        .lock()
                        .map(|mut f| writeln!(f, "{ms} {id}").and_then(|_| f.sync_data()).is_ok())
                        .unwrap_or(false);
                    if recorded {
                        b"250 accepted\r\n"
                    } else {
                        b"451 cannot record\r\n"
                    }
                } else if cmd.starts_with("QUIT") {
                    let _ = w.write_all(b"221 bye\r\n").await;
                    return;
                } else {
                    b"250 ok\r\n"
                };
                if w.write_all(reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

// ---------------------------------------------------------------- checker

async fn rows(store: &Store, sql: &str) -> Result<Vec<sea_orm::QueryResult>, StartupError> {
    store
        .db
        .query_all_raw(Statement::from_string(store.backend(), sql.to_owned()))
        .await
        .map_err(err)
}

pub async fn check(store: &Store, args: CheckArgs) -> Result<(), StartupError> {
    // Wait for the outbox to drain.
    let waited = Instant::now();
    loop {
        let r = rows(
            store,
            "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND transport = 'mail'",
        )
        .await?;
        let pending: i64 = r[0].try_get_by_index(0).map_err(err)?;
        if pending == 0 {
            break;
        }
        if waited.elapsed() > Duration::from_secs(args.drain_secs) {
            println!(
                "check: {pending} mails still pending after {} s",
                args.drain_secs
            );
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if args.wait_only {
        return Ok(());
    }
    let mut failures: Vec<String> = Vec::new();

    // 1. Acknowledged registrations and transitions.
    let text = std::fs::read_to_string(&args.acks).map_err(err)?;
    let mut acked_tickets: Vec<(i64, String)> = Vec::new();
    let mut acked_kinds: HashMap<(i64, String), u32> = HashMap::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        match f.as_slice() {
            ["C", id, no] => acked_tickets.push((id.parse().map_err(err)?, (*no).to_owned())),
            ["T", id, kind] => {
                *acked_kinds
                    .entry((id.parse().map_err(err)?, (*kind).to_owned()))
                    .or_default() += 1
            }
            _ => failures.push(format!("bad ack line {l:?}")),
        }
    }
    let tickets: HashMap<i64, (String, String)> =
        rows(store, "SELECT id, ticket_no, state FROM tickets")
            .await?
            .into_iter()
            .map(|r| {
                Ok((
                    r.try_get_by_index::<i64>(0)?,
                    (r.try_get_by_index(1)?, r.try_get_by_index(2)?),
                ))
            })
            .collect::<Result<_, sea_orm::DbErr>>()
            .map_err(err)?;
    let mut missing = 0;
    for (id, no) in &acked_tickets {
        match tickets.get(id) {
            Some((n, _)) if n == no => {}
            _ => missing += 1,
        }
    }
    if missing > 0 {
        failures.push(format!("{missing} acknowledged tickets missing"));
    }

    // 2. Event histories: continuous, no transition twice, as acknowledged.
    let events = rows(
        store,
        "SELECT ticket_id, kind, from_state, to_state, payload FROM ticket_events ORDER BY ticket_id, id",
    )
    .await?;
    let mut by_kind: HashMap<(i64, String), u32> = HashMap::new();
    let mut state: HashMap<i64, Option<String>> = HashMap::new();
    let mut broken = 0u64;
    let mut escalations: HashMap<(i64, String, String, i64), u32> = HashMap::new();
    let mut escalated = 0u64;
    for r in &events {
        let tid: i64 = r.try_get_by_index(0).map_err(err)?;
        let kind: String = r.try_get_by_index(1).map_err(err)?;
        let from: Option<String> = r.try_get_by_index(2).map_err(err)?;
        let to: Option<String> = r.try_get_by_index(3).map_err(err)?;
        let cur = state.entry(tid).or_insert(None);
        if kind == "created" {
            if cur.is_some() {
                broken += 1;
            }
        } else if from.is_some() && from != *cur {
            broken += 1;
            if broken <= 5 {
                eprintln!("check: ticket {tid}: {kind} from {from:?} but the ticket was {cur:?}");
            }
        }
        if to.is_some() {
            *cur = to;
        }
        if kind == "escalated" {
            escalated += 1;
            let payload: String = r.try_get_by_index(4).map_err(err)?;
            let p: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
            *escalations
                .entry((
                    tid,
                    p["clock"].as_str().unwrap_or_default().to_owned(),
                    p["deadline"].to_string(),
                    p["level"].as_i64().unwrap_or(-1),
                ))
                .or_default() += 1;
        }
        *by_kind.entry((tid, kind)).or_default() += 1;
    }
    for (id, (_, st)) in &tickets {
        if state.get(id).cloned().flatten().as_deref() != Some(st.as_str()) {
            broken += 1;
        }
    }
    if broken > 0 {
        failures.push(format!("{broken} broken or doubled event histories"));
    }
    // The inbox reads the state off the scope rows: they must agree.
    let stale = store.scope_state_mismatches().await.map_err(err)?;
    if stale > 0 {
        failures.push(format!("{stale} scope rows with a stale state"));
    }
    let mut short = 0u64;
    for (k, n) in &acked_kinds {
        if by_kind.get(k).copied().unwrap_or(0) < *n {
            short += 1;
        }
    }
    if short > 0 {
        failures.push(format!(
            "{short} acknowledged transitions without their event"
        ));
    }
    let doubled_escalations = escalations.values().filter(|n| **n > 1).count();
    if doubled_escalations > 0 {
        failures.push(format!(
            "{doubled_escalations} escalation levels recorded twice for one clock"
        ));
    }

    // 3. Ticket numbers.
    let dup_numbers = rows(
        store,
        "SELECT ticket_no FROM tickets GROUP BY ticket_no HAVING COUNT(*) > 1",
    )
    .await?
    .len();
    if dup_numbers > 0 {
        failures.push(format!("{dup_numbers} ticket numbers used twice"));
    }

    // 4. Mail: every row sent, each exactly once at the sink.
    let outbox = rows(
        store,
        "SELECT id, status FROM outbox WHERE transport = 'mail'",
    )
    .await?;
    let sink = std::fs::read_to_string(&args.sink).unwrap_or_default();
    // Message-ID → the instants it was received.
    let mut received: HashMap<String, Vec<i64>> = HashMap::new();
    for l in sink.lines() {
        if let Some((ms, id)) = l.trim().split_once(' ') {
            received
                .entry(id.to_owned())
                .or_default()
                .push(ms.parse().unwrap_or(0));
        }
    }
    let crashes: Vec<i64> = match &args.crashes {
        Some(p) => std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect(),
        None => Vec::new(),
    };
    let (mut unsent, mut lost, mut twice, mut resent_after_crash) = (0u64, 0u64, 0u64, 0u64);
    let mut ours = HashSet::new();
    for r in &outbox {
        let id: i64 = r.try_get_by_index(0).map_err(err)?;
        let status: String = r.try_get_by_index(1).map_err(err)?;
        let mid = crate::jobs::outbox::message_id(id);
        match received.get(&mid).map(Vec::as_slice).unwrap_or(&[]) {
            [] => lost += 1,
            [_] => {}
            [first, rest @ ..] => {
                // Accepted around a kill, sent again after the claim ran
                // out: the one window no sender can close. "Around": the
                // sink records a message when its fsync is done, which can
                // be a moment after the sender, whose DATA it already had,
                // was killed.
                let explained = rest.len() == 1
                    && crashes
                        .iter()
                        .any(|c| (c - 5_000..=c + 2_000).contains(first) && rest[0] > c + 2_000);
                if explained {
                    resent_after_crash += 1;
                } else {
                    twice += 1;
                }
            }
        }
        if status != "sent" {
            unsent += 1;
        }
        ours.insert(mid);
    }
    let strangers = received.keys().filter(|k| !ours.contains(*k)).count();
    if unsent + lost + twice > 0 || strangers > 0 {
        failures.push(format!(
            "mail: {unsent} rows not sent, {lost} never received, {twice} received twice, {strangers} unknown messages"
        ));
    }

    // 5. Figures: the rollups equal the figures recomputed from raw rows.
    let stored = store.stored_rollup().await.map_err(err)?;
    let raw = store.raw_rollup().await.map_err(err)?;
    let figure_diffs = raw.iter().filter(|(k, v)| stored.get(k) != Some(v)).count()
        + stored.keys().filter(|k| !raw.contains_key(*k)).count();
    if figure_diffs > 0 {
        failures.push(format!(
            "{figure_diffs} rollup rows differ from the raw figures"
        ));
    }

    println!(
        "check: tickets {} in the database, {} acknowledged (all present: {}); events {} ({} transitions acknowledged, histories broken or doubled: {broken})",
        tickets.len(),
        acked_tickets.len(),
        missing == 0,
        events.len(),
        acked_kinds.values().sum::<u32>(),
    );
    println!("check: scope rows whose state differs from their ticket's: {stale}");
    println!(
        "check: escalations {escalated} (levels twice for one clock: {doubled_escalations}); ticket numbers used twice: {dup_numbers}"
    );
    println!(
        "check: mail rows {} — sent {}, received exactly once {}, never {lost}, more than once {twice}; \
         re-sent with the same Message-ID after a SIGKILL between the server's acceptance and the mark {resent_after_crash}; unknown messages {strangers}",
        outbox.len(),
        outbox.len() as u64 - unsent,
        outbox.len() as u64 - lost - twice - resent_after_crash,
    );
    println!(
        "check: figures — {} rollup rows compared with the raw tickets, {figure_diffs} differ",
        raw.len()
    );
    if failures.is_empty() {
        println!("check: PASS");
        Ok(())
    } else {
        for f in &failures {
            println!("check: FAIL {f}");
        }
        Err(err(format!("soak check failed: {}", failures.join("; "))))
    }
}
