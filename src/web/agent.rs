//! `/agent`: the 坐席's intake form, built for someone on the phone
//! (autofocus, tab order, access keys), the router's suggestion and repeat
//! callers while typing (`POST /agent/suggest`), the just-created ticket
//! with 直办结 or hand-off to dispatch, and the agent's recent tickets.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{Duration, Utc};
use minijinja::{Value, context};
use serde::Deserialize;
use serde_json::json;

use super::common::{self, Draft, time};
use super::page;
use super::session::{FormData, PageError, PageUser, redirect, require, zh_error};
use super::ticket_page::done_zh;
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::api::tickets;
use crate::domain::appeal::{
    MAX_ADDRESS, MAX_CONTENT, MAX_NAME, MAX_TITLE, RawAppeal, RawCitizen, parse_phone,
};
use crate::domain::types::{Category, Channel, DepartmentKind, Role, Urgency};

const ROLES: &[Role] = &[Role::Agent, Role::Dispatcher];

#[derive(Deserialize)]
pub struct AgentQuery {
    created: Option<String>,
    done: Option<String>,
}

fn choices<T: Copy>(
    all: &[T],
    value: fn(T) -> &'static str,
    label: fn(T) -> &'static str,
) -> Vec<Value> {
    all.iter()
        .map(|c| context! { value => value(*c), label => label(*c) })
        .collect()
}

async fn form_page(
    state: &AppState,
    user: &PageUser,
    status: StatusCode,
    form: Option<&FormData>,
    errors: Vec<String>,
    created: Option<Value>,
    flash: Option<&str>,
) -> Result<HttpResponse, PageError> {
    let caller = &user.caller;
    let now = Utc::now();
    let recent: Vec<Value> = state
        .store
        .recent_by_creator(&caller.username, now - Duration::days(7), 20)
        .await
        .map_err(ApiError::from)?
        .iter()
        .map(|t| common::row(t, caller, now))
        .collect();
    let districts: Vec<Value> = common::departments(state)
        .await
        .into_iter()
        .filter(|d| {
            d.get_attr("kind")
                .ok()
                .and_then(|k| k.as_str().map(|k| k == DepartmentKind::District.as_str()))
                .unwrap_or(false)
        })
        .collect();
    let channels = choices(
        &[Channel::Hotline, Channel::Mailbox, Channel::Wenzheng],
        Channel::as_str,
        Channel::zh,
    );
    let categories = choices(Category::ALL, Category::as_str, Category::zh);
    let f = form.unwrap_or(&FormData::default()).values();
    Ok(page(
        status,
        "agent.html",
        context! {
            title => "坐席受理", channels, categories, districts, recent, errors, f, created, flash,
            max_title => MAX_TITLE, max_content => MAX_CONTENT, max_address => MAX_ADDRESS,
            max_name => MAX_NAME,
            ..user.base()
        },
    ))
}

/// `GET /agent`: the form; `?created=<id>` shows that ticket's result panel.
pub async fn agent_page(
    user: PageUser,
    state: web::Data<AppState>,
    q: web::Query<AgentQuery>,
) -> Result<HttpResponse, PageError> {
    require(&user, ROLES)?;
    let created = match q.created.as_deref().map(tickets::ticket_id) {
        Some(Ok(id)) => match state.store.ticket(id, &user.caller.scope()).await {
            Ok(Some(t)) => Some(context! {
                id => t.id, ticket_no => t.ticket_no, query_code => t.query_code,
                title => t.title, state => t.state, state_zh => common::state_zh(&t.state),
                department => t.department,
                possible_duplicate_of => t.possible_duplicate_of,
                suggestions => common::suggestions(&state, &Draft::of(&t), 3),
            }),
            _ => None,
        },
        _ => None,
    };
    let flash = q.done.as_deref().and_then(done_zh);
    form_page(
        &state,
        &user,
        StatusCode::OK,
        None,
        Vec::new(),
        created,
        flash,
    )
    .await
}

fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The posted form as the API's body, so it goes through the same checks.
fn raw_appeal(form: &FormData) -> Result<RawAppeal, Vec<String>> {
    let mut errors = Vec::new();
    let channel = form.get("channel").parse::<Channel>().unwrap_or_else(|_| {
        errors.push("请选择来源渠道".to_owned());
        Channel::Hotline
    });
    let category = form
        .get("category")
        .parse::<Category>()
        .unwrap_or_else(|_| {
            errors.push("请选择诉求类型".to_owned());
            Category::Consult
        });
    let urgency = match form.get("urgency") {
        "" => Urgency::Normal,
        u => u.parse::<Urgency>().unwrap_or_else(|_| {
            errors.push("紧急程度不正确".to_owned());
            Urgency::Normal
        }),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(RawAppeal {
        channel,
        external_id: None,
        category,
        urgency,
        title: form.get("title").to_owned(),
        content: form.get("content").to_owned(),
        citizen: RawCitizen {
            name: opt(form.get("citizen_name")),
            phone: opt(form.get("citizen_phone")),
        },
        address: opt(form.get("address")),
        district: opt(form.get("district")),
    })
}

/// `POST /agent`: registers the call through the API's own registration.
pub async fn agent_submit(
    user: PageUser,
    state: web::Data<AppState>,
    form: FormData,
) -> Result<HttpResponse, PageError> {
    require(&user, ROLES)?;
    user.check_csrf(&form)?;
    let result = match raw_appeal(&form) {
        Ok(raw) => tickets::register(&state, &user.caller, raw).await,
        Err(errors) => Err(ApiError::validation_many(errors)),
    };
    match result {
        Ok(created) => Ok(redirect(&format!(
            "/agent?created={}&done=created",
            created.ticket.id
        ))),
        Err(e) => {
            let status = crate::api::error::status_of(e.code);
            let errors = if e.errors.is_empty() {
                vec![zh_error(&e)]
            } else {
                e.errors.clone()
            };
            form_page(&state, &user, status, Some(&form), errors, None, None).await
        }
    }
}

/// `POST /agent/suggest`: the router's ranking for the draft and the
/// caller's other appeals of the last 72 hours, as JSON for `pages.js`.
pub async fn suggest(
    user: PageUser,
    state: web::Data<AppState>,
    form: FormData,
) -> Result<HttpResponse, PageError> {
    require(&user, ROLES)?;
    user.check_csrf(&form)?;
    let draft = Draft {
        title: form.get("title"),
        content: form.get("content"),
        district: Some(form.get("district")),
        address: Some(form.get("address")),
        channel: form.get("channel"),
        category: form.get("category"),
    };
    let suggestions = common::suggestions(&state, &draft, 3);
    let now = Utc::now();
    let repeats: Vec<serde_json::Value> = match parse_phone(form.get("citizen_phone").trim()) {
        Ok(phone) => state
            .store
            .recent_by_phone(&phone, now - Duration::hours(72), 5)
            .await
            .map_err(ApiError::from)?
            .iter()
            .map(|t| {
                json!({"id": t.id, "ticket_no": t.ticket_no, "title": t.title,
                       "state": common::state_zh(&t.state), "created_at": time(t.created_at)})
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let suggestions: Vec<serde_json::Value> = suggestions
        .iter()
        .map(|s| serde_json::to_value(s).unwrap_or_default())
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(json!({"suggestions": suggestions, "repeats": repeats})))
}
