//! The citizen's pages: the 市长信箱 form (`GET /mailbox`, posting to
//! `POST /api/v1/public/mailbox`), its answers, and the progress look-up
//! (`GET /track?no=&code=`), which shows state, reply and dates only.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::DateTime;
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::page;
use crate::api::AppState;
use crate::api::mailbox::MailboxFields;
use crate::domain::appeal::{MAX_ADDRESS, MAX_CONTENT, MAX_NAME, MAX_TITLE};
use crate::domain::calendar::city_tz;
use crate::domain::types::{Category, DepartmentKind};

#[derive(Serialize)]
struct Choice {
    value: &'static str,
    label: String,
}

/// The form's values as the page shows them: absent is empty.
#[derive(Serialize)]
struct FormValues<'a> {
    name: &'a str,
    phone: &'a str,
    category: &'a str,
    title: &'a str,
    content: &'a str,
    address: &'a str,
    district: &'a str,
}

impl<'a> FormValues<'a> {
    fn of(f: &'a MailboxFields) -> Self {
        let v = |o: &'a Option<String>| o.as_deref().unwrap_or_default();
        FormValues {
            name: v(&f.name),
            phone: v(&f.phone),
            category: v(&f.category),
            title: v(&f.title),
            content: v(&f.content),
            address: v(&f.address),
            district: v(&f.district),
        }
    }
}

#[derive(Serialize)]
struct District {
    code: String,
    name: String,
}

/// `GET /mailbox`: the empty form.
pub async fn mailbox_page(state: web::Data<AppState>) -> HttpResponse {
    mailbox_form(&state, StatusCode::OK, &MailboxFields::default(), &[]).await
}

/// The form with `fields` filled back in and `errors` listed above it.
pub async fn mailbox_form(
    state: &AppState,
    status: StatusCode,
    fields: &MailboxFields,
    errors: &[String],
) -> HttpResponse {
    let categories: Vec<Choice> = Category::ALL
        .iter()
        .map(|c| Choice {
            value: c.as_str(),
            label: c.zh().to_owned(),
        })
        .collect();
    // The district list is a convenience: without the database the form
    // still works, only without it.
    let districts: Vec<District> = match state.store.list_departments().await {
        Ok(ds) => ds
            .into_iter()
            .filter(|d| d.kind == DepartmentKind::District.as_str())
            .map(|d| District {
                code: d.code,
                name: d.name,
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "mailbox form: cannot list districts");
            Vec::new()
        }
    };
    page(
        status,
        "mailbox.html",
        context! {
            title => "市长信箱",
            categories, districts, errors, form => FormValues::of(fields),
            max_title => MAX_TITLE, max_content => MAX_CONTENT,
            max_address => MAX_ADDRESS, max_name => MAX_NAME,
        },
    )
}

/// The answer to a form post: the ticket number and query code.
pub fn mailbox_done(
    status: StatusCode,
    ticket_no: &str,
    query_code: &str,
    duplicate: bool,
) -> HttpResponse {
    page(
        status,
        "mailbox_done.html",
        context! { title => "提交成功", ticket_no, query_code, duplicate },
    )
}

/// A short message page (refusals, errors).
pub fn notice(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    page(status, "notice.html", context! { title, message })
}

#[derive(Deserialize)]
pub struct TrackQuery {
    no: Option<String>,
    code: Option<String>,
}

/// `GET /track`: the form, and the progress when a number and code are given.
pub async fn track(state: web::Data<AppState>, q: web::Query<TrackQuery>) -> HttpResponse {
    let no = q.no.as_deref().unwrap_or_default().trim().to_owned();
    let code = q.code.as_deref().unwrap_or_default().trim().to_owned();
    let show = |status, error: Option<&str>, ticket: Option<Value>| {
        page(
            status,
            "track.html",
            context! { title => "进度查询", no, code, error, ticket },
        )
    };
    if no.is_empty() && code.is_empty() {
        return show(StatusCode::OK, None, None);
    }
    if no.is_empty() || code.is_empty() {
        return show(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("请填写工单号和查询码。"),
            None,
        );
    }
    match crate::api::misc::public_progress(&state, &no, &code).await {
        Ok(t) => show(StatusCode::OK, None, Some(for_people(&t))),
        Err(e) if e.code == "not_found" => show(
            StatusCode::NOT_FOUND,
            Some("未找到该工单，请核对工单号和查询码（查询码不区分大小写）。"),
            None,
        ),
        Err(e) => {
            let status = crate::api::error::status_of(e.code);
            show(status, Some("暂时无法查询，请稍后再试。"), None)
        }
    }
}

/// The look-up's JSON with Chinese labels and city-time dates.
fn for_people(t: &Value) -> Value {
    let s = |k: &str| t[k].as_str().unwrap_or_default();
    let date = |k: &str| {
        DateTime::parse_from_rfc3339(s(k))
            .map(|d| {
                d.with_timezone(&city_tz())
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .ok()
    };
    let state = match s("state") {
        "registered" | "returned" => "已受理，待派单",
        "dispatched" => "已派交承办单位",
        "in_progress" => "办理中",
        "replied" => "已答复",
        "closed" => "已办结",
        "merged" => "已与相同诉求合并办理",
        other => other,
    };
    let resolution = match s("resolution") {
        "" => None,
        "answered" => Some("已答复并回访"),
        "direct_answer" => Some("已直接答复"),
        "rejected" => Some("不予受理"),
        "transferred_emergency" => Some("已转交应急部门"),
        other => Some(other),
    };
    let category = s("category")
        .parse::<Category>()
        .map(|c| c.zh())
        .unwrap_or_default();
    serde_json::json!({
        "ticket_no": s("ticket_no"),
        "state": state,
        "resolution": resolution,
        "category": category,
        "department": t["department"].as_str(),
        "created_at": date("created_at"),
        "dispatched_at": date("dispatched_at"),
        "reply_due_at": date("reply_due_at"),
        "replied_at": date("replied_at"),
        "closed_at": date("closed_at"),
        "reply": t["reply"].as_str(),
    })
}
