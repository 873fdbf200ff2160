//! Ticket endpoints: register, list, read, and every lifecycle action. Each
//! action parses its body, loads the ticket in the caller's scope, asks the
//! lifecycle, and commits ticket + event (+ side effect) compare-and-set.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::error::ApiError;
use super::views::{event_view, extension_view, ticket_view, ticket_view_with};
use super::{ApiJson, AppState};
use crate::domain::appeal::RawAppeal;
use crate::domain::lifecycle::{self, Action, EventDraft, Rules};
use crate::domain::notify::{self, TicketFacts};
use crate::domain::types::{
    Category, Channel, DepartmentCode, EventKind, ExtensionStatus, Resolution, Role, Satisfaction,
    TicketState,
};
use crate::infra::bus::BusEvent;
use crate::store::entities::{extension, ticket};
use crate::store::escalations::{Directory, OutboxDraft};
use crate::store::tickets::{SideEffect, TicketFilter, TransitionWrite, to_domain};

pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    body: ApiJson<RawAppeal>,
) -> Result<HttpResponse, ApiError> {
    let created = register(&state, &caller, body.into_inner()).await?;
    let now = crate::store::now();
    let view = ticket_view_with(&created.ticket, true, true, now);
    Ok(if created.created {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

/// Registers an appeal logged by an agent or dispatcher (API and agent page).
pub async fn register(
    state: &AppState,
    caller: &Caller,
    raw: RawAppeal,
) -> Result<crate::store::tickets::Created, ApiError> {
    caller.require(&[Role::Agent, Role::Dispatcher])?;
    let appeal = raw
        .parse(&caller.username)
        .map_err(ApiError::validation_many)?;
    let mut created = state.intake.submit(appeal).await?;
    if created.created {
        created.ticket = announce_created(state, &created.ticket, crate::store::now()).await;
    }
    Ok(created)
}

/// Tells live clients of every instance about a new ticket, then lets the
/// router dispatch it when auto-dispatch is on and it is sure enough.
/// Returns the ticket as it now stands.
pub async fn announce_created(
    state: &AppState,
    t: &ticket::Model,
    now: chrono::DateTime<chrono::Utc>,
) -> ticket::Model {
    let ev = BusEvent {
        ticket_id: t.id,
        ticket_no: t.ticket_no.clone(),
        kind: EventKind::Created.as_str().to_owned(),
        state: t.state.clone(),
        departments: Vec::new(),
        escalation_level: 0,
        at: now,
    };
    state.bus.publish(&ev).await;
    super::routing::auto_dispatch(state, t)
        .await
        .unwrap_or_else(|| t.clone())
}

#[derive(Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    department: Option<String>,
    channel: Option<String>,
    category: Option<String>,
    overdue: Option<String>,
    escalation_level: Option<String>,
    q: Option<String>,
    created_from: Option<String>,
    created_to: Option<String>,
    page: Option<String>,
    per_page: Option<String>,
}

fn parse_opt<T: std::str::FromStr>(
    errors: &mut Vec<String>,
    name: &str,
    v: &Option<String>,
) -> Option<T>
where
    T::Err: std::fmt::Display,
{
    let v = v.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
    match v.parse::<T>() {
        Ok(x) => Some(x),
        Err(e) => {
            errors.push(format!("`{name}`: {e}"));
            None
        }
    }
}

pub fn parse_time(
    errors: &mut Vec<String>,
    name: &str,
    v: &Option<String>,
) -> Option<DateTime<Utc>> {
    let v = v.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
    match DateTime::parse_from_rfc3339(v) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            errors.push(format!(
                "`{name}` must be an RFC 3339 timestamp with offset"
            ));
            None
        }
    }
}

/// The last page a list serves: far past any list's end, and small enough
/// that `(page - 1) * per_page` never overflows an offset.
pub const MAX_PAGE: u64 = 1_000_000;

/// `page` (from 1, at most [`MAX_PAGE`]) and `per_page` (default 50, at
/// most 500).
pub fn paging(
    errors: &mut Vec<String>,
    page: &Option<String>,
    per_page: &Option<String>,
) -> (u64, u64) {
    let page = parse_opt::<u64>(errors, "page", page).unwrap_or(1);
    let per_page = parse_opt::<u64>(errors, "per_page", per_page).unwrap_or(50);
    if page == 0 {
        errors.push("`page` starts at 1".into());
    }
    if page > MAX_PAGE {
        errors.push(format!("`page` is at most {MAX_PAGE}"));
    }
    if !(1..=500).contains(&per_page) {
        errors.push("`per_page` must be between 1 and 500".into());
    }
    (page, per_page)
}

pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let mut errors = Vec::new();
    let (page, per_page) = paging(&mut errors, &q.page, &q.per_page);
    let overdue = match q.overdue.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("true") | Some("1") => Some(true),
        Some("false") | Some("0") => Some(false),
        Some(_) => {
            errors.push("`overdue` must be true or false".into());
            None
        }
    };
    if q.q.as_deref().is_some_and(|s| s.contains('\0')) {
        errors.push(format!("`q`: {}", super::NUL_REFUSED));
    }
    let escalation_level = parse_opt::<i16>(&mut errors, "escalation_level", &q.escalation_level);
    if escalation_level.is_some_and(|l| !(0..=3).contains(&l)) {
        errors.push("`escalation_level` must be 0–3".into());
    }
    let f = TicketFilter {
        state: parse_opt::<TicketState>(&mut errors, "state", &q.state),
        department: parse_opt::<String>(&mut errors, "department", &q.department)
            .map(|d| DepartmentCode::parse(&d).map(|d| d.as_str().to_owned()))
            .transpose()
            .unwrap_or_else(|e| {
                errors.push(format!("`department`: {e}"));
                None
            }),
        channel: parse_opt::<Channel>(&mut errors, "channel", &q.channel),
        category: parse_opt::<Category>(&mut errors, "category", &q.category),
        overdue,
        escalation_level,
        q: q.q
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(200).collect()),
        created_from: parse_time(&mut errors, "created_from", &q.created_from),
        created_to: parse_time(&mut errors, "created_to", &q.created_to),
        page,
        per_page,
        count_at_most: None,
    };
    if !errors.is_empty() {
        return Err(ApiError::validation_many(errors));
    }
    let now = crate::store::now();
    let (rows, total) = state.store.list_tickets(&f, &caller.scope(), now).await?;
    let items: Vec<_> = rows.iter().map(|t| ticket_view(t, &caller, now)).collect();
    Ok(HttpResponse::Ok().json(json!({
        "items": items, "total": total, "page": page, "per_page": per_page
    })))
}

/// Ticket ids in paths: positive integers, anything else is simply not found.
pub fn ticket_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(ApiError::not_found)
}

pub async fn load(state: &AppState, caller: &Caller, id: i64) -> Result<ticket::Model, ApiError> {
    state
        .store
        .ticket(id, &caller.scope())
        .await?
        .ok_or_else(ApiError::not_found)
}

/// The full ticket: fields, deadlines, events and extension requests.
async fn detail(
    state: &AppState,
    caller: &Caller,
    t: &ticket::Model,
) -> Result<HttpResponse, ApiError> {
    let mut view = ticket_view(t, caller, crate::store::now());
    view.events = Some(
        state
            .store
            .events(t.id)
            .await?
            .iter()
            .map(event_view)
            .collect(),
    );
    view.extensions = Some(
        state
            .store
            .extensions(t.id)
            .await?
            .iter()
            .map(extension_view)
            .collect(),
    );
    Ok(HttpResponse::Ok().json(view))
}

pub async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let t = load(&state, &caller, ticket_id(&path)?).await?;
    detail(&state, &caller, &t).await
}

/// Runs one action through the lifecycle and commits it, retrying when a
/// concurrent change wins the compare-and-set. Notices the change causes go
/// into the outbox in the same transaction; live clients hear of it after.
pub async fn transition(
    state: &AppState,
    caller: &Caller,
    id: i64,
    action: &Action,
    side: &SideEffect,
) -> Result<(ticket::Model, Option<extension::Model>), ApiError> {
    transition_with(state, caller, id, action, side, &serde_json::Value::Null).await
}

/// [`transition`], with `extra`'s fields added to the event's payload (the
/// router's confidence and reason).
pub(super) async fn transition_with(
    state: &AppState,
    caller: &Caller,
    id: i64,
    action: &Action,
    side: &SideEffect,
    extra: &serde_json::Value,
) -> Result<(ticket::Model, Option<extension::Model>), ApiError> {
    let rules = Rules {
        calendar: &state.calendar,
        sla: &state.settings.sla,
    };
    for _ in 0..8 {
        let before = load(state, caller, id).await?;
        let now = crate::store::now();
        let current = to_domain(&before)?;
        let (after, mut event) = lifecycle::apply(&rules, &current, &caller.actor(), action, now)?;
        if let (Some(extra), Some(payload)) = (extra.as_object(), event.payload.as_object_mut()) {
            payload.extend(extra.clone());
        }
        let mut outbox = notices(state, &before, &after, &event, now).await?;
        // 问政江西 hears the answer to its posts (this one's, and merged ones').
        let reply_url = &state.settings.channels.wenzheng.reply_url;
        outbox.extend(
            state
                .store
                .reply_push_drafts(reply_url, &before, &after, &event)
                .await?,
        );
        if let Some(done) = state
            .store
            .commit_transition(
                &TransitionWrite {
                    before: &before,
                    after: &after,
                    event: &event,
                    actor: &caller.username,
                    side,
                    outbox: &outbox,
                },
                now,
            )
            .await?
        {
            state.bus.publish(&bus_event(&done.0, &event, now)).await;
            return Ok(done);
        }
    }
    Err(ApiError::new(
        "conflict",
        "the ticket is being changed by someone else; retry",
    ))
}

/// The live-stream message for a committed change.
pub fn bus_event(
    t: &ticket::Model,
    event: &EventDraft,
    at: chrono::DateTime<chrono::Utc>,
) -> BusEvent {
    let mut departments: Vec<String> = t.department.iter().cloned().collect();
    departments.extend(crate::store::tickets::co_departments(t));
    if let Some(d) = &event.department
        && !departments.contains(d)
    {
        departments.push(d.clone());
    }
    BusEvent {
        ticket_id: t.id,
        ticket_no: t.ticket_no.clone(),
        kind: event.kind.as_str().to_owned(),
        state: t.state.clone(),
        departments,
        escalation_level: t.escalation_level,
        at,
    }
}

/// Notices a transition causes: the dispatch notice to the new department,
/// and the 督办 notice when exhausted reworks flag a ticket.
async fn notices(
    state: &AppState,
    before: &ticket::Model,
    after: &lifecycle::Ticket,
    event: &EventDraft,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<OutboxDraft>, ApiError> {
    let dispatch = event.kind == EventKind::Dispatched;
    let supervised = after.escalation_level >= 3 && before.escalation_level < 3;
    if !dispatch && !supervised {
        return Ok(Vec::new());
    }
    let dir = Directory::load(&state.store).await?;
    let department = after
        .department
        .clone()
        .or_else(|| before.department.clone())
        .unwrap_or_default();
    let facts = TicketFacts {
        id: before.id,
        ticket_no: &before.ticket_no,
        title: &before.title,
        department_name: dir.department_name(&department),
    };
    let base = &state.settings.server.base_url;
    let n = if dispatch {
        notify::dispatched(&facts, &department, after.reply_due_at, base)
    } else {
        let due = before.reply_due_at.unwrap_or(now);
        notify::escalation(&facts, &department, 3, "reply", due, now, base)
    };
    Ok(vec![dir.draft(&n, before.id)])
}

async fn act(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    action: Action,
) -> Result<HttpResponse, ApiError> {
    let id = ticket_id(&path)?;
    let (t, _) = transition(&state, &caller, id, &action, &SideEffect::None).await?;
    detail(&state, &caller, &t).await
}

fn text(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

#[derive(Deserialize)]
pub struct DispatchBody {
    department: String,
    #[serde(default)]
    co_departments: Vec<String>,
    #[serde(default)]
    note: Option<String>,
}

pub async fn dispatch(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ApiJson<DispatchBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    // Scope first: a ticket the caller cannot see does not exist for them.
    load(&state, &caller, ticket_id(&path)?).await?;
    caller.require(&[Role::Dispatcher])?;
    let action = dispatch_action(&state, &b.department, &b.co_departments, b.note).await?;
    act(state, caller, path, action).await
}

/// A dispatch to known departments (the lead, then co-departments).
pub async fn dispatch_action(
    state: &AppState,
    department: &str,
    co_departments: &[String],
    note: Option<String>,
) -> Result<Action, ApiError> {
    let mut codes = vec![department.trim().to_owned()];
    let mut co = Vec::new();
    for c in co_departments {
        let c = c.trim().to_owned();
        if !co.contains(&c) {
            co.push(c);
        }
    }
    codes.extend(co.iter().cloned());
    for c in &codes {
        DepartmentCode::parse(c).map_err(|e| ApiError::validation(format!("`department`: {e}")))?;
        if state.store.department(c).await?.is_none() {
            return Err(ApiError::validation(format!("unknown department `{c}`")));
        }
    }
    Ok(Action::Dispatch {
        department: codes[0].clone(),
        co_departments: co,
        note: text(note),
    })
}

pub async fn sign(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    act(state, caller, path, Action::Sign).await
}

#[derive(Deserialize)]
pub struct ReasonBody {
    reason: String,
}

pub async fn return_ticket(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ApiJson<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    let reason = body.into_inner().reason.trim().to_owned();
    act(state, caller, path, Action::Return { reason }).await
}

#[derive(Deserialize)]
pub struct ExtensionBody {
    working_days: u32,
    reason: String,
}

pub async fn request_extension(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ApiJson<ExtensionBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let id = ticket_id(&path)?;
    let ext = extension_request(&state, &caller, id, b.working_days, &b.reason).await?;
    Ok(HttpResponse::Created().json(extension_view(&ext)))
}

/// A handler's request for more working days (延期申请).
pub async fn extension_request(
    state: &AppState,
    caller: &Caller,
    id: i64,
    working_days: u32,
    reason: &str,
) -> Result<extension::Model, ApiError> {
    let department = caller.department.clone().unwrap_or_default();
    let reason = reason.trim().to_owned();
    let action = Action::RequestExtension {
        working_days,
        reason: reason.clone(),
    };
    let side = SideEffect::NewExtension {
        working_days,
        reason,
        department,
    };
    let (_, ext) = transition(state, caller, id, &action, &side).await?;
    ext.ok_or_else(|| ApiError::internal("extension not stored"))
}

#[derive(Deserialize)]
pub struct DecisionBody {
    approve: bool,
    #[serde(default)]
    note: Option<String>,
}

pub async fn decide_extension(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: ApiJson<DecisionBody>,
) -> Result<HttpResponse, ApiError> {
    let (tid, eid) = path.into_inner();
    let id = ticket_id(&tid)?;
    let ext_id = ticket_id(&eid)?;
    let b = body.into_inner();
    let t = decide(&state, &caller, id, ext_id, b.approve, b.note).await?;
    detail(&state, &caller, &t).await
}

/// A dispatcher's ruling on a pending extension request.
pub async fn decide(
    state: &AppState,
    caller: &Caller,
    id: i64,
    ext_id: i64,
    approve: bool,
    note: Option<String>,
) -> Result<ticket::Model, ApiError> {
    // Scope first: a ticket the caller cannot see does not exist for them.
    load(state, caller, id).await?;
    let ext = state
        .store
        .extension(ext_id)
        .await?
        .filter(|e| e.ticket_id == id)
        .ok_or_else(ApiError::not_found)?;
    caller.require(&[Role::Dispatcher])?;
    if ext.status != ExtensionStatus::Pending.as_str() {
        return Err(ApiError::new(
            "invalid_transition",
            format!("the extension request is already {}", ext.status),
        ));
    }
    let note = text(note);
    let action = Action::DecideExtension {
        extension_id: ext.id,
        working_days: ext.working_days.max(0) as u32,
        approve,
        note: note.clone(),
    };
    let side = SideEffect::DecideExtension {
        id: ext.id,
        approve,
        note,
    };
    let (t, _) = transition(state, caller, id, &action, &side).await?;
    Ok(t)
}

#[derive(Deserialize)]
pub struct ReplyBody {
    content: String,
    resolved: bool,
}

pub async fn reply(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ApiJson<ReplyBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let action = Action::Reply {
        content: b.content.trim().to_owned(),
        resolved: b.resolved,
    };
    act(state, caller, path, action).await
}

#[derive(Deserialize)]
pub struct CallbackBody {
    satisfaction: Satisfaction,
    resolved: bool,
    #[serde(default)]
    note: Option<String>,
}

pub async fn callback(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ApiJson<CallbackBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let action = Action::Callback {
        satisfaction: b.satisfaction,
        resolved: b.resolved,
        note: text(b.note),
    };
    act(state, caller, path, action).await
}

#[derive(Deserialize)]
pub struct CloseBody {
    resolution: Resolution,
    note: String,
}

pub async fn close(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ApiJson<CloseBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let action = Action::Close {
        resolution: b.resolution,
        note: b.note.trim().to_owned(),
    };
    act(state, caller, path, action).await
}

#[derive(Deserialize)]
pub struct MergeBody {
    into: serde_json::Value,
}

pub async fn merge(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ApiJson<MergeBody>,
) -> Result<HttpResponse, ApiError> {
    let id = ticket_id(&path)?;
    let action = merge_action(&state, &caller, id, &body.into).await?;
    act(state, caller, path, action).await
}

/// A merge (并单) of ticket `id` into `into`: a ticket id, or a number.
pub async fn merge_action(
    state: &AppState,
    caller: &Caller,
    id: i64,
    into: &serde_json::Value,
) -> Result<Action, ApiError> {
    // Scope first: a ticket the caller cannot see does not exist for them.
    load(state, caller, id).await?;
    caller.require(&[Role::Dispatcher])?;
    // `into` is a ticket id; a ticket number is accepted too.
    let target = match into {
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => state.store.ticket(i, &caller.scope()).await?,
            None => None,
        },
        serde_json::Value::String(s) => match s.parse::<i64>() {
            Ok(i) => state.store.ticket(i, &caller.scope()).await?,
            Err(_) => state.store.ticket_by_no(s).await?,
        },
        _ => return Err(ApiError::validation("`into` must be a ticket id")),
    }
    .ok_or_else(|| ApiError::validation("`into` names no ticket"))?;
    if target.id == id {
        return Err(ApiError::validation(
            "a ticket cannot be merged into itself",
        ));
    }
    Ok(Action::Merge {
        into: target.id,
        into_ticket_no: target.ticket_no.clone(),
        into_state: target
            .state
            .parse()
            .map_err(|_| ApiError::internal("bad stored state"))?,
    })
}

#[derive(Deserialize)]
pub struct NoteBody {
    content: String,
}

pub async fn note(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ApiJson<NoteBody>,
) -> Result<HttpResponse, ApiError> {
    let action = Action::Note {
        content: body.into_inner().content.trim().to_owned(),
    };
    act(state, caller, path, action).await
}

pub async fn reveal(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ApiJson<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    let reason = body.into_inner().reason;
    let t = reveal_citizen(&state, &caller, ticket_id(&path)?, &reason).await?;
    Ok(HttpResponse::Ok().json(json!({
        "ticket_id": t.id,
        "ticket_no": t.ticket_no,
        "citizen": {"name": t.citizen_name, "phone": t.citizen_phone},
    })))
}

/// Citizen data in clear for someone in scope who gives a reason; every
/// reveal is written to the access log first.
pub async fn reveal_citizen(
    state: &AppState,
    caller: &Caller,
    id: i64,
    reason: &str,
) -> Result<ticket::Model, ApiError> {
    let t = load(state, caller, id).await?;
    let reason = reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::validation(
            "`reason` is required (at most 500 characters)",
        ));
    }
    state
        .store
        .log_access(
            &caller.username,
            caller.role.as_str(),
            Some(t.id),
            "reveal",
            &reason,
            crate::store::now(),
        )
        .await?;
    tracing::info!(ticket = t.id, user = %caller.username, "citizen data revealed");
    Ok(t)
}

#[derive(Deserialize)]
pub struct AccessLogQuery {
    ticket_id: Option<String>,
    page: Option<String>,
    per_page: Option<String>,
}

pub async fn access_log(
    caller: Caller,
    state: web::Data<AppState>,
    q: web::Query<AccessLogQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Supervisor])?;
    let q = q.into_inner();
    let mut errors = Vec::new();
    let (page, per_page) = paging(&mut errors, &q.page, &q.per_page);
    let ticket = parse_opt::<i64>(&mut errors, "ticket_id", &q.ticket_id);
    if !errors.is_empty() {
        return Err(ApiError::validation_many(errors));
    }
    let (rows, total) = state
        .store
        .access_log(ticket, per_page, (page - 1) * per_page)
        .await?;
    let items: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "at": super::views::ts(r.at), "username": r.username,
                "role": r.role, "ticket_id": r.ticket_id, "action": r.action, "reason": r.reason,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "items": items, "total": total, "page": page, "per_page": per_page
    })))
}
