//! 问政江西 (wenzheng): the platform's signed pushes. Pure: the signature
//! check over `timestamp + "." + body` and the mapping of a post to an
//! appeal.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::appeal::{RawAppeal, RawCitizen};
use super::types::{Category, Channel, Urgency};

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
    if (now.timestamp() - secs).abs() > MAX_SKEW_SECS {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
