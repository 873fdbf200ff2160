//! Open311 GeoReport v2: a POSTed service request (`application/x-www-form-urlencoded`,
//! repeated `media_url`, `lat`/`long`, `#NOTPINPOINTED#`, …) through `Params::parse`,
//! `Submission::parse` and the appeal it becomes, and the same parameters as the
//! `GET requests` query (`parse_query`).
//!
//! Input: the body, as bytes (the handler refuses non-UTF-8 before parsing).
//!
//! Beyond "never panics": an accepted submission has a known service, a point inside WGS84,
//! at most five http(s) media URLs and a location; the appeal it becomes passes the appeal
//! checks whenever its content fits; an accepted query window is ordered and at most 90 days.
#![no_main]

use chrono::{DateTime, Duration, Utc};
use hotline::api::open311::form::{
    MAX_MEDIA, NOT_PINPOINTED, Params, Submission, WINDOW_DAYS, parse_query,
};
use hotline::domain::appeal::MAX_CONTENT;
use hotline::domain::types::Channel;
use libfuzzer_sys::fuzz_target;

/// Every service exists but those whose code starts with `zz` (the 404 path).
fn known(code: &str) -> bool {
    !code.starts_with("zz")
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(params) = Params::parse(text) else {
        return;
    };
    let now = DateTime::<Utc>::from_timestamp(1_790_000_000, 0).expect("in range");
    if let Ok(q) = parse_query(&params, now) {
        match &q.ticket_nos {
            Some(ids) => assert!(!ids.is_empty() && ids.len() <= 1_000),
            None => {
                assert!(q.from <= q.to, "{q:?}");
                assert!(q.to - q.from <= Duration::days(WINDOW_DAYS), "{q:?}");
            }
        }
    }

    let Ok(sub) = Submission::parse(&params, known) else {
        return;
    };
    assert!(!sub.service_code.is_empty() && known(&sub.service_code));
    if let Some((lat, long)) = sub.point {
        assert!(lat.is_finite() && long.is_finite());
        assert!(lat.abs() <= 90.0 && long.abs() <= 180.0, "{lat}, {long}");
    }
    assert!(sub.media_urls.len() <= MAX_MEDIA);
    for u in &sub.media_urls {
        assert!(u.starts_with("http://") || u.starts_with("https://"), "{u}");
    }
    assert_ne!(sub.address_id.as_deref(), Some(NOT_PINPOINTED));
    if sub.point.is_none() && sub.address.is_none() && sub.address_id.is_none() {
        assert_eq!(params.get("address_id"), Some(NOT_PINPOINTED));
    }

    let districts = [
        ("donghu".to_owned(), "东湖区".to_owned()),
        ("xihu".to_owned(), "西湖区".to_owned()),
    ];
    let raw = sub.to_appeal("路灯不亮", &districts);
    if sub.address.as_deref().is_some_and(|a| a.contains("东湖区")) {
        assert!(raw.district.is_some());
    }
    let fits = raw.content.trim().chars().count() <= MAX_CONTENT;
    match raw.parse("open311") {
        Ok(a) => {
            assert_eq!(a.channel, Channel::Open311);
            assert_eq!(a.citizen_phone, sub.phone);
            assert_eq!(a.address, sub.address);
        }
        Err(errors) => assert!(
            !fits,
            "accepted at the edge, refused as an appeal: {errors:?}"
        ),
    }
});
