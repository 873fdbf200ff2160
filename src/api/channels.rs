//! Inbound channels. `POST /api/v1/channels/wenzheng/appeals`: 问政江西 pushes
//! a post signed with HMAC-SHA256 over `timestamp + "." + body`; it becomes a
//! ticket, idempotently by `post_id` (a replay answers with the same ticket).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::domain::wenzheng::{Post, SignatureError, verify};

pub async fn wenzheng(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let secret = &state.settings.channels.wenzheng.secret;
    if secret.is_empty() {
        return Err(ApiError::new(
            "unavailable",
            "the wenzheng channel is not configured (channels.wenzheng.secret)",
        ));
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let now = crate::store::now();
    verify(
        secret,
        header("x-wenzheng-timestamp"),
        header("x-wenzheng-signature"),
        &body,
        now,
    )
    .map_err(|e| match e {
        SignatureError::Stale => ApiError::new("stale_request", e.to_string()),
        _ => ApiError::new("invalid_signature", e.to_string()),
    })?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new("malformed_json", format!("the body is not JSON: {e}")))?;
    if super::has_nul(&value) {
        return Err(ApiError::validation(super::NUL_REFUSED));
    }
    let post: Post = serde_json::from_value(value)
        .map_err(|e| ApiError::validation(format!("not a wenzheng post: {e}")))?;
    // Only the districts the region may name: one indexed look-up, none
    // when the post names no region (intake is a hot path).
    let region = post.region.trim();
    let candidates = if region.is_empty() {
        Vec::new()
    } else {
        state.store.districts_named(region).await?
    };
    let districts: Vec<(String, String)> = candidates
        .into_iter()
        .map(|d| {
            let name = d.name.trim_end_matches("人民政府").to_owned();
            (d.code, name)
        })
        .collect();
    let appeal = post
        .to_appeal(&districts)
        .map_err(ApiError::validation_many)?
        .parse("wenzheng")
        .map_err(ApiError::validation_many)?;
    let created = state.intake.submit(appeal).await?;
    if created.created {
        super::tickets::announce_created(&state, &created.ticket, now).await;
    }
    let t = &created.ticket;
    let body =
        json!({"id": t.id, "ticket_no": t.ticket_no, "post_id": t.external_id, "state": t.state});
    Ok(if created.created {
        HttpResponse::Created().json(body)
    } else {
        HttpResponse::Ok().json(body)
    })
}
