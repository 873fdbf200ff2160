//! Webhook transport: POSTs an outbox row's JSON body to its URL, signed the
//! way 问政江西 signs its own pushes (`X-Wenzheng-Timestamp`, and
//! `X-Wenzheng-Signature: sha256=<hex>` over `timestamp + "." + body`). The
//! signature is made when the request leaves, so a retried push is never
//! stale. What the receiver answers decides: delivered, try again later, or
//! refused for good.

use std::time::Duration;

use crate::domain::wenzheng::sign;

/// Longest wait for the receiver's answer (connect included).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Requests in flight at once.
pub const CONCURRENCY: usize = 16;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx.
    Delivered,
    /// 5xx, 408, 429, a timeout or no connection: try again, not before
    /// `retry_after` when the receiver said so.
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Any other 4xx (and 3xx): the receiver will not take this body; park it.
    Refused { error: String },
}

/// How a status code is treated (pure, so it can be tested apart).
pub fn classify(status: u16, body: &str, retry_after: Option<Duration>) -> Outcome {
    let error = || {
        let body: String = body.chars().take(300).collect();
        format!("HTTP {status}: {body}")
    };
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 | 500.. => Outcome::Retry {
            error: error(),
            retry_after,
        },
        _ => Outcome::Refused { error: error() },
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from such platforms
/// and falls back to the back-off).
fn retry_after(v: Option<&str>) -> Option<Duration> {
    v.and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// rustls with ring, verifying servers against the platform's roots.
fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Sends signed webhooks. Not `Send` (awc is single-threaded): run it on
/// the current thread's runtime.
pub struct WebhookSender {
    client: awc::Client,
    secret: String,
}

impl WebhookSender {
    pub fn new(secret: &str) -> WebhookSender {
        let builder = awc::Client::builder().timeout(TIMEOUT).disable_redirects();
        let client = match tls_config() {
            Ok(tls) => builder
                .connector(
                    awc::Connector::new()
                        .timeout(TIMEOUT)
                        .rustls_0_23(std::sync::Arc::new(tls)),
                )
                .finish(),
            // Plain http still works; https attempts fail and are retried.
            Err(e) => {
                tracing::error!(error = %e, "no TLS for webhooks");
                builder.finish()
            }
        };
        WebhookSender {
            client,
            secret: secret.to_owned(),
        }
    }

    /// One attempt: signs `body` now and POSTs it to `url`.
    pub async fn send(&self, url: &str, body: &str) -> Outcome {
        if self.secret.is_empty() {
            return Outcome::Retry {
                error: "channels.wenzheng.secret is not set: cannot sign".into(),
                retry_after: None,
            };
        }
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let signature = sign(&self.secret, &timestamp, body.as_bytes());
        let sent = self
            .client
            .post(url)
            .insert_header(("content-type", "application/json"))
            .insert_header(("x-wenzheng-timestamp", timestamp))
            .insert_header(("x-wenzheng-signature", signature))
            .send_body(body.to_owned())
            .await;
        match sent {
            Ok(mut res) => {
                let status = res.status().as_u16();
                let after = retry_after(
                    res.headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()),
                );
                let text = match res.body().limit(64 * 1024).await {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(_) => String::new(),
                };
                classify(status, &text, after)
            }
            Err(e) => Outcome::Retry {
                error: format!("request failed: {e}"),
                retry_after: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_decide_between_delivered_retry_and_refused() {
        assert_eq!(classify(200, "", None), Outcome::Delivered);
        assert_eq!(classify(204, "", None), Outcome::Delivered);
        for s in [408, 429, 500, 502, 503] {
            assert!(
                matches!(classify(s, "x", None), Outcome::Retry { .. }),
                "{s}"
            );
        }
        for s in [301, 400, 401, 403, 404, 409, 422] {
            assert!(
                matches!(classify(s, "x", None), Outcome::Refused { .. }),
                "{s}"
            );
        }
        let Outcome::Refused { error } = classify(400, "bad post_id", None) else {
            panic!()
        };
        assert_eq!(error, "HTTP 400: bad post_id");
        assert_eq!(retry_after(Some(" 30 ")), Some(Duration::from_secs(30)));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2026 07:28:00 GMT")), None);
    }
}
