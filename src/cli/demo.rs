//! `hotline demo`: the catalogue's departments, one user per role, and a few
//! hundred sample tickets in every state, driven through the real lifecycle
//! with back-dated clocks so deadlines and timelines look like a real office.

use std::io::Write;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

use crate::api::auth::hash_password;
use crate::config::Settings;
use crate::domain::appeal::NewAppeal;
use crate::domain::calendar::Calendar;
use crate::domain::lifecycle::{self, Action, Actor, Rules};
use crate::domain::types::{
    Category, Channel, DepartmentCode, Resolution, Role, Satisfaction, Urgency,
};
use crate::startup::StartupError;
use crate::store::Store;
use crate::store::entities::ticket;
use crate::store::tickets::{SideEffect, TransitionWrite, to_domain};

#[derive(Deserialize)]
struct DemoFile {
    appeals: Vec<DemoAppeal>,
}

#[derive(Deserialize, Clone)]
struct DemoAppeal {
    department: String,
    category: Category,
    urgency: Urgency,
    channel: Channel,
    district: String,
    #[serde(default)]
    address: Option<String>,
    title: String,
    content: String,
}

const DEMO_USERS: &[(&str, Role, Option<&str>, &str)] = &[
    ("agent1", Role::Agent, None, "坐席 小李"),
    ("dispatcher1", Role::Dispatcher, None, "派单员 小王"),
    (
        "handler_water",
        Role::Handler,
        Some("water"),
        "水务集团 承办人",
    ),
    (
        "head_water",
        Role::DeptHead,
        Some("water"),
        "水务集团 负责人",
    ),
    (
        "handler_city_management",
        Role::Handler,
        Some("city_management"),
        "城管执法局 承办人",
    ),
    ("supervisor1", Role::Supervisor, None, "督办 老陈"),
    ("leader1", Role::Leader, None, "领导"),
];

fn err(e: impl std::fmt::Display) -> StartupError {
    StartupError::Bootstrap(e.to_string())
}

/// Adds the catalogue's departments that the database lacks.
pub async fn ensure_departments(settings: &Settings, store: &Store) -> Result<(), StartupError> {
    let catalogue = settings.load_catalogue()?;
    let now = crate::store::now();
    let mut added = 0;
    for d in &catalogue.departments {
        if store.department(d.code.as_str()).await?.is_none() {
            store
                .create_department(
                    d.code.as_str(),
                    &d.name,
                    d.kind.as_str(),
                    d.email.as_deref(),
                    now,
                )
                .await?;
            added += 1;
        }
    }
    println!(
        "departments: {added} added, {} in the catalogue",
        catalogue.departments.len()
    );
    Ok(())
}

pub async fn load(
    settings: &Settings,
    store: &Store,
    calendar: &Calendar,
    tickets: usize,
) -> Result<(), StartupError> {
    ensure_departments(settings, store).await?;
    let now = crate::store::now();

    let mut rng = StdRng::from_entropy();
    let mut lines = Vec::new();
    for (name, role, dept, display) in DEMO_USERS {
        if store.user_by_name(name).await?.is_some() {
            continue;
        }
        let password: String = (&mut rng)
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(12)
            .map(char::from)
            .collect();
        let hash = hash_password(&password).map_err(err)?;
        store
            .create_user(name, &hash, role.as_str(), *dept, None, Some(display), now)
            .await?;
        lines.push(format!("{name:<26} {:<11} {password}", role.as_str()));
    }
    if !lines.is_empty() {
        println!("demo users (username, role, password):");
        for l in &lines {
            println!("  {l}");
        }
        let path = settings.data_dir.join("demo-credentials.txt");
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            for l in &lines {
                let _ = writeln!(f, "{l}");
            }
            println!("(also written to {})", path.display());
        }
    }

    let file: DemoFile =
        toml::from_str(include_str!("../../config/demo-appeals.toml")).map_err(err)?;
    let rules = Rules {
        calendar,
        sla: &settings.sla,
    };
    let mut made = 0;
    let mut prev: Option<ticket::Model> = None;
    for i in 0..tickets {
        let a = &file.appeals[i % file.appeals.len()];
        // Spread over the last 40 days, more of them recent.
        let age_hours = (rng.gen_range(0.0f64..1.0).powi(2) * 40.0 * 24.0) as i64;
        let created = now - Duration::hours(age_hours) - Duration::minutes(rng.gen_range(0..60));
        let t = create(store, a, i, created, &mut rng).await?;
        let last = drive(
            store,
            &rules,
            t,
            a,
            i,
            created,
            now,
            prev.as_ref(),
            &mut rng,
        )
        .await?;
        prev = Some(last);
        made += 1;
    }
    println!("sample tickets: {made} created");
    Ok(())
}

async fn create(
    store: &Store,
    a: &DemoAppeal,
    i: usize,
    at: DateTime<Utc>,
    rng: &mut StdRng,
) -> Result<ticket::Model, StartupError> {
    const SURNAMES: &[&str] = &[
        "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙",
    ];
    let anonymous = i % 11 == 5;
    let appeal = NewAppeal {
        channel: a.channel,
        external_id: None,
        category: a.category,
        urgency: a.urgency,
        title: a.title.clone(),
        content: a.content.clone(),
        citizen_name: (!anonymous).then(|| {
            format!(
                "{}{}",
                SURNAMES[rng.gen_range(0..SURNAMES.len())],
                if rng.gen_bool(0.5) {
                    "先生"
                } else {
                    "女士"
                }
            )
        }),
        citizen_phone: (!anonymous).then(|| {
            format!(
                "1{}{:09}",
                rng.gen_range(3..=9),
                rng.gen_range(0..1_000_000_000u64)
            )
        }),
        address: a.address.clone(),
        district: DepartmentCode::parse(&a.district).ok(),
        created_by: "agent1".into(),
    };
    let mut r = store
        .create_tickets(std::slice::from_ref(&appeal), at)
        .await;
    Ok(r.pop().ok_or_else(|| err("no result"))??.ticket)
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    store: &Store,
    rules: &Rules<'_>,
    mut t: ticket::Model,
    a: &DemoAppeal,
    i: usize,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
    prev: Option<&ticket::Model>,
    rng: &mut StdRng,
) -> Result<ticket::Model, StartupError> {
    let dispatcher = Actor {
        name: "dispatcher1".into(),
        role: Role::Dispatcher,
        department: None,
    };
    let agent = Actor {
        name: "agent1".into(),
        role: Role::Agent,
        department: None,
    };
    let handler = Actor {
        name: format!("handler_{}", a.department),
        role: Role::Handler,
        department: Some(a.department.clone()),
    };
    let dispatch = Action::Dispatch {
        department: a.department.clone(),
        co_departments: Vec::new(),
        note: None,
    };
    let sign = Action::Sign;
    let reply = Action::Reply {
        content: "经核实，已安排人员现场处理，问题已解决。感谢您对我们工作的监督。".into(),
        resolved: true,
    };
    let satisfaction = [
        Satisfaction::Satisfied,
        Satisfaction::Satisfied,
        Satisfaction::BasicallySatisfied,
        Satisfaction::Dissatisfied,
        Satisfaction::Unreachable,
    ][i % 5];
    let callback = Action::Callback {
        satisfaction,
        resolved: satisfaction != Satisfaction::Dissatisfied,
        note: None,
    };
    let wrong = if a.department == "city_management" {
        "housing"
    } else {
        "city_management"
    };
    let wrong_handler = Actor {
        name: format!("handler_{wrong}"),
        role: Role::Handler,
        department: Some(wrong.into()),
    };
    let steps: Vec<(&Actor, Action, i64)> = match i % 9 {
        0 => vec![],
        1 => vec![(&dispatcher, dispatch.clone(), 20)],
        2 => vec![
            (&dispatcher, dispatch.clone(), 15),
            (&handler, sign.clone(), 60),
        ],
        3 => vec![
            (&dispatcher, dispatch.clone(), 10),
            (&handler, sign.clone(), 50),
            (&handler, reply.clone(), 60 * 24 * 2),
        ],
        4 | 5 => vec![
            (&dispatcher, dispatch.clone(), 10),
            (&handler, sign.clone(), 40),
            (&handler, reply.clone(), 60 * 24 * 3),
            (&dispatcher, callback, 60 * 24),
        ],
        6 => vec![
            (
                &dispatcher,
                Action::Dispatch {
                    department: wrong.into(),
                    co_departments: Vec::new(),
                    note: None,
                },
                10,
            ),
            (
                &wrong_handler,
                Action::Return {
                    reason: "不属于我单位职责范围，请改派。".into(),
                },
                90,
            ),
        ],
        7 => vec![(
            &agent,
            Action::Close {
                resolution: Resolution::DirectAnswer,
                note: "已按政策口径直接答复市民。".into(),
            },
            5,
        )],
        // Every 18th appeal repeats the one before it (并单).
        8 if i % 18 == 17 => match prev.and_then(|p| Some((p, p.state.parse().ok()?))) {
            Some((p, into_state)) => vec![(
                &dispatcher,
                Action::Merge {
                    into: p.id,
                    into_ticket_no: p.ticket_no.clone(),
                    into_state,
                },
                25,
            )],
            None => vec![],
        },
        _ => vec![
            (&dispatcher, dispatch.clone(), 30),
            (&handler, sign.clone(), 240),
        ],
    };
    let mut at = created;
    for (actor, action, minutes) in steps {
        at += Duration::minutes(minutes + rng.gen_range(0..minutes.max(1)));
        if at > now {
            break;
        }
        let current = to_domain(&t)?;
        // Anonymous appeals close at reply, so a later callback is refused:
        // the ticket simply stays where the lifecycle put it.
        let Ok((after, event)) = lifecycle::apply(rules, &current, actor, &action, at) else {
            break;
        };
        match store
            .commit_transition(
                &TransitionWrite {
                    before: &t,
                    after: &after,
                    event: &event,
                    actor: &actor.name,
                    side: &SideEffect::None,
                    outbox: &[],
                },
                at,
            )
            .await?
        {
            Some((next, _)) => t = next,
            None => break,
        }
    }
    Ok(t)
}
