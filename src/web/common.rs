//! What the staff pages share: Chinese labels, city-time formatting, the
//! active deadline of a ticket with its countdown, list rows, and the
//! router's suggestions for a ticket or a draft.

use chrono::{DateTime, Utc};
use minijinja::{Value, context};

use crate::api::AppState;
use crate::api::auth::Caller;
use crate::domain::calendar::city_tz;
use crate::domain::router::Appeal;
use crate::domain::types::{Category, Channel, TicketState, mask_name, mask_phone};
use crate::store::entities::ticket;

pub fn state_zh(s: &str) -> &str {
    match s {
        "registered" => "待派单",
        "dispatched" => "待签收",
        "in_progress" => "办理中",
        "returned" => "已退单",
        "replied" => "已答复待回访",
        "closed" => "已办结",
        "merged" => "已并单",
        other => other,
    }
}

pub fn kind_zh(s: &str) -> &str {
    match s {
        "created" => "受理登记",
        "dispatched" => "派单",
        "signed" => "签收",
        "returned" => "退单",
        "extension_requested" => "申请延期",
        "extension_decided" => "延期审批",
        "replied" => "答复",
        "callback" => "回访",
        "reopened" => "重办",
        "closed" => "办结",
        "merged" => "并单",
        "escalated" => "预警/催办/督办",
        "note" => "备注",
        other => other,
    }
}

pub fn satisfaction_zh(s: &str) -> &str {
    match s {
        "satisfied" => "满意",
        "basically_satisfied" => "基本满意",
        "dissatisfied" => "不满意",
        "unreachable" => "未联系上",
        other => other,
    }
}

pub fn resolution_zh(s: &str) -> &str {
    match s {
        "answered" => "答复并回访",
        "direct_answer" => "直办结",
        "rejected" => "不予受理",
        "transferred_emergency" => "转应急部门",
        other => other,
    }
}

pub fn level_zh(l: i16) -> &'static str {
    match l {
        0 => "正常",
        1 => "黄牌",
        2 => "红牌",
        _ => "督办",
    }
}

pub fn category_zh(s: &str) -> &str {
    s.parse::<Category>().map(|c| c.zh()).unwrap_or(s)
}

pub fn channel_zh(s: &str) -> &str {
    s.parse::<Channel>().map(|c| c.zh()).unwrap_or(s)
}

pub fn time(t: DateTime<Utc>) -> String {
    t.with_timezone(&city_tz())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

pub fn otime(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(time)
}

/// "2天3小时" / "45分钟": a duration as people say it.
pub fn span_zh(secs: i64) -> String {
    let m = secs.abs() / 60;
    let (d, h, mi) = (m / 1440, m % 1440 / 60, m % 60);
    match (d, h) {
        (0, 0) => format!("{mi}分钟"),
        (0, _) => format!("{h}小时{mi}分"),
        _ => format!("{d}天{h}小时"),
    }
}

/// The deadline the ticket is running against now: sign while dispatched,
/// reply while in progress. `(which, due)`.
pub fn active_due(t: &ticket::Model) -> Option<(&'static str, DateTime<Utc>)> {
    match t.state.parse::<TicketState>() {
        Ok(TicketState::Dispatched) => t.sign_due_at.map(|d| ("签收", d)),
        Ok(TicketState::InProgress) => t.reply_due_at.map(|d| ("答复", d)),
        _ => None,
    }
}

/// The countdown as rendered on the server; `pages.js` keeps it moving
/// from `due_ms`.
pub fn countdown(t: &ticket::Model, now: DateTime<Utc>) -> Value {
    match active_due(t) {
        None => Value::from(()),
        Some((which, due)) => {
            let left = (due - now).num_seconds();
            let text = if left >= 0 {
                format!("{which}剩余 {}", span_zh(left))
            } else {
                format!("{which}已超期 {}", span_zh(left))
            };
            context! {
                which, due => time(due), due_ms => due.timestamp_millis(),
                late => left < 0, text,
            }
        }
    }
}

/// One ticket as a list row.
pub fn row(t: &ticket::Model, caller: &Caller, now: DateTime<Utc>) -> Value {
    let full = caller.role.sees_citizen_data();
    let phone = t
        .citizen_phone
        .as_deref()
        .map(|p| if full { p.to_owned() } else { mask_phone(p) });
    context! {
        id => t.id, ticket_no => t.ticket_no, title => t.title,
        state => t.state, state_zh => state_zh(&t.state),
        category_zh => category_zh(&t.category), channel_zh => channel_zh(&t.channel),
        urgent => t.urgency == "urgent",
        department => t.department, level => t.escalation_level,
        level_zh => level_zh(t.escalation_level),
        created_at => time(t.created_at), countdown => countdown(t, now),
        phone, possible_duplicate_of => t.possible_duplicate_of,
        citizen_name => t.citizen_name.as_deref().map(|n| if full { n.to_owned() } else { mask_name(n) }),
    }
}

/// A draft or stored appeal as the router reads it.
pub struct Draft<'a> {
    pub title: &'a str,
    pub content: &'a str,
    pub district: Option<&'a str>,
    pub address: Option<&'a str>,
    pub channel: &'a str,
    pub category: &'a str,
}

impl<'a> Draft<'a> {
    pub fn of(t: &'a ticket::Model) -> Self {
        Draft {
            title: &t.title,
            content: &t.content,
            district: t.district.as_deref(),
            address: t.address.as_deref(),
            channel: &t.channel,
            category: &t.category,
        }
    }
}

/// The router's ranked lead departments, as the live model has them now
/// (never waiting for a first training to finish).
pub fn suggestions(state: &AppState, d: &Draft<'_>, limit: usize) -> Vec<Value> {
    if d.title.trim().is_empty() && d.content.trim().is_empty() {
        return Vec::new();
    }
    let live = state.routing.current();
    let appeal = Appeal {
        title: d.title,
        content: d.content,
        district: d.district.filter(|s| !s.is_empty()),
        address: d.address.filter(|s| !s.is_empty()),
        channel: d.channel.parse().unwrap_or(Channel::Hotline),
        category: d.category.parse().unwrap_or(Category::Consult),
    };
    live.router
        .route(&appeal, limit)
        .into_iter()
        .map(|s| {
            let name = live
                .catalogue
                .departments
                .iter()
                .find(|x| x.code.as_str() == s.department)
                .map(|x| x.name.clone());
            context! {
                department => s.department, name,
                confidence => s.confidence,
                percent => format!("{:.0}%", s.confidence * 100.0),
                reason => s.reason,
            }
        })
        .collect()
}

/// `(code, name)` of every department, for the dispatch form.
pub async fn departments(state: &AppState) -> Vec<Value> {
    match state.store.list_departments().await {
        Ok(ds) => ds
            .into_iter()
            .map(|d| context! { code => d.code, name => d.name, kind => d.kind })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "pages: cannot list departments");
            Vec::new()
        }
    }
}

/// `?page=` of a list page: 1 and up, at most 10,000.
pub fn page_no(raw: Option<&str>) -> u64 {
    raw.and_then(|p| p.trim().parse::<u64>().ok())
        .filter(|p| (1..=10_000).contains(p))
        .unwrap_or(1)
}
