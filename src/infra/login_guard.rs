//! Brute-force limits on logging in: failed attempts counted per user name
//! and per client address in a fixed window from the first failure. Once
//! either count is used up, attempts are refused before the password is
//! checked, so guesses are not tested. Counted in Redis (one count for every
//! instance) when configured, else — or while Redis is down — in this process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::redis::RedisHandle;
use crate::config::AuthSettings;

/// Every counter of an attempt checked at once: when one is used up the
/// script answers the longest wait (ms) and charges nothing; else each is
/// charged, a new one living for the window. KEYS[i] is a counter, ARGV[1]
/// the window (ms), ARGV[1 + i] the limit of KEYS[i].
const BEGIN_LUA: &str = r#"
local window = tonumber(ARGV[1])
local wait = 0
for i = 1, #KEYS do
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if n >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then
      redis.call('PEXPIRE', KEYS[i], window)
      ttl = window
    end
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then return wait end
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], window) end
end
return 0
"#;

/// Settles an attempt: ARGV[i] says what becomes of KEYS[i] — `clear`,
/// `refund` (one attempt back) or `keep`.
const SETTLE_LUA: &str = r#"
for i = 1, #KEYS do
  if ARGV[i] == 'clear' then
    redis.call('DEL', KEYS[i])
  elseif ARGV[i] == 'refund' then
    local n = tonumber(redis.call('GET', KEYS[i]) or '0')
    if n <= 1 then redis.call('DEL', KEYS[i]) else redis.call('DECR', KEYS[i]) end
  end
end
return 0
"#;

/// One charged attempt: a wrong password keeps its charge; a right one is
/// settled by [`LoginGuard::succeeded`], one that could not be checked by
/// [`LoginGuard::cancel`].
#[derive(Debug)]
pub struct Attempt {
    user: Option<String>,
    address: Option<String>,
    on_redis: bool,
}

/// What settling does to a counter.
#[derive(Debug, Clone, Copy)]
enum Settle {
    Clear,
    Refund,
}

/// A counter in this process: failures so far, and when it starts again.
struct Window {
    count: u32,
    until: Instant,
}

pub struct LoginGuard {
    per_user: u32,
    per_address: u32,
    window: Duration,
    prefix: String,
    redis: Option<RedisHandle>,
    begin_script: redis::Script,
    settle_script: redis::Script,
    redis_down: AtomicBool,
    local: Mutex<HashMap<String, Window>>,
    last_prune: Mutex<Instant>,
}

const PRUNE_EVERY: Duration = Duration::from_secs(60);

impl LoginGuard {
    pub fn new(s: &AuthSettings, redis: Option<RedisHandle>) -> LoginGuard {
        LoginGuard {
            per_user: s.max_failed_logins,
            per_address: s.max_failed_logins_per_address,
            window: s.failed_login_window(),
            prefix: s.redis_prefix.clone(),
            redis,
            begin_script: redis::Script::new(BEGIN_LUA),
            settle_script: redis::Script::new(SETTLE_LUA),
            redis_down: AtomicBool::new(false),
            local: Mutex::new(HashMap::new()),
            last_prune: Mutex::new(Instant::now()),
        }
    }

    /// Keys are hashed, so neither Redis nor memory holds a user name or an
    /// address; user names are compared without case.
    fn key(&self, kind: &str, value: &str) -> String {
        let digest = Sha256::digest(value.as_bytes());
        format!("{}:{kind}:{}", self.prefix, hex::encode(&digest[..16]))
    }

    /// Charges one attempt to `username` and `address`, or says how long
    /// to wait when either has used up its failures (nothing is charged then).
    pub async fn begin(&self, username: &str, address: &str) -> Result<Attempt, Duration> {
        let user = (self.per_user > 0).then(|| self.key("user", &username.trim().to_lowercase()));
        let address = (self.per_address > 0).then(|| self.key("addr", address));
        let counters: Vec<(&str, u32)> = [(&user, self.per_user), (&address, self.per_address)]
            .into_iter()
            .filter_map(|(k, n)| k.as_deref().map(|k| (k, n)))
            .collect();
        if counters.is_empty() {
            return Ok(Attempt {
                user,
                address,
                on_redis: false,
            });
        }
        if let Some(redis) = &self.redis {
            match self.begin_redis(redis, &counters).await {
                Ok(wait) => {
                    self.redis_up();
                    if !wait.is_zero() {
                        return Err(wait);
                    }
                    return Ok(Attempt {
                        user,
                        address,
                        on_redis: true,
                    });
                }
                Err(e) => self.redis_failed(&e),
            }
        }
        self.begin_local(&counters)?;
        Ok(Attempt {
            user,
            address,
            on_redis: false,
        })
    }

    /// The password was right: the user's failures are forgotten and the
    /// address gets its attempt back (a busy office behind one address
    /// counts only its failures).
    pub async fn succeeded(&self, a: Attempt) {
        self.settle(a, Settle::Clear).await;
    }

    /// The password could not be checked (our failure, not a guess): both
    /// counters get the attempt back.
    pub async fn cancel(&self, a: Attempt) {
        self.settle(a, Settle::Refund).await;
    }

    async fn settle(&self, a: Attempt, user: Settle) {
        let mut counters = Vec::new();
        if let Some(k) = &a.user {
            counters.push((k.as_str(), user));
        }
        if let Some(k) = &a.address {
            counters.push((k.as_str(), Settle::Refund));
        }
        if counters.is_empty() {
            return;
        }
        if a.on_redis
            && let Some(redis) = &self.redis
        {
            match self.settle_redis(redis, &counters).await {
                Ok(()) => return,
                Err(e) => self.redis_failed(&e),
            }
        }
        let Ok(mut map) = self.local.lock() else {
            return;
        };
        for (key, how) in counters {
            match how {
                Settle::Clear => {
                    map.remove(key);
                }
                Settle::Refund => {
                    if let Some(w) = map.get_mut(key) {
                        w.count = w.count.saturating_sub(1);
                        if w.count == 0 {
                            map.remove(key);
                        }
                    }
                }
            }
        }
    }

    async fn begin_redis(
        &self,
        redis: &RedisHandle,
        counters: &[(&str, u32)],
    ) -> redis::RedisResult<Duration> {
        let mut conn = redis.conn().await?;
        let mut inv = self.begin_script.prepare_invoke();
        inv.arg(self.window.as_millis() as u64);
        for (key, limit) in counters {
            inv.key(*key).arg(*limit);
        }
        let wait_ms: u64 = redis.checked(inv.invoke_async(&mut conn).await).await?;
        Ok(Duration::from_millis(wait_ms))
    }

    async fn settle_redis(
        &self,
        redis: &RedisHandle,
        counters: &[(&str, Settle)],
    ) -> redis::RedisResult<()> {
        let mut conn = redis.conn().await?;
        let mut inv = self.settle_script.prepare_invoke();
        for (key, how) in counters {
            inv.key(*key).arg(match how {
                Settle::Clear => "clear",
                Settle::Refund => "refund",
            });
        }
        let _: i64 = redis.checked(inv.invoke_async(&mut conn).await).await?;
        Ok(())
    }

    fn begin_local(&self, counters: &[(&str, u32)]) -> Result<(), Duration> {
        self.prune();
        let now = Instant::now();
        // A poisoned lock (a panic elsewhere) must not open the door.
        let mut map = self.local.lock().map_err(|_| self.window)?;
        let mut wait = Duration::ZERO;
        for (key, limit) in counters {
            if let Some(w) = map.get(*key)
                && w.until > now
                && w.count >= *limit
            {
                wait = wait.max(w.until - now);
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for (key, _) in counters {
            let w = map.entry((*key).to_owned()).or_insert(Window {
                count: 0,
                until: now + self.window,
            });
            if w.until <= now {
                *w = Window {
                    count: 0,
                    until: now + self.window,
                };
            }
            w.count += 1;
        }
        Ok(())
    }

    /// Forgets windows that have ended, once a minute, so memory follows
    /// the recent failures only.
    fn prune(&self) {
        let Ok(mut last) = self.last_prune.lock() else {
            return;
        };
        if last.elapsed() < PRUNE_EVERY {
            return;
        }
        *last = Instant::now();
        if let Ok(mut map) = self.local.lock() {
            let now = Instant::now();
            map.retain(|_, w| w.until > now);
            map.shrink_to_fit();
        }
    }

    fn redis_up(&self) {
        if self.redis_down.swap(false, Ordering::Relaxed) {
            tracing::info!("Redis is back: log-in failures counted for every instance again");
        }
    }

    fn redis_failed(&self, e: &redis::RedisError) {
        if !self.redis_down.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %e,
                "Redis unavailable: log-in failures counted in this process until it is back");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_user: u32, per_address: u32) -> AuthSettings {
        AuthSettings {
            token_ttl_hours: 1,
            max_failed_logins: per_user,
            max_failed_logins_per_address: per_address,
            failed_login_window_minutes: 15,
            client_ip_header: String::new(),
            redis_prefix: "test:login".into(),
        }
    }

    #[tokio::test]
    async fn failures_per_user_are_limited_and_a_success_clears_them() {
        let g = LoginGuard::new(&settings(3, 100), None);
        for _ in 0..3 {
            g.begin("admin", "10.0.0.1").await.unwrap();
        }
        let wait = g.begin("Admin ", "10.0.0.2").await.unwrap_err();
        assert!(wait > Duration::from_secs(14 * 60) && wait <= Duration::from_secs(15 * 60));
        // Another user from the same address is not locked out.
        let a = g.begin("agent1", "10.0.0.1").await.unwrap();
        g.succeeded(a).await;
        // A success before the limit starts the user's count again.
        let g = LoginGuard::new(&settings(3, 100), None);
        g.begin("admin", "a").await.unwrap();
        g.begin("admin", "a").await.unwrap();
        let a = g.begin("admin", "a").await.unwrap();
        g.succeeded(a).await;
        for _ in 0..3 {
            g.begin("admin", "a").await.unwrap();
        }
        assert!(g.begin("admin", "a").await.is_err());
    }

    #[tokio::test]
    async fn failures_per_address_span_user_names_and_successes_are_refunded() {
        let g = LoginGuard::new(&settings(100, 3), None);
        for name in ["a", "b"] {
            g.begin(name, "10.0.0.1").await.unwrap();
        }
        let ok = g.begin("c", "10.0.0.1").await.unwrap();
        g.succeeded(ok).await;
        g.begin("d", "10.0.0.1").await.unwrap();
        assert!(g.begin("e", "10.0.0.1").await.is_err());
        assert!(g.begin("e", "10.0.0.2").await.is_ok());
    }

    #[tokio::test]
    async fn zero_means_no_limit_and_an_unreachable_redis_counts_here() {
        let g = LoginGuard::new(&settings(0, 0), None);
        for _ in 0..50 {
            g.begin("admin", "a").await.unwrap();
        }
        let redis = RedisHandle::new("redis://127.0.0.1:1").unwrap();
        let g = LoginGuard::new(&settings(1, 0), Some(redis));
        g.begin("admin", "a").await.unwrap();
        assert!(g.begin("admin", "a").await.is_err());
        assert!(g.redis_down.load(Ordering::Relaxed));
    }
}
