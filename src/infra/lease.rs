//! A named lease so only one instance sweeps at a time. With Redis it is a
//! `SET NX PX` key held by this instance; without Redis (or while Redis is
//! down) every caller gets it — correctness never depends on the lease, only
//! on the database's compare-and-set.

use std::time::Duration;

use crate::infra::redis::RedisHandle;

#[derive(Clone)]
pub enum Lease {
    Local,
    Redis { redis: RedisHandle, holder: String },
}

impl Lease {
    pub fn new(redis: Option<RedisHandle>) -> Lease {
        match redis {
            None => Lease::Local,
            Some(redis) => Lease::Redis {
                redis,
                holder: format!("{}-{}", std::process::id(), rand::random::<u64>()),
            },
        }
    }

    pub async fn try_acquire(&self, name: &str, ttl: Duration) -> bool {
        match self {
            Lease::Local => true,
            Lease::Redis { redis, holder } => match redis.acquire(name, holder, ttl).await {
                Ok(held) => held,
                Err(e) => {
                    tracing::warn!(error = %e, "lease: Redis unavailable; proceeding without it");
                    true
                }
            },
        }
    }
}
