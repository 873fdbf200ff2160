//! The OpenAPI 3.1 document of the whole HTTP API — v1, the public mailbox,
//! Open311 GeoReport v2 and the operations endpoints — and a small docs page
//! rendered from it. Written as data (one table of operations, every status
//! each can answer) next to the routes it describes; `tests/schemathesis`
//! holds the server to it.

mod schemas;

use actix_web::HttpResponse;
use serde_json::{Map, Value, json};

use super::error::ERROR_CODES;

/// How an operation authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Nobody needs to.
    None,
    /// `Authorization: Bearer <token>` from `POST /api/v1/auth/login`.
    Bearer,
    /// The 问政江西 platform's HMAC signature headers.
    Signature,
}

/// One operation: who may call it, what it takes, and every status it answers.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub roles: &'static str,
    pub auth: Auth,
    /// The JSON request body's schema, if the operation takes one.
    pub body: Option<&'static str>,
    /// The success status and its schema (a component name, or one of the
    /// non-JSON kinds handled in [`success_content`]).
    pub status: u16,
    pub response: &'static str,
    /// Every problem+json status besides.
    pub errors: &'static [u16],
}

#[allow(clippy::too_many_arguments)]
const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    roles: &'static str,
    auth: Auth,
    body: Option<&'static str>,
    (status, response): (u16, &'static str),
    errors: &'static [u16],
) -> Operation {
    Operation {
        method,
        path,
        summary,
        roles,
        auth,
        body,
        status,
        response,
        errors,
    }
}

use Auth::{Bearer, None as Open, Signature};

/// A ticket action: a JSON body, then scope, role and state.
const ACTION: &[u16] = &[400, 401, 403, 404, 409, 413, 422, 503];
/// A bearer read of one resource by id.
const READ_ONE: &[u16] = &[401, 404, 503];
/// A bearer read of a list with checked query parameters.
const READ_LIST: &[u16] = &[401, 422, 503];
/// The same for a list only some roles may read.
const READ_LIST_ROLES: &[u16] = &[401, 403, 422, 503];
/// An admin's JSON creation.
const ADMIN_CREATE: &[u16] = &[400, 401, 403, 409, 413, 422, 503];

pub const OPERATIONS: &[Operation] = &[
    op(
        "post",
        "/api/v1/auth/login",
        "Log in; returns a bearer token. Repeated failures are rate-limited (429 with Retry-After)",
        "anyone",
        Open,
        Some("LoginRequest"),
        (200, "LoginResponse"),
        &[400, 401, 413, 422, 429, 503],
    ),
    op(
        "post",
        "/api/v1/auth/logout",
        "Revoke the bearer token of this request",
        "any user",
        Bearer,
        None,
        (204, "NoContent"),
        &[401, 503],
    ),
    op(
        "post",
        "/api/v1/auth/password",
        "Change one's own password: the current one is checked through the log-in guard (422 when wrong, 429 with Retry-After after repeated failures); every token of the caller is revoked",
        "any user",
        Bearer,
        Some("PasswordChange"),
        (204, "NoContent"),
        &[400, 401, 413, 422, 429, 503],
    ),
    op(
        "get",
        "/api/v1/auth/me",
        "The caller's own user",
        "any user",
        Bearer,
        None,
        (200, "User"),
        READ_ONE,
    ),
    op(
        "post",
        "/api/v1/users",
        "Create a user",
        "admin",
        Bearer,
        Some("NewUser"),
        (201, "User"),
        ADMIN_CREATE,
    ),
    op(
        "get",
        "/api/v1/users",
        "List users",
        "admin",
        Bearer,
        None,
        (200, "UserList"),
        &[401, 403, 503],
    ),
    op(
        "patch",
        "/api/v1/users/{id}",
        "Change a user: activate or deactivate, reset the password, role, department, name, e-mail. Disabling a user or setting their password revokes their tokens; an admin cannot disable or demote themselves (422)",
        "admin",
        Bearer,
        Some("UserPatch"),
        (200, "User"),
        &[400, 401, 403, 404, 413, 422, 503],
    ),
    op(
        "get",
        "/api/v1/departments",
        "List departments",
        "any user",
        Bearer,
        None,
        (200, "DepartmentList"),
        &[401, 503],
    ),
    op(
        "post",
        "/api/v1/departments",
        "Create a department (409 when the code exists)",
        "admin",
        Bearer,
        Some("NewDepartment"),
        (201, "Department"),
        ADMIN_CREATE,
    ),
    op(
        "post",
        "/api/v1/tickets",
        "Register an appeal (201 new, 200 when (channel, external_id) exists)",
        "agent, dispatcher",
        Bearer,
        Some("NewTicket"),
        (201, "Ticket"),
        &[400, 401, 403, 409, 413, 422, 503],
    ),
    op(
        "get",
        "/api/v1/tickets",
        "List tickets in the caller's scope",
        "any user (department users: their tickets)",
        Bearer,
        None,
        (200, "TicketList"),
        READ_LIST,
    ),
    op(
        "get",
        "/api/v1/tickets/{id}",
        "A ticket with its events and extension requests (404 outside the caller's scope)",
        "scoped",
        Bearer,
        None,
        (200, "Ticket"),
        READ_ONE,
    ),
    op(
        "get",
        "/api/v1/tickets/{id}/route",
        "Ranked lead-department suggestions (智能派单) with confidence and reason",
        "agent, dispatcher (scoped)",
        Bearer,
        None,
        (200, "RouteSuggestions"),
        &[401, 403, 404, 422, 503],
    ),
    op(
        "get",
        "/api/v1/catalogue",
        "The dispatch catalogue in force (派单目录); version 0 is the configuration file",
        "any user",
        Bearer,
        None,
        (200, "Catalogue"),
        &[401, 503],
    ),
    op(
        "put",
        "/api/v1/catalogue",
        "Replace the catalogue: stored as a new version, routing uses it at once; `version` (optional) is the one edited, 409 if another edit came first",
        "admin",
        Bearer,
        Some("CatalogueEdit"),
        (200, "Catalogue"),
        ADMIN_CREATE,
    ),
    op(
        "get",
        "/api/v1/catalogue/versions",
        "Catalogue versions, newest first: who and when",
        "any user",
        Bearer,
        None,
        (200, "CatalogueVersionList"),
        READ_LIST,
    ),
    op(
        "get",
        "/api/v1/catalogue/versions/{version}",
        "One stored catalogue version, whole",
        "any user",
        Bearer,
        None,
        (200, "StoredCatalogue"),
        READ_ONE,
    ),
    op(
        "post",
        "/api/v1/tickets/{id}/dispatch",
        "Dispatch or re-dispatch (派单/改派)",
        "dispatcher",
        Bearer,
        Some("Dispatch"),
        (200, "Ticket"),
        ACTION,
    ),
    op(
        "post",
        "/api/v1/tickets/{id}/sign",
        "Sign for the ticket (签收)",
        "lead handler, dept_head",
        Bearer,
        None,
        (200, "Ticket"),
        &[401, 403, 404, 409, 503],
    ),
    op(
        "post",
        "/api/v1/tickets/{id}/return",
        "Return the ticket (退单)",
        "lead handler, dept_head",
        Bearer,
        Some("Reason"),
        (200, "Ticket"),
        ACTION,
    ),
    op(
        "post",
        "/api/v1/tickets/{id}/extensions",
        "Ask for an extension (延期)",
        "lead handler, dept_head",
        Bearer,
        Some("ExtensionRequest"),
        (201, "Extension"),
        ACTION,
    ),
    op(
        "post",
        "/api/v1/tickets/{id}/extensions/{ext_id}/decision",
        "Approve or reject an extension",
        "dispatcher",
        Bearer,
        Some("ExtensionDecision"),
        (200, "Ticket"),
        ACTION,
    ),
    op(
        "post",
        "/api/v1/tickets/{id}/reply",
        "Reply (答复)",
        "lead handler, dept_head",
        Bearer,
        Some("Reply"),
        (200, "Ticket"),
        ACTION,
    ),
    op(
        "post",
        "/api/v1/tickets/{id}/callback",
        "Record the callback (回访)",
        "dispatcher",
        Bearer,
        Some("Callback"),
        (200, "Ticket"),
        ACTION,
    ),
    op(
        "post",
        "/api/v1/tickets/{id}/close",
        "Close directly: direct answer, rejection, emergency transfer",
        "agent, dispatcher",
        Bearer,
        Some("Close"),
        (200, "Ticket"),
        ACTION,
    ),
    op(
        "post",
        "/api/v1/tickets/{id}/merge",
        "Merge into another ticket (并单)",
        "dispatcher",
        Bearer,
        Some("Merge"),
        (200, "Ticket"),
        ACTION,
    ),
    op(
        "post",
        "/api/v1/tickets/{id}/notes",
        "Add a note (co-departments too)",
        "scoped, not leader",
        Bearer,
        Some("Note"),
        (200, "Ticket"),
        ACTION,
    ),
    op(
        "post",
        "/api/v1/tickets/{id}/reveal",
        "Reveal citizen name and phone (logged with the reason)",
        "scoped",
        Bearer,
        Some("Reason"),
        (200, "Reveal"),
        &[400, 401, 404, 413, 422, 503],
    ),
    op(
        "get",
        "/api/v1/access-log",
        "Personal-data access log",
        "admin, supervisor",
        Bearer,
        None,
        (200, "AccessLogList"),
        READ_LIST_ROLES,
    ),
    op(
        "get",
        "/api/v1/outbox",
        "Outbox rows (mail and 问政江西 reply pushes), newest first; ?status=failed lists the parked ones",
        "admin",
        Bearer,
        None,
        (200, "OutboxList"),
        READ_LIST_ROLES,
    ),
    op(
        "post",
        "/api/v1/outbox/{id}/retry",
        "Queue a failed (parked) or backing-off row again, due now; 409 when already sent",
        "admin",
        Bearer,
        None,
        (200, "OutboxRow"),
        &[401, 403, 404, 409, 503],
    ),
    op(
        "get",
        "/api/v1/public/tickets/{ticket_no}",
        "Public progress look-up with the query code (a wrong number or code is the same 404)",
        "anyone",
        Open,
        None,
        (200, "PublicTicket"),
        &[404, 422, 503],
    ),
    op(
        "post",
        "/api/v1/public/mailbox",
        "市长信箱: a letter as JSON or a form post (201 new, 200 the same letter within 10 minutes); answers a page when the client prefers HTML. Rate-limited per address and per phone (429 with Retry-After)",
        "anyone",
        Open,
        Some("MailboxLetter"),
        (201, "MailboxReceipt"),
        &[400, 409, 413, 415, 422, 429, 503],
    ),
    op(
        "get",
        "/api/v1/calendar/due",
        "Deadline arithmetic: from + exactly one of working_days | working_hours | hours",
        "anyone",
        Open,
        None,
        (200, "Due"),
        &[422],
    ),
    op(
        "get",
        "/api/v1/stats",
        "Figures (统计) for [from, to) in city days, whole city or grouped; each {numerator, denominator, rate}",
        "leader, supervisor, dispatcher, admin; dept_head (own department)",
        Bearer,
        None,
        (200, "Stats"),
        READ_LIST_ROLES,
    ),
    op(
        "get",
        "/api/v1/hotspots",
        "Current hotspots (苗头性、倾向性问题): ≥ hotspots.min_appeals appeals on one topic from one place within hotspots.window, most recent activity first",
        "leader, supervisor, dispatcher, admin",
        Bearer,
        None,
        (200, "HotspotList"),
        &[401, 403, 503],
    ),
    op(
        "post",
        "/api/v1/channels/wenzheng/appeals",
        "问政江西 push: a post signed with X-Wenzheng-Timestamp and X-Wenzheng-Signature (HMAC-SHA256 over timestamp.body); 201 new, 200 already registered (same post_id); 503 when the channel has no secret configured",
        "the platform (signature, no token)",
        Signature,
        Some("WenzhengPost"),
        (201, "WenzhengReceipt"),
        &[400, 401, 409, 413, 422, 503],
    ),
    op(
        "get",
        "/api/v1/export",
        "台账 of tickets created in [from, to) as CSV (streamed) or XLSX; masked unless unmasked=true&reason= (admins, logged)",
        "leader, supervisor, dispatcher, admin; dept_head (own department)",
        Bearer,
        None,
        (200, "Export"),
        READ_LIST_ROLES,
    ),
    op(
        "get",
        "/api/v1/events/stream",
        "Server-sent events of ticket changes (text/event-stream, never ends), scoped; the token may come as ?access_token=",
        "any user (department users: their tickets)",
        Bearer,
        None,
        (200, "EventStream"),
        &[401, 503],
    ),
    op(
        "get",
        "/metrics",
        "Prometheus metrics: database, Redis, outbox backlog",
        "anyone",
        Open,
        None,
        (200, "Metrics"),
        &[],
    ),
    op(
        "get",
        "/healthz",
        "Liveness",
        "anyone",
        Open,
        None,
        (200, "Health"),
        &[],
    ),
    op(
        "get",
        "/readyz",
        "Readiness (database, Redis when configured, outbox backlog and parked rows); 503 when the database does not answer",
        "anyone",
        Open,
        None,
        (200, "Readiness"),
        &[],
    ),
    op(
        "get",
        "/api/openapi.json",
        "This document",
        "anyone",
        Open,
        None,
        (200, "OpenApi"),
        &[],
    ),
    op(
        "get",
        "/api/docs",
        "The operations and error codes as a page",
        "anyone",
        Open,
        None,
        (200, "Html"),
        &[],
    ),
];

/// `(method, path without the extension, summary, success status, schema,
/// error statuses)` of one Open311 resource.
pub type Open311Operation = (
    &'static str,
    &'static str,
    &'static str,
    u16,
    &'static str,
    &'static [u16],
);

/// Open311 GeoReport v2 resources, each answered as `.json` or `.xml`.
/// Errors are the spec's list of `{code, description}`.
pub const OPEN311: &[Open311Operation] = &[
    (
        "get",
        "/open311/v2/discovery",
        "Open311 discovery: the endpoint, its formats and changeset",
        200,
        "Open311Discovery",
        &[],
    ),
    (
        "get",
        "/open311/v2/services",
        "Open311 service list: the dispatch catalogue's topics",
        200,
        "Open311Services",
        &[503],
    ),
    (
        "get",
        "/open311/v2/services/{service_code}",
        "Open311 service definition (no service has extra attributes)",
        200,
        "Open311ServiceDefinition",
        &[404],
    ),
    (
        "get",
        "/open311/v2/requests",
        "Open311 service requests (public view: never the reporter's name, phone or e-mail); at most 1,000, a window of at most 90 days",
        200,
        "Open311Requests",
        &[400, 503],
    ),
    (
        "post",
        "/open311/v2/requests",
        "Create an Open311 service request (a form post with the api_key): at once a ticket on channel open311",
        201,
        "Open311Created",
        &[400, 403, 404, 409, 503],
    ),
    (
        "get",
        "/open311/v2/requests/{service_request_id}",
        "One Open311 service request by its ticket number",
        200,
        "Open311Requests",
        &[404, 503],
    ),
];

fn query(name: &str, required: bool, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": required, "schema": schema})
}

fn paging() -> [Value; 2] {
    [
        query(
            "page",
            false,
            json!({"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1}),
        ),
        query(
            "per_page",
            false,
            json!({"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
        ),
    ]
}

fn params(path: &str, method: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for seg in path.split('/') {
        let Some(name) = seg
            .strip_prefix('{')
            .and_then(|s| s.split_once('}'))
            .map(|s| s.0)
        else {
            continue;
        };
        let schema = match name {
            "ticket_no" | "service_request_id" => {
                json!({"type": "string", "pattern": "^[0-9]{8}[HMWO][0-9]{6}$", "example": "20261121H000001"})
            }
            "service_code" => json!({"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}),
            _ => json!({"type": "integer", "minimum": 1, "maximum": i64::MAX, "example": 1}),
        };
        out.push(json!({"name": name, "in": "path", "required": true, "schema": schema}));
    }
    let s = json!({"type": "string"});
    let dt = json!({"type": "string", "format": "date-time"});
    let department = json!({"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"});
    let day = json!({"type": "string", "format": "date", "description": "a city day (YYYY-MM-DD), or an RFC 3339 instant at a city midnight"});
    match (method, path) {
        ("get", "/api/v1/tickets") => {
            out.push(query(
                "state",
                false,
                json!({"$ref": "#/components/schemas/TicketState"}),
            ));
            out.push(query("department", false, department));
            out.push(query(
                "channel",
                false,
                json!({"$ref": "#/components/schemas/Channel"}),
            ));
            out.push(query(
                "category",
                false,
                json!({"$ref": "#/components/schemas/Category"}),
            ));
            out.push(query("overdue", false, json!({"type": "boolean"})));
            out.push(query(
                "escalation_level",
                false,
                json!({"type": "integer", "minimum": 0, "maximum": 3}),
            ));
            out.push(query("q", false, json!({"type": "string", "description": "words in the title, content or address (the first 200 characters count)"})));
            out.push(query("created_from", false, dt.clone()));
            out.push(query("created_to", false, dt.clone()));
            out.extend(paging());
        }
        ("get", "/api/v1/tickets/{id}/route") => {
            out.push(query(
                "limit",
                false,
                json!({"type": "integer", "minimum": 1, "maximum": 10, "default": 3}),
            ));
        }
        ("get", "/api/v1/catalogue/versions") => out.extend(paging()),
        ("get", "/api/v1/outbox") => {
            out.push(query(
                "status",
                false,
                json!({"type": "string", "enum": ["pending", "sent", "failed", "no_recipient"]}),
            ));
            out.push(query(
                "transport",
                false,
                json!({"type": "string", "enum": ["mail", "webhook"]}),
            ));
            out.extend(paging());
        }
        ("get", "/api/v1/access-log") => {
            out.push(query("ticket_id", false, json!({"type": "integer"})));
            out.extend(paging());
        }
        ("get", "/api/v1/public/tickets/{ticket_no}") => {
            out.push(query("code", true, json!({"type": "string", "pattern": "^[0-9A-Za-z]{6}$", "description": "the 6-character query code (any case)"})));
        }
        ("get", "/api/v1/stats") => {
            out.push(query("from", true, day.clone()));
            out.push(query("to", true, day));
            out.push(query("group_by", false, json!({"type": "string", "enum": ["department", "channel", "category", "district"]})));
            out.push(query(
                "department",
                false,
                json!({"type": "string", "maxLength": 64}),
            ));
        }
        ("get", "/api/v1/export") => {
            out.push(query("from", true, day.clone()));
            out.push(query("to", true, day));
            out.push(query(
                "format",
                false,
                json!({"type": "string", "enum": ["csv", "xlsx"], "default": "csv"}),
            ));
            out.push(query("department", false, json!({"type": "string"})));
            out.push(query(
                "unmasked",
                false,
                json!({"type": "boolean", "default": false}),
            ));
            out.push(query("reason", false, json!({"type": "string", "description": "required with unmasked=true; written to the access log"})));
        }
        ("get", "/api/v1/calendar/due") => {
            out.push(query("from", true, dt));
            for n in ["working_days", "working_hours", "hours"] {
                out.push(query(
                    n,
                    false,
                    json!({"type": "integer", "minimum": 0, "maximum": 100000}),
                ));
            }
        }
        ("get", "/api/v1/events/stream") => {
            out.push(query("access_token", false, json!({"type": "string", "description": "the bearer token, for EventSource clients that cannot send headers"})));
        }
        ("post", "/api/v1/channels/wenzheng/appeals") => {
            for (name, what, pattern) in [
                (
                    "X-Wenzheng-Timestamp",
                    "Unix seconds, within 300 s of the server's clock",
                    "^[0-9]+$",
                ),
                (
                    "X-Wenzheng-Signature",
                    "`sha256=` and the hex HMAC-SHA256 of `timestamp.body` with the shared secret",
                    "^sha256=[0-9a-f]{64}$",
                ),
            ] {
                out.push(
                    json!({"name": name, "in": "header", "required": true, "description": what,
                    "schema": {"type": "string", "pattern": pattern}}),
                );
            }
        }
        ("get", "/open311/v2/requests") => {
            out.push(query("service_request_id", false, json!({"type": "string", "description": "ticket numbers, comma-separated (overrides the other filters)"})));
            out.push(query(
                "service_code",
                false,
                json!({"type": "string", "description": "service codes, comma-separated"}),
            ));
            out.push(query("start_date", false, dt.clone()));
            out.push(query("end_date", false, dt));
            out.push(query(
                "status",
                false,
                json!({"type": "string", "enum": ["open", "closed", "open,closed"]}),
            ));
            out.push(query("jurisdiction_id", false, s));
        }
        _ => {}
    }
    out
}

fn json_content(schema: &str) -> Value {
    json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}})
}

/// The success response of an operation.
fn success_content(o: &Operation) -> Value {
    let mut resp = json!({"description": "success"});
    let content = match o.response {
        "NoContent" => return resp,
        "EventStream" => json!({"text/event-stream": {"schema": {"type": "string"}}}),
        "Metrics" => json!({"text/plain": {"schema": {"type": "string"}}}),
        "Html" => json!({"text/html": {"schema": {"type": "string"}}}),
        "Export" => {
            resp["headers"] = json!({"Content-Disposition": {"required": true,
                "schema": {"type": "string", "pattern": "^attachment; filename=\"hotline-.+\\.(csv|xlsx)\"$"}}});
            json!({
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"schema": {"type": "string", "format": "binary"}}
            })
        }
        name if o.path == "/api/v1/public/mailbox" => {
            let mut c = json_content(name);
            c["text/html"] = json!({"schema": {"type": "string"}});
            c
        }
        name => json_content(name),
    };
    resp["content"] = content;
    resp
}

fn operation_id(method: &str, path: &str) -> String {
    format!(
        "{method}_{}",
        path.trim_start_matches('/')
            .replace(['/', '{', '}', '-', '.'], "_")
    )
}

fn v1_operation(o: &Operation) -> Value {
    let mut responses = Map::new();
    responses.insert(o.status.to_string(), success_content(o));
    match o.path {
        "/api/v1/tickets" if o.method == "post" => {
            responses.insert("200".into(), json!({"description": "already registered (same channel and external_id)", "content": json_content("Ticket")}));
        }
        "/api/v1/channels/wenzheng/appeals" => {
            responses.insert("200".into(), json!({"description": "already registered (same post_id)", "content": json_content("WenzhengReceipt")}));
        }
        "/api/v1/public/mailbox" => {
            let mut dup = success_content(o);
            dup["description"] =
                json!("the same letter from the same phone within 10 minutes: its ticket");
            responses.insert("200".into(), dup);
        }
        "/readyz" => {
            responses.insert("503".into(), json!({"description": "not ready: the database does not answer", "content": json_content("Readiness")}));
        }
        _ => {}
    }
    for status in o.errors {
        let mut r = json!({"$ref": format!("#/components/responses/Problem{status}")});
        if o.path == "/api/v1/public/mailbox" {
            // The page's form posts get their answer as a page.
            r = json!({"description": format!("see components/responses/Problem{status}"),
                "content": {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}},
                    "text/html": {"schema": {"type": "string"}}}});
            if *status == 429 {
                r["headers"] = json!({"Retry-After": {"required": true, "schema": {"type": "integer", "minimum": 0}}});
            }
        }
        responses.insert(status.to_string(), r);
    }
    let mut op = json!({
        "summary": o.summary,
        "description": format!("Who: {}.", o.roles),
        "operationId": operation_id(o.method, o.path),
        "tags": [tag(o.path)],
        "parameters": params(o.path, o.method),
        "responses": responses,
    });
    match o.auth {
        Auth::Bearer => op["security"] = json!([{"bearer": []}]),
        Auth::None | Auth::Signature => op["security"] = json!([]),
    }
    if let Some(b) = o.body {
        let mut content = json_content(b);
        if o.path == "/api/v1/public/mailbox" {
            content["application/x-www-form-urlencoded"] =
                json!({"schema": {"$ref": "#/components/schemas/MailboxLetter"}});
        }
        op["requestBody"] = json!({"required": true, "content": content});
    }
    op
}

fn tag(path: &str) -> &'static str {
    if path.starts_with("/api/v1/tickets") || path == "/api/v1/access-log" {
        "tickets"
    } else if path.starts_with("/api/v1/public") || path == "/api/v1/calendar/due" {
        "public"
    } else if path.starts_with("/open311") {
        "open311"
    } else if path.starts_with("/api/v1") {
        "office"
    } else {
        "operations"
    }
}

/// The `.json` and `.xml` operations of one Open311 resource.
fn open311_operations(
    paths: &mut Map<String, Value>,
    (method, path, summary, status, schema, errors): (&str, &str, &str, u16, &str, &[u16]),
) {
    for ext in ["json", "xml"] {
        let media = if ext == "json" {
            "application/json"
        } else {
            "text/xml"
        };
        let body = |schema: &str| {
            if ext == "json" {
                json!({media: {"schema": {"$ref": format!("#/components/schemas/{schema}")}}})
            } else {
                json!({media: {"schema": {"type": "string"}}})
            }
        };
        let mut responses = Map::new();
        responses.insert(
            status.to_string(),
            json!({"description": "success", "content": body(schema)}),
        );
        for e in errors {
            let what = match e {
                400 => "a parameter is missing or wrong",
                403 => "the api_key is missing or wrong, or none is configured",
                404 => "no such service or request",
                _ => "the database is unavailable",
            };
            responses.insert(
                e.to_string(),
                json!({"description": format!("{what} (the GeoReport v2 error list)"), "content": body("Open311Errors")}),
            );
        }
        let full = format!("{path}.{ext}");
        let mut op = json!({
            "summary": summary,
            "description": format!("Who: {}. Answers {media}.", if method == "post" { "anyone with the api_key" } else { "anyone" }),
            "operationId": operation_id(method, &full),
            "tags": ["open311"],
            "parameters": params(path, method),
            "security": [],
            "responses": responses,
        });
        if method == "post" {
            op["requestBody"] = json!({"required": true, "content": {"application/x-www-form-urlencoded":
                {"schema": {"$ref": "#/components/schemas/Open311NewRequest"}}}});
        }
        let entry = paths.entry(full).or_insert_with(|| json!({}));
        entry[method] = op;
    }
}

/// The whole OpenAPI document.
pub fn spec() -> Value {
    let mut paths = Map::new();
    for o in OPERATIONS {
        let entry = paths.entry(o.path.to_string()).or_insert_with(|| json!({}));
        entry[o.method] = v1_operation(o);
    }
    for o in OPEN311 {
        open311_operations(&mut paths, *o);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "12345 Hotline Router API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Citizen appeals from every channel, dispatched, on SLA clocks. Errors are application/problem+json with a stable `code` (Open311 keeps the GeoReport v2 error list). Request bodies ignore fields they do not name unless additionalProperties says otherwise.",
        },
        "tags": [
            {"name": "tickets", "description": "appeals and their lifecycle"},
            {"name": "office", "description": "users, departments, catalogue, figures, channels, outbox"},
            {"name": "public", "description": "no account needed"},
            {"name": "open311", "description": "Open311 GeoReport v2"},
            {"name": "operations", "description": "health, readiness, metrics, this document"},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas::schemas(),
            "responses": schemas::problem_responses(),
        },
    })
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(spec())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A plain HTML page listing every operation and error code.
pub async fn docs_page() -> HttpResponse {
    let mut html = String::from(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>12345 热线 API 文档</title>\
         <style>body{font-family:sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}\
         table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left}\
         code{background:#f4f4f4;padding:0 .2rem}</style></head><body>\
         <h1>12345 热线 API v1</h1><p>The machine-readable document: <a href=\"/api/openapi.json\">/api/openapi.json</a>. \
         Authenticate with <code>Authorization: Bearer &lt;token&gt;</code> from <code>POST /api/v1/auth/login</code>.</p>\
         <h2>Operations</h2><table><tr><th>Method</th><th>Path</th><th>What</th><th>Who</th><th>Body</th><th>Errors</th></tr>",
    );
    for o in OPERATIONS {
        let errors: Vec<String> = o.errors.iter().map(u16::to_string).collect();
        html.push_str(&format!(
            "<tr><td>{}</td><td><code>{}</code></td><td>{} → {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            o.method.to_uppercase(),
            esc(o.path),
            esc(o.summary),
            o.status,
            esc(o.roles),
            o.body.map(esc).unwrap_or_default(),
            errors.join(" ")
        ));
    }
    for (method, path, summary, status, _, errors) in OPEN311 {
        let errors: Vec<String> = errors.iter().map(u16::to_string).collect();
        html.push_str(&format!(
            "<tr><td>{}</td><td><code>{}.json</code>, <code>.xml</code></td><td>{} → {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            method.to_uppercase(),
            esc(path),
            esc(summary),
            status,
            if *method == "post" { "anyone with the api_key" } else { "anyone" },
            if *method == "post" { "form" } else { "" },
            errors.join(" ")
        ));
    }
    html.push_str(
        "</table><h2>Error codes</h2><table><tr><th>code</th><th>status</th><th>meaning</th></tr>",
    );
    for (code, status, meaning) in ERROR_CODES {
        html.push_str(&format!(
            "<tr><td><code>{code}</code></td><td>{status}</td><td>{}</td></tr>",
            esc(meaning)
        ));
    }
    html.push_str("</table></body></html>");
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` in the document names something the document holds.
    #[test]
    fn every_reference_resolves() {
        fn walk(v: &Value, doc: &Value, seen: &mut usize) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        let target = r
                            .strip_prefix("#/")
                            .map(|p| p.split('/').fold(doc, |d, k| &d[k]));
                        assert!(
                            target.is_some_and(|t| !t.is_null()),
                            "dangling reference {r}"
                        );
                        *seen += 1;
                    }
                    m.values().for_each(|x| walk(x, doc, seen));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, doc, seen)),
                _ => {}
            }
        }
        let doc = spec();
        let mut seen = 0;
        walk(&doc, &doc, &mut seen);
        assert!(seen > 100, "{seen}");
    }

    /// The `(method, path)` of every `resource("…")` in a routes file,
    /// `prefix` added to those after `scope`.
    fn registered(source: &str, scope: &str, prefix: &str) -> Vec<(String, String)> {
        let scope_at = source.find(scope).expect("the scope is registered");
        let starts: Vec<usize> = source.match_indices("resource(\"").map(|m| m.0).collect();
        let mut out = Vec::new();
        for (i, &at) in starts.iter().enumerate() {
            let rest = &source[at + "resource(\"".len()..];
            let path = &rest[..rest.find('"').expect("a closing quote")];
            let full = if at > scope_at {
                format!("{prefix}{path}")
            } else {
                path.to_owned()
            };
            let end = starts.get(i + 1).copied().unwrap_or(source.len());
            for method in ["get", "post", "put", "patch", "delete"] {
                if source[at..end].contains(&format!("{method}().to(")) {
                    out.push((method.to_owned(), full.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn every_api_route_is_documented() {
        let documented: std::collections::HashSet<(String, String)> = OPERATIONS
            .iter()
            .map(|o| (o.method.to_owned(), o.path.to_owned()))
            .chain(OPEN311.iter().flat_map(|(m, p, ..)| {
                ["json", "xml"].map(|ext| ((*m).to_owned(), format!("{p}.{ext}")))
            }))
            .collect();
        let api = registered(include_str!("mod.rs"), "web::scope(\"/api/v1\")", "/api/v1");
        let ops = ["/healthz", "/readyz", "/metrics"];
        let api: Vec<_> = api
            .into_iter()
            .filter(|(_, p)| p.starts_with("/api/") || ops.contains(&p.as_str()))
            .collect();
        assert!(api.len() > 40, "{api:?}");
        let open311 = registered(
            include_str!("open311.rs"),
            "web::scope(\"/open311/v2\")",
            "/open311/v2",
        );
        assert_eq!(open311.len(), 6, "{open311:?}");
        let names = |p: &str| {
            p.replace("{code}", "{service_code}")
                .replace("requests/{id}", "requests/{service_request_id}")
        };
        let routed: std::collections::HashSet<(String, String)> = api
            .into_iter()
            .chain(open311.into_iter().flat_map(|(m, p)| {
                ["json", "xml"].map(|ext| (m.clone(), names(&p.replace("{fmt}", ext))))
            }))
            .collect();
        for (method, path) in &routed {
            assert!(
                documented.contains(&(method.clone(), path.clone())),
                "{method} {path} is routed but not in the OpenAPI document"
            );
        }
        for (method, path) in &documented {
            assert!(
                routed.contains(&(method.clone(), path.clone())),
                "{method} {path} is in the OpenAPI document but not routed"
            );
        }
    }

    #[test]
    fn every_error_status_has_a_problem_response_and_bearer_operations_answer_401() {
        let doc = spec();
        for o in OPERATIONS {
            for s in o.errors {
                assert!(
                    doc["components"]["responses"][format!("Problem{s}")].is_object(),
                    "{} {}: no Problem{s}",
                    o.method,
                    o.path
                );
            }
            if o.auth == Auth::Bearer {
                assert!(o.errors.contains(&401), "{} {}", o.method, o.path);
            }
            let path_params = o.path.matches('{').count();
            let declared = params(o.path, o.method)
                .iter()
                .filter(|p| p["in"] == "path")
                .count();
            assert_eq!(path_params, declared, "{}", o.path);
        }
    }
}
