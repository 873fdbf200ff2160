//! `/dispatch`: the dispatcher's queues — new and returned tickets (with the
//! router's first choice pre-selected and the return reason), pending
//! extension requests, tickets awaiting callback, and supervised ones.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use minijinja::{Value, context};
use serde::Deserialize;

use super::common::{self, Draft, page_no, time};
use super::page;
use super::session::{PageError, PageUser, require};
use super::ticket_page::done_zh;
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::domain::types::{EventKind, Role, TicketState};
use crate::store::entities::ticket;
use crate::store::tickets::TicketFilter;

/// Rows a queue shows at once.
const QUEUE: u64 = 20;

#[derive(Deserialize)]
pub struct DispatchQuery {
    page: Option<String>,
    done: Option<String>,
}

async fn queue(
    state: &AppState,
    f: TicketFilter,
    now: chrono::DateTime<Utc>,
) -> Result<(Vec<ticket::Model>, u64), ApiError> {
    Ok(state
        .store
        .list_tickets(&f, &crate::store::tickets::Scope::All, now)
        .await?)
}

fn filter(state: Option<TicketState>, page: u64) -> TicketFilter {
    TicketFilter {
        state,
        page,
        per_page: QUEUE,
        ..TicketFilter::default()
    }
}

pub async fn dispatch_page(
    user: PageUser,
    state: web::Data<AppState>,
    q: web::Query<DispatchQuery>,
) -> Result<HttpResponse, PageError> {
    require(&user, &[Role::Dispatcher])?;
    let caller = &user.caller;
    let now = Utc::now();
    let page_n = page_no(q.page.as_deref());
    let with_suggestion = |t: &ticket::Model| {
        let mut row = common::row(t, caller, now);
        let top = common::suggestions(&state, &Draft::of(t), 1)
            .into_iter()
            .next();
        row = context! { top, ..row };
        row
    };
    let (registered, registered_total) =
        queue(&state, filter(Some(TicketState::Registered), page_n), now).await?;
    let registered: Vec<Value> = registered.iter().map(with_suggestion).collect();

    let (returned, returned_total) =
        queue(&state, filter(Some(TicketState::Returned), 1), now).await?;
    let ids: Vec<i64> = returned.iter().map(|t| t.id).collect();
    let reasons = state
        .store
        .latest_events(&ids, EventKind::Returned.as_str())
        .await
        .map_err(ApiError::from)?;
    let returned: Vec<Value> = returned
        .iter()
        .map(|t| {
            let ev = reasons.get(&t.id);
            let payload: serde_json::Value = ev
                .and_then(|e| serde_json::from_str(&e.payload).ok())
                .unwrap_or_default();
            let row = with_suggestion(t);
            context! {
                return_reason => payload["reason"].as_str().map(str::to_owned),
                returned_by => ev.and_then(|e| e.department.clone()),
                ..row
            }
        })
        .collect();

    let extensions: Vec<Value> = state
        .store
        .pending_extensions(QUEUE)
        .await
        .map_err(ApiError::from)?
        .iter()
        .map(|(e, t)| {
            context! {
                id => e.id, working_days => e.working_days, reason => e.reason,
                department => e.department, requested_by => e.requested_by,
                requested_at => time(e.requested_at),
                ticket => common::row(t, caller, now),
                reply_due_at => common::otime(t.reply_due_at),
            }
        })
        .collect();

    let (replied, replied_total) =
        queue(&state, filter(Some(TicketState::Replied), 1), now).await?;
    let replied: Vec<Value> = replied
        .iter()
        .map(|t| {
            let row = common::row(t, caller, now);
            context! { replied_at => common::otime(t.replied_at), ..row }
        })
        .collect();

    let mut sup = filter(None, 1);
    sup.escalation_level = Some(3);
    let (supervised, supervised_total) = queue(&state, sup, now).await?;
    let supervised: Vec<Value> = supervised
        .iter()
        .filter(|t| t.state.parse::<TicketState>().is_ok_and(|s| s.is_open()))
        .map(|t| common::row(t, caller, now))
        .collect();

    let pages = registered_total.div_ceil(QUEUE).max(1);
    Ok(page(
        StatusCode::OK,
        "dispatch.html",
        context! {
            title => "派单调度",
            registered, registered_total, returned, returned_total, extensions,
            replied, replied_total, supervised, supervised_total,
            departments => common::departments(&state).await,
            page => page_n, pages,
            prev => (page_n > 1).then(|| page_n - 1), next => (page_n < pages).then(|| page_n + 1),
            back => format!("/dispatch?page={page_n}"),
            flash => q.done.as_deref().and_then(done_zh),
            ..user.base()
        },
    ))
}
