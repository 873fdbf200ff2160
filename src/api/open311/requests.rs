//! Service requests: `GET requests` and `requests/{id}` (the public view of
//! Open311 tickets, without the reporter's name, phone or e-mail) and
//! `POST requests` (the key, then every field, then a ticket at once).

use std::collections::HashMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use super::form::{self, Params, Submission};
use super::render::{Failure, Format, Node, respond};
use super::{Catalogue, Refusal, Within, catalogue, department_names, format_of, w3c};
use crate::api::AppState;
use crate::config::Settings;
use crate::domain::types::{DepartmentKind, TicketNo, TicketState};
use crate::store::entities::{open311_request, ticket};
use crate::store::open311::RequestQuery;

fn is_open(t: &ticket::Model) -> bool {
    t.state
        .parse::<TicketState>()
        .map(TicketState::is_open)
        .unwrap_or(true)
}

/// A request as the public sees it: never the reporter's name, phone or
/// e-mail.
fn request_node(
    t: &ticket::Model,
    x: Option<&open311_request::Model>,
    c: &Catalogue,
    names: &HashMap<String, String>,
) -> Node {
    let open = is_open(t);
    let code = x.map(|x| x.service_code.clone());
    let service_name = code
        .as_deref()
        .and_then(|code| c.topic(code))
        .map(|topic| topic.name.clone())
        .unwrap_or_else(|| t.title.clone());
    let updated = if open {
        t.updated_at
    } else {
        t.closed_at.unwrap_or(t.updated_at)
    };
    let media_url = x
        .and_then(|x| serde_json::from_str::<Vec<String>>(&x.media_urls).ok())
        .and_then(|urls| urls.into_iter().next());
    Node::Obj(vec![
        ("service_request_id", Node::text(t.ticket_no.as_str())),
        ("status", Node::text(if open { "open" } else { "closed" })),
        ("status_notes", Node::opt(t.reply_content.clone())),
        ("service_name", Node::text(service_name)),
        ("service_code", Node::opt(code)),
        (
            "description",
            Node::opt(x.and_then(|x| x.description.clone())),
        ),
        (
            "agency_responsible",
            Node::opt(
                t.department
                    .as_ref()
                    .map(|d| names.get(d).cloned().unwrap_or_else(|| d.clone())),
            ),
        ),
        ("service_notice", Node::Text(None)),
        ("requested_datetime", Node::text(w3c(t.created_at))),
        ("updated_datetime", Node::text(w3c(updated))),
        ("expected_datetime", Node::opt(t.reply_due_at.map(w3c))),
        ("address", Node::opt(t.address.clone())),
        (
            "address_id",
            Node::opt(x.and_then(|x| x.address_id.clone())),
        ),
        ("zipcode", Node::Text(None)),
        ("lat", Node::Float(x.and_then(|x| x.latitude))),
        ("long", Node::Float(x.and_then(|x| x.longitude))),
        ("media_url", Node::opt(media_url)),
    ])
}

async fn answer_requests(
    state: &AppState,
    q: &RequestQuery,
    fmt: Format,
) -> Result<Vec<Node>, Refusal> {
    let c = catalogue(state).within(fmt)?;
    let names = department_names(state, &c).await.within(fmt)?;
    let rows = state.store.open311_requests(q).await.within(fmt)?;
    Ok(rows
        .iter()
        .map(|(t, x)| request_node(t, x.as_ref(), &c, &names))
        .collect())
}

pub async fn list_requests(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Refusal> {
    let fmt = format_of(&req)?;
    let params = Params::parse(req.query_string()).within(fmt)?;
    let q = form::parse_query(&params, crate::store::now()).within(fmt)?;
    let items = answer_requests(&state, &q, fmt).await?;
    let list = Node::List("request", items);
    Ok(respond(StatusCode::OK, "service_requests", &list, fmt))
}

pub async fn one_request(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Refusal> {
    let fmt = format_of(&req)?;
    let id = req.match_info().get("id").unwrap_or_default();
    let not_found = || {
        Refusal(
            Failure::not_found(format!("service_request_id {id:?} was not found")),
            fmt,
        )
    };
    let no = TicketNo::parse(id).ok_or_else(not_found)?;
    let now = crate::store::now();
    let q = RequestQuery {
        ticket_nos: Some(vec![no.as_str().to_owned()]),
        service_codes: Vec::new(),
        open: None,
        from: now,
        to: now,
        limit: 1,
    };
    let items = answer_requests(&state, &q, fmt).await?;
    if items.is_empty() {
        return Err(not_found());
    }
    let list = Node::List("request", items);
    Ok(respond(StatusCode::OK, "service_requests", &list, fmt))
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The fields of a POST: the form body, then the query string (some
/// clients put `api_key` or `jurisdiction_id` there).
fn post_params(
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<Params, Failure> {
    let body = body.map_err(|e| {
        if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
            Failure::bad_request("the body is larger than 1 MiB")
        } else {
            Failure::bad_request(format!("cannot read the body: {e}"))
        }
    })?;
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(Failure::bad_request(
            "a service request is sent as application/x-www-form-urlencoded",
        ));
    }
    let text =
        std::str::from_utf8(&body).map_err(|_| Failure::bad_request("the body is not UTF-8"))?;
    let mut params = Params::parse(text)?;
    params.extend(Params::parse(req.query_string())?);
    Ok(params)
}

fn check_key(settings: &Settings, params: &Params) -> Result<(), Failure> {
    let key = settings.open311.api_key.as_str();
    if key.is_empty() {
        return Err(Failure::forbidden(
            "this server takes no service requests: no api_key is configured",
        ));
    }
    match params.get("api_key") {
        None => Err(Failure::forbidden(
            "api_key was not provided -- can't proceed with create_request.",
        )),
        Some(k) if !constant_eq(k.as_bytes(), key.as_bytes()) => Err(Failure::forbidden(
            "Invalid api_key received -- can't proceed with create_request.",
        )),
        Some(_) => Ok(()),
    }
}

/// `POST requests`: the key first, then every field; only a request that
/// passes all of them becomes a ticket, at once.
pub async fn create_request(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, Refusal> {
    let fmt = format_of(&req)?;
    let params = post_params(&req, body).within(fmt)?;
    check_key(&state.settings, &params).within(fmt)?;
    let c = catalogue(&state).within(fmt)?;
    let sub = Submission::parse(&params, |code| c.topic(code).is_some()).within(fmt)?;
    let service_name = c
        .topic(&sub.service_code)
        .map(|t| t.name.clone())
        .unwrap_or_else(|| sub.service_code.clone());
    let districts: Vec<(String, String)> = state
        .store
        .list_departments()
        .await
        .within(fmt)?
        .into_iter()
        .filter(|d| d.kind == DepartmentKind::District.as_str())
        .map(|d| {
            let name = d.name.trim_end_matches("人民政府").to_owned();
            (d.code, name)
        })
        .collect();
    let appeal = sub
        .to_appeal(&service_name, &districts)
        .parse("open311")
        .map_err(|errors| Failure {
            status: 400,
            descriptions: errors,
        })
        .within(fmt)?;
    let created = state.intake.submit(appeal).await.within(fmt)?;
    let now = crate::store::now();
    let t = &created.ticket;
    crate::api::tickets::announce_created(&state, t, now).await;
    let row = open311_request::Model {
        ticket_id: t.id,
        service_code: sub.service_code.clone(),
        description: sub.description.clone(),
        latitude: sub.point.map(|p| p.0),
        longitude: sub.point.map(|p| p.1),
        address_id: sub.address_id.clone(),
        media_urls: serde_json::to_string(&sub.media_urls).unwrap_or_else(|_| "[]".into()),
        email: sub.email.clone(),
        created_at: now,
    };
    if let Err(e) = state.store.add_open311_request(row).await {
        // The ticket stands, and its content holds the point and the media;
        // only the Open311 view of them is lost.
        tracing::error!(error = %e, ticket_no = %t.ticket_no, "open311: request row not written");
    }
    let notice = format!(
        "已受理，工单号 {}。派单后由承办部门按时限办理，可凭工单号在此查询进度。",
        t.ticket_no
    );
    let list = Node::List(
        "request",
        vec![Node::Obj(vec![
            ("service_request_id", Node::text(t.ticket_no.as_str())),
            ("service_notice", Node::text(notice)),
            ("account_id", Node::Text(None)),
        ])],
    );
    Ok(respond(StatusCode::CREATED, "service_requests", &list, fmt))
}
