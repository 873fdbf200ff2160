//! 市长信箱: `POST /api/v1/public/mailbox`, no account. JSON or a form post;
//! answers JSON (problem+json on refusal) or, when the client prefers HTML
//! (the `/mailbox` page), a page. Abuse control in order: per-address limit,
//! size cap, honeypot, validation, 10-minute exact duplicates, per-phone limit.

use std::net::IpAddr;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::{ApiError, problem};
use crate::domain::appeal::{NewAppeal, RawAppeal, RawCitizen, parse_phone};
use crate::domain::calendar::city_tz;
use crate::domain::types::{Category, Channel, Urgency};
use crate::infra::ratelimit::retry_after_secs;
use crate::store::entities::ticket;
use crate::web::{self as pages, public};

/// Exact duplicates (same phone, title and content) within this window
/// return the earlier ticket.
pub const DUPLICATE_WINDOW_SECS: i64 = 600;

/// What the form and the JSON body may carry. Everything is a string, so a
/// form post and JSON go through one validation that reports every field.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct MailboxFields {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub district: Option<String>,
    /// The honeypot: hidden on the page, so only robots fill it in.
    #[serde(default, skip_serializing)]
    pub website: Option<String>,
}

impl MailboxFields {
    /// Checks every field; the errors name the fields as the form does.
    pub fn parse(&self) -> Result<NewAppeal, Vec<String>> {
        let mut errors = Vec::new();
        let phone = match self.phone.as_deref().map(str::trim).unwrap_or_default() {
            "" => {
                errors.push("`phone` is required (手机号码必填)".to_owned());
                None
            }
            p => match parse_phone(p) {
                Ok(p) => Some(p),
                Err(_) => {
                    errors.push("`phone` must be 5–20 digits (手机号码格式不正确)".to_owned());
                    None
                }
            },
        };
        let category = match self.category.as_deref().map(str::trim).unwrap_or_default() {
            "" => {
                errors.push("`category` is required (请选择诉求类型)".to_owned());
                None
            }
            c => match c.parse::<Category>() {
                Ok(c) => Some(c),
                Err(e) => {
                    errors.push(format!("`category`: {e}"));
                    None
                }
            },
        };
        let raw = RawAppeal {
            channel: Channel::Mailbox,
            external_id: None,
            category: category.unwrap_or(Category::Consult),
            urgency: Urgency::Normal,
            title: self.title.clone().unwrap_or_default(),
            content: self.content.clone().unwrap_or_default(),
            citizen: RawCitizen {
                name: self.name.clone(),
                phone: phone.clone(),
            },
            address: self.address.clone(),
            district: self.district.clone(),
        };
        match raw.parse("mailbox") {
            Ok(a) if errors.is_empty() => Ok(a),
            Ok(_) => Err(errors),
            Err(more) => {
                errors.extend(more.into_iter().map(|e| e.replace("`citizen.", "`")));
                Err(errors)
            }
        }
    }
}

/// Why a submission was refused, rendered as problem+json or as a page.
enum Refusal {
    Api(ApiError),
    Limited(Duration, &'static str),
    Invalid(Vec<String>, Box<MailboxFields>),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Api(e)
    }
}

struct Accepted {
    ticket_no: String,
    query_code: String,
    created: bool,
}

impl Accepted {
    fn of(t: ticket::Model, created: bool) -> Accepted {
        Accepted {
            ticket_no: t.ticket_no,
            query_code: t.query_code,
            created,
        }
    }
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    let html = pages::wants_html(&req);
    match accept(&req, &state, payload).await {
        Ok(a) => {
            let status = if a.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let (no, code) = (&a.ticket_no, &a.query_code);
            if html {
                public::mailbox_done(status, no, code, !a.created)
            } else {
                HttpResponse::build(status).json(json!({"ticket_no": no, "query_code": code}))
            }
        }
        Err(r) => refuse(&state, r, html).await,
    }
}

async fn accept(
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<Accepted, Refusal> {
    let settings = &state.settings.mailbox;
    // The address is charged for every request, good or bad: a flood is
    // turned away before its body is even read.
    let address = client_address(req, &settings.client_ip_header);
    state
        .limits
        .per_address
        .check(&address)
        .await
        .map_err(|wait| Refusal::Limited(wait, "this address"))?;
    let form = is_form(req)?;
    let body = read_capped(req, payload, settings.max_body_bytes).await?;
    let fields = decode(&body, form)?;
    if fields
        .website
        .as_deref()
        .is_some_and(|w| !w.trim().is_empty())
    {
        tracing::info!("mailbox honeypot filled in: pretending success, nothing registered");
        return Ok(decoy());
    }
    let mut appeal = match fields.parse() {
        Ok(a) => a,
        Err(errors) => return Err(Refusal::Invalid(errors, Box::new(fields))),
    };
    let now = crate::store::now();
    if let Some(t) = earlier_duplicate(state, &appeal, now).await? {
        return Ok(Accepted::of(t, false));
    }
    let phone = appeal.citizen_phone.clone().unwrap_or_default();
    state
        .limits
        .per_phone
        .check(&phone)
        .await
        .map_err(|wait| Refusal::Limited(wait, "this phone number"))?;
    // The duplicate key is the external id, so two identical submissions in
    // flight at once still make one ticket (`(channel, external_id)` is unique).
    appeal.external_id = Some(duplicate_key(&appeal, bucket(now)));
    let created = state.intake.submit(appeal).await.map_err(ApiError::from)?;
    if created.created {
        super::tickets::announce_created(state, &created.ticket, now).await;
    }
    Ok(Accepted::of(created.ticket, created.created))
}

fn bucket(now: DateTime<Utc>) -> i64 {
    now.timestamp().div_euclid(DUPLICATE_WINDOW_SECS)
}

/// `mbx:<hash of phone, title, content>:<10-minute bucket>`.
pub fn duplicate_key(a: &NewAppeal, bucket: i64) -> String {
    let mut h = Sha256::new();
    for part in [
        a.citizen_phone.as_deref().unwrap_or_default(),
        &a.title,
        &a.content,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("mbx:{}:{bucket}", hex::encode(&h.finalize()[..12]))
}

/// The same letter from the same phone, registered less than the window
/// ago: it is in this bucket or the one before.
async fn earlier_duplicate(
    state: &AppState,
    a: &NewAppeal,
    now: DateTime<Utc>,
) -> Result<Option<ticket::Model>, ApiError> {
    let b = bucket(now);
    for key in [duplicate_key(a, b), duplicate_key(a, b - 1)] {
        if let Some(t) = state
            .store
            .ticket_by_external(Channel::Mailbox, &key)
            .await?
            && (now - t.created_at).num_seconds() < DUPLICATE_WINDOW_SECS
        {
            return Ok(Some(t));
        }
    }
    Ok(None)
}

/// The client's address as the limiter keys it: the configured proxy
/// header's last entry, else the TCP peer; IPv6 by its /64, which one
/// subscriber usually holds whole.
pub fn client_address(req: &HttpRequest, header_name: &str) -> String {
    let from_header = (!header_name.is_empty())
        .then(|| req.headers().get(header_name))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok());
    match from_header.or_else(|| req.peer_addr().map(|a| a.ip())) {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Some(ip) => ip.to_string(),
        None => "unknown".to_owned(),
    }
}

/// JSON (false) or a form post (true); anything else is 415.
fn is_form(req: &HttpRequest) -> Result<bool, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = ct.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(true)
    } else if essence.eq_ignore_ascii_case("application/json")
        || essence.to_ascii_lowercase().ends_with("+json")
    {
        Ok(false)
    } else {
        Err(ApiError::new(
            "unsupported_media_type",
            "send application/json or application/x-www-form-urlencoded",
        ))
    }
}

async fn read_capped(
    req: &HttpRequest,
    payload: web::Payload,
    max: usize,
) -> Result<web::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            "payload_too_large",
            format!("the body is larger than {max} bytes (mailbox.max_body_bytes)"),
        )
    };
    // A declared length over the cap is refused before reading a byte.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    payload
        .to_bytes_limited(max)
        .await
        .map_err(|_| too_large())?
        .map_err(|e| ApiError::bad_request(format!("cannot read the body: {e}")))
}

fn decode(body: &[u8], form: bool) -> Result<MailboxFields, ApiError> {
    let fields: MailboxFields = if form {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::bad_request("the form is not UTF-8"))?;
        web::Query::<MailboxFields>::from_query(text)
            .map(web::Query::into_inner)
            .map_err(|e| ApiError::validation(format!("bad form: {e}")))?
    } else {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::new("malformed_json", format!("the body is not valid JSON: {e}"))
        })?;
        serde_json::from_value(value).map_err(|e| ApiError::validation(e.to_string()))?
    };
    let f = &fields;
    let texts = [
        &f.name,
        &f.phone,
        &f.category,
        &f.title,
        &f.content,
        &f.address,
        &f.district,
        &f.website,
    ];
    if texts
        .iter()
        .any(|t| t.as_deref().is_some_and(|t| t.contains('\0')))
    {
        return Err(ApiError::validation(super::NUL_REFUSED));
    }
    Ok(fields)
}

/// What a robot that filled in the honeypot is shown: a plausible number
/// and code that match no ticket.
fn decoy() -> Accepted {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut rng = rand::thread_rng();
    let now = crate::store::now();
    let day = now.with_timezone(&city_tz()).format("%Y%m%d");
    let code: String = (0..6)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    Accepted {
        ticket_no: format!("{day}M{:06}", rng.gen_range(100_000..1_000_000)),
        query_code: code,
        created: true,
    }
}

async fn refuse(state: &AppState, r: Refusal, html: bool) -> HttpResponse {
    match (r, html) {
        (Refusal::Api(e), false) => problem(e.code, &e.detail, &e.errors),
        (Refusal::Invalid(errors, _), false) => {
            let e = ApiError::validation_many(errors);
            problem(e.code, &e.detail, &e.errors)
        }
        (Refusal::Limited(wait, what), false) => {
            let secs = retry_after_secs(wait);
            let detail = format!("too many submissions from {what}; retry in {secs} s");
            with_retry_after(problem("rate_limited", &detail, &[]), secs)
        }
        (Refusal::Invalid(errors, fields), true) => {
            public::mailbox_form(state, StatusCode::UNPROCESSABLE_ENTITY, &fields, &errors).await
        }
        (Refusal::Limited(wait, _), true) => {
            let secs = retry_after_secs(wait);
            let msg = format!(
                "为防止滥用，同一手机号码或网络地址的提交次数有限制。请在 {} 后再试；您之前提交的诉求不受影响。",
                wait_zh(secs)
            );
            let page = public::notice(StatusCode::TOO_MANY_REQUESTS, "提交过于频繁", &msg);
            with_retry_after(page, secs)
        }
        (Refusal::Api(e), true) => {
            let status = super::error::status_of(e.code);
            let (title, msg) = match e.code {
                "payload_too_large" => ("内容过长", "提交的内容过长，请精简后重新提交。"),
                "unavailable" | "internal" => ("系统繁忙", "系统暂时无法受理，请稍后再试。"),
                _ => (
                    "无法受理",
                    "提交的内容无法识别，请返回市长信箱页面重新填写。",
                ),
            };
            public::notice(status, title, msg)
        }
    }
}

fn with_retry_after(mut resp: HttpResponse, secs: u64) -> HttpResponse {
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

fn wait_zh(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} 秒"),
        60..3600 => format!("{} 分钟", secs.div_ceil(60)),
        _ => format!("{} 小时 {} 分钟", secs / 3600, (secs % 3600).div_ceil(60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(phone: &str, title: &str) -> MailboxFields {
        MailboxFields {
            phone: Some(phone.into()),
            category: Some("complaint".into()),
            title: Some(title.into()),
            content: Some("内容".into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_phone_is_required_and_errors_name_the_form_fields() {
        let errs = MailboxFields::default().parse().unwrap_err();
        assert!(
            errs.iter().any(|e| e.contains("`phone` is required")),
            "{errs:?}"
        );
        assert!(errs.iter().any(|e| e.contains("`category`")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("`title`")), "{errs:?}");
        let long_name = MailboxFields {
            name: Some("名".repeat(65)),
            ..fields("13800000000", "t")
        };
        let errs = long_name.parse().unwrap_err();
        assert_eq!(errs, vec!["`name` is longer than 64 characters".to_owned()]);
        let a = fields(" 138-0000-0000 ", " 标题 ").parse().unwrap();
        assert_eq!(a.channel, Channel::Mailbox);
        assert_eq!(a.citizen_phone.as_deref(), Some("13800000000"));
        assert_eq!(a.title, "标题");
    }

    #[test]
    fn duplicate_keys_differ_by_phone_text_and_bucket() {
        let a = fields("13800000000", "t").parse().unwrap();
        let b = fields("13900000000", "t").parse().unwrap();
        let c = fields("13800000000", "t2").parse().unwrap();
        let k = duplicate_key(&a, 5);
        assert_eq!(k, duplicate_key(&a.clone(), 5));
        assert!(k.len() <= crate::domain::appeal::MAX_EXTERNAL_ID);
        assert_ne!(k, duplicate_key(&b, 5));
        assert_ne!(k, duplicate_key(&c, 5));
        assert_ne!(k, duplicate_key(&a, 6));
        // A submission is compared with its own bucket and the one before,
        // and the earlier one's age decides: both ends of the window hold.
        let t0 = DateTime::parse_from_rfc3339("2026-11-22T10:09:59Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(bucket(t0 + chrono::Duration::seconds(1)), bucket(t0) + 1);
    }

    #[test]
    fn waits_read_naturally() {
        assert_eq!(wait_zh(12), "12 秒");
        assert_eq!(wait_zh(61), "2 分钟");
        assert_eq!(wait_zh(4320), "1 小时 12 分钟");
    }
}
