//! `/tickets/{id}`: one ticket with its deadlines and full timeline, and
//! every action the viewer's role may take on it as a form. All actions
//! post to `/tickets/{id}/{action}` and go through the API's own lifecycle
//! functions; an error re-renders the page with the message and the values.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use minijinja::{Value, context};
use serde::Deserialize;
use serde_json::Value as Json;

use super::common::{self, Draft, kind_zh, otime, satisfaction_zh, time};
use super::page;
use super::session::{FormData, PageError, PageUser, redirect, safe_next, zh_error};
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::api::tickets::{self, ticket_id};
use crate::domain::lifecycle::Action;
use crate::domain::types::{Resolution, Role, Satisfaction, TicketState, mask_name, mask_phone};
use crate::store::entities::ticket;
use crate::store::tickets::SideEffect;

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

/// What a page shows after an action (`?done=`).
pub fn done_zh(action: &str) -> Option<&'static str> {
    Some(match action {
        "created" => "已登记",
        "dispatch" => "已派单",
        "sign" => "已签收",
        "return" => "已退单",
        "extension" => "已提交延期申请",
        "decide" => "已审批延期申请",
        "reply" => "已答复",
        "callback" => "已记录回访",
        "close" => "已办结",
        "merge" => "已并单",
        "note" => "已添加备注",
        _ => return None,
    })
}

/// `GET /tickets/{id}`.
pub async fn show(
    user: PageUser,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<DoneQuery>,
) -> Result<HttpResponse, PageError> {
    let id = ticket_id(&path)?;
    let t = tickets::load(&state, &user.caller, id).await?;
    let flash = q.done.as_deref().and_then(done_zh);
    render(
        &state,
        &user,
        &t,
        View {
            flash,
            ..View::default()
        },
    )
    .await
}

/// What besides the ticket the page shows.
#[derive(Default)]
struct View<'a> {
    status: Option<StatusCode>,
    flash: Option<&'a str>,
    error: Option<String>,
    /// Which form the error belongs to, and its values.
    failed: Option<&'a str>,
    form: Option<&'a FormData>,
    revealed: bool,
}

fn payload_lines(payload: &Json) -> Vec<String> {
    let Some(map) = payload.as_object() else {
        return Vec::new();
    };
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let label = match k.as_str() {
                "reason" => "理由",
                "note" => "备注",
                "content" => "内容",
                "satisfaction" => "满意度",
                "resolved" => "问题是否解决",
                "working_days" => "工作日",
                "approve" => "批准",
                "co_departments" => "协办单位",
                "confidence" => "置信度",
                "resolution" => "办结方式",
                "into_ticket_no" => "并入工单",
                "reply_due_at" => "答复期限",
                "sign_due_at" => "签收期限",
                "level" => "等级",
                other => other,
            };
            let value = match v {
                Json::String(s) => match k.as_str() {
                    "satisfaction" => satisfaction_zh(s).to_owned(),
                    "resolution" => common::resolution_zh(s).to_owned(),
                    _ => s.clone(),
                },
                Json::Bool(b) => if *b { "是" } else { "否" }.to_owned(),
                Json::Array(a) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join("、"),
                other => other.to_string(),
            };
            format!("{label}：{value}")
        })
        .collect()
}

async fn render(
    state: &AppState,
    user: &PageUser,
    t: &ticket::Model,
    v: View<'_>,
) -> Result<HttpResponse, PageError> {
    let caller = &user.caller;
    let now = Utc::now();
    let st: TicketState = t
        .state
        .parse()
        .map_err(|_| PageError::from(ApiError::internal("bad stored state")))?;
    let role = caller.role;
    let events: Vec<Value> = state
        .store
        .events(t.id)
        .await
        .map_err(ApiError::from)?
        .iter()
        .map(|e| {
            let payload: Json = serde_json::from_str(&e.payload).unwrap_or(Json::Null);
            context! {
                at => time(e.at), actor => e.actor, kind => e.kind, kind_zh => kind_zh(&e.kind),
                from_zh => e.from_state.as_deref().map(common::state_zh),
                to_zh => e.to_state.as_deref().map(common::state_zh),
                department => e.department, lines => payload_lines(&payload),
            }
        })
        .collect();
    let extensions = state.store.extensions(t.id).await.map_err(ApiError::from)?;
    let pending: Vec<Value> = extensions
        .iter()
        .filter(|e| e.status == "pending")
        .map(|e| {
            context! { id => e.id, working_days => e.working_days, reason => e.reason,
            requested_by => e.requested_by, requested_at => time(e.requested_at) }
        })
        .collect();
    let full = role.sees_citizen_data() || v.revealed;
    let mask = |s: &Option<String>, f: fn(&str) -> String| {
        s.as_deref().map(|x| if full { x.to_owned() } else { f(x) })
    };
    let lead = role.is_department_scoped()
        && caller.department.is_some()
        && caller.department == t.department;
    let dispatcher = role == Role::Dispatcher;
    let can = context! {
        dispatch => dispatcher && matches!(st, TicketState::Registered | TicketState::Returned | TicketState::Dispatched),
        merge => dispatcher && matches!(st, TicketState::Registered | TicketState::Returned | TicketState::Dispatched | TicketState::InProgress),
        close => matches!(role, Role::Agent | Role::Dispatcher) && matches!(st, TicketState::Registered | TicketState::Returned),
        callback => dispatcher && st == TicketState::Replied,
        decide => dispatcher && !pending.is_empty(),
        sign => lead && st == TicketState::Dispatched,
        ret => lead && matches!(st, TicketState::Dispatched | TicketState::InProgress) && !t.final_dispatch,
        extend => lead && st == TicketState::InProgress,
        reply => lead && st == TicketState::InProgress,
        note => role != Role::Leader && st.is_open(),
        reveal => !full && t.citizen_phone.is_some(),
    };
    let suggestions = if dispatcher && matches!(st, TicketState::Registered | TicketState::Returned)
    {
        common::suggestions(state, &Draft::of(t), 3)
    } else {
        Vec::new()
    };
    let departments = if dispatcher {
        common::departments(state).await
    } else {
        Vec::new()
    };
    let merged_into_no = match t.merged_into {
        Some(m) => state
            .store
            .ticket(m, &caller.scope())
            .await
            .map_err(ApiError::from)?
            .map(|m| m.ticket_no),
        None => None,
    };
    let ticket = context! {
        id => t.id, ticket_no => t.ticket_no, title => t.title, content => t.content,
        query_code => role.sees_citizen_data().then(|| t.query_code.clone()),
        channel_zh => common::channel_zh(&t.channel), external_id => t.external_id,
        category_zh => common::category_zh(&t.category), urgent => t.urgency == "urgent",
        citizen_name => mask(&t.citizen_name, mask_name),
        citizen_phone => mask(&t.citizen_phone, mask_phone),
        anonymous => t.citizen_phone.is_none(), revealed => v.revealed,
        address => t.address, district => t.district,
        state => t.state, state_zh => common::state_zh(&t.state),
        resolution_zh => t.resolution.as_deref().map(common::resolution_zh),
        merged_into => t.merged_into, merged_into_no,
        department => t.department, co_departments => crate::store::tickets::co_departments(t),
        created_by => t.created_by, created_at => time(t.created_at),
        dispatched_at => otime(t.dispatched_at), signed_at => otime(t.signed_at),
        replied_at => otime(t.replied_at), closed_at => otime(t.closed_at),
        sign_due_at => otime(t.sign_due_at), reply_due_at => otime(t.reply_due_at),
        level => t.escalation_level, level_zh => common::level_zh(t.escalation_level),
        countdown => common::countdown(t, now),
        rework_count => t.rework_count, return_count => t.return_count,
        extension_count => t.extension_count, final_dispatch => t.final_dispatch,
        reply => t.reply_content, reply_resolved => t.reply_resolved,
        satisfaction_zh => t.satisfaction.as_deref().map(satisfaction_zh),
        possible_duplicate_of => t.possible_duplicate_of,
    };
    let top = suggestions
        .first()
        .and_then(|s| s.get_attr("department").ok())
        .and_then(|d| d.as_str().map(str::to_owned));
    let f = v.form.unwrap_or(&FormData::default()).values();
    Ok(page(
        v.status.unwrap_or(StatusCode::OK),
        "ticket.html",
        context! {
            title => format!("工单 {}", t.ticket_no), ticket, events, pending, can,
            suggestions, departments, top, flash => v.flash, error => v.error,
            failed => v.failed, f, back => format!("/tickets/{}", t.id),
            ..user.base()
        },
    ))
}

fn opt(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn truthy(s: &str) -> Result<bool, ApiError> {
    match s.trim() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ApiError::validation("请选择“是”或“否”")),
    }
}

/// Runs one posted action through the API's functions. `Ok(true)` when the
/// page should show the citizen's data in clear (a reveal).
async fn run(
    state: &AppState,
    user: &PageUser,
    id: i64,
    action: &str,
    form: &FormData,
) -> Result<bool, ApiError> {
    let caller = &user.caller;
    let step = |a: Action| async move {
        tickets::transition(state, caller, id, &a, &SideEffect::None)
            .await
            .map(|_| false)
    };
    match action {
        "dispatch" => {
            caller.require(&[Role::Dispatcher])?;
            tickets::load(state, caller, id).await?;
            let a = tickets::dispatch_action(
                state,
                form.get("department"),
                &form.all("co_departments"),
                opt(form.get("note")),
            )
            .await?;
            step(a).await
        }
        "sign" => step(Action::Sign).await,
        "return" => {
            step(Action::Return {
                reason: form.get("reason").trim().to_owned(),
            })
            .await
        }
        "extension" => {
            let days = form
                .get("working_days")
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|d| (1..=100).contains(d))
                .ok_or_else(|| ApiError::validation("延期工作日须为 1–100 的整数"))?;
            tickets::extension_request(state, caller, id, days, form.get("reason")).await?;
            Ok(false)
        }
        "decide" => {
            let ext = ticket_id(form.get("extension_id"))?;
            let approve = truthy(form.get("approve"))?;
            tickets::decide(state, caller, id, ext, approve, opt(form.get("note"))).await?;
            Ok(false)
        }
        "reply" => {
            step(Action::Reply {
                content: form.get("content").trim().to_owned(),
                resolved: truthy(form.get("resolved"))?,
            })
            .await
        }
        "callback" => {
            let satisfaction = form
                .get("satisfaction")
                .parse::<Satisfaction>()
                .map_err(|_| ApiError::validation("请选择回访结果"))?;
            step(Action::Callback {
                satisfaction,
                resolved: truthy(form.get("resolved"))?,
                note: opt(form.get("note")),
            })
            .await
        }
        "close" => {
            let resolution = form
                .get("resolution")
                .parse::<Resolution>()
                .map_err(|_| ApiError::validation("请选择办结方式"))?;
            step(Action::Close {
                resolution,
                note: form.get("note").trim().to_owned(),
            })
            .await
        }
        "merge" => {
            let into = Json::String(form.get("into").trim().to_owned());
            let a = tickets::merge_action(state, caller, id, &into).await?;
            step(a).await
        }
        "note" => {
            step(Action::Note {
                content: form.get("content").trim().to_owned(),
            })
            .await
        }
        "reveal" => {
            tickets::reveal_citizen(state, caller, id, form.get("reason")).await?;
            Ok(true)
        }
        _ => Err(ApiError::not_found()),
    }
}

/// `POST /tickets/{id}/{action}`.
pub async fn act(
    user: PageUser,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: FormData,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form)?;
    let (raw_id, action) = path.into_inner();
    let id = ticket_id(&raw_id)?;
    match run(&state, &user, id, &action, &form).await {
        Ok(true) => {
            let t = tickets::load(&state, &user.caller, id).await?;
            render(
                &state,
                &user,
                &t,
                View {
                    revealed: true,
                    ..View::default()
                },
            )
            .await
        }
        Ok(false) => {
            let back = match form.get("back") {
                "" => format!("/tickets/{id}"),
                b => safe_next(b),
            };
            let sep = if back.contains('?') { '&' } else { '?' };
            Ok(redirect(&format!("{back}{sep}done={action}")))
        }
        // Out of scope, or no such action: the ticket does not exist for them.
        Err(e) if e.code == "not_found" => Err(e.into()),
        Err(e) => {
            let t = tickets::load(&state, &user.caller, id).await?;
            let status = crate::api::error::status_of(e.code);
            render(
                &state,
                &user,
                &t,
                View {
                    status: Some(status),
                    error: Some(zh_error(&e)),
                    failed: Some(&action),
                    form: Some(&form),
                    ..View::default()
                },
            )
            .await
        }
    }
}
