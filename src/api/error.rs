//! The one table of error codes a client can see, and the problem+json
//! (RFC 9457) responses built from it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::domain::lifecycle::LifecycleError;
use crate::store::StoreError;

/// `(code, status, meaning)`: stable names, documented in the README and
/// the OpenAPI document.
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    (
        "bad_request",
        400,
        "the request is malformed (query string, path, headers)",
    ),
    ("malformed_json", 400, "the body is not valid JSON"),
    (
        "validation_failed",
        422,
        "a field is missing, of the wrong type or out of range",
    ),
    (
        "unauthorized",
        401,
        "no valid bearer token (or wrong username/password)",
    ),
    (
        "invalid_signature",
        401,
        "a signed channel request without a valid signature",
    ),
    (
        "stale_request",
        401,
        "a signed channel request more than 300 s from the server's clock",
    ),
    ("forbidden", 403, "the caller's role may not do this"),
    (
        "not_found",
        404,
        "no such resource, or not in the caller's scope",
    ),
    (
        "method_not_allowed",
        405,
        "the path exists but not with this method",
    ),
    (
        "conflict",
        409,
        "the resource already exists or changed concurrently",
    ),
    (
        "invalid_transition",
        409,
        "the action is not allowed in the ticket's current state",
    ),
    ("payload_too_large", 413, "the body is larger than 1 MiB"),
    ("unsupported_media_type", 415, "the body is not JSON"),
    ("rate_limited", 429, "too many requests; retry later"),
    (
        "internal",
        500,
        "an unexpected error; the log has the cause",
    ),
    (
        "unavailable",
        503,
        "a dependency (the database) is unavailable; retry after the Retry-After seconds",
    ),
    (
        "timeout",
        503,
        "the request took longer than `server.request_timeout_secs`; retry later",
    ),
];

#[derive(Debug)]
pub struct ApiError {
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<String>,
}

impl ApiError {
    pub fn new(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn not_found() -> Self {
        Self::new("not_found", "no such resource")
    }

    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new("validation_failed", detail)
    }

    pub fn validation_many(errors: Vec<String>) -> Self {
        ApiError {
            code: "validation_failed",
            detail: errors.join("; "),
            errors,
        }
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new("forbidden", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new("unauthorized", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new("bad_request", detail)
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new("internal", "an internal error occurred")
    }
}

pub fn status_of(code: &str) -> StatusCode {
    ERROR_CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .and_then(|(_, s, _)| StatusCode::from_u16(*s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The problem+json response for `code`.
pub fn problem(code: &str, detail: &str, errors: &[String]) -> HttpResponse {
    let status = status_of(code);
    let mut body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "code": code,
        "detail": detail,
    });
    if !errors.is_empty() {
        body["errors"] = json!(errors);
    }
    let mut resp = HttpResponse::build(status);
    resp.content_type("application/problem+json");
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.insert_header(("Retry-After", "2"));
    }
    resp.body(body.to_string())
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status_of(self.code)
    }

    fn error_response(&self) -> HttpResponse {
        problem(self.code, &self.detail, &self.errors)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Conflict(m) => ApiError::new("conflict", m),
            StoreError::Db(ref db) => {
                if e.is_unique_violation() {
                    return ApiError::new("conflict", "the resource already exists");
                }
                if e.is_unavailable() {
                    tracing::error!(error = %db, "database unavailable");
                    ApiError::new("unavailable", "the database is unavailable; retry shortly")
                } else {
                    ApiError::internal(db)
                }
            }
            StoreError::Corrupt(m) => ApiError::internal(m),
        }
    }
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::InvalidTransition { .. } => {
                ApiError::new("invalid_transition", e.to_string())
            }
            LifecycleError::Forbidden(m) => ApiError::forbidden(m),
            LifecycleError::Validation(m) => ApiError::validation(m),
        }
    }
}
