//! GCRA quotas counted in Redis, so every replica of a BFF draws on one
//! quota per key: together they admit at most `burst` + `per_second` × t.
//!
//! One Lua script (`gcra.lua`) per request, sent by hash (`EVALSHA`,
//! loaded once per Redis): one round trip, even for the per-IP and the
//! caller's quota together; Redis's own `TIME` as the clock (replica
//! clocks may drift; Redis's is one); one key per limited key, expiring
//! when its quota is whole again. No Redis module. The keys of one call
//! must live on one Redis node (no Redis Cluster slots across them).
//! The arithmetic is governor's: the same `remaining` and `reset` for the
//! same sequence of requests, so the `RateLimit-*` headers read the same.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::{Redis, Unavailable};

static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("gcra.lua")));

/// What the script decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Admitted: `remaining` more fit now; the whole burst is back after `reset`.
    Admitted { remaining: u32, reset: Duration },
    /// Refused: the next request fits after `retry_after`.
    Refused { retry_after: Duration },
}

/// One quota: microseconds per request and the burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedQuota {
    pub interval: Duration,
    pub burst: u32,
}

impl Redis {
    /// Counts one request against `key` (a full Redis key, see
    /// [`Redis::key`]) under `quota`.
    pub async fn gcra(&self, key: &str, quota: SharedQuota) -> Result<Verdict, Unavailable> {
        let verdicts = self.gcra_in_order(&[(key, quota)], None).await?;
        verdicts.first().copied().ok_or(Unavailable::Failed)
    }

    /// Counts one request against each key in order, in one round trip,
    /// stopping at the first refusal (whose verdict is the last one
    /// returned). `now_micros` sets the clock instead of Redis's `TIME`:
    /// for tests that step time exactly.
    pub async fn gcra_in_order(
        &self,
        keys: &[(&str, SharedQuota)],
        now_micros: Option<u64>,
    ) -> Result<Vec<Verdict>, Unavailable> {
        let reply: Vec<u64> = self
            .run("gcra", |mut connection| async move {
                let mut invocation = SCRIPT.prepare_invoke();
                for (key, quota) in keys {
                    let interval = u64::try_from(quota.interval.as_micros())
                        .unwrap_or(u64::MAX)
                        .max(1);
                    invocation.key(*key).arg(interval).arg(quota.burst);
                }
                if let Some(now) = now_micros {
                    invocation.arg(now);
                }
                invocation.invoke_async(&mut connection).await
            })
            .await?;
        Ok(reply
            .chunks_exact(3)
            .map(|verdict| {
                if verdict[0] == 1 {
                    Verdict::Admitted {
                        remaining: u32::try_from(verdict[1]).unwrap_or(u32::MAX),
                        reset: Duration::from_micros(verdict[2]),
                    }
                } else {
                    Verdict::Refused {
                        retry_after: Duration::from_micros(verdict[2]),
                    }
                }
            })
            .collect())
    }
}
