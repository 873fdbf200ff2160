//! `/dispatch`: the dispatcher's queues — new and returned tickets (with the
//! router's first choice pre-selected and the return reason), pending
//! extension requests, tickets awaiting callback, and supervised ones.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use std::collections::HashMap;

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

/// How far a queue's heading counts beyond the rows shown: "1,000+" says
/// enough, and counting every open ticket of a city does not stay fast
/// (their index entries point at heap pages that change all day).
const COUNTED: u64 = 1_000;

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
        count_at_most: Some(page * QUEUE + COUNTED),
        ..TicketFilter::default()
    }
}

/// A count as a heading shows it: exact up to `at_most`, "N+" past it.
fn shown(total: u64, at_most: u64) -> String {
    if total > at_most {
        format!("{at_most}+")
    } else {
        total.to_string()
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
    let store = &state.store;
    // The queues are independent reads: side by side.
    let registered_f = filter(Some(TicketState::Registered), page_n);
    let registered_cap = registered_f.count_at_most.unwrap_or(u64::MAX);
    let (departments, registered, returned, extensions, replied, supervised) = tokio::join!(
        common::departments(&state),
        queue(&state, registered_f, now),
        queue(&state, filter(Some(TicketState::Returned), 1), now),
        store.pending_extensions(QUEUE),
        queue(&state, filter(Some(TicketState::Replied), 1), now),
        // 督办: tickets at level 3 whose clock runs, longest past their
        // deadline first — the partial index the dashboard's list reads.
        store.escalated(3, None, QUEUE, Some(QUEUE + COUNTED)),
    );
    let (registered, registered_total) = registered?;
    let (returned, returned_total) = returned?;
    let extensions = extensions.map_err(ApiError::from)?;
    let (replied, replied_total) = replied?;
    let (listed, supervised_total) = supervised.map_err(ApiError::from)?;

    let returned_ids: Vec<i64> = returned.iter().map(|t| t.id).collect();
    let supervised_ids: Vec<i64> = listed.iter().map(|e| e.id).collect();
    let (reasons, found) = tokio::join!(
        store.latest_events(&returned_ids, EventKind::Returned.as_str()),
        store.tickets_by_ids(&supervised_ids),
    );
    let reasons = reasons.map_err(ApiError::from)?;
    let mut found: HashMap<i64, ticket::Model> = found
        .map_err(ApiError::from)?
        .into_iter()
        .map(|t| (t.id, t))
        .collect();

    // Every dispatch form offers every department: the options are
    // escaped and joined once, and each row only marks its suggestion
    // (a template loop per row made up most of the page's time).
    let options = department_options(&departments);
    let with_suggestion = |t: &ticket::Model| {
        let row = common::row(t, caller, now);
        let top = common::suggestions(&state, &Draft::of(t), 1)
            .into_iter()
            .next();
        let chosen = top
            .as_ref()
            .and_then(|v| v.get_attr("department").ok())
            .and_then(|v| v.as_str().map(str::to_owned));
        let options = Value::from_safe_string(select(&options, chosen.as_deref()));
        context! { top, options, ..row }
    };
    let registered: Vec<Value> = registered.iter().map(with_suggestion).collect();
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
    let extensions: Vec<Value> = extensions
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
    let replied: Vec<Value> = replied
        .iter()
        .map(|t| {
            let row = common::row(t, caller, now);
            context! { replied_at => common::otime(t.replied_at), ..row }
        })
        .collect();
    let supervised: Vec<Value> = supervised_ids
        .iter()
        .filter_map(|id| found.remove(id))
        .map(|t| common::row(&t, caller, now))
        .collect();

    // Pages as far as counted; "N+" when there are more.
    let pages = registered_total.min(registered_cap).div_ceil(QUEUE).max(1);
    let more = registered_total > registered_cap;
    Ok(page(
        StatusCode::OK,
        "dispatch.html",
        context! {
            title => "派单调度",
            registered, returned, extensions, replied, supervised,
            registered_total => shown(registered_total, registered_cap),
            returned_total => shown(returned_total, QUEUE + COUNTED),
            replied_total => shown(replied_total, QUEUE + COUNTED),
            supervised_total => shown(supervised_total, QUEUE + COUNTED),
            page => page_n, pages => if more { format!("{pages}+") } else { pages.to_string() },
            prev => (page_n > 1).then(|| page_n - 1),
            next => (page_n < pages || more).then(|| page_n + 1),
            back => format!("/dispatch?page={page_n}"),
            flash => q.done.as_deref().and_then(done_zh),
            ..user.base()
        },
    ))
}

/// `<option>`s for every department, names and codes escaped.
fn department_options(departments: &[Value]) -> String {
    let mut out = String::new();
    for d in departments {
        let attr = |k: &str| {
            d.get_attr(k)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        out.push_str(&format!(
            "<option value=\"{}\">{}</option>",
            escape(&attr("code")),
            escape(&attr("name"))
        ));
    }
    out
}

/// `options` with `code`'s option selected (codes are escaped alike).
fn select(options: &str, code: Option<&str>) -> String {
    match code {
        Some(c) => options.replacen(
            &format!("<option value=\"{}\">", escape(c)),
            &format!("<option value=\"{}\" selected>", escape(c)),
            1,
        ),
        None => options.to_owned(),
    }
}

fn escape(s: &str) -> String {
    minijinja::HtmlEscape(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_past_its_cap_shows_a_plus() {
        assert_eq!(shown(0, 1020), "0");
        assert_eq!(shown(1020, 1020), "1020");
        assert_eq!(shown(1021, 1020), "1020+");
    }

    #[test]
    fn options_escape_and_select_one_department() {
        let ds = vec![
            context! { code => "water", name => "水务<局>" },
            context! { code => "gas", name => "燃气\"公司\"" },
        ];
        let o = department_options(&ds);
        assert_eq!(
            o,
            "<option value=\"water\">水务&lt;局&gt;</option>\
             <option value=\"gas\">燃气&quot;公司&quot;</option>"
        );
        let s = select(&o, Some("gas"));
        assert!(s.contains("<option value=\"gas\" selected>"));
        assert_eq!(s.matches("selected").count(), 1);
        assert_eq!(select(&o, Some("nobody")), o);
        assert_eq!(select(&o, None), o);
    }
}
