//! 问政江西 (wenzheng): the platform's signed pushes. Pure: the signature
//! check over `timestamp + "." + body`, the mapping of a post to an appeal,
//! and the reply pushed back when its ticket is answered.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::appeal::{RawAppeal, RawCitizen};
use super::calendar::city_tz;
use super::lifecycle::{EventDraft, Ticket};
use super::types::{Category, Channel, TicketState, Urgency};

/// Who answered, when no department did (直办, 不予受理, 转办 by the office).
pub const OFFICE_NAME: &str = "12345政务服务便民热线";

/// How far a request's timestamp may be from our clock, either way.
pub const MAX_SKEW_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the `X-Wenzheng-Timestamp` and `X-Wenzheng-Signature` headers are required")]
    Missing,
    #[error("`X-Wenzheng-Timestamp` must be Unix seconds")]
    BadTimestamp,
    #[error("the request is stale: its timestamp is more than 300 s from now")]
    Stale,
    #[error("`X-Wenzheng-Signature` does not match the body")]
    Mismatch,
}

/// `sha256=<hex>` of HMAC-SHA256(secret, `timestamp.body`).
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a push: the timestamp within [`MAX_SKEW_SECS`] of `now`, and the
/// signature compared in constant time.
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let secs: i64 = ts
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    // `abs_diff`: a timestamp such as i64::MIN must be stale, not an overflow.
    if now.timestamp().abs_diff(secs) > MAX_SKEW_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let hex_sig = sig
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Mismatch)?;
    let given = hex::decode(hex_sig).map_err(|_| SignatureError::Mismatch)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| SignatureError::Mismatch)?;
    mac.update(ts.trim().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Poster {
    pub nickname: String,
    #[serde(default)]
    pub phone: Option<String>,
}

/// A post as the platform pushes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Post {
    pub post_id: String,
    pub title: String,
    pub content: String,
    pub poster: Poster,
    pub region: String,
    pub posted_at: String,
    #[serde(default)]
    pub attachments: Vec<String>,
}

impl Post {
    /// The appeal a post becomes: `post_id` is the external id, `region` the
    /// district (a district code, or its name such as `东湖区`, looked up in
    /// `districts` as `(code, name)`), attachments listed under the content.
    /// Category and urgency are for the dispatcher to set; a post starts as a
    /// normal complaint.
    pub fn to_appeal(&self, districts: &[(String, String)]) -> Result<RawAppeal, Vec<String>> {
        let mut errors = Vec::new();
        let id = self.post_id.trim();
        if id.is_empty() || id.chars().count() > 128 {
            errors.push("`post_id` must be 1–128 characters".to_owned());
        }
        if DateTime::parse_from_rfc3339(self.posted_at.trim()).is_err() {
            errors.push("`posted_at` must be an RFC 3339 time".to_owned());
        }
        if self.attachments.len() > 20
            || self
                .attachments
                .iter()
                .any(|u| !(u.starts_with("https://") || u.starts_with("http://")) || u.len() > 2000)
        {
            errors.push("`attachments` must be at most 20 http(s) URLs".to_owned());
        }
        let region = self.region.trim();
        let district = districts
            .iter()
            .find(|(code, name)| code == region || name == region)
            .map(|(code, _)| code.clone());
        if district.is_none() && !region.is_empty() {
            errors.push(format!("`region`: unknown district {region:?}"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut content = self.content.clone();
        for url in &self.attachments {
            content.push_str("\n附件：");
            content.push_str(url);
        }
        Ok(RawAppeal {
            channel: Channel::Wenzheng,
            external_id: Some(id.to_owned()),
            category: Category::Complaint,
            urgency: Urgency::Normal,
            title: self.title.clone(),
            content,
            citizen: RawCitizen {
                name: Some(self.poster.nickname.clone()),
                phone: self.poster.phone.clone(),
            },
            address: None,
            district,
        })
    }
}

/// What a citizen is told when their ticket is answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// `replied` or `closed`.
    pub state: TicketState,
    pub reply: Option<String>,
    pub replied_at: Option<DateTime<Utc>>,
    /// The answering department's code; `None` when the office itself closed it.
    pub department: Option<String>,
}

/// The answer a change gives: when a ticket becomes `replied`, or `closed`
/// (after the callback, or directly by the office with a note). Reopening
/// and every other change answer nothing.
pub fn answer(before: TicketState, after: &Ticket, event: &EventDraft) -> Option<Answer> {
    if after.state == before || !matches!(after.state, TicketState::Replied | TicketState::Closed) {
        return None;
    }
    let note = event.payload.get("note").and_then(|n| n.as_str());
    Some(Answer {
        state: after.state,
        reply: after
            .reply_content
            .clone()
            .or_else(|| note.map(str::to_owned)),
        replied_at: after.replied_at.or(after.closed_at),
        department: after
            .department
            .clone()
            .or_else(|| event.department.clone()),
    })
}

/// The answer a ticket already stands on (for an appeal merged into it
/// later); `closing_note` is the note of a direct close, if any.
pub fn standing_answer(t: &Ticket, closing_note: Option<&str>) -> Option<Answer> {
    if !matches!(t.state, TicketState::Replied | TicketState::Closed) {
        return None;
    }
    Some(Answer {
        state: t.state,
        reply: t
            .reply_content
            .clone()
            .or_else(|| closing_note.map(str::to_owned)),
        replied_at: t.replied_at.or(t.closed_at),
        department: t.department.clone(),
    })
}

/// The JSON pushed to `channels.wenzheng.reply_url`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplyPush<'a> {
    pub post_id: &'a str,
    pub ticket_no: &'a str,
    pub state: TicketState,
    pub reply: Option<&'a str>,
    /// City time with its offset.
    pub replied_at: Option<DateTime<chrono::FixedOffset>>,
    /// The answering department's name.
    pub department: &'a str,
}

/// The body of the push for `post_id` (ticket `ticket_no`) carrying `a`;
/// `department_name` is the name of `a.department`.
pub fn reply_push_body(
    post_id: &str,
    ticket_no: &str,
    a: &Answer,
    department_name: Option<&str>,
) -> String {
    let push = ReplyPush {
        post_id,
        ticket_no,
        state: a.state,
        reply: a.reply.as_deref(),
        replied_at: a.replied_at.map(|t| t.with_timezone(&city_tz())),
        department: department_name.unwrap_or(OFFICE_NAME),
    };
    serde_json::to_string(&push).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_and_closes_answer_and_nothing_else_does() {
        use crate::domain::types::{EventKind, Resolution};
        let at = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let mut t = Ticket::registered(Category::Complaint, Urgency::Normal, false);
        t.state = TicketState::Replied;
        t.department = Some("water".into());
        t.reply_content = Some("已修复".into());
        t.replied_at = Some(at);
        let ev = |kind, payload| EventDraft {
            kind,
            from_state: None,
            to_state: None,
            department: Some("water".into()),
            payload,
        };
        let replied = ev(EventKind::Replied, serde_json::json!({}));
        let a = answer(TicketState::InProgress, &t, &replied).unwrap();
        assert_eq!(a.state, TicketState::Replied);
        assert_eq!(a.reply.as_deref(), Some("已修复"));
        assert_eq!(a.department.as_deref(), Some("water"));
        assert_eq!(answer(TicketState::Replied, &t, &replied), None);
        // Closed directly by the office: the note is the answer.
        let mut closed = Ticket::registered(Category::Consult, Urgency::Normal, false);
        closed.state = TicketState::Closed;
        closed.resolution = Some(Resolution::DirectAnswer);
        closed.closed_at = Some(at);
        let close = EventDraft {
            department: None,
            ..ev(EventKind::Closed, serde_json::json!({"note": "已当场解答"}))
        };
        let a = answer(TicketState::Registered, &closed, &close).unwrap();
        assert_eq!(
            (a.reply.as_deref(), a.replied_at, a.department.as_deref()),
            (Some("已当场解答"), Some(at), None)
        );
        let body = reply_push_body("p-1", "20261121W000001", &a, None);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["post_id"], "p-1");
        assert_eq!(v["state"], "closed");
        assert_eq!(v["department"], OFFICE_NAME);
        assert_eq!(v["replied_at"], "2026-09-21T22:13:20+08:00");
        // Reopened (重办): nothing to tell yet.
        let mut reopened = t.clone();
        reopened.state = TicketState::InProgress;
        assert_eq!(answer(TicketState::Replied, &reopened, &replied), None);
        assert!(standing_answer(&reopened, None).is_none());
        assert_eq!(
            standing_answer(&closed, Some("已当场解答"))
                .unwrap()
                .reply
                .as_deref(),
            Some("已当场解答")
        );
    }

    #[test]
    fn a_signature_verifies_and_a_changed_byte_does_not() {
        let now = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let ts = "1790000000";
        let body = br#"{"post_id":"1"}"#;
        let sig = sign("s3cret", ts, body);
        assert_eq!(verify("s3cret", Some(ts), Some(&sig), body, now), Ok(()));
        assert_eq!(
            verify("s3cret", Some(ts), Some(&sig), br#"{"post_id":"2"}"#, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("other", Some(ts), Some(&sig), body, now),
            Err(SignatureError::Mismatch)
        );
        let later = now + chrono::Duration::seconds(301);
        assert_eq!(
            verify("s3cret", Some(ts), Some(&sig), body, later),
            Err(SignatureError::Stale)
        );
        let earlier = now - chrono::Duration::seconds(301);
        assert_eq!(
            verify("s3cret", Some(ts), Some(&sig), body, earlier),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify("s3cret", None, Some(&sig), body, now),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify("s3cret", Some("soon"), Some(&sig), body, now),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            verify("s3cret", Some(ts), Some("sha256=zz"), body, now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn extreme_timestamps_are_stale_not_an_overflow() {
        // Found by fuzzing (fuzz/regressions/wenzheng/timestamp_i64_min):
        // `now - i64::MIN` overflowed and panicked the handler.
        let now = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        for ts in [
            "-9223372036854775808",
            "9223372036854775807",
            " -9223372036854775807",
        ] {
            let sig = sign("s3cret", ts.trim(), b"{}");
            assert_eq!(
                verify("s3cret", Some(ts), Some(&sig), b"{}", now),
                Err(SignatureError::Stale),
                "{ts}"
            );
        }
    }
}
