//! The outbox for admins: what is waiting, sent or parked (`failed`: a
//! webhook the receiver refused for good), and putting a row back in the
//! queue once its cause is fixed.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::tickets::{paging, ticket_id};
use super::views::ts;
use crate::domain::types::Role;
use crate::store::entities::outbox;
use crate::store::outbox::{STATUSES, Transport};

fn row_json(r: &outbox::Model) -> serde_json::Value {
    json!({
        "id": r.id, "created_at": ts(r.created_at), "kind": r.kind, "transport": r.transport,
        "ticket_id": r.ticket_id, "recipient": r.recipient, "subject": r.subject, "body": r.body,
        "status": r.status, "attempts": r.attempts, "next_attempt_at": ts(r.next_attempt_at),
        "last_error": r.last_error, "sent_at": r.sent_at.map(ts),
    })
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    transport: Option<String>,
    page: Option<String>,
    per_page: Option<String>,
}

/// `GET /api/v1/outbox?status=failed&transport=webhook`: newest first, paged.
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let q = q.into_inner();
    let mut errors = Vec::new();
    let (page, per_page) = paging(&mut errors, &q.page, &q.per_page);
    let status = q.status.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if let Some(s) = status
        && !STATUSES.contains(&s)
    {
        errors.push(format!("`status` must be one of {}", STATUSES.join(", ")));
    }
    let transport = match q.transport.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) => match Transport::parse(t) {
            Some(t) => Some(t),
            None => {
                errors.push("`transport` must be mail or webhook".into());
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::validation_many(errors));
    }
    let (rows, total) = state
        .store
        .outbox_page(status, transport, per_page, (page - 1) * per_page)
        .await?;
    let items: Vec<_> = rows.iter().map(row_json).collect();
    Ok(HttpResponse::Ok().json(json!({
        "items": items, "total": total, "page": page, "per_page": per_page
    })))
}

/// `POST /api/v1/outbox/{id}/retry`: a parked (or backing-off) row is due
/// again now; the delivery worker sends it on its next round. A row already
/// sent is 409.
pub async fn retry(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let id = ticket_id(&path)?;
    let now = crate::store::now();
    if let Some(row) = state.store.outbox_requeue(id, now).await? {
        tracing::info!(outbox = id, user = %caller.username, "outbox row queued again");
        return Ok(HttpResponse::Ok().json(row_json(&row)));
    }
    match state.store.outbox_row(id).await? {
        None => Err(ApiError::not_found()),
        Some(r) => Err(ApiError::new(
            "invalid_transition",
            format!(
                "the row is `{}`: only failed or pending rows can be retried",
                r.status
            ),
        )),
    }
}
