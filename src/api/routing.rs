//! 智能派单 over HTTP: a ticket's ranked department suggestions, the
//! dispatch catalogue (read by everyone, edited by admins, every edit a new
//! stored version), and auto-dispatch of new tickets above
//! `routing.auto_dispatch_threshold`.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::error::ApiError;
use super::tickets::{paging, ticket_id};
use super::views::ts;
use super::{ApiJson, AppState};
use crate::domain::catalogue::Catalogue;
use crate::domain::lifecycle::Action;
use crate::domain::router::{Appeal, Suggestion};
use crate::domain::types::{Category, Channel, Role, TicketState};
use crate::store::entities::ticket;
use crate::store::tickets::SideEffect;

/// Who auto-dispatches: the actor of its events.
pub const ROUTER_ACTOR: &str = "router";

#[derive(Deserialize)]
pub struct RouteQuery {
    limit: Option<String>,
}

fn appeal_of(t: &ticket::Model) -> Appeal<'_> {
    Appeal {
        title: &t.title,
        content: &t.content,
        district: t.district.as_deref(),
        address: t.address.as_deref(),
        channel: t.channel.parse().unwrap_or(Channel::Hotline),
        category: t.category.parse().unwrap_or(Category::Consult),
    }
}

/// `GET /api/v1/tickets/{id}/route`: the most likely lead departments,
/// with confidence and a reason the dispatcher can check.
pub async fn route(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<RouteQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = ticket_id(&path)?;
    // Scope first: a ticket the caller cannot see does not exist for them.
    let t = state
        .store
        .ticket(id, &caller.scope())
        .await?
        .ok_or_else(ApiError::not_found)?;
    caller.require(&[Role::Agent, Role::Dispatcher])?;
    let limit = match q.limit.as_deref().map(str::trim) {
        None | Some("") => 3,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10).contains(n))
            .ok_or_else(|| ApiError::validation("`limit` must be between 1 and 10"))?,
    };
    let live = state.routing.trained().await;
    let suggestions: Vec<_> = live
        .router
        .route(&appeal_of(&t), limit)
        .into_iter()
        .map(|s| {
            let name = live
                .catalogue
                .departments
                .iter()
                .find(|d| d.code.as_str() == s.department)
                .map(|d| d.name.clone());
            json!({
                "department": s.department, "name": name,
                "confidence": s.confidence, "reason": s.reason,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "ticket_id": t.id,
        "catalogue_version": live.version,
        "suggestions": suggestions,
    })))
}

/// Dispatches a newly registered ticket to the router's first choice when
/// auto-dispatch is on and the choice is confident enough. Returns the
/// dispatched ticket; `None` leaves the ticket to a dispatcher. Never fails
/// the registration: problems are logged.
pub async fn auto_dispatch(state: &AppState, t: &ticket::Model) -> Option<ticket::Model> {
    let threshold = state.settings.routing.auto_dispatch()?;
    // Consultations are for the agent to answer directly (直办) first, and a
    // possible repeat for a dispatcher to merge (并单) rather than send twice.
    if t.state != TicketState::Registered.as_str()
        || t.category == Category::Consult.as_str()
        || t.possible_duplicate_of.is_some()
    {
        return None;
    }
    // Only right after start-up can the first model still be training.
    let live = match tokio::time::timeout(Duration::from_secs(5), state.routing.trained()).await {
        Ok(live) => live,
        Err(_) => {
            tracing::info!(ticket_no = %t.ticket_no, "auto-dispatch: router not trained yet; left to a dispatcher");
            return None;
        }
    };
    let Suggestion {
        department,
        confidence,
        reason,
    } = live.router.route(&appeal_of(t), 1).into_iter().next()?;
    if confidence < threshold {
        return None;
    }
    match state.store.department(&department).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            tracing::warn!(ticket_no = %t.ticket_no, %department, "auto-dispatch: the department is not set up; left to a dispatcher");
            return None;
        }
        Err(e) => {
            tracing::warn!(ticket_no = %t.ticket_no, error = %e, "auto-dispatch failed");
            return None;
        }
    }
    let router = Caller {
        id: 0,
        username: ROUTER_ACTOR.to_owned(),
        role: Role::Dispatcher,
        department: None,
    };
    let action = Action::Dispatch {
        department: department.clone(),
        co_departments: Vec::new(),
        note: None,
    };
    let extra = json!({"confidence": confidence, "reason": reason, "threshold": threshold});
    match super::tickets::transition_with(state, &router, t.id, &action, &SideEffect::None, &extra)
        .await
    {
        Ok((after, _)) => {
            tracing::info!(ticket_no = %t.ticket_no, %department, confidence, "auto-dispatched");
            Some(after)
        }
        Err(e) => {
            tracing::warn!(ticket_no = %t.ticket_no, %department, error = %e, "auto-dispatch failed; left to a dispatcher");
            None
        }
    }
}

fn catalogue_json(catalogue: &Catalogue, version: i64) -> serde_json::Value {
    json!({
        "version": version,
        "departments": catalogue.departments,
        "topics": catalogue.topics,
    })
}

/// `GET /api/v1/catalogue`: the catalogue in force; `version` 0 is the
/// configuration file.
pub async fn catalogue(_caller: Caller, state: web::Data<AppState>) -> HttpResponse {
    let live = state.routing.current();
    HttpResponse::Ok().json(catalogue_json(&live.catalogue, live.version))
}

/// `PUT /api/v1/catalogue` body: a whole catalogue. `version`, when given,
/// is the version the edit started from: if another edit came first, 409.
#[derive(Deserialize)]
pub struct CatalogueBody {
    #[serde(default)]
    version: Option<i64>,
    #[serde(flatten)]
    catalogue: serde_json::Map<String, serde_json::Value>,
}

pub async fn replace_catalogue(
    caller: Caller,
    state: web::Data<AppState>,
    body: ApiJson<CatalogueBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let body = body.into_inner();
    let catalogue = Catalogue::from_json(serde_json::Value::Object(body.catalogue))
        .map_err(ApiError::validation_many)?;
    let current = state.routing.current().version;
    let base = body.version.unwrap_or(current);
    let text = serde_json::to_string(&catalogue).map_err(ApiError::internal)?;
    let now = crate::store::now();
    let version = state
        .store
        .add_catalogue_version(base, &text, &caller.username, now)
        .await?;
    tracing::info!(version, author = %caller.username, "catalogue: new version");
    state.routing.replace_catalogue(catalogue, version, now);
    let live = state.routing.current();
    Ok(HttpResponse::Ok().json(catalogue_json(&live.catalogue, live.version)))
}

#[derive(Deserialize)]
pub struct VersionsQuery {
    page: Option<String>,
    per_page: Option<String>,
}

/// `GET /api/v1/catalogue/versions`: who changed the catalogue, and when.
pub async fn versions(
    _caller: Caller,
    state: web::Data<AppState>,
    q: web::Query<VersionsQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let (page, per_page) = paging(&mut errors, &q.page, &q.per_page);
    if !errors.is_empty() {
        return Err(ApiError::validation_many(errors));
    }
    let (rows, total) = state
        .store
        .catalogue_versions(per_page, (page - 1) * per_page)
        .await?;
    let items: Vec<_> = rows
        .iter()
        .map(|v| json!({"version": v.version, "author": v.author, "created_at": ts(v.created_at)}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "items": items, "total": total, "page": page, "per_page": per_page,
        "current": state.routing.current().version,
    })))
}

/// `GET /api/v1/catalogue/versions/{version}`: one stored version, whole.
pub async fn version(
    _caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let v = ticket_id(&path)?;
    let row = state
        .store
        .catalogue_version(v)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let mut body: serde_json::Value =
        serde_json::from_str(&row.body).map_err(ApiError::internal)?;
    body["version"] = json!(row.version);
    body["author"] = json!(row.author);
    body["created_at"] = json!(ts(row.created_at));
    Ok(HttpResponse::Ok().json(body))
}
