//! `server.request_timeout_secs`: no request waits longer for its response
//! head. A request still running then (a database that stopped answering,
//! a pool with no free connection) is dropped — its open transaction rolls
//! back — and the client gets 503 `timeout` problem+json with Retry-After.
//! Streaming bodies (exports, the event stream) are not cut: the limit is
//! on the head.

use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use super::AppState;
use super::error::ApiError;

pub async fn request_deadline(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map(|s| Duration::from_secs(s.settings.server.request_timeout_secs))
        .unwrap_or(Duration::from_secs(30));
    let (method, path) = (req.method().clone(), req.path().to_owned());
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(res) => res.map(ServiceResponse::map_into_boxed_body),
        Err(_) => {
            tracing::error!(%method, %path, seconds = limit.as_secs(), "request timed out");
            let detail = format!(
                "the request took longer than {} s (server.request_timeout_secs); retry later",
                limit.as_secs()
            );
            // No clone of the request may live while it is routed, so the
            // answer is an error that actix renders (as problem+json).
            Err(ApiError::new("timeout", detail).into())
        }
    }
}
