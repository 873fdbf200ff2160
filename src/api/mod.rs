//! HTTP API v1: routes, shared state, and the guards that turn every bad
//! request into problem+json with a stable `code`.

pub mod auth;
pub mod channels;
pub mod deadline;
pub mod error;
pub mod export;
pub mod hotspots;
pub mod mailbox;
pub mod misc;
pub mod open311;
pub mod openapi;
pub mod outbox;
pub mod routing;
pub mod stats;
pub mod stream;
pub mod tickets;
pub mod views;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::error::{PathError, QueryPayloadError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpRequest, web};

use crate::config::Settings;
use crate::domain::calendar::Calendar;
use crate::store::Store;
use crate::store::intake::Intake;
use error::{ApiError, problem};

/// Everything a request handler may need, built once at start-up.
pub struct AppState {
    pub settings: Settings,
    pub store: Store,
    pub calendar: Calendar,
    pub intake: Intake,
    pub tokens: auth::TokenCache,
    pub bus: crate::infra::bus::EventBus,
    pub redis: Option<crate::infra::redis::RedisHandle>,
    pub mailer: crate::infra::mail::Mailer,
    pub limits: crate::infra::ratelimit::PublicLimits,
    /// The live router and catalogue (智能派单).
    pub routing: std::sync::Arc<crate::jobs::retrain::Routing>,
}

pub const MAX_BODY: usize = 1024 * 1024;

/// A JSON body: syntax errors are `malformed_json` (400); well-formed JSON of
/// the wrong shape or values, or with U+0000 in a string, is
/// `validation_failed` (422); over 1 MiB is
/// `payload_too_large` (413). Parsing through `Value` first keeps that split
/// exact, whatever serde_json's own classification says.
pub struct ApiJson<T>(pub T);

impl<T> ApiJson<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for ApiJson<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = bytes.await.map_err(|e| {
                if e.as_response_error().status_code().as_u16() == 413 {
                    ApiError::new("payload_too_large", "the body is larger than 1 MiB")
                } else {
                    ApiError::bad_request(format!("cannot read the body: {e}"))
                }
            })?;
            let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::new("malformed_json", format!("the body is not valid JSON: {e}"))
            })?;
            if has_nul(&value) {
                return Err(ApiError::validation(NUL_REFUSED));
            }
            serde_json::from_value(value)
                .map(ApiJson)
                .map_err(|e| ApiError::validation(e.to_string()))
        })
    }
}

/// Why a text holding U+0000 is refused: it is no text, and PostgreSQL
/// cannot store it (the insert would fail as a 500).
pub const NUL_REFUSED: &str = "text must not contain the NUL character (U+0000)";

/// Whether any string in `v`, key or value, holds U+0000.
pub fn has_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(has_nul),
        serde_json::Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::validation(format!("bad query string: {err}")).into()
}

fn path_error(_err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::not_found().into()
}

/// Extractor settings: 1 MiB bodies and problem+json for every parse failure.
pub fn extractor_config(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .app_data(web::PayloadConfig::default().limit(MAX_BODY));
}

/// Rewrites error responses that did not come from our handlers (unknown
/// paths, wrong methods, actix's own refusals) into problem+json.
pub fn problem_errors<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|res: ServiceResponse<B>| {
        // Problems, pages that explain their own error, and JSON a handler
        // chose to send with an error status (readiness's checks) pass as
        // they are.
        let is_problem = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
            v == HeaderValue::from_static("application/problem+json")
                || v == HeaderValue::from_static("application/json")
                || v.as_bytes().starts_with(b"text/html")
        });
        // Open311 answers errors in the GeoReport v2 form, not problem+json.
        if is_problem || res.request().path().starts_with(open311::PREFIX) {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let status = res.status();
        let code = match status.as_u16() {
            400 => "bad_request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            413 => "payload_too_large",
            415 => "unsupported_media_type",
            429 => "rate_limited",
            502..=504 => "unavailable",
            s if s >= 500 => "internal",
            _ => "bad_request",
        };
        let detail = match code {
            "not_found" => "no such resource".to_owned(),
            "method_not_allowed" => "this path does not take that method".to_owned(),
            _ => status.canonical_reason().unwrap_or("error").to_owned(),
        };
        let (req, _) = res.into_parts();
        let resp: actix_web::HttpResponse<BoxBody> = problem(code, &detail, &[]);
        let res: ServiceResponse<EitherBody<B, BoxBody>> =
            ServiceResponse::new(req, resp).map_into_right_body();
        Ok(ErrorHandlerResponse::Response(res))
    })
}

async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found())
}

/// Registers a resource taking the methods `allow` lists ("GET, POST");
/// any other method answers 405 problem+json with that `Allow` header
/// (RFC 9110, 15.5.6).
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        let mut resp = problem(
            "method_not_allowed",
            "this path does not take that method",
            &[],
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        resp
    }))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    use crate::web::{agent, dispatch, inbox, session, ticket_page};
    use actix_web::web::{get, post, put};
    cfg.service(resource("/", "GET").route(get().to(session::home)))
        .service(
            resource("/login", "GET, POST")
                .route(get().to(session::login_page))
                .route(post().to(session::login_submit)),
        )
        .service(resource("/logout", "POST").route(post().to(session::logout)))
        .service(resource("/static/pages.js", "GET").route(get().to(session::script)))
        .service(
            resource("/agent", "GET, POST")
                .route(get().to(agent::agent_page))
                .route(post().to(agent::agent_submit)),
        )
        .service(resource("/agent/suggest", "POST").route(post().to(agent::suggest)))
        .service(resource("/dispatch", "GET").route(get().to(dispatch::dispatch_page)))
        .service(resource("/inbox", "GET").route(get().to(inbox::inbox)))
        .service(resource("/dashboard", "GET").route(get().to(crate::web::dashboard::dashboard)))
        .service(resource("/dashboard/live", "GET").route(get().to(crate::web::dashboard::live)))
        .service(
            resource("/dashboard/events", "GET").route(get().to(crate::web::dashboard::events)),
        )
        .service(
            resource("/static/dashboard.js", "GET").route(get().to(crate::web::dashboard::script)),
        )
        .service(resource("/tickets/{id}", "GET").route(get().to(ticket_page::show)))
        .service(resource("/tickets/{id}/{action}", "POST").route(post().to(ticket_page::act)))
        .service(resource("/healthz", "GET").route(get().to(misc::healthz)))
        .service(resource("/metrics", "GET").route(get().to(misc::metrics)))
        .service(resource("/readyz", "GET").route(get().to(misc::readyz)))
        .service(resource("/api/openapi.json", "GET").route(get().to(openapi::document)))
        .service(resource("/api/docs", "GET").route(get().to(openapi::docs_page)))
        .service(resource("/mailbox", "GET").route(get().to(crate::web::public::mailbox_page)))
        .service(resource("/track", "GET").route(get().to(crate::web::public::track)))
        .service(
            web::scope("/api/v1")
                .service(resource("/auth/login", "POST").route(post().to(auth::login)))
                .service(resource("/auth/me", "GET").route(get().to(auth::me)))
                .service(resource("/auth/logout", "POST").route(post().to(auth::logout)))
                .service(resource("/auth/password", "POST").route(post().to(auth::change_password)))
                .service(resource("/users/{id}", "PATCH").route(web::patch().to(auth::update_user)))
                .service(
                    resource("/users", "GET, POST")
                        .route(post().to(auth::create_user))
                        .route(get().to(auth::list_users)),
                )
                .service(
                    resource("/departments", "GET, POST")
                        .route(get().to(misc::list_departments))
                        .route(post().to(misc::create_department)),
                )
                .service(
                    resource("/catalogue", "GET, PUT")
                        .route(get().to(routing::catalogue))
                        .route(put().to(routing::replace_catalogue)),
                )
                .service(resource("/catalogue/versions", "GET").route(get().to(routing::versions)))
                .service(
                    resource("/catalogue/versions/{version}", "GET")
                        .route(get().to(routing::version)),
                )
                .service(resource("/calendar/due", "GET").route(get().to(misc::due)))
                .service(resource("/stats", "GET").route(get().to(stats::stats)))
                .service(resource("/hotspots", "GET").route(get().to(hotspots::list)))
                .service(
                    resource("/channels/wenzheng/appeals", "POST")
                        .route(post().to(channels::wenzheng)),
                )
                .service(resource("/export", "GET").route(get().to(export::export)))
                .service(resource("/events/stream", "GET").route(get().to(stream::stream)))
                .service(resource("/access-log", "GET").route(get().to(tickets::access_log)))
                .service(resource("/outbox", "GET").route(get().to(outbox::list)))
                .service(resource("/outbox/{id}/retry", "POST").route(post().to(outbox::retry)))
                .service(
                    resource("/public/tickets/{ticket_no}", "GET")
                        .route(get().to(misc::public_ticket)),
                )
                .service(resource("/public/mailbox", "POST").route(post().to(mailbox::submit)))
                .service(
                    resource("/tickets", "GET, POST")
                        .route(post().to(tickets::create))
                        .route(get().to(tickets::list)),
                )
                .service(resource("/tickets/{id}", "GET").route(get().to(tickets::get)))
                .service(resource("/tickets/{id}/route", "GET").route(get().to(routing::route)))
                .service(
                    resource("/tickets/{id}/dispatch", "POST").route(post().to(tickets::dispatch)),
                )
                .service(resource("/tickets/{id}/sign", "POST").route(post().to(tickets::sign)))
                .service(
                    resource("/tickets/{id}/return", "POST")
                        .route(post().to(tickets::return_ticket)),
                )
                .service(
                    resource("/tickets/{id}/extensions", "POST")
                        .route(post().to(tickets::request_extension)),
                )
                .service(
                    resource("/tickets/{id}/extensions/{ext_id}/decision", "POST")
                        .route(post().to(tickets::decide_extension)),
                )
                .service(resource("/tickets/{id}/reply", "POST").route(post().to(tickets::reply)))
                .service(
                    resource("/tickets/{id}/callback", "POST").route(post().to(tickets::callback)),
                )
                .service(resource("/tickets/{id}/close", "POST").route(post().to(tickets::close)))
                .service(resource("/tickets/{id}/merge", "POST").route(post().to(tickets::merge)))
                .service(resource("/tickets/{id}/notes", "POST").route(post().to(tickets::note)))
                .service(
                    resource("/tickets/{id}/reveal", "POST").route(post().to(tickets::reveal)),
                ),
        )
        .service(open311::scope())
        .default_service(web::to(not_found));
}
