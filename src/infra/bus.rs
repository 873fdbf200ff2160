//! Ticket events fanned out to every instance's live-stream clients: through
//! Redis pub/sub when configured, else an in-process broadcast channel. A
//! publish that cannot reach Redis is delivered locally instead.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::redis::RedisHandle;

const CHANNEL: &str = "hotline:ticket-events";

/// What live clients learn about a change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BusEvent {
    pub ticket_id: i64,
    pub ticket_no: String,
    pub kind: String,
    pub state: String,
    /// Departments that may see the ticket (lead, co, and the one acted on).
    pub departments: Vec<String>,
    pub escalation_level: i16,
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Clone)]
pub struct EventBus {
    local: broadcast::Sender<String>,
    redis: Option<RedisHandle>,
    /// While Redis is down every publish fails: one warning per interval,
    /// with the count, instead of one per event.
    quiet: std::sync::Arc<Throttle>,
}

#[derive(Default)]
struct Throttle {
    last_warn: std::sync::Mutex<Option<std::time::Instant>>,
    suppressed: std::sync::atomic::AtomicU64,
}

impl Throttle {
    /// The number of failures since the last warning, when one is due now.
    fn due(&self, every: std::time::Duration) -> Option<u64> {
        use std::sync::atomic::Ordering;
        let mut last = self.last_warn.lock().ok()?;
        if last.is_some_and(|t| t.elapsed() < every) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(std::time::Instant::now());
        Some(self.suppressed.swap(0, Ordering::Relaxed) + 1)
    }
}

impl EventBus {
    pub fn new(redis: Option<RedisHandle>) -> EventBus {
        let (local, _) = broadcast::channel(4096);
        if let Some(r) = &redis {
            r.forward(CHANNEL, local.clone());
        }
        EventBus {
            local,
            redis,
            quiet: Default::default(),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.local.subscribe()
    }

    pub async fn publish(&self, ev: &BusEvent) {
        let Ok(payload) = serde_json::to_string(ev) else {
            return;
        };
        if let Some(r) = &self.redis {
            match r.publish(CHANNEL, &payload).await {
                Ok(()) => return,
                Err(e) => {
                    if let Some(failures) = self.quiet.due(std::time::Duration::from_secs(10)) {
                        tracing::warn!(error = %e, failures, "event fan-out: Redis unavailable; local clients only");
                    }
                }
            }
        }
        let _ = self.local.send(payload);
    }
}
