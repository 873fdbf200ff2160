//! Open311 GeoReport v2 at `/open311/v2/`: discovery, the service list (the
//! dispatch catalogue's topics), service definitions, and service requests —
//! POSTed with the API key, each at once a ticket on channel `open311`, and
//! readable by anyone without the reporter's name, phone or e-mail. Answers
//! are JSON or XML by the path's extension; errors take the spec's form.

// Public for the fuzz target (fuzz/fuzz_targets/open311_form.rs).
pub mod form;
mod render;
mod requests;

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::web::{self, get, post};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use chrono::{DateTime, Utc};

use super::AppState;
use super::error::ApiError;
use crate::config::Environment;
use crate::domain::calendar::city_tz;
use crate::domain::catalogue::{DISTRICT_TARGET, Topic};
use crate::store::StoreError;
use render::{Failure, Format, Node, respond};
use requests::{create_request, list_requests, one_request};

/// Every path under here answers in the spec's error form, never
/// problem+json (see `api::problem_errors`).
pub const PREFIX: &str = "/open311/";

const SPECIFICATION: &str = "http://wiki.open311.org/GeoReport_v2";
/// The `group` of topics that go to the appeal's own district.
const DISTRICT_GROUP: &str = "属地区县人民政府";

pub fn scope() -> actix_web::Scope {
    web::scope("/open311/v2")
        .service(resource("/discovery.{fmt}", "GET").route(get().to(discovery)))
        .service(resource("/services.{fmt}", "GET").route(get().to(services)))
        .service(resource("/services/{code}.{fmt}", "GET").route(get().to(service_definition)))
        .service(
            resource("/requests.{fmt}", "GET and POST")
                .route(get().to(list_requests))
                .route(post().to(create_request)),
        )
        .service(resource("/requests/{id}.{fmt}", "GET").route(get().to(one_request)))
        .default_service(web::to(unknown_path))
}

/// A resource whose other methods are refused (400, the spec's catch-all).
fn resource(path: &str, allowed: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move |req: HttpRequest| async move {
        let fmt = format_of(&req).unwrap_or(Format::Json);
        Failure::bad_request(format!("this path takes {allowed} only")).response(fmt)
    }))
}

async fn unknown_path(req: HttpRequest) -> HttpResponse {
    let fmt = if req.path().ends_with(".xml") {
        Format::Xml
    } else {
        Format::Json
    };
    Failure::not_found(
        "no such resource: see /open311/v2/discovery.json; paths end in .json or .xml",
    )
    .response(fmt)
}

/// A refusal and the format to give it in.
#[derive(Debug)]
struct Refusal(Failure, Format);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.status, self.0.descriptions.join("; "))
    }
}

impl ResponseError for Refusal {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::BAD_REQUEST)
    }

    fn error_response(&self) -> HttpResponse {
        self.0.response(self.1)
    }
}

trait Within<T> {
    fn within(self, fmt: Format) -> Result<T, Refusal>;
}

impl<T, E: Into<Failure>> Within<T> for Result<T, E> {
    fn within(self, fmt: Format) -> Result<T, Refusal> {
        self.map_err(|e| Refusal(e.into(), fmt))
    }
}

/// Storage failures: 503 while the database is unreachable, 409 when the
/// request collided with a concurrent one (retrying is safe), 500 otherwise
/// (the log has the cause).
impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        match ApiError::from(e).code {
            "unavailable" => Failure::new(503, "the service is unavailable; retry shortly"),
            "conflict" => Failure::new(
                409,
                "the request collided with a concurrent change; retry it",
            ),
            _ => Failure::new(500, "an internal error occurred"),
        }
    }
}

/// The format the path's extension names; any other is a resource that does
/// not exist (404).
fn format_of(req: &HttpRequest) -> Result<Format, Refusal> {
    let ext = req.match_info().get("fmt").unwrap_or_default();
    Format::parse(ext).ok_or_else(|| {
        Refusal(
            Failure::not_found(format!("unknown format {ext:?}: use .json or .xml")),
            Format::Json,
        )
    })
}

/// The catalogue's topics: the catalogue the router uses now (the newest
/// version edited through the API, else the configured file).
struct Catalogue {
    catalogue: Arc<crate::domain::catalogue::Catalogue>,
    /// Department code → name, as the catalogue has them.
    names: HashMap<String, String>,
    /// When the catalogue last changed (the discovery `changeset`).
    changeset: String,
}

impl Catalogue {
    fn topics(&self) -> &[Topic] {
        &self.catalogue.topics
    }

    fn topic(&self, code: &str) -> Option<&Topic> {
        self.topics().iter().find(|t| t.code == code)
    }
}

fn catalogue(state: &AppState) -> Result<Arc<Catalogue>, Failure> {
    let live = state.routing.current();
    let changeset = match live.updated_at {
        Some(t) => w3c_minutes(t),
        None => std::fs::metadata(&state.settings.catalogue)
            .and_then(|m| m.modified())
            .map(|t| w3c_minutes(DateTime::<Utc>::from(t)))
            .unwrap_or_else(|_| "2026-11-21 00:00".to_owned()),
    };
    Ok(Arc::new(Catalogue {
        names: live
            .catalogue
            .departments
            .iter()
            .map(|d| (d.code.as_str().to_owned(), d.name.clone()))
            .collect(),
        catalogue: live.catalogue.clone(),
        changeset,
    }))
}

/// Department code → name: the database's, else the catalogue's.
async fn department_names(
    state: &AppState,
    catalogue: &Catalogue,
) -> Result<HashMap<String, String>, Failure> {
    let mut names = catalogue.names.clone();
    for d in state.store.list_departments().await? {
        names.insert(d.code, d.name);
    }
    Ok(names)
}

fn w3c(t: DateTime<Utc>) -> String {
    t.with_timezone(&city_tz())
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

fn w3c_minutes(t: DateTime<Utc>) -> String {
    t.with_timezone(&city_tz())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

async fn discovery(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Refusal> {
    let fmt = format_of(&req)?;
    let c = catalogue(&state).within(fmt)?;
    let base = state.settings.server.base_url.trim_end_matches('/');
    let kind = if state.settings.env == Environment::Production {
        "production"
    } else {
        "test"
    };
    let doc = Node::Obj(vec![
        ("changeset", Node::text(c.changeset.as_str())),
        (
            "contact",
            Node::text("12345 政务服务便民热线：拨打 12345，或写信至市长信箱 /mailbox"),
        ),
        (
            "key_service",
            Node::text("api_key 由 12345 热线办公室发放；请与热线办公室联系"),
        ),
        (
            "endpoints",
            Node::List(
                "endpoint",
                vec![Node::Obj(vec![
                    ("specification", Node::text(SPECIFICATION)),
                    ("url", Node::text(format!("{base}/open311/v2"))),
                    ("changeset", Node::text(c.changeset.as_str())),
                    ("type", Node::text(kind)),
                    (
                        "formats",
                        Node::List(
                            "format",
                            vec![Node::text("text/xml"), Node::text("application/json")],
                        ),
                    ),
                ])],
            ),
        ),
    ]);
    Ok(respond(StatusCode::OK, "discovery", &doc, fmt))
}

fn service_node(t: &Topic, names: &HashMap<String, String>) -> Node {
    let group = if t.department == DISTRICT_TARGET {
        Some(DISTRICT_GROUP.to_owned())
    } else {
        names.get(&t.department).cloned()
    };
    Node::Obj(vec![
        ("service_code", Node::text(t.code.as_str())),
        ("service_name", Node::text(t.name.as_str())),
        ("description", Node::opt(t.description.clone())),
        ("metadata", Node::Bool(false)),
        ("type", Node::text("realtime")),
        ("keywords", Node::text(t.keywords.join(","))),
        ("group", Node::opt(group)),
    ])
}

async fn services(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Refusal> {
    let fmt = format_of(&req)?;
    let c = catalogue(&state).within(fmt)?;
    let names = department_names(&state, &c).await.within(fmt)?;
    let list = Node::List(
        "service",
        c.topics().iter().map(|t| service_node(t, &names)).collect(),
    );
    Ok(respond(StatusCode::OK, "services", &list, fmt))
}

/// No service asks for more than the standard fields (`metadata` is false
/// for all), so every definition has no attributes.
async fn service_definition(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Refusal> {
    let fmt = format_of(&req)?;
    let c = catalogue(&state).within(fmt)?;
    let code = req.match_info().get("code").unwrap_or_default();
    let topic = c.topic(code).ok_or_else(|| {
        Refusal(
            Failure::not_found(format!("service_code {code:?} was not found")),
            fmt,
        )
    })?;
    let doc = Node::Obj(vec![
        ("service_code", Node::text(topic.code.as_str())),
        ("attributes", Node::List("attribute", Vec::new())),
    ]);
    Ok(respond(StatusCode::OK, "service_definition", &doc, fmt))
}

#[cfg(test)]
mod store_failure_tests {
    use super::*;

    #[test]
    fn a_storage_conflict_is_409_not_a_server_error() {
        let f = Failure::from(StoreError::Conflict("intake writer stopped".into()));
        assert_eq!(f.status, 409);
        let f = Failure::from(StoreError::Corrupt("bad row".into()));
        assert_eq!(f.status, 500);
    }
}
