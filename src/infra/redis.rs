//! Redis, when `redis.url` is set: one handle that connects lazily and
//! reconnects by itself, with deliberate timeouts (1 s connect, 1 s
//! response). Callers fall back to in-process behaviour on any error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{Mutex, broadcast};

#[derive(Clone)]
pub struct RedisHandle {
    client: redis::Client,
    conn: Arc<Mutex<Option<ConnectionManager>>>,
    last_attempt: Arc<Mutex<Option<Instant>>>,
}

const RETRY_EVERY: Duration = Duration::from_secs(2);

const LEASE_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
"#;

impl RedisHandle {
    pub fn new(url: &str) -> redis::RedisResult<RedisHandle> {
        Ok(RedisHandle {
            client: redis::Client::open(url)?,
            conn: Arc::new(Mutex::new(None)),
            last_attempt: Arc::new(Mutex::new(None)),
        })
    }

    /// The shared connection, or an error at once while Redis is down: at
    /// most one connection attempt per `RETRY_EVERY`, made without holding
    /// up the callers that arrive meanwhile.
    pub(crate) async fn conn(&self) -> redis::RedisResult<ConnectionManager> {
        if let Some(c) = self.conn.lock().await.as_ref() {
            return Ok(c.clone());
        }
        {
            // Do not hammer a Redis that is down: one attempt per interval.
            let mut last = self.last_attempt.lock().await;
            if last.is_some_and(|t| t.elapsed() < RETRY_EVERY) {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "Redis unavailable (waiting to reconnect)",
                )));
            }
            *last = Some(Instant::now());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2);
        let c = self
            .client
            .get_connection_manager_with_config(config)
            .await?;
        tracing::info!("connected to Redis");
        *self.conn.lock().await = Some(c.clone());
        Ok(c)
    }

    /// Passes `r` on; when it failed because Redis is unreachable, drops
    /// the shared connection so that the calls after it fail at once until
    /// the next attempt, instead of each waiting out the connection's own
    /// reconnection (the event fan-out is awaited by every transition).
    pub(crate) async fn checked<T>(&self, r: redis::RedisResult<T>) -> redis::RedisResult<T> {
        if let Err(e) = &r
            && (e.is_io_error()
                || e.is_timeout()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
                || e.is_unrecoverable_error())
        {
            let dropped = self.conn.lock().await.take().is_some();
            if dropped {
                *self.last_attempt.lock().await = Some(Instant::now());
                tracing::warn!(error = %e, "Redis connection lost; retrying every {} s", RETRY_EVERY.as_secs());
            }
        }
        r
    }

    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut c = self.conn().await?;
        let r = redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map(|_| ());
        self.checked(r).await
    }

    /// Takes or renews the lease `name` for `holder`.
    pub async fn acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> redis::RedisResult<bool> {
        let mut c = self.conn().await?;
        let held = redis::Script::new(LEASE_LUA)
            .key(format!("hotline:lease:{name}"))
            .arg(holder)
            .arg(ttl.as_millis() as u64)
            .invoke_async::<i32>(&mut c)
            .await;
        Ok(self.checked(held).await? == 1)
    }

    pub async fn publish(&self, channel: &str, payload: &str) -> redis::RedisResult<()> {
        let mut c = self.conn().await?;
        let r = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async::<i64>(&mut c)
            .await
            .map(|_| ());
        self.checked(r).await
    }

    /// Forwards every message on `channel` into `tx`, resubscribing after
    /// any failure, for as long as the process runs.
    pub fn forward(&self, channel: &'static str, tx: broadcast::Sender<String>) {
        self.listen(
            channel,
            || {},
            move |p| {
                let _ = tx.send(p);
            },
        );
    }

    /// Calls `on_message` with every message on `channel`, for as long as the
    /// process runs, resubscribing after any failure. `on_subscribed` runs
    /// each time a subscription is (re)established: messages published while
    /// it was down are lost, and a listener may need to make up for them.
    pub fn listen(
        &self,
        channel: &'static str,
        on_subscribed: impl Fn() + Send + Sync + 'static,
        on_message: impl Fn(String) + Send + Sync + 'static,
    ) {
        let client = self.client.clone();
        tokio::spawn(async move {
            use futures_util::StreamExt;
            loop {
                match client.get_async_pubsub().await {
                    Ok(mut ps) => match ps.subscribe(channel).await {
                        Ok(()) => {
                            tracing::info!(channel, "subscribed to Redis");
                            on_subscribed();
                            let mut stream = ps.into_on_message();
                            while let Some(msg) = stream.next().await {
                                if let Ok(p) = msg.get_payload::<String>() {
                                    on_message(p);
                                }
                            }
                            tracing::warn!(channel, "Redis subscription ended; resubscribing");
                        }
                        Err(e) => tracing::warn!(error = %e, "Redis subscribe failed"),
                    },
                    Err(e) => tracing::debug!(error = %e, "Redis pub/sub unavailable"),
                }
                tokio::time::sleep(RETRY_EVERY).await;
            }
        });
    }
}
