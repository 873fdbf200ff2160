//! The document's `components`: request and response schemas as the
//! handlers really read and write them, and one problem+json response per
//! status naming the codes that status can carry.

use serde_json::{Map, Value, json};

use crate::api::error::ERROR_CODES;

fn e(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// A response object: every listed property present, nothing else.
fn exact(props: Value) -> Value {
    let required: Vec<String> = props
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    json!({"type": "object", "required": required, "additionalProperties": false, "properties": props})
}

/// A paged list (`{items, total, page, per_page}`).
fn list(item: &str) -> Value {
    exact(json!({
        "items": {"type": "array", "items": r(item)},
        "total": {"type": "integer", "minimum": 0},
        "page": {"type": "integer", "minimum": 1},
        "per_page": {"type": "integer", "minimum": 0},
    }))
}

pub fn schemas() -> Value {
    let str_ = json!({"type": "string"});
    let strn = json!({"type": ["string", "null"]});
    let int = json!({"type": "integer"});
    let intn = json!({"type": ["integer", "null"]});
    let dt = json!({"type": "string", "format": "date-time"});
    let dtn = json!({"type": ["string", "null"], "format": "date-time"});
    let day = json!({"type": "string", "format": "date"});
    let nonempty = json!({"type": "string", "minLength": 1});
    let code = json!({"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"});
    let mut s = Map::new();
    let mut put = |name: &str, v: Value| {
        s.insert(name.to_owned(), v);
    };

    put(
        "Problem",
        json!({"type": "object", "required": ["type", "title", "status", "code", "detail"],
        "additionalProperties": false, "properties": {
            "type": str_, "title": str_, "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "code": e(&ERROR_CODES.iter().map(|c| c.0).collect::<Vec<_>>()),
            "detail": str_, "errors": {"type": "array", "items": str_}}}),
    );
    put(
        "TicketState",
        e(&[
            "registered",
            "dispatched",
            "in_progress",
            "returned",
            "replied",
            "closed",
            "merged",
        ]),
    );
    put(
        "Category",
        e(&[
            "consult",
            "help",
            "complaint",
            "report",
            "suggestion",
            "praise",
        ]),
    );
    put("Channel", e(&["hotline", "mailbox", "wenzheng", "open311"]));
    put("Urgency", e(&["normal", "urgent"]));
    put(
        "Role",
        e(&[
            "agent",
            "dispatcher",
            "handler",
            "dept_head",
            "supervisor",
            "leader",
            "admin",
        ]),
    );
    put("DepartmentKind", e(&["functional", "district"]));
    put(
        "Satisfaction",
        e(&[
            "satisfied",
            "basically_satisfied",
            "dissatisfied",
            "unreachable",
        ]),
    );

    // Users and log-in.
    put(
        "LoginRequest",
        json!({"type": "object", "required": ["username", "password"], "properties": {
            "username": {"type": "string", "minLength": 1}, "password": {"type": "string", "minLength": 1}}}),
    );
    put(
        "LoginResponse",
        exact(json!({"token": str_, "expires_at": dt, "user": r("User")})),
    );
    put(
        "User",
        exact(
            json!({"id": int, "username": str_, "role": r("Role"), "department": strn,
            "email": strn, "display_name": strn, "active": {"type": "boolean"}, "created_at": dt}),
        ),
    );
    put("UserList", list("User"));
    put(
        "NewUser",
        json!({"type": "object", "required": ["username", "password", "role"], "properties": {
            "username": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
            "password": {"type": "string", "minLength": 8, "maxLength": 256},
            "role": r("Role"),
            "department": {"type": ["string", "null"], "description": "an existing department's code; required for handler and dept_head"},
            "email": {"type": ["string", "null"], "maxLength": 254, "pattern": "^$|@", "description": "empty for none"},
            "display_name": strn},
            "if": {"required": ["role"], "properties": {"role": {"enum": ["handler", "dept_head"]}}},
            "then": {"required": ["department"], "properties": {"department": code}}}),
    );
    put(
        "UserPatch",
        json!({"type": "object", "additionalProperties": false,
        "description": "any of the fields; the others are left as they are (null or \"\" clears department, display_name and email)",
        "properties": {
            "active": {"type": ["boolean", "null"]},
            "password": {"type": ["string", "null"], "minLength": 8, "maxLength": 256},
            "role": {"anyOf": [r("Role"), {"type": "null"}]},
            "department": strn, "display_name": {"type": ["string", "null"], "maxLength": 100}, "email": strn}}),
    );
    put(
        "PasswordChange",
        json!({"type": "object", "required": ["current_password", "new_password"], "properties": {
            "current_password": str_,
            "new_password": {"type": "string", "minLength": 8, "maxLength": 256}}}),
    );

    // Departments and the catalogue.
    put(
        "Department",
        exact(
            json!({"id": int, "code": str_, "name": str_, "kind": r("DepartmentKind"),
            "email": strn, "created_at": dt}),
        ),
    );
    put("DepartmentList", list("Department"));
    put(
        "NewDepartment",
        json!({"type": "object", "required": ["code", "name", "kind"], "properties": {
            "code": code, "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "\\S"},
            "kind": r("DepartmentKind"),
            "email": {"type": ["string", "null"], "maxLength": 254, "pattern": "^\\s*$|@", "description": "blank for none"}}}),
    );
    let cat_department = json!({"type": "object", "required": ["code", "name", "kind"],
        "additionalProperties": false, "properties": {
        "code": code, "name": {"type": "string", "pattern": "\\S"}, "kind": r("DepartmentKind"),
        "email": {"type": ["string", "null"], "pattern": "@"}}});
    let topic = json!({"type": "object", "required": ["code", "name", "department", "keywords"],
        "additionalProperties": false, "properties": {
        "code": code, "name": nonempty,
        "department": {"type": "string", "pattern": "^(@district|[a-z][a-z0-9_]{0,63})$",
            "description": "a catalogue department's code, or @district (the appeal's own district)"},
        "keywords": {"type": "array", "minItems": 1, "items": nonempty}, "description": strn}});
    put("CatalogueDepartment", cat_department);
    put("Topic", topic);
    put(
        "CatalogueEdit",
        json!({"type": "object", "required": ["departments"], "additionalProperties": false, "properties": {
            "version": {"type": ["integer", "null"], "minimum": 0, "description": "the version the edit started from: 409 if another edit came first"},
            "departments": {"type": "array", "minItems": 1, "items": r("CatalogueDepartment")},
            "topics": {"type": "array", "items": r("Topic")}}}),
    );
    put(
        "Catalogue",
        exact(json!({"version": {"type": "integer", "minimum": 0},
            "departments": {"type": "array", "items": r("CatalogueDepartment")},
            "topics": {"type": "array", "items": r("Topic")}})),
    );
    put(
        "StoredCatalogue",
        exact(
            json!({"version": {"type": "integer", "minimum": 1}, "author": str_, "created_at": dt,
            "departments": {"type": "array", "items": r("CatalogueDepartment")},
            "topics": {"type": "array", "items": r("Topic")}}),
        ),
    );
    put(
        "CatalogueVersion",
        exact(json!({"version": int, "author": str_, "created_at": dt})),
    );
    put(
        "CatalogueVersionList",
        exact(json!({
            "items": {"type": "array", "items": r("CatalogueVersion")},
            "total": {"type": "integer", "minimum": 0},
            "page": {"type": "integer", "minimum": 1},
            "per_page": {"type": "integer", "minimum": 1},
            "current": {"type": "integer", "minimum": 0}})),
    );

    // Tickets.
    put(
        "NewTicket",
        json!({"type": "object", "required": ["channel", "category", "title", "content"], "properties": {
            "channel": r("Channel"), "external_id": {"type": ["string", "null"], "maxLength": 128},
            "category": r("Category"), "urgency": r("Urgency"),
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "content": {"type": "string", "minLength": 1, "maxLength": 10000},
            "citizen": {"type": "object", "properties": {
                "name": {"type": ["string", "null"], "maxLength": 64},
                "phone": {"type": ["string", "null"], "description": "5–20 digits; spaces and dashes are dropped"}}},
            "address": {"type": ["string", "null"], "maxLength": 500},
            "district": {"type": ["string", "null"], "description": "a district's department code"}}}),
    );
    put(
        "Event",
        exact(json!({"id": int, "at": dt, "actor": str_,
            "kind": e(&["created", "dispatched", "signed", "returned", "extension_requested", "extension_decided",
                "replied", "callback", "reopened", "closed", "merged", "escalated", "note"]),
            "from_state": {"anyOf": [r("TicketState"), {"type": "null"}]},
            "to_state": {"anyOf": [r("TicketState"), {"type": "null"}]},
            "department": strn, "payload": {}})),
    );
    put(
        "Extension",
        exact(
            json!({"id": int, "ticket_id": int, "department": str_, "working_days": int, "reason": str_,
            "status": e(&["pending", "approved", "rejected"]), "requested_by": str_, "requested_at": dt,
            "decided_by": strn, "decided_at": dtn, "note": strn}),
        ),
    );
    let mut ticket = exact(json!({
        "id": int, "ticket_no": str_, "query_code": str_, "channel": r("Channel"),
        "external_id": strn, "category": r("Category"), "urgency": r("Urgency"),
        "title": str_, "content": str_,
        "citizen": exact(json!({"name": strn, "phone": strn, "anonymous": {"type": "boolean"}, "masked": {"type": "boolean"}})),
        "address": strn, "district": strn, "state": r("TicketState"),
        "resolution": {"type": ["string", "null"], "enum": ["answered", "direct_answer", "rejected", "transferred_emergency", null]},
        "merged_into": intn,
        "department": strn, "co_departments": {"type": "array", "items": str_}, "created_by": str_,
        "created_at": dt, "updated_at": dt, "dispatched_at": dtn, "signed_at": dtn, "replied_at": dtn, "closed_at": dtn,
        "sign_due_at": dtn, "reply_due_at": dtn, "next_check_at": dtn, "overdue": {"type": "boolean"},
        "escalation_level": {"type": "integer", "minimum": 0, "maximum": 3},
        "rework_count": {"type": "integer", "minimum": 0}, "return_count": {"type": "integer", "minimum": 0},
        "extension_count": {"type": "integer", "minimum": 0}, "final_dispatch": {"type": "boolean"},
        "reply": {"anyOf": [exact(json!({"content": str_, "resolved": {"type": ["boolean", "null"]}, "replied_at": dtn})), {"type": "null"}]},
        "satisfaction": {"anyOf": [r("Satisfaction"), {"type": "null"}]},
        "events": {"type": "array", "items": r("Event")},
        "extensions": {"type": "array", "items": r("Extension")},
        "possible_duplicate_of": {"type": ["string", "null"], "description": "ticket number of an earlier appeal this one may repeat (same phone and similar text, or same address and category, within 72 h)"},
    }));
    // Only on registration (`query_code`) and on one ticket (`events`, `extensions`).
    if let Some(req) = ticket["required"].as_array_mut() {
        req.retain(|f| !matches!(f.as_str(), Some("query_code" | "events" | "extensions")));
    }
    put("Ticket", ticket);
    put("TicketList", list("Ticket"));
    put(
        "Dispatch",
        json!({"type": "object", "required": ["department"], "properties": {
            "department": code, "co_departments": {"type": "array", "items": code}, "note": strn}}),
    );
    put(
        "RouteSuggestions",
        exact(
            json!({"ticket_id": int, "catalogue_version": {"type": "integer", "minimum": 0},
            "suggestions": {"type": "array", "items": exact(json!({
                "department": str_, "name": strn,
                "confidence": {"type": "number", "minimum": 0, "maximum": 1}, "reason": str_}))}}),
        ),
    );
    put(
        "Reason",
        json!({"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500}}}),
    );
    put(
        "ExtensionRequest",
        json!({"type": "object", "required": ["working_days", "reason"], "properties": {
            "working_days": {"type": "integer", "minimum": 1, "maximum": 30, "description": "at most sla.max_extension_days"},
            "reason": nonempty}}),
    );
    put(
        "ExtensionDecision",
        json!({"type": "object", "required": ["approve"], "properties": {"approve": {"type": "boolean"}, "note": strn}}),
    );
    put(
        "Reply",
        json!({"type": "object", "required": ["content", "resolved"], "properties": {"content": nonempty, "resolved": {"type": "boolean"}}}),
    );
    put(
        "Callback",
        json!({"type": "object", "required": ["satisfaction", "resolved"], "properties": {
            "satisfaction": r("Satisfaction"), "resolved": {"type": "boolean"}, "note": strn}}),
    );
    put(
        "Close",
        json!({"type": "object", "required": ["resolution", "note"], "properties": {
            "resolution": e(&["direct_answer", "rejected", "transferred_emergency"]), "note": nonempty}}),
    );
    put(
        "Merge",
        json!({"type": "object", "required": ["into"], "properties": {
            "into": {"type": ["integer", "string"], "description": "the ticket id, or its ticket number"}}}),
    );
    put(
        "Note",
        json!({"type": "object", "required": ["content"], "properties": {"content": nonempty}}),
    );
    put(
        "Reveal",
        exact(
            json!({"ticket_id": int, "ticket_no": str_, "citizen": exact(json!({"name": strn, "phone": strn}))}),
        ),
    );
    put("AccessLogList", list("AccessLogEntry"));
    put(
        "AccessLogEntry",
        exact(
            json!({"id": int, "at": dt, "username": str_, "role": str_, "ticket_id": intn, "action": str_, "reason": str_}),
        ),
    );
    put(
        "PublicTicket",
        exact(
            json!({"ticket_no": str_, "state": r("TicketState"), "resolution": strn, "category": r("Category"),
            "department": strn, "created_at": dt, "dispatched_at": dtn, "reply_due_at": dtn, "replied_at": dtn,
            "closed_at": dtn, "reply": strn,
            "merged": {"type": "boolean", "description": "merged into another appeal (并单): reply, replied_at and department are that appeal's"}}),
        ),
    );
    put("OutboxList", list("OutboxRow"));
    put(
        "OutboxRow",
        exact(json!({"id": int, "created_at": dt, "kind": str_,
            "transport": e(&["mail", "webhook"]), "ticket_id": intn, "recipient": str_, "subject": str_, "body": str_,
            "status": e(&["pending", "sent", "failed", "no_recipient"]), "attempts": {"type": "integer", "minimum": 0},
            "next_attempt_at": dt, "last_error": strn, "sent_at": dtn})),
    );
    let n = json!({"type": "integer", "minimum": 0, "maximum": 100000});
    put(
        "Due",
        json!({"type": "object", "required": ["from", "due_at"], "additionalProperties": false,
            "minProperties": 3, "maxProperties": 3, "properties": {
            "from": dt, "due_at": dt, "working_days": n, "working_hours": n, "hours": n}}),
    );

    // Channels.
    put(
        "WenzhengPost",
        json!({"type": "object", "required": ["post_id", "title", "content", "poster", "region", "posted_at"],
        "additionalProperties": false, "properties": {
            "post_id": {"type": "string", "minLength": 1, "maxLength": 128}, "title": nonempty, "content": nonempty,
            "poster": {"type": "object", "required": ["nickname"], "additionalProperties": false,
                "properties": {"nickname": str_, "phone": strn}},
            "region": str_, "posted_at": dt,
            "attachments": {"type": "array", "maxItems": 20, "items": {"type": "string", "pattern": "^https?://", "maxLength": 2000}}}}),
    );
    put(
        "WenzhengReceipt",
        exact(json!({"id": int, "ticket_no": str_, "post_id": strn, "state": r("TicketState")})),
    );
    put(
        "MailboxLetter",
        json!({"type": "object", "required": ["phone", "category", "title", "content"], "properties": {
            "name": {"type": ["string", "null"], "maxLength": 64},
            "phone": {"type": "string", "pattern": "^\\+?[0-9 -]{5,40}$", "description": "5–20 digits; spaces and dashes are dropped"},
            "category": r("Category"),
            "title": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"},
            "content": {"type": "string", "minLength": 1, "maxLength": 10000, "pattern": "\\S"},
            "address": {"type": ["string", "null"], "maxLength": 500},
            "district": strn,
            "website": {"type": ["string", "null"], "description": "the honeypot: leave it empty"}}}),
    );
    put(
        "MailboxReceipt",
        exact(json!({"ticket_no": str_, "query_code": str_})),
    );

    // Figures and hotspots.
    put("Count", exact(json!({"numerator": int})));
    put(
        "Rate",
        exact(json!({"numerator": int, "denominator": int,
            "rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1}})),
    );
    let rate = r("Rate");
    put(
        "Figures",
        exact(json!({
            "intake": r("Count"), "direct_answer_rate": rate, "sign_on_time_rate": rate,
            "closure_rate": rate, "on_time_rate": rate, "resolution_rate": rate,
            "satisfaction_rate": rate, "return_rate": rate, "rework_rate": rate,
            "first_dispatch_accuracy": rate, "overdue_open": r("Count")})),
    );
    put(
        "Stats",
        json!({"type": "object", "required": ["from", "to"], "additionalProperties": false, "properties": {
            "from": day, "to": day,
            "department": str_,
            "group_by": e(&["department", "channel", "category", "district"]),
            "figures": {"anyOf": [r("Figures"), {"type": "null"}], "description": "without group_by"},
            "groups": {"type": "array", "description": "with group_by", "items": exact(json!({
                "key": str_, "name": str_, "figures": r("Figures")}))}}}),
    );
    put(
        "Hotspot",
        exact(json!({
            "id": int, "topic": str_, "topic_name": str_, "district": strn, "district_name": strn,
            "place": str_, "latitude": {"type": ["number", "null"]}, "longitude": {"type": ["number", "null"]},
            "count": {"type": "integer", "minimum": 1}, "first_at": dt, "last_at": dt, "detected_at": dt,
            "ticket_nos": {"type": "array", "items": str_}})),
    );
    put(
        "HotspotList",
        exact(json!({"items": {"type": "array", "items": r("Hotspot")}})),
    );

    // Operations.
    put("Health", exact(json!({"status": {"const": "ok"}})));
    put(
        "Readiness",
        exact(json!({
            "status": e(&["ready", "not_ready"]),
            "checks": exact(json!({
                "database": {"type": "object", "required": ["status"], "properties": {"status": e(&["ok", "error"])}},
                "redis": {"type": "object", "required": ["status"], "properties": {"status": e(&["ok", "degraded", "not_configured"])}},
                "outbox": {"type": "object", "required": ["status"], "properties": {"status": e(&["ok", "degraded", "error"])}}})),
            "calendar_years": {"type": "array", "items": int}})),
    );
    put(
        "OpenApi",
        json!({"type": "object", "required": ["openapi", "paths"]}),
    );

    put_open311(&mut put);
    Value::Object(s)
}

/// Open311 GeoReport v2: the JSON forms (the XML ones hold the same).
fn put_open311(put: &mut impl FnMut(&str, Value)) {
    let str_ = json!({"type": "string"});
    let strn = json!({"type": ["string", "null"]});
    let w3c = json!({"type": "string", "format": "date-time"});
    let w3cn = json!({"type": ["string", "null"], "format": "date-time"});
    put(
        "Open311Discovery",
        exact(
            json!({"changeset": str_, "contact": str_, "key_service": str_,
            "endpoints": {"type": "array", "items": exact(json!({
                "specification": str_, "url": str_, "changeset": str_, "type": e(&["production", "test"]),
                "formats": {"type": "array", "items": e(&["text/xml", "application/json"])}}))}}),
        ),
    );
    put(
        "Open311Services",
        json!({"type": "array", "items": exact(json!({
            "service_code": str_, "service_name": str_, "description": strn,
            "metadata": {"type": "boolean"}, "type": e(&["realtime", "batch", "blackbox"]),
            "keywords": str_, "group": strn}))}),
    );
    put(
        "Open311ServiceDefinition",
        exact(json!({"service_code": str_, "attributes": {"type": "array", "maxItems": 0}})),
    );
    let num = json!({"type": ["number", "null"]});
    put(
        "Open311Requests",
        json!({"type": "array", "items": exact(json!({
            "service_request_id": str_, "status": e(&["open", "closed"]), "status_notes": strn,
            "service_name": str_, "service_code": strn, "description": strn, "agency_responsible": strn,
            "service_notice": strn, "requested_datetime": w3c, "updated_datetime": w3c,
            "expected_datetime": w3cn, "address": strn, "address_id": strn, "zipcode": strn,
            "lat": num, "long": num, "media_url": strn}))}),
    );
    put(
        "Open311Created",
        json!({"type": "array", "minItems": 1, "maxItems": 1, "items": exact(json!({
            "service_request_id": str_, "service_notice": strn, "account_id": strn}))}),
    );
    put(
        "Open311Errors",
        json!({"type": "array", "minItems": 1, "items": exact(json!({
            "code": {"type": "integer"}, "description": str_}))}),
    );
    put(
        "Open311NewRequest",
        json!({"type": "object", "required": ["api_key", "service_code"],
        "anyOf": [{"required": ["lat", "long"]}, {"required": ["address_string"]}, {"required": ["address_id"]}],
        "description": "a location is required: lat and long, address_string or address_id",
        "properties": {
            "api_key": str_, "jurisdiction_id": str_,
            "service_code": {"type": "string", "pattern": "\\S"},
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
            "long": {"type": "number", "minimum": -180, "maximum": 180},
            "address_string": {"type": "string", "maxLength": 500},
            "address_id": {"type": "string", "maxLength": 128},
            "email": {"type": "string", "format": "email"},
            "device_id": str_, "account_id": str_,
            "first_name": str_, "last_name": str_, "phone": str_,
            "description": {"type": "string", "maxLength": 4000},
            "media_url": {"type": "string", "format": "uri", "maxLength": 1000}}}),
    );
}

/// One problem+json response per status, its `code` limited to the codes of
/// that status in the error table.
pub fn problem_responses() -> Map<String, Value> {
    let mut out = Map::new();
    let mut statuses: Vec<u16> = ERROR_CODES.iter().map(|c| c.1).collect();
    statuses.sort_unstable();
    statuses.dedup();
    for status in statuses {
        let codes: Vec<&str> = ERROR_CODES
            .iter()
            .filter(|c| c.1 == status)
            .map(|c| c.0)
            .collect();
        let description = ERROR_CODES
            .iter()
            .filter(|c| c.1 == status)
            .map(|c| format!("`{}`: {}", c.0, c.2))
            .collect::<Vec<_>>()
            .join("; ");
        let schema = json!({"allOf": [{"$ref": "#/components/schemas/Problem"},
            {"properties": {"status": {"const": status}, "code": {"enum": codes}}}]});
        let mut response = json!({"description": description,
            "content": {"application/problem+json": {"schema": schema}}});
        if status == 429 || status == 503 {
            response["headers"] = json!({"Retry-After": {
                "description": "seconds to wait before trying again", "required": true,
                "schema": {"type": "integer", "minimum": 0}}});
        }
        out.insert(format!("Problem{status}"), response);
    }
    out
}
