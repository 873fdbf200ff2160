//! 问政江西 pushes: the signature check and the post → appeal mapping, as the handler in
//! `src/api/channels.rs` runs them (headers through actix's `HeaderValue::to_str`).
//!
//! Input: line 1 the secret, line 2 the `X-Wenzheng-Timestamp` header, line 3 the
//! `X-Wenzheng-Signature` header (an empty line: the header is absent), the rest the body.
//!
//! Beyond "never panics": only the true signature verifies; a correct signature over the
//! fuzzed body verifies, and fails once a body byte, a signature digit or the secret changes,
//! or the clock moves past the allowed skew; an accepted post keeps its id and district.
#![no_main]

use actix_web::http::header::HeaderValue;
use chrono::{DateTime, Duration, Utc};
use hotline::domain::types::Channel;
use hotline::domain::wenzheng::{MAX_SKEW_SECS, Post, SignatureError, sign, verify};
use libfuzzer_sys::fuzz_target;

/// 2026-09-21T14:13:20Z, a fixed "now" so that crashes replay.
const NOW: i64 = 1_790_000_000;

fn header(raw: &[u8]) -> Option<String> {
    if raw.is_empty() {
        return None;
    }
    HeaderValue::from_bytes(raw)
        .ok()
        .and_then(|v| v.to_str().ok().map(str::to_owned))
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.splitn(4, |b| *b == b'\n');
    let secret = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let ts = header(lines.next().unwrap_or_default());
    let sig = header(lines.next().unwrap_or_default());
    let body = lines.next().unwrap_or_default();
    let now = DateTime::<Utc>::from_timestamp(NOW, 0).expect("in range");

    // Whatever the headers say: an answer, never a panic; Ok only for the true signature.
    if verify(&secret, ts.as_deref(), sig.as_deref(), body, now).is_ok() {
        let (ts, sig) = (ts.as_deref().unwrap_or_default(), sig.unwrap_or_default());
        assert_eq!(
            sig.trim().to_ascii_lowercase(),
            sign(&secret, ts.trim(), body),
            "accepted a signature that is not HMAC(secret, ts.body)"
        );
    }

    // A correct signature over this body, with the fuzzed timestamp when it is in time.
    let in_time = ts.as_deref().filter(|t| {
        t.trim()
            .parse::<i64>()
            .is_ok_and(|s| s.abs_diff(NOW) <= MAX_SKEW_SECS.unsigned_abs())
    });
    let stamp = in_time.map_or_else(|| NOW.to_string(), str::to_owned);
    let good = sign(&secret, stamp.trim(), body);
    assert_eq!(
        verify(&secret, Some(&stamp), Some(&good), body, now),
        Ok(())
    );
    assert_eq!(
        verify(
            &secret,
            Some(&stamp),
            Some(&format!(" {good}\t")),
            body,
            now
        ),
        Ok(())
    );
    if !body.is_empty() {
        let mut flipped = body.to_vec();
        let i = usize::from(body[0]) % body.len();
        flipped[i] ^= 1 << (body[body.len() - 1] % 8);
        assert_eq!(
            verify(&secret, Some(&stamp), Some(&good), &flipped, now),
            Err(SignatureError::Mismatch)
        );
    }
    let mut digits = good.clone().into_bytes();
    let last = digits.len() - 1;
    digits[last] = if digits[last] == b'0' { b'1' } else { b'0' };
    let bad = String::from_utf8(digits).expect("hex");
    assert_eq!(
        verify(&secret, Some(&stamp), Some(&bad), body, now),
        Err(SignatureError::Mismatch)
    );
    let other = format!("{secret}x");
    assert_eq!(
        verify(&other, Some(&stamp), Some(&good), body, now),
        Err(SignatureError::Mismatch)
    );
    let skew = Duration::seconds(MAX_SKEW_SECS * 2 + 1);
    for moved in [now + skew, now - skew] {
        assert_eq!(
            verify(&secret, Some(&stamp), Some(&good), body, moved),
            Err(SignatureError::Stale)
        );
    }

    // The payload, as the handler reads it after the signature.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let Ok(post) = serde_json::from_value::<Post>(value) else {
        return;
    };
    let districts = [
        ("donghu".to_owned(), "东湖区".to_owned()),
        ("xihu".to_owned(), "西湖区".to_owned()),
    ];
    let Ok(raw) = post.to_appeal(&districts) else {
        return;
    };
    assert_eq!(raw.external_id.as_deref(), Some(post.post_id.trim()));
    assert_eq!(raw.district.is_some(), !post.region.trim().is_empty());
    assert!(raw.content.starts_with(&post.content));
    if let Ok(appeal) = raw.parse("wenzheng") {
        assert_eq!(appeal.channel, Channel::Wenzheng);
        assert_eq!(appeal.external_id.as_deref(), Some(post.post_id.trim()));
        assert!(!appeal.title.is_empty() && !appeal.content.is_empty());
        assert_eq!(appeal.created_by, "wenzheng");
    }
});
