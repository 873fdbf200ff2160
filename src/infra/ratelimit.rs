//! Rate limits for the public endpoints. One algorithm, GCRA — "N per
//! period" admits N at once, then one more every period / N — counted in
//! Redis by one Lua script (one limit for every instance) when Redis is
//! configured, and by governor in this process when it is not or is down.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, RateLimiter};
use sha2::{Digest, Sha256};

use super::redis::RedisHandle;
use crate::config::MailboxSettings;

/// `count` per `period`; a count of 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub count: u32,
    pub period: Duration,
}

impl Quota {
    pub fn per_minute(count: u32) -> Quota {
        Quota {
            count,
            period: Duration::from_secs(60),
        }
    }

    pub fn per_day(count: u32) -> Quota {
        Quota {
            count,
            period: Duration::from_secs(86_400),
        }
    }
}

/// Every quota of a key checked at once: all admit, and each is charged,
/// or the request waits for the latest of them. Returns the milliseconds to
/// wait (0: admitted). The clock is Redis's own, so instances with skewed
/// clocks still agree. KEYS[i] holds its quota's theoretical arrival time in
/// ms; ARGV[2i-1] is the emission interval (period / N, ms), ARGV[2i] is N.
const GCRA_LUA: &str = r#"
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
local new = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]))
  if not tat or tat < now then tat = now end
  local next_tat = tat + interval
  local allow_at = next_tat - burst * interval
  if allow_at > now and allow_at - now > wait then wait = allow_at - now end
  new[i] = next_tat
end
if wait > 0 then return wait end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], string.format('%d', new[i]), 'PX', string.format('%d', math.max(1, new[i] - now)))
end
return 0
"#;

/// One kind of key (a phone number, a client address) and its quotas.
pub struct Limiter {
    name: &'static str,
    quotas: Vec<Quota>,
    local: Vec<DefaultKeyedRateLimiter<String>>,
    redis: Option<RedisHandle>,
    prefix: String,
    script: redis::Script,
    redis_down: AtomicBool,
    last_prune: Mutex<Instant>,
}

const PRUNE_EVERY: Duration = Duration::from_secs(60);

impl Limiter {
    /// `name` keeps the Redis keys of different limiters apart; quotas with
    /// a zero count are dropped.
    pub fn new(
        name: &'static str,
        quotas: &[Quota],
        redis: Option<RedisHandle>,
        prefix: &str,
    ) -> Limiter {
        let mut pairs = Vec::new();
        for q in quotas {
            let Some(n) = NonZeroU32::new(q.count) else {
                continue;
            };
            let Some(gq) = governor::Quota::with_period(q.period / q.count) else {
                continue;
            };
            pairs.push((*q, RateLimiter::keyed(gq.allow_burst(n))));
        }
        // Shorter windows first: in-process, a refusal by a later quota has
        // already charged the earlier ones, and the short window refuses most.
        pairs.sort_by_key(|(q, _)| q.period);
        let (quotas, local) = pairs.into_iter().unzip();
        Limiter {
            name,
            quotas,
            local,
            redis,
            prefix: prefix.to_owned(),
            script: redis::Script::new(GCRA_LUA),
            redis_down: AtomicBool::new(false),
            last_prune: Mutex::new(Instant::now()),
        }
    }

    /// Admits one request for `key`, or says how long to wait.
    pub async fn check(&self, key: &str) -> Result<(), Duration> {
        if self.quotas.is_empty() {
            return Ok(());
        }
        // Keys are hashed: Redis and memory never hold a phone number.
        let key = hex::encode(&Sha256::digest(key.as_bytes())[..16]);
        if let Some(redis) = &self.redis {
            match self.check_redis(redis, &key).await {
                Ok(wait) => {
                    if self.redis_down.swap(false, Ordering::Relaxed) {
                        tracing::info!(
                            limiter = self.name,
                            "Redis is back: rate limits shared again"
                        );
                    }
                    return if wait.is_zero() { Ok(()) } else { Err(wait) };
                }
                Err(e) => {
                    if !self.redis_down.swap(true, Ordering::Relaxed) {
                        tracing::warn!(limiter = self.name, error = %e,
                            "Redis unavailable: rate limits counted in this process until it is back");
                    }
                }
            }
        }
        self.check_local(key)
    }

    async fn check_redis(&self, redis: &RedisHandle, key: &str) -> redis::RedisResult<Duration> {
        let mut conn = redis.conn().await?;
        let mut inv = self.script.prepare_invoke();
        for q in &self.quotas {
            let secs = q.period.as_secs();
            inv.key(format!("{}:{}:{key}:{secs}", self.prefix, self.name))
                .arg((q.period / q.count).as_millis() as u64)
                .arg(q.count);
        }
        let wait_ms: u64 = redis.checked(inv.invoke_async(&mut conn).await).await?;
        Ok(Duration::from_millis(wait_ms))
    }

    fn check_local(&self, key: String) -> Result<(), Duration> {
        self.prune();
        for limiter in &self.local {
            if let Err(not_until) = limiter.check_key(&key) {
                return Err(not_until.wait_time_from(limiter.clock().now()));
            }
        }
        Ok(())
    }

    /// Forgets keys whose state is back to "never seen", once a minute, so
    /// memory follows the recent callers only.
    fn prune(&self) {
        let Ok(mut last) = self.last_prune.lock() else {
            return;
        };
        if last.elapsed() < PRUNE_EVERY {
            return;
        }
        *last = Instant::now();
        for limiter in &self.local {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The limiters of the public endpoints, built once at start-up.
pub struct PublicLimits {
    pub per_address: Limiter,
    pub per_phone: Limiter,
}

impl PublicLimits {
    pub fn new(s: &MailboxSettings, redis: Option<RedisHandle>) -> PublicLimits {
        PublicLimits {
            per_address: Limiter::new(
                "addr",
                &[
                    Quota::per_minute(s.per_address_per_minute),
                    Quota::per_day(s.per_address_per_day),
                ],
                redis.clone(),
                &s.redis_prefix,
            ),
            per_phone: Limiter::new(
                "phone",
                &[
                    Quota::per_minute(s.per_phone_per_minute),
                    Quota::per_day(s.per_phone_per_day),
                ],
                redis,
                &s.redis_prefix,
            ),
        }
    }
}

/// Whole seconds to wait, rounded up, at least 1: the `Retry-After` value.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1000).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_is_admitted_then_refused_until_the_interval_passes() {
        let l = Limiter::new("t", &[Quota::per_minute(3)], None, "test");
        for _ in 0..3 {
            assert!(l.check("13800000000").await.is_ok());
        }
        let wait = l.check("13800000000").await.unwrap_err();
        assert!(wait <= Duration::from_secs(20) && wait > Duration::from_secs(19));
        assert_eq!(retry_after_secs(wait), 20);
        // Another key has its own allowance.
        assert!(l.check("13900000000").await.is_ok());
    }

    #[tokio::test]
    async fn the_longest_wait_wins_and_zero_means_no_limit() {
        let l = Limiter::new(
            "t",
            &[
                Quota::per_day(2),
                Quota::per_minute(0),
                Quota::per_minute(5),
            ],
            None,
            "test",
        );
        assert_eq!(l.quotas, vec![Quota::per_minute(5), Quota::per_day(2)]);
        assert!(l.check("k").await.is_ok());
        assert!(l.check("k").await.is_ok());
        let wait = l.check("k").await.unwrap_err();
        assert!(wait > Duration::from_secs(40_000), "{wait:?}");
        let none = Limiter::new("t", &[Quota::per_minute(0)], None, "test");
        for _ in 0..100 {
            assert!(none.check("k").await.is_ok());
        }
    }

    #[tokio::test]
    async fn an_unreachable_redis_falls_back_to_counting_here() {
        let redis = RedisHandle::new("redis://127.0.0.1:1").unwrap();
        let l = Limiter::new("t", &[Quota::per_minute(1)], Some(redis), "test");
        assert!(l.check("k").await.is_ok());
        assert!(l.check("k").await.is_err());
        assert!(l.redis_down.load(Ordering::Relaxed));
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(12_000)), 12);
        assert_eq!(retry_after_secs(Duration::from_millis(12_001)), 13);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
