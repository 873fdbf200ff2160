//! The OpenAPI 3.1 document of API v1 and a small docs page rendered from it.
//! Written as data here (one table of operations) so it stays next to the
//! routes it describes; a test checks that every route is documented.

use actix_web::HttpResponse;
use serde_json::{Map, Value, json};

use super::error::ERROR_CODES;

/// `(method, path, summary, roles, request schema, success status, response schema)`
pub type Operation = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    u16,
    &'static str,
);

pub const OPERATIONS: &[Operation] = &[
    (
        "post",
        "/api/v1/auth/login",
        "Log in; returns a bearer token",
        "anyone",
        Some("LoginRequest"),
        200,
        "LoginResponse",
    ),
    (
        "get",
        "/api/v1/auth/me",
        "The caller's own user",
        "any user",
        None,
        200,
        "User",
    ),
    (
        "post",
        "/api/v1/users",
        "Create a user",
        "admin",
        Some("NewUser"),
        201,
        "User",
    ),
    (
        "get",
        "/api/v1/users",
        "List users",
        "admin",
        None,
        200,
        "UserList",
    ),
    (
        "get",
        "/api/v1/departments",
        "List departments",
        "any user",
        None,
        200,
        "DepartmentList",
    ),
    (
        "post",
        "/api/v1/departments",
        "Create a department",
        "admin",
        Some("NewDepartment"),
        201,
        "Department",
    ),
    (
        "post",
        "/api/v1/tickets",
        "Register an appeal (201 new, 200 when (channel, external_id) exists)",
        "agent, dispatcher",
        Some("NewTicket"),
        201,
        "Ticket",
    ),
    (
        "get",
        "/api/v1/tickets",
        "List tickets in the caller's scope",
        "any user (department users: their tickets)",
        None,
        200,
        "TicketList",
    ),
    (
        "get",
        "/api/v1/tickets/{id}",
        "A ticket with its events and extension requests",
        "scoped",
        None,
        200,
        "Ticket",
    ),
    (
        "get",
        "/api/v1/tickets/{id}/route",
        "Ranked lead-department suggestions (智能派单) with confidence and reason",
        "agent, dispatcher (scoped)",
        None,
        200,
        "RouteSuggestions",
    ),
    (
        "get",
        "/api/v1/catalogue",
        "The dispatch catalogue in force (派单目录); version 0 is the configuration file",
        "any user",
        None,
        200,
        "Catalogue",
    ),
    (
        "put",
        "/api/v1/catalogue",
        "Replace the catalogue: stored as a new version, routing uses it at once; `version` (optional) is the one edited, 409 if another edit came first",
        "admin",
        Some("Catalogue"),
        200,
        "Catalogue",
    ),
    (
        "get",
        "/api/v1/catalogue/versions",
        "Catalogue versions, newest first: who and when",
        "any user",
        None,
        200,
        "CatalogueVersionList",
    ),
    (
        "get",
        "/api/v1/catalogue/versions/{version}",
        "One stored catalogue version, whole",
        "any user",
        None,
        200,
        "Catalogue",
    ),
    (
        "post",
        "/api/v1/tickets/{id}/dispatch",
        "Dispatch or re-dispatch (派单/改派)",
        "dispatcher",
        Some("Dispatch"),
        200,
        "Ticket",
    ),
    (
        "post",
        "/api/v1/tickets/{id}/sign",
        "Sign for the ticket (签收)",
        "lead handler, dept_head",
        None,
        200,
        "Ticket",
    ),
    (
        "post",
        "/api/v1/tickets/{id}/return",
        "Return the ticket (退单)",
        "lead handler, dept_head",
        Some("Reason"),
        200,
        "Ticket",
    ),
    (
        "post",
        "/api/v1/tickets/{id}/extensions",
        "Ask for an extension (延期)",
        "lead handler, dept_head",
        Some("ExtensionRequest"),
        201,
        "Extension",
    ),
    (
        "post",
        "/api/v1/tickets/{id}/extensions/{ext_id}/decision",
        "Approve or reject an extension",
        "dispatcher",
        Some("ExtensionDecision"),
        200,
        "Ticket",
    ),
    (
        "post",
        "/api/v1/tickets/{id}/reply",
        "Reply (答复)",
        "lead handler, dept_head",
        Some("Reply"),
        200,
        "Ticket",
    ),
    (
        "post",
        "/api/v1/tickets/{id}/callback",
        "Record the callback (回访)",
        "dispatcher",
        Some("Callback"),
        200,
        "Ticket",
    ),
    (
        "post",
        "/api/v1/tickets/{id}/close",
        "Close directly: direct answer, rejection, emergency transfer",
        "agent, dispatcher",
        Some("Close"),
        200,
        "Ticket",
    ),
    (
        "post",
        "/api/v1/tickets/{id}/merge",
        "Merge into another ticket (并单)",
        "dispatcher",
        Some("Merge"),
        200,
        "Ticket",
    ),
    (
        "post",
        "/api/v1/tickets/{id}/notes",
        "Add a note (co-departments too)",
        "scoped, not leader",
        Some("Note"),
        200,
        "Ticket",
    ),
    (
        "post",
        "/api/v1/tickets/{id}/reveal",
        "Reveal citizen name and phone (logged)",
        "scoped",
        Some("Reason"),
        200,
        "Reveal",
    ),
    (
        "get",
        "/api/v1/access-log",
        "Personal-data access log",
        "admin, supervisor",
        None,
        200,
        "AccessLogList",
    ),
    (
        "get",
        "/api/v1/outbox",
        "Outbox rows (mail and 问政江西 reply pushes), newest first; ?status=failed lists the parked ones",
        "admin",
        None,
        200,
        "OutboxList",
    ),
    (
        "post",
        "/api/v1/outbox/{id}/retry",
        "Queue a failed (parked) or backing-off row again, due now; 409 when already sent",
        "admin",
        None,
        200,
        "OutboxRow",
    ),
    (
        "get",
        "/api/v1/public/tickets/{ticket_no}",
        "Public progress look-up with the query code",
        "anyone",
        None,
        200,
        "PublicTicket",
    ),
    (
        "get",
        "/api/v1/calendar/due",
        "Deadline arithmetic: from + working_days | working_hours | hours",
        "anyone",
        None,
        200,
        "Due",
    ),
    (
        "get",
        "/api/v1/stats",
        "Figures (统计) for [from, to) in city days, whole city or grouped; each {numerator, denominator, rate}",
        "leader, supervisor, dispatcher, admin; dept_head (own department)",
        None,
        200,
        "Stats",
    ),
    (
        "get",
        "/api/v1/hotspots",
        "Current hotspots (苗头性、倾向性问题): ≥ hotspots.min_appeals appeals on one topic from one place within hotspots.window, most recent activity first",
        "leader, supervisor, dispatcher, admin",
        None,
        200,
        "HotspotList",
    ),
    (
        "post",
        "/api/v1/channels/wenzheng/appeals",
        "问政江西 push: a post signed with X-Wenzheng-Timestamp and X-Wenzheng-Signature (HMAC-SHA256 over timestamp.body); 201 new, 200 already registered (same post_id)",
        "the platform (signature, no token)",
        Some("WenzhengPost"),
        201,
        "WenzhengReceipt",
    ),
    (
        "get",
        "/api/v1/export",
        "台账 of tickets created in [from, to) as CSV (streamed) or XLSX; masked unless unmasked=true&reason= (admins, logged)",
        "leader, supervisor, dispatcher, admin; dept_head (own department)",
        None,
        200,
        "Export",
    ),
    (
        "get",
        "/api/v1/events/stream",
        "Server-sent events of ticket changes (text/event-stream), scoped; also ?access_token=",
        "any user (department users: their tickets)",
        None,
        200,
        "Status",
    ),
    (
        "get",
        "/metrics",
        "Prometheus metrics: database, Redis, outbox backlog",
        "anyone",
        None,
        200,
        "Status",
    ),
    ("get", "/healthz", "Liveness", "anyone", None, 200, "Status"),
    (
        "get",
        "/readyz",
        "Readiness (database, Redis when configured, outbox backlog and parked rows)",
        "anyone",
        None,
        200,
        "Status",
    ),
];

fn params(path: &str, method: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for seg in path.split('/') {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let schema = if name == "ticket_no" {
                json!({"type": "string", "pattern": "^[0-9]{8}[HMWO][0-9]{6}$"})
            } else {
                json!({"type": "integer", "minimum": 1})
            };
            out.push(json!({"name": name, "in": "path", "required": true, "schema": schema}));
        }
    }
    let q = |name: &str, schema: Value| json!({"name": name, "in": "query", "required": false, "schema": schema});
    let s = json!({"type": "string"});
    let dt = json!({"type": "string", "format": "date-time"});
    match (method, path) {
        ("get", "/api/v1/tickets") => {
            out.push(q(
                "state",
                json!({"$ref": "#/components/schemas/TicketState"}),
            ));
            out.push(q("department", s.clone()));
            out.push(q(
                "channel",
                json!({"$ref": "#/components/schemas/Channel"}),
            ));
            out.push(q(
                "category",
                json!({"$ref": "#/components/schemas/Category"}),
            ));
            out.push(q("overdue", json!({"type": "boolean"})));
            out.push(q(
                "escalation_level",
                json!({"type": "integer", "minimum": 0, "maximum": 3}),
            ));
            out.push(q("q", s.clone()));
            out.push(q("created_from", dt.clone()));
            out.push(q("created_to", dt.clone()));
            out.push(q("page", json!({"type": "integer", "minimum": 1})));
            out.push(q(
                "per_page",
                json!({"type": "integer", "minimum": 1, "maximum": 500}),
            ));
        }
        ("get", "/api/v1/tickets/{id}/route") => {
            out.push(q(
                "limit",
                json!({"type": "integer", "minimum": 1, "maximum": 10, "default": 3}),
            ));
        }
        ("get", "/api/v1/catalogue/versions") => {
            out.push(q("page", json!({"type": "integer", "minimum": 1})));
            out.push(q(
                "per_page",
                json!({"type": "integer", "minimum": 1, "maximum": 500}),
            ));
        }
        ("get", "/api/v1/outbox") => {
            out.push(q(
                "status",
                json!({"type": "string", "enum": ["pending", "sent", "failed", "no_recipient"]}),
            ));
            out.push(q(
                "transport",
                json!({"type": "string", "enum": ["mail", "webhook"]}),
            ));
            out.push(q("page", json!({"type": "integer", "minimum": 1})));
            out.push(q(
                "per_page",
                json!({"type": "integer", "minimum": 1, "maximum": 500}),
            ));
        }
        ("get", "/api/v1/access-log") => {
            out.push(q("ticket_id", json!({"type": "integer"})));
            out.push(q("page", json!({"type": "integer", "minimum": 1})));
            out.push(q(
                "per_page",
                json!({"type": "integer", "minimum": 1, "maximum": 500}),
            ));
        }
        ("get", "/api/v1/public/tickets/{ticket_no}") => {
            out.push(json!({"name": "code", "in": "query", "required": true, "schema": {"type": "string", "minLength": 6, "maxLength": 6}}));
        }
        ("get", "/api/v1/stats") => {
            let day = json!({"type": "string", "format": "date"});
            out.push(json!({"name": "from", "in": "query", "required": true, "schema": day}));
            out.push(json!({"name": "to", "in": "query", "required": true, "schema": day}));
            out.push(q(
                "group_by",
                json!({"type": "string", "enum": ["department", "channel", "category", "district"]}),
            ));
            out.push(q("department", json!({"type": "string", "maxLength": 64})));
        }
        ("get", "/api/v1/export") => {
            let day = json!({"type": "string", "format": "date"});
            out.push(json!({"name": "from", "in": "query", "required": true, "schema": day}));
            out.push(json!({"name": "to", "in": "query", "required": true, "schema": day}));
            out.push(q(
                "format",
                json!({"type": "string", "enum": ["csv", "xlsx"]}),
            ));
            out.push(q("department", json!({"type": "string", "maxLength": 64})));
            out.push(q(
                "unmasked",
                json!({"type": "string", "enum": ["true", "false"]}),
            ));
            out.push(q("reason", json!({"type": "string", "maxLength": 500})));
        }
        ("get", "/api/v1/calendar/due") => {
            out.push(json!({"name": "from", "in": "query", "required": true, "schema": dt}));
            for n in ["working_days", "working_hours", "hours"] {
                out.push(q(
                    n,
                    json!({"type": "integer", "minimum": 0, "maximum": 100000}),
                ));
            }
        }
        _ => {}
    }
    out
}

fn schemas() -> Value {
    let e = |v: &[&str]| json!({"type": "string", "enum": v});
    let str_ = json!({"type": "string"});
    let strn = json!({"type": ["string", "null"]});
    let dt = json!({"type": "string", "format": "date-time"});
    let dtn = json!({"type": ["string", "null"], "format": "date-time"});
    let list = |item: &str| {
        json!({"type": "object", "required": ["items", "total", "page", "per_page"], "properties": {
        "items": {"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}},
        "total": {"type": "integer"}, "page": {"type": "integer"}, "per_page": {"type": "integer"}}})
    };
    json!({
        "Problem": {"type": "object", "required": ["type", "title", "status", "code", "detail"], "properties": {
            "type": str_, "title": str_, "status": {"type": "integer"},
            "code": {"type": "string", "enum": ERROR_CODES.iter().map(|c| c.0).collect::<Vec<_>>()},
            "detail": str_, "errors": {"type": "array", "items": str_}}},
        "TicketState": e(&["registered", "dispatched", "in_progress", "returned", "replied", "closed", "merged"]),
        "Category": e(&["consult", "help", "complaint", "report", "suggestion", "praise"]),
        "Channel": e(&["hotline", "mailbox", "wenzheng", "open311"]),
        "Urgency": e(&["normal", "urgent"]),
        "Role": e(&["agent", "dispatcher", "handler", "dept_head", "supervisor", "leader", "admin"]),
        "LoginRequest": {"type": "object", "required": ["username", "password"], "properties": {"username": str_, "password": str_}},
        "LoginResponse": {"type": "object", "required": ["token", "expires_at", "user"], "properties": {"token": str_, "expires_at": dt, "user": {"$ref": "#/components/schemas/User"}}},
        "User": {"type": "object", "properties": {"id": {"type": "integer"}, "username": str_, "role": {"$ref": "#/components/schemas/Role"}, "department": strn, "email": strn, "display_name": strn, "active": {"type": "boolean"}, "created_at": dt}},
        "UserList": list("User"),
        "NewUser": {"type": "object", "required": ["username", "password", "role"], "properties": {"username": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}, "password": {"type": "string", "minLength": 8, "maxLength": 256}, "role": {"$ref": "#/components/schemas/Role"}, "department": strn, "email": strn, "display_name": strn}},
        "Department": {"type": "object", "properties": {"id": {"type": "integer"}, "code": str_, "name": str_, "kind": e(&["functional", "district"]), "email": strn, "created_at": dt}},
        "DepartmentList": list("Department"),
        "NewDepartment": {"type": "object", "required": ["code", "name", "kind"], "properties": {"code": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}, "name": str_, "kind": e(&["functional", "district"]), "email": strn}},
        "NewTicket": {"type": "object", "required": ["channel", "category", "title", "content"], "properties": {
            "channel": {"$ref": "#/components/schemas/Channel"}, "external_id": strn,
            "category": {"$ref": "#/components/schemas/Category"}, "urgency": {"$ref": "#/components/schemas/Urgency"},
            "title": {"type": "string", "minLength": 1, "maxLength": 200}, "content": {"type": "string", "minLength": 1, "maxLength": 10000},
            "citizen": {"type": "object", "properties": {"name": strn, "phone": strn}}, "address": strn, "district": strn}},
        "Event": {"type": "object", "properties": {"id": {"type": "integer"}, "at": dt, "actor": str_, "kind": e(&["created", "dispatched", "signed", "returned", "extension_requested", "extension_decided", "replied", "callback", "reopened", "closed", "merged", "escalated", "note"]), "from_state": strn, "to_state": strn, "department": strn, "payload": {}}},
        "Extension": {"type": "object", "properties": {"id": {"type": "integer"}, "ticket_id": {"type": "integer"}, "department": str_, "working_days": {"type": "integer"}, "reason": str_, "status": e(&["pending", "approved", "rejected"]), "requested_by": str_, "requested_at": dt, "decided_by": strn, "decided_at": dtn, "note": strn}},
        "Ticket": {"type": "object", "properties": {
            "id": {"type": "integer"}, "ticket_no": str_, "query_code": str_, "channel": {"$ref": "#/components/schemas/Channel"},
            "external_id": strn, "category": {"$ref": "#/components/schemas/Category"}, "urgency": {"$ref": "#/components/schemas/Urgency"},
            "title": str_, "content": str_, "citizen": {"type": "object", "properties": {"name": strn, "phone": strn, "anonymous": {"type": "boolean"}, "masked": {"type": "boolean"}}},
            "address": strn, "district": strn, "state": {"$ref": "#/components/schemas/TicketState"}, "resolution": strn, "merged_into": {"type": ["integer", "null"]},
            "department": strn, "co_departments": {"type": "array", "items": str_}, "created_by": str_,
            "created_at": dt, "updated_at": dt, "dispatched_at": dtn, "signed_at": dtn, "replied_at": dtn, "closed_at": dtn,
            "sign_due_at": dtn, "reply_due_at": dtn, "next_check_at": dtn, "overdue": {"type": "boolean"},
            "escalation_level": {"type": "integer", "minimum": 0, "maximum": 3}, "rework_count": {"type": "integer"}, "return_count": {"type": "integer"},
            "extension_count": {"type": "integer"}, "final_dispatch": {"type": "boolean"},
            "reply": {"type": ["object", "null"], "properties": {"content": str_, "resolved": {"type": ["boolean", "null"]}, "replied_at": dtn}},
            "satisfaction": strn,
            "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
            "extensions": {"type": "array", "items": {"$ref": "#/components/schemas/Extension"}},
            "possible_duplicate_of": {"type": ["string", "null"], "description": "ticket number of an earlier appeal this one may repeat (same phone and similar text, or same address and category, within 72 h)"}}},
        "TicketList": list("Ticket"),
        "Dispatch": {"type": "object", "required": ["department"], "properties": {"department": str_, "co_departments": {"type": "array", "items": str_}, "note": strn}},
        "RouteSuggestions": {"type": "object", "required": ["suggestions"], "properties": {
            "ticket_id": {"type": "integer"}, "catalogue_version": {"type": "integer"},
            "suggestions": {"type": "array", "items": {"type": "object", "required": ["department", "confidence", "reason"], "properties": {
                "department": str_, "name": strn,
                "confidence": {"type": "number", "minimum": 0, "maximum": 1}, "reason": str_}}}}},
        "Catalogue": {"type": "object", "required": ["departments"], "properties": {
            "version": {"type": "integer", "minimum": 0},
            "departments": {"type": "array", "items": {"type": "object", "required": ["code", "name", "kind"], "properties": {
                "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}, "name": str_, "kind": e(&["functional", "district"]), "email": strn}}},
            "topics": {"type": "array", "items": {"type": "object", "required": ["code", "name", "department", "keywords"], "properties": {
                "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}, "name": str_,
                "department": {"type": "string", "description": "a department code, or @district (the appeal's own district)"},
                "keywords": {"type": "array", "minItems": 1, "items": str_}, "description": strn}}}}},
        "CatalogueVersionList": list("CatalogueVersion"),
        "CatalogueVersion": {"type": "object", "properties": {"version": {"type": "integer"}, "author": str_, "created_at": dt}},
        "Reason": {"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string", "minLength": 1}}},
        "ExtensionRequest": {"type": "object", "required": ["working_days", "reason"], "properties": {"working_days": {"type": "integer", "minimum": 1, "maximum": 30}, "reason": {"type": "string", "minLength": 1}}},
        "ExtensionDecision": {"type": "object", "required": ["approve"], "properties": {"approve": {"type": "boolean"}, "note": strn}},
        "Reply": {"type": "object", "required": ["content", "resolved"], "properties": {"content": {"type": "string", "minLength": 1}, "resolved": {"type": "boolean"}}},
        "Callback": {"type": "object", "required": ["satisfaction", "resolved"], "properties": {"satisfaction": e(&["satisfied", "basically_satisfied", "dissatisfied", "unreachable"]), "resolved": {"type": "boolean"}, "note": strn}},
        "Close": {"type": "object", "required": ["resolution", "note"], "properties": {"resolution": e(&["direct_answer", "rejected", "transferred_emergency"]), "note": {"type": "string", "minLength": 1}}},
        "Merge": {"type": "object", "required": ["into"], "properties": {"into": {"type": ["integer", "string"]}}},
        "Note": {"type": "object", "required": ["content"], "properties": {"content": {"type": "string", "minLength": 1}}},
        "Reveal": {"type": "object", "properties": {"ticket_id": {"type": "integer"}, "ticket_no": str_, "citizen": {"type": "object", "properties": {"name": strn, "phone": strn}}}},
        "AccessLogList": list("AccessLogEntry"),
        "AccessLogEntry": {"type": "object", "properties": {"id": {"type": "integer"}, "at": dt, "username": str_, "role": str_, "ticket_id": {"type": ["integer", "null"]}, "action": str_, "reason": str_}},
        "PublicTicket": {"type": "object", "properties": {"ticket_no": str_, "state": {"$ref": "#/components/schemas/TicketState"}, "resolution": strn, "category": str_, "department": strn, "created_at": dt, "dispatched_at": dtn, "reply_due_at": dtn, "replied_at": dtn, "closed_at": dtn, "reply": strn, "merged": {"type": "boolean", "description": "merged into another appeal (并单): reply, replied_at and department are that appeal's"}}},
        "OutboxList": list("OutboxRow"),
        "OutboxRow": {"type": "object", "properties": {"id": {"type": "integer"}, "created_at": dt, "kind": str_,
            "transport": e(&["mail", "webhook"]), "ticket_id": {"type": ["integer", "null"]}, "recipient": str_, "subject": str_, "body": str_,
            "status": e(&["pending", "sent", "failed", "no_recipient"]), "attempts": {"type": "integer"},
            "next_attempt_at": dt, "last_error": strn, "sent_at": dtn}},
        "Due": {"type": "object", "required": ["from", "due_at"], "properties": {"from": dt, "due_at": dt}},
        "WenzhengPost": {"type": "object", "required": ["post_id", "title", "content", "poster", "region", "posted_at"], "properties": {
            "post_id": {"type": "string", "minLength": 1, "maxLength": 128}, "title": str_, "content": str_,
            "poster": {"type": "object", "required": ["nickname"], "properties": {"nickname": str_, "phone": strn}},
            "region": str_, "posted_at": dt, "attachments": {"type": "array", "items": str_}}},
        "WenzhengReceipt": {"type": "object", "properties": {"id": {"type": "integer"}, "ticket_no": str_, "post_id": str_, "state": str_}},
        "Count": {"type": "object", "required": ["numerator"], "properties": {"numerator": {"type": "integer"}}},
        "Rate": {"type": "object", "required": ["numerator", "denominator", "rate"], "properties": {
            "numerator": {"type": "integer"}, "denominator": {"type": "integer"},
            "rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1}}},
        "Figures": {"type": "object", "properties": {
            "intake": {"$ref": "#/components/schemas/Count"},
            "direct_answer_rate": {"$ref": "#/components/schemas/Rate"},
            "sign_on_time_rate": {"$ref": "#/components/schemas/Rate"},
            "closure_rate": {"$ref": "#/components/schemas/Rate"},
            "on_time_rate": {"$ref": "#/components/schemas/Rate"},
            "resolution_rate": {"$ref": "#/components/schemas/Rate"},
            "satisfaction_rate": {"$ref": "#/components/schemas/Rate"},
            "return_rate": {"$ref": "#/components/schemas/Rate"},
            "rework_rate": {"$ref": "#/components/schemas/Rate"},
            "first_dispatch_accuracy": {"$ref": "#/components/schemas/Rate"},
            "overdue_open": {"$ref": "#/components/schemas/Count"}}},
        "Stats": {"type": "object", "required": ["from", "to"], "properties": {
            "from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"},
            "department": {"type": "string"},
            "group_by": {"type": "string"},
            "figures": {"$ref": "#/components/schemas/Figures"},
            "groups": {"type": "array", "items": {"type": "object", "required": ["key", "name", "figures"], "properties": {
                "key": {"type": "string"}, "name": {"type": "string"},
                "figures": {"$ref": "#/components/schemas/Figures"}}}}}},
        "Hotspot": {"type": "object", "required": ["id", "topic", "topic_name", "district", "place", "count", "first_at", "last_at", "ticket_nos"], "properties": {
            "id": {"type": "integer"}, "topic": str_, "topic_name": str_, "district": strn, "district_name": strn,
            "place": str_, "latitude": {"type": ["number", "null"]}, "longitude": {"type": ["number", "null"]},
            "count": {"type": "integer"}, "first_at": dt, "last_at": dt, "detected_at": dt,
            "ticket_nos": {"type": "array", "items": str_}}},
        "HotspotList": {"type": "object", "required": ["items"], "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Hotspot"}}}},
        "Status": {"type": "object", "properties": {"status": str_}},
    })
}

/// The whole OpenAPI document.
pub fn spec() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, roles, req, status, resp) in OPERATIONS {
        let mut responses = Map::new();
        let content = match *path {
            "/api/v1/events/stream" => json!({"text/event-stream": {"schema": {"type": "string"}}}),
            "/metrics" => json!({"text/plain": {"schema": {"type": "string"}}}),
            "/api/v1/export" => json!({
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"schema": {"type": "string", "format": "binary"}}
            }),
            _ => {
                json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{resp}")}}})
            }
        };
        responses.insert(
            status.to_string(),
            json!({"description": "success", "content": content}),
        );
        if *path == "/api/v1/tickets" && *method == "post" {
            responses.insert("200".into(), json!({"description": "already registered (same channel and external_id)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ticket"}}}}));
        }
        if *path == "/readyz" {
            responses.insert("503".into(), json!({"description": "not ready", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}}));
        }
        if !path.starts_with("/healthz") && !path.starts_with("/readyz") {
            responses.insert("default".into(), json!({"description": "error (see `code`)", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}));
        }
        let public = roles.starts_with("anyone");
        let mut op = json!({
            "summary": summary,
            "description": format!("Who: {roles}."),
            "operationId": format!("{method}_{}", path.trim_start_matches('/').replace(['/', '{', '}', '-', '.'], "_")),
            "parameters": params(path, method),
            "responses": responses,
        });
        if !public {
            op["security"] = json!([{"bearer": []}]);
        }
        if let Some(r) = req {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{r}")}}}});
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "12345 Hotline Router API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Citizen appeals from every channel, dispatched, on SLA clocks. Errors are application/problem+json with a stable `code`.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
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
         <h2>Operations</h2><table><tr><th>Method</th><th>Path</th><th>What</th><th>Who</th><th>Body</th></tr>",
    );
    for (method, path, summary, roles, req, status, _) in OPERATIONS {
        html.push_str(&format!(
            "<tr><td>{}</td><td><code>{}</code></td><td>{} → {}</td><td>{}</td><td>{}</td></tr>",
            method.to_uppercase(),
            esc(path),
            esc(summary),
            status,
            esc(roles),
            req.map(esc).unwrap_or_default()
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
