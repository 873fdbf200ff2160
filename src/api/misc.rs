//! Departments, the public progress look-up, the calendar check, health.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::error::ApiError;
use super::views::ts;
use super::{ApiJson, AppState};
use crate::domain::calendar::WorkingDuration;
use crate::domain::types::{DepartmentCode, DepartmentKind, Role, TicketNo, TicketState};
use crate::store::entities::department;
use crate::store::tickets::Scope;

fn department_json(d: &department::Model) -> serde_json::Value {
    json!({"id": d.id, "code": d.code, "name": d.name, "kind": d.kind, "email": d.email,
           "created_at": ts(d.created_at)})
}

pub async fn list_departments(
    _caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let items: Vec<_> = state
        .store
        .list_departments()
        .await?
        .iter()
        .map(department_json)
        .collect();
    let total = items.len();
    Ok(HttpResponse::Ok()
        .json(json!({"items": items, "total": total, "page": 1, "per_page": total})))
}

#[derive(Deserialize)]
pub struct NewDepartment {
    code: String,
    name: String,
    kind: DepartmentKind,
    #[serde(default)]
    email: Option<String>,
}

pub async fn create_department(
    caller: Caller,
    state: web::Data<AppState>,
    body: ApiJson<NewDepartment>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let b = body.into_inner();
    let mut errors = Vec::new();
    let code =
        DepartmentCode::parse(b.code.trim()).map_err(|e| errors.push(format!("`code`: {e}")));
    let name = b.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push("`name` must be 1–100 characters".into());
    }
    let email = b.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
    if email.is_some_and(|e| !e.contains('@') || e.len() > 254) {
        errors.push("`email` is not an e-mail address".into());
    }
    let code = match code {
        Ok(c) if errors.is_empty() => c,
        _ => return Err(ApiError::validation_many(errors)),
    };
    let d = state
        .store
        .create_department(
            code.as_str(),
            name,
            b.kind.as_str(),
            email,
            crate::store::now(),
        )
        .await?;
    Ok(HttpResponse::Created().json(department_json(&d)))
}

#[derive(Deserialize)]
pub struct CodeQuery {
    code: Option<String>,
}

/// Progress for the citizen: state, reply and dates, no personal data. A
/// wrong number or code is the same 404, so codes cannot be probed apart.
pub async fn public_ticket(
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<CodeQuery>,
) -> Result<HttpResponse, ApiError> {
    let code = q.code.as_deref().unwrap_or_default();
    Ok(HttpResponse::Ok().json(public_progress(&state, &path, code).await?))
}

/// The look-up behind `public_ticket` and the `/track` page.
pub async fn public_progress(
    state: &AppState,
    ticket_no: &str,
    code: &str,
) -> Result<serde_json::Value, ApiError> {
    let no = TicketNo::parse(ticket_no.trim()).ok_or_else(ApiError::not_found)?;
    let code = code.trim().to_ascii_uppercase();
    if code.is_empty() {
        return Err(ApiError::validation(
            "`code` (the 6-character query code) is required",
        ));
    }
    let t = state
        .store
        .ticket_by_no(no.as_str())
        .await?
        .filter(|t| constant_eq(t.query_code.as_bytes(), code.as_bytes()))
        .ok_or_else(ApiError::not_found)?;
    // A merged appeal (并单) is answered by the one it was merged into: its
    // citizen sees that reply and who gave it.
    let merged = t.state == TicketState::Merged.as_str();
    let answered_by = match t.merged_into.filter(|_| merged) {
        Some(m) => state.store.ticket(m, &Scope::All).await?,
        None => None,
    };
    let a = answered_by.as_ref().unwrap_or(&t);
    let dept = match a.department.as_ref().or(t.department.as_ref()) {
        Some(d) => state.store.department(d).await?.map(|d| d.name),
        None => None,
    };
    Ok(json!({
        "ticket_no": t.ticket_no,
        "state": t.state,
        "resolution": t.resolution,
        "category": t.category,
        "department": dept,
        "created_at": ts(t.created_at),
        "dispatched_at": t.dispatched_at.map(ts),
        "reply_due_at": t.reply_due_at.map(ts),
        "replied_at": a.replied_at.map(ts),
        "closed_at": t.closed_at.map(ts),
        "reply": a.reply_content,
        "merged": merged,
    }))
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Deserialize)]
pub struct DueQuery {
    from: Option<String>,
    working_days: Option<String>,
    working_hours: Option<String>,
    hours: Option<String>,
}

/// `GET /api/v1/calendar/due`: the deadline arithmetic, open to anyone.
pub async fn due(
    state: web::Data<AppState>,
    q: web::Query<DueQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    let from = q
        .from
        .as_deref()
        .ok_or_else(|| ApiError::validation("`from` (RFC 3339) is required"))
        .and_then(|f| {
            DateTime::parse_from_rfc3339(f.trim()).map_err(|_| {
                ApiError::validation("`from` must be an RFC 3339 timestamp with offset")
            })
        })?
        .with_timezone(&Utc);
    let given: Vec<(&str, &String)> = [
        ("working_days", &q.working_days),
        ("working_hours", &q.working_hours),
        ("hours", &q.hours),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
    .collect();
    let [(kind, value)] = given[..] else {
        return Err(ApiError::validation(
            "give exactly one of `working_days`, `working_hours`, `hours`",
        ));
    };
    let n: u32 = value
        .trim()
        .parse()
        .ok()
        .filter(|n| *n <= 100_000)
        .ok_or_else(|| ApiError::validation(format!("`{kind}` must be a whole number 0–100000")))?;
    let d = match kind {
        "working_days" => WorkingDuration::WorkingDays(n),
        "working_hours" => WorkingDuration::WorkingMinutes(i64::from(n) * 60),
        _ => WorkingDuration::Natural {
            minutes: i64::from(n) * 60,
        },
    };
    let due = state.calendar.due(from, d);
    // Both go out as RFC 3339 in city time, which has four-digit years.
    let writable = |t: DateTime<Utc>| (1..=9999).contains(&ts(t).year());
    if !writable(from) || !writable(due) {
        return Err(ApiError::validation(
            "`from` and the deadline must fall in the years 0001–9999 (city time)",
        ));
    }
    Ok(HttpResponse::Ok().json(json!({
        "from": ts(from),
        kind: n,
        "due_at": ts(due),
    })))
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let db = match tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await
    {
        Ok(Ok(())) => {
            json!({"status": "ok", "backend": format!("{:?}", state.store.backend()).to_lowercase()})
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            json!({"status": "error", "error": e.to_string()})
        }
        Err(_) => json!({"status": "error", "error": "timed out after 2 s"}),
    };
    let ok = db["status"] == "ok";
    // Redis is optional: when it is down the service runs on in-process
    // fallbacks, so it degrades readiness's detail, not its status.
    let redis = match &state.redis {
        None => json!({"status": "not_configured"}),
        Some(r) => match tokio::time::timeout(std::time::Duration::from_secs(2), r.ping()).await {
            Ok(Ok(())) => json!({"status": "ok"}),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: Redis unavailable, using in-process fallbacks");
                json!({"status": "degraded", "error": e.to_string(), "fallback": "in-process"})
            }
            Err(_) => {
                json!({"status": "degraded", "error": "timed out after 2 s", "fallback": "in-process"})
            }
        },
    };
    // Parked rows (a receiver refused them for good) need an admin, not a
    // restart: they degrade the detail, and readiness stays 200.
    // With the database down the backlog is unknown; do not wait for it.
    let backlog = if ok {
        tokio::time::timeout(
            std::time::Duration::from_secs(2),
            state.store.outbox_backlog(crate::store::now()),
        )
        .await
        .unwrap_or_else(|_| {
            Err(crate::store::StoreError::Conflict(
                "timed out after 2 s".into(),
            ))
        })
    } else {
        Err(crate::store::StoreError::Conflict(
            "the database is unavailable".into(),
        ))
    };
    let outbox = match backlog {
        Ok(b) => {
            json!({"status": if b.failed > 0 { "degraded" } else { "ok" }, "pending": b.pending,
                   "oldest_pending_seconds": b.oldest_pending_secs, "failed": b.failed,
                   "transport": state.mailer.describe()})
        }
        Err(e) => json!({"status": "error", "error": e.to_string()}),
    };
    let body = json!({
        "status": if ok { "ready" } else { "not_ready" },
        "checks": {"database": db, "redis": redis, "outbox": outbox},
        "calendar_years": state.calendar.known_years(),
    });
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text exposition: database and Redis health, outbox backlog.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let db_up = i32::from(state.store.ping().await.is_ok());
    let redis_up = match &state.redis {
        None => -1,
        Some(r) => i32::from(r.ping().await.is_ok()),
    };
    let b = state
        .store
        .outbox_backlog(crate::store::now())
        .await
        .unwrap_or_default();
    let body = format!(
        "# HELP hotline_up The service answers.\n# TYPE hotline_up gauge\nhotline_up 1\n\
         # HELP hotline_database_up The database answers.\n# TYPE hotline_database_up gauge\nhotline_database_up {db_up}\n\
         # HELP hotline_redis_up Redis answers (-1: not configured).\n# TYPE hotline_redis_up gauge\nhotline_redis_up {redis_up}\n\
         # HELP hotline_outbox_pending Notifications waiting for delivery.\n# TYPE hotline_outbox_pending gauge\nhotline_outbox_pending {}\n\
         # HELP hotline_outbox_oldest_pending_seconds Age of the oldest undelivered notification.\n# TYPE hotline_outbox_oldest_pending_seconds gauge\nhotline_outbox_oldest_pending_seconds {}\n\
         # HELP hotline_outbox_failed Outbox rows refused for good, waiting for an admin.\n# TYPE hotline_outbox_failed gauge\nhotline_outbox_failed {}\n",
        b.pending, b.oldest_pending_secs, b.failed
    );
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}
