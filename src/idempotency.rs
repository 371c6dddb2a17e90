//! Idempotency records (draft-ietf-httpapi-idempotency-key-header): one
//! request per caller and key reaches the upstream; a retry gets the first
//! reply back.
//!
//! The first request claims its key; a duplicate while it is in flight is
//! refused (`409`), one with a different body too (`409`: the draft says
//! `422`, the contract has always said `409`), and one after it finished
//! gets the stored reply for `idempotency.retention`. With
//! `shared_state.redis_url` the claim is one `SET NX PX` in Redis, so the
//! rules hold across replicas; without it, or while Redis does not answer,
//! they hold in this process, in a store bounded in size (least recently
//! used dropped) and in time. A claim whose request failed is released, so
//! the client's retry is sent; an order whose outcome is unknown (a crash
//! mid-flight) still reaches the upstream at most once per key, because the
//! upstream gets the same scoped key.

use std::num::NonZeroUsize;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use lru::LruCache;
use redis::Script;
use serde::{Deserialize, Serialize};

use crate::shared_state::{Redis, SharedState};

/// `[idempotency]`: how long and how many records are kept.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdempotencyConfig {
    /// How long a finished request's reply is replayed for its key.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How long a claim holds when its request never finishes (a replica
    /// that died mid-flight): after it, the key may be sent again.
    #[serde(with = "humantime_serde")]
    pub in_flight_timeout: Duration,
    /// Records kept in each process, least recently used dropped first.
    pub max_records: NonZeroUsize,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(24 * 3600),
            in_flight_timeout: Duration::from_secs(60),
            max_records: NonZeroUsize::new(10_000).expect("not zero"),
        }
    }
}

/// A request body's digest: a key reused with another body is refused.
pub type Fingerprint = [u8; 32];

/// What a claim on a key found.
#[derive(Debug)]
pub enum Claim {
    /// The key is this request's: send it, then [`Pending::complete`].
    First(Pending),
    /// The same request finished before: its stored reply.
    Replay(Bytes),
    /// The same key is being sent right now.
    InFlight,
    /// The key was used with a different body.
    Mismatch,
}

/// The records of one BFF; cheap to clone, shared by every generation.
#[derive(Debug, Clone)]
pub struct IdempotencyRecords(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    local: Mutex<LruCache<String, Record>>,
    redis: Option<Arc<Redis>>,
    config: IdempotencyConfig,
}

/// One key's state in this process.
#[derive(Debug, Clone)]
struct Record {
    fingerprint: Fingerprint,
    /// `None` while in flight.
    reply: Option<Bytes>,
    expires: Instant,
}

/// How a record is stored in Redis: a tag byte, the fingerprint, then (when
/// finished) the reply.
const IN_FLIGHT: u8 = b'I';
const DONE: u8 = b'D';

/// Deletes a claim only while it is still this request's in-flight record.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end \
         return 0",
    )
});

impl IdempotencyRecords {
    /// Records in `shared`'s Redis when it has one, in this process otherwise.
    pub fn new(config: &IdempotencyConfig, shared: &SharedState) -> Self {
        Self(Arc::new(Inner {
            local: Mutex::new(LruCache::new(config.max_records)),
            redis: shared.redis().cloned(),
            config: config.clone(),
        }))
    }

    /// Claims `key` (already scoped to its caller) for a request whose body
    /// has `fingerprint`.
    pub async fn claim(&self, key: &str, fingerprint: Fingerprint) -> Claim {
        if let Some(redis) = &self.0.redis
            && let Some(claim) = self.claim_in_redis(redis, key, fingerprint).await
        {
            return claim;
        }
        self.claim_locally(key, fingerprint)
    }

    async fn claim_in_redis(
        &self,
        redis: &Redis,
        key: &str,
        fingerprint: Fingerprint,
    ) -> Option<Claim> {
        let redis_key = redis.key("idem", key);
        let mut in_flight = Vec::with_capacity(33);
        in_flight.push(IN_FLIGHT);
        in_flight.extend_from_slice(&fingerprint);
        let ttl = millis(self.0.config.in_flight_timeout);
        let existing: Option<Vec<u8>> = redis
            .query(
                "idempotency claim",
                redis::cmd("SET")
                    .arg(&redis_key)
                    .arg(&in_flight)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl)
                    .arg("GET"),
            )
            .await
            .ok()?;
        Some(match existing {
            None => Claim::First(Pending {
                records: self.clone(),
                key: key.to_owned(),
                fingerprint,
                in_redis: Some(in_flight),
                finished: false,
            }),
            Some(stored) => match stored.split_first() {
                Some((&DONE, rest)) if rest.len() >= 32 && rest[..32] == fingerprint => {
                    Claim::Replay(Bytes::copy_from_slice(&rest[32..]))
                }
                Some((&IN_FLIGHT, rest)) if rest == fingerprint => Claim::InFlight,
                _ => Claim::Mismatch,
            },
        })
    }

    fn claim_locally(&self, key: &str, fingerprint: Fingerprint) -> Claim {
        let now = Instant::now();
        let mut local = self.0.local.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(record) = local.get(key).filter(|r| r.expires > now) {
            return match (&record.reply, record.fingerprint == fingerprint) {
                (_, false) => Claim::Mismatch,
                (Some(reply), true) => Claim::Replay(reply.clone()),
                (None, true) => Claim::InFlight,
            };
        }
        local.put(
            key.to_owned(),
            Record {
                fingerprint,
                reply: None,
                expires: now + self.0.config.in_flight_timeout,
            },
        );
        Claim::First(Pending {
            records: self.clone(),
            key: key.to_owned(),
            fingerprint,
            in_redis: None,
            finished: false,
        })
    }

    /// Records currently held in this process.
    pub fn local_len(&self) -> usize {
        self.0
            .local
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// A claimed key whose request is being sent. Dropped without
/// [`Pending::complete`] (the request failed), it releases the key so the
/// client's retry is sent.
#[derive(Debug)]
pub struct Pending {
    records: IdempotencyRecords,
    key: String,
    fingerprint: Fingerprint,
    /// The in-flight value written to Redis, when the claim is there.
    in_redis: Option<Vec<u8>>,
    finished: bool,
}

impl Pending {
    /// Stores the reply to replay for this key during the retention.
    pub async fn complete(mut self, reply: Bytes) {
        self.finished = true;
        let inner = &self.records.0;
        let retention = inner.config.retention;
        if let (Some(redis), Some(_)) = (&inner.redis, &self.in_redis) {
            let redis_key = redis.key("idem", &self.key);
            let mut value = Vec::with_capacity(33 + reply.len());
            value.push(DONE);
            value.extend_from_slice(&self.fingerprint);
            value.extend_from_slice(&reply);
            let stored: Result<(), _> = redis
                .query(
                    "idempotency record",
                    redis::cmd("SET")
                        .arg(&redis_key)
                        .arg(&value)
                        .arg("PX")
                        .arg(millis(retention)),
                )
                .await;
            if stored.is_ok() {
                return;
            }
        }
        inner
            .local
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(
                std::mem::take(&mut self.key),
                Record {
                    fingerprint: self.fingerprint,
                    reply: Some(reply),
                    expires: Instant::now() + retention,
                },
            );
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let inner = &self.records.0;
        match (&inner.redis, self.in_redis.take()) {
            (Some(redis), Some(in_flight)) => {
                let redis = redis.clone();
                let redis_key = redis.key("idem", &self.key);
                // Not awaited: a drop cannot wait. Until it runs (or if it
                // fails) the claim expires after `in_flight_timeout`.
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move {
                        let _ = redis
                            .run("idempotency release", |mut connection| {
                                let (redis_key, in_flight) = (&redis_key, &in_flight);
                                async move {
                                    RELEASE
                                        .key(redis_key)
                                        .arg(in_flight)
                                        .invoke_async::<i64>(&mut connection)
                                        .await
                                }
                            })
                            .await;
                    });
                }
            }
            _ => {
                let mut local = inner.local.lock().unwrap_or_else(PoisonError::into_inner);
                if local
                    .peek(&self.key)
                    .is_some_and(|r| r.reply.is_none() && r.fingerprint == self.fingerprint)
                {
                    local.pop(&self.key);
                }
            }
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(max: usize, retention: Duration) -> IdempotencyRecords {
        IdempotencyRecords::new(
            &IdempotencyConfig {
                retention,
                in_flight_timeout: Duration::from_secs(60),
                max_records: NonZeroUsize::new(max).expect("not zero"),
            },
            &SharedState::default(),
        )
    }

    #[tokio::test]
    async fn first_claims_then_in_flight_then_replay_and_mismatch() {
        let records = records(10, Duration::from_secs(60));
        let Claim::First(pending) = records.claim("k", [1; 32]).await else {
            panic!("the first claim must be the request's own");
        };
        assert!(matches!(records.claim("k", [1; 32]).await, Claim::InFlight));
        assert!(matches!(records.claim("k", [2; 32]).await, Claim::Mismatch));
        pending.complete(Bytes::from_static(b"reply")).await;
        match records.claim("k", [1; 32]).await {
            Claim::Replay(reply) => assert_eq!(reply, "reply"),
            other => panic!("expected a replay, got {other:?}"),
        }
        assert!(matches!(records.claim("k", [2; 32]).await, Claim::Mismatch));
        // Another key is its own.
        assert!(matches!(
            records.claim("other", [2; 32]).await,
            Claim::First(_)
        ));
    }

    #[tokio::test]
    async fn a_failed_request_releases_its_key() {
        let records = records(10, Duration::from_secs(60));
        let Claim::First(pending) = records.claim("k", [1; 32]).await else {
            panic!("the first claim must be the request's own");
        };
        drop(pending);
        assert!(matches!(records.claim("k", [1; 32]).await, Claim::First(_)));
    }

    #[tokio::test]
    async fn records_are_bounded_in_number_and_in_time() {
        let records = records(3, Duration::from_millis(30));
        for key in ["a", "b", "c", "d"] {
            let Claim::First(pending) = records.claim(key, [0; 32]).await else {
                panic!("{key} is new");
            };
            pending.complete(Bytes::from_static(b"r")).await;
        }
        assert_eq!(records.local_len(), 3);
        // "a" was dropped first: it can be claimed again.
        assert!(matches!(records.claim("a", [0; 32]).await, Claim::First(_)));
        std::thread::sleep(Duration::from_millis(40));
        // Past the retention, "d" is gone too.
        assert!(matches!(records.claim("d", [0; 32]).await, Claim::First(_)));
    }
}
