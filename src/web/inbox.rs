//! `/inbox`: a department's tickets by state, paged through the store's
//! indexed list, each with its countdown and escalation colour; signing is
//! one click, the other actions are on the ticket page.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use minijinja::context;
use serde::Deserialize;

use super::common::{self, page_no};
use super::page;
use super::session::{PageError, PageUser, require};
use super::ticket_page::done_zh;
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::domain::types::{Role, TicketState};
use crate::store::tickets::TicketFilter;

pub const PER_PAGE: u64 = 50;

#[derive(Deserialize)]
pub struct InboxQuery {
    state: Option<String>,
    page: Option<String>,
    done: Option<String>,
}

/// The inbox's tabs: `(key, label)`.
const TABS: &[(&str, &str)] = &[
    ("dispatched", "待签收"),
    ("in_progress", "办理中"),
    ("overdue", "已超期"),
    ("replied", "已答复"),
    ("closed", "已办结"),
    ("all", "全部"),
];

pub async fn inbox(
    user: PageUser,
    state: web::Data<AppState>,
    q: web::Query<InboxQuery>,
) -> Result<HttpResponse, PageError> {
    require(&user, &[Role::Handler, Role::DeptHead])?;
    let tab = q
        .state
        .as_deref()
        .filter(|s| TABS.iter().any(|(k, _)| k == s))
        .unwrap_or("dispatched");
    let page_n = page_no(q.page.as_deref());
    let mut f = TicketFilter {
        page: page_n,
        per_page: PER_PAGE,
        ..TicketFilter::default()
    };
    match tab {
        "all" => {}
        "overdue" => f.overdue = Some(true),
        s => f.state = s.parse::<TicketState>().ok(),
    }
    let now = Utc::now();
    let (rows, total) = state
        .store
        .list_tickets(&f, &user.caller.scope(), now)
        .await
        .map_err(ApiError::from)?;
    let items: Vec<_> = rows
        .iter()
        .map(|t| common::row(t, &user.caller, now))
        .collect();
    let pages = total.div_ceil(PER_PAGE).max(1);
    let tabs: Vec<_> = TABS
        .iter()
        .map(|(key, label)| context! { key, label, on => *key == tab })
        .collect();
    Ok(page(
        StatusCode::OK,
        "inbox.html",
        context! {
            title => "部门工单", items, total, tab, tabs, page => page_n, pages,
            prev => (page_n > 1).then(|| page_n - 1), next => (page_n < pages).then(|| page_n + 1),
            back => format!("/inbox?state={tab}&page={page_n}"),
            department => user.caller.department,
            flash => q.done.as_deref().and_then(done_zh),
            ..user.base()
        },
    ))
}
