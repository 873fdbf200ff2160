//! The Open311 inputs, checked once at the edge: a POSTed service request
//! (form fields, as real clients send them) becomes a `Submission`, and the
//! `GET requests` arguments become a `RequestQuery`. Every refusal is a
//! `Failure` listing all that is wrong.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

use super::render::Failure;
use crate::domain::appeal::{MAX_ADDRESS, MAX_NAME, RawAppeal, RawCitizen, parse_phone};
use crate::domain::calendar::city_tz;
use crate::domain::types::{Category, Channel, Urgency};
use crate::store::open311::RequestQuery;

pub const MAX_DESCRIPTION: usize = 4_000;
pub const MAX_MEDIA: usize = 5;
pub const MAX_MEDIA_URL: usize = 1_000;
pub const MAX_ADDRESS_ID: usize = 128;
pub const MAX_RESULTS: u64 = 1_000;
pub const WINDOW_DAYS: i64 = 90;
/// What some clients send as `address_id` when the user placed no pin.
pub const NOT_PINPOINTED: &str = "#NOTPINPOINTED#";

/// Form or query fields in order, repeated keys kept.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// `application/x-www-form-urlencoded` text (a body or a query string).
    pub fn parse(s: &str) -> Result<Params, Failure> {
        let pairs = actix_web::web::Query::<Vec<(String, String)>>::from_query(s)
            .map_err(|e| Failure::bad_request(format!("cannot read the parameters: {e}")))?
            .into_inner();
        // No text holds U+0000, and PostgreSQL cannot store or compare it.
        if pairs
            .iter()
            .any(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(Failure::bad_request(
                "parameters must not contain the NUL character (%00)",
            ));
        }
        Ok(Params(pairs))
    }

    pub fn extend(&mut self, other: Params) {
        self.0.extend(other.0);
    }

    /// Every non-blank value of `key`, trimmed. "Optional" in the spec means
    /// an empty parameter is the same as a missing one.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The first non-blank value of `key`.
    pub fn get<'a>(&'a self, key: &str) -> Option<&'a str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .find(|v| !v.is_empty())
    }

    /// The values of `key`, repeated or comma-separated.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.all(key)
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// A service request as POSTed, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub service_code: String,
    /// `(lat, long)`, WGS84.
    pub point: Option<(f64, f64)>,
    pub address: Option<String>,
    /// `None` for `#NOTPINPOINTED#`.
    pub address_id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub description: Option<String>,
    pub media_urls: Vec<String>,
}

fn has_control(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

fn coordinate(p: &Params, key: &str, limit: f64, errors: &mut Vec<String>) -> Option<f64> {
    let raw = p.get(key)?;
    match raw.parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() <= limit => Some(v),
        _ => {
            errors.push(format!(
                "`{key}` must be a number from -{limit} to {limit} (WGS84), not {raw:?}"
            ));
            None
        }
    }
}

fn is_email(s: &str) -> bool {
    let mut parts = s.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    s.chars().count() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `first_name` and `last_name` as one name: family name first, unspaced,
/// when either is written in Chinese (张 + 三 = 张三); "first last" otherwise.
fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    match (first, last) {
        (Some(f), Some(l)) if !f.is_ascii() || !l.is_ascii() => Some(format!("{l}{f}")),
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
        (None, None) => None,
    }
}

impl Submission {
    /// Checks the fields; `known` says whether a service code exists. An
    /// unknown service is a 404 on its own; everything else wrong is one 400
    /// listing each problem.
    pub fn parse(p: &Params, known: impl Fn(&str) -> bool) -> Result<Submission, Failure> {
        let mut errors = Vec::new();
        let service_code = p.get("service_code").unwrap_or_default().to_owned();
        if service_code.is_empty() {
            errors.push("`service_code` was not provided".to_owned());
        } else if !known(&service_code) {
            return Err(Failure::not_found(format!(
                "service_code {service_code:?} was not found"
            )));
        }

        let lat = coordinate(p, "lat", 90.0, &mut errors);
        let long = coordinate(p, "long", 180.0, &mut errors);
        let point = match (p.get("lat").is_some(), p.get("long").is_some()) {
            (true, false) | (false, true) => {
                errors.push("`lat` and `long` must be sent together".to_owned());
                None
            }
            _ => lat.zip(long),
        };
        let address = p.get("address_string").map(str::to_owned);
        if let Some(a) = &address {
            if a.chars().count() > MAX_ADDRESS {
                errors.push(format!(
                    "`address_string` is longer than {MAX_ADDRESS} characters"
                ));
            }
            if has_control(a) {
                errors.push("`address_string` must not contain control characters".to_owned());
            }
        }
        let raw_address_id = p.get("address_id");
        let address_id = raw_address_id
            .filter(|a| *a != NOT_PINPOINTED)
            .map(str::to_owned);
        if let Some(a) = &address_id
            && (a.chars().count() > MAX_ADDRESS_ID || has_control(a))
        {
            errors.push(format!(
                "`address_id` must be at most {MAX_ADDRESS_ID} printable characters"
            ));
        }
        let located = p.get("lat").is_some()
            || p.get("long").is_some()
            || address.is_some()
            || raw_address_id.is_some();
        if !located {
            errors.push(
                "a location is required: `lat` and `long`, `address_string` or `address_id`"
                    .to_owned(),
            );
        }

        let email = p.get("email").map(str::to_owned);
        if email.as_deref().is_some_and(|e| !is_email(e)) {
            errors.push("`email` is not an e-mail address".to_owned());
        }
        let name = full_name(p.get("first_name"), p.get("last_name"));
        if let Some(n) = &name
            && (n.chars().count() > MAX_NAME || has_control(n))
        {
            errors.push(format!(
                "`first_name` and `last_name` together must be at most {MAX_NAME} printable characters"
            ));
        }
        let phone = match p.get("phone").map(parse_phone) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(_)) => {
                errors.push("`phone` must be 5–20 digits".to_owned());
                None
            }
        };
        let description = p.get("description").map(str::to_owned);
        if let Some(d) = &description {
            if d.chars().count() > MAX_DESCRIPTION {
                errors.push("`description` is longer than 4,000 characters".to_owned());
            }
            if has_control(d) {
                errors.push("`description` must not contain control characters".to_owned());
            }
        }
        let media_urls: Vec<String> = p
            .all("media_url")
            .chain(p.all("media_url[]"))
            .map(str::to_owned)
            .collect();
        if media_urls.len() > MAX_MEDIA {
            errors.push(format!("at most {MAX_MEDIA} `media_url` values"));
        }
        if media_urls.iter().any(|u| {
            !(u.starts_with("http://") || u.starts_with("https://"))
                || u.len() > MAX_MEDIA_URL
                || u.chars().any(|c| c.is_whitespace() || c.is_control())
        }) {
            errors.push(format!(
                "`media_url` must be an http(s) URL of at most {MAX_MEDIA_URL} characters"
            ));
        }

        if !errors.is_empty() {
            return Err(Failure {
                status: 400,
                descriptions: errors,
            });
        }
        Ok(Submission {
            service_code,
            point,
            address,
            address_id,
            email,
            name,
            phone,
            description,
            media_urls,
        })
    }

    /// The appeal this request becomes: a `report` titled with the service's
    /// name; the content is the description (or the service's name) with the
    /// point, address id and media listed under it, so that whoever handles
    /// the ticket sees them. `districts` are `(code, name)`: the district is
    /// the one whose name the address contains (the longest such name).
    pub fn to_appeal(&self, service_name: &str, districts: &[(String, String)]) -> RawAppeal {
        let mut content = self
            .description
            .clone()
            .unwrap_or_else(|| service_name.to_owned());
        if let Some((lat, long)) = self.point {
            content.push_str(&format!("\n位置（WGS84）：{lat}, {long}"));
        }
        if let Some(id) = &self.address_id {
            content.push_str(&format!("\n地址编号：{id}"));
        }
        for url in &self.media_urls {
            content.push_str(&format!("\n附件：{url}"));
        }
        let district = self.address.as_deref().and_then(|a| {
            districts
                .iter()
                .filter(|(_, name)| !name.is_empty() && a.contains(name.as_str()))
                .max_by_key(|(_, name)| name.chars().count())
                .map(|(code, _)| code.clone())
        });
        RawAppeal {
            channel: Channel::Open311,
            external_id: None,
            category: Category::Report,
            urgency: Urgency::Normal,
            title: service_name.to_owned(),
            content,
            citizen: RawCitizen {
                name: self.name.clone(),
                phone: self.phone.clone(),
            },
            address: self.address.clone(),
            district,
        }
    }
}

/// A W3C date-time (RFC 3339, seconds optional, a time zone required), or a
/// bare date taken as midnight in the city. A `+` that a client left
/// unencoded in the query string arrives as a space, and is put back.
pub fn parse_datetime(raw: &str) -> Option<DateTime<Utc>> {
    let s = raw.trim().replace(' ', "+");
    if let Ok(t) = DateTime::parse_from_rfc3339(&s) {
        return Some(t.with_timezone(&Utc));
    }
    let zoned = match s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        Some(rest) => format!("{rest}+00:00"),
        None => s.clone(),
    };
    if let Ok(t) = DateTime::parse_from_str(&zoned, "%Y-%m-%dT%H:%M%:z") {
        return Some(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok()?;
    day.and_hms_opt(0, 0, 0)?
        .and_local_timezone(city_tz())
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// The `GET requests` arguments. `service_request_id` overrides the rest;
/// otherwise the window defaults to the 90 days up to now (or after
/// `start_date`, or before `end_date`) and may not span more than 90 days.
pub fn parse_query(p: &Params, now: DateTime<Utc>) -> Result<RequestQuery, Failure> {
    let window = Duration::days(WINDOW_DAYS);
    let ids = p.list("service_request_id");
    if !ids.is_empty() {
        if ids.len() as u64 > MAX_RESULTS {
            return Err(Failure::bad_request(format!(
                "at most {MAX_RESULTS} `service_request_id` values"
            )));
        }
        return Ok(RequestQuery {
            ticket_nos: Some(ids),
            service_codes: Vec::new(),
            open: None,
            from: now - window,
            to: now,
            limit: MAX_RESULTS,
        });
    }
    let mut errors = Vec::new();
    let mut open = None;
    let statuses = p.list("status");
    for s in &statuses {
        match s.as_str() {
            "open" | "closed" => {}
            other => errors.push(format!(
                "`status` must be open or closed (comma-separated), not {other:?}"
            )),
        }
    }
    let wants = |s: &str| statuses.iter().any(|x| x == s);
    if wants("open") != wants("closed") {
        open = Some(wants("open"));
    }
    let mut date = |key: &str| {
        let raw = p.get(key)?;
        // A W3C year has four digits; chrono also reads `+262142`, and the
        // 90-day window below would then overflow.
        let parsed = parse_datetime(raw).filter(|t| (1..=9999).contains(&t.year()));
        if parsed.is_none() {
            errors.push(format!(
                "`{key}` must be a W3C date-time with a time zone, e.g. 2026-11-01T00:00:00+08:00, not {raw:?}"
            ));
        }
        parsed
    };
    let start = date("start_date");
    let end = date("end_date");
    let (from, to) = match (start, end) {
        (Some(s), Some(e)) => {
            if e < s {
                errors.push("`end_date` is before `start_date`".to_owned());
            } else if e - s > window {
                errors.push(format!(
                    "`start_date` to `end_date` may not span more than {WINDOW_DAYS} days"
                ));
            }
            (s, e)
        }
        (Some(s), None) => (s, s + window),
        (None, Some(e)) => (e - window, e),
        (None, None) => (now - window, now),
    };
    if !errors.is_empty() {
        return Err(Failure {
            status: 400,
            descriptions: errors,
        });
    }
    Ok(RequestQuery {
        ticket_nos: None,
        service_codes: p.list("service_code"),
        open,
        from,
        to,
        limit: MAX_RESULTS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(s: &str) -> Params {
        Params::parse(s).unwrap()
    }

    #[test]
    fn a_full_request_parses_and_names_are_put_in_their_order() {
        let p = params(
            "api_key=k&jurisdiction_id=nc.gov.cn&service_code=lamp&lat=28.68&long=115.89\
             &address_string=%E4%B8%9C%E6%B9%96%E5%8C%BA%E5%85%AB%E4%B8%80%E5%A4%A7%E9%81%93\
             &email=a%40b.cn&first_name=%E4%B8%89&last_name=%E5%BC%A0&phone=138-0000-1234\
             &description=lamp+out&media_url=https%3A%2F%2Fx.cn%2F1.jpg&media_url=https%3A%2F%2Fx.cn%2F2.jpg",
        );
        let s = Submission::parse(&p, |c| c == "lamp").unwrap();
        assert_eq!(s.point, Some((28.68, 115.89)));
        assert_eq!(s.name.as_deref(), Some("张三"));
        assert_eq!(s.phone.as_deref(), Some("13800001234"));
        assert_eq!(s.media_urls.len(), 2);
        let districts = [
            ("donghu".to_owned(), "东湖区".to_owned()),
            ("xihu".to_owned(), "西湖区".to_owned()),
        ];
        let a = s.to_appeal("路灯不亮", &districts);
        assert_eq!(a.district.as_deref(), Some("donghu"));
        assert_eq!(a.title, "路灯不亮");
        assert!(
            a.content
                .starts_with("lamp out\n位置（WGS84）：28.68, 115.89")
        );
        assert!(a.content.ends_with("附件：https://x.cn/2.jpg"));
        assert_eq!(
            full_name(Some("john"), Some("smith")).as_deref(),
            Some("john smith")
        );
    }

    #[test]
    fn every_problem_is_listed_and_an_unknown_service_is_a_404_alone() {
        let e = Submission::parse(&params("lat=91&phone=x&email=nope"), |_| true).unwrap_err();
        assert_eq!(e.status, 400);
        // service_code, lat out of range, lat without long, email, phone.
        assert_eq!(e.descriptions.len(), 5, "{e:?}");
        let e = Submission::parse(&params("service_code=zz&lat=91"), |_| false).unwrap_err();
        assert_eq!(e.status, 404);
        let e = Submission::parse(&params("service_code=a"), |_| true).unwrap_err();
        assert!(e.descriptions[0].contains("location"), "{e:?}");
        let s = Submission::parse(
            &params("service_code=a&address_id=%23NOTPINPOINTED%23"),
            |_| true,
        )
        .unwrap();
        assert_eq!(s.address_id, None);
    }

    #[test]
    fn dates_take_the_w3c_forms_and_windows_are_bounded() {
        let now = parse_datetime("2026-11-22T12:00:00Z").unwrap();
        for ok in [
            "2026-11-01T00:00:00+08:00",
            "2026-11-01T00:00:00 08:00",
            "2026-10-31T16:00Z",
            "2026-11-01",
        ] {
            assert_eq!(
                parse_datetime(ok),
                parse_datetime("2026-10-31T16:00:00Z"),
                "{ok}"
            );
        }
        for bad in ["2026-11-01T00:00:00", "yesterday", "2026-13-01"] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
        let q = parse_query(&params(""), now).unwrap();
        assert_eq!(now - q.from, Duration::days(90));
        assert!(q.open.is_none());
        let q = parse_query(&params("status=closed&service_code=a,b"), now).unwrap();
        assert_eq!((q.open, q.service_codes.len()), (Some(false), 2));
        let q = parse_query(&params("status=open,closed"), now).unwrap();
        assert_eq!(q.open, None);
        let e = parse_query(
            &params("start_date=2026-01-01&end_date=2026-06-01&status=pending"),
            now,
        )
        .unwrap_err();
        assert_eq!(e.descriptions.len(), 2, "{e:?}");
        // The ids override everything else, even what is malformed.
        let q = parse_query(&params("service_request_id=a,b&status=x"), now).unwrap();
        assert_eq!(q.ticket_nos, Some(vec!["a".to_owned(), "b".to_owned()]));
    }

    #[test]
    fn years_beyond_four_digits_are_refused_not_an_overflow() {
        // Found by fuzzing (fuzz/regressions/open311_form/): a start date in
        // year 262142 plus the 90-day window panicked.
        let now = parse_datetime("2026-11-22T12:00:00Z").unwrap();
        for q in [
            "start_date=%2B262142-12-31",
            "start_date=%2B262142-12-31T00:00%2B08:00",
            "end_date=-262143-01-02T00:00Z",
            "start_date=%2B12026-01-01&end_date=%2B12026-02-01",
        ] {
            let e = parse_query(&params(q), now).unwrap_err();
            assert_eq!(e.status, 400, "{q}");
            assert!(e.descriptions[0].contains("W3C"), "{q}: {e:?}");
        }
    }
}
