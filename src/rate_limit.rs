//! Rate limiting with `governor`: per subject, and per client IP before
//! authentication, with the RateLimit headers.
//!
//! One GCRA quota per BFF, one state per key. Authenticated routes are
//! counted twice: first against the client IP, before the token is even
//! verified (so floods of bad tokens are limited too), then against the
//! token's subject. A background task drops keys whose state has returned
//! to "fresh", so a flood of distinct keys costs memory only for as long as
//! those keys are actually limited.

use crate::metrics::Limiter;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::auth::{ApiKey, Authenticated};
use crate::client_ip::ClientIp;
use crate::error::{ApiError, seconds_header};
use crate::metrics::Metrics;

use serde::{Deserialize, Serialize};

/// A GCRA quota per subject (per client IP where no subject is known),
/// and one per client IP counted before any token is verified.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Sustained requests per second.
    pub per_second: NonZeroU32,
    /// Requests allowed at once above the sustained rate.
    pub burst: NonZeroU32,
    /// Sustained requests per second per client IP, counted before token
    /// verification, so floods of bad tokens are limited too.
    pub per_ip_per_second: NonZeroU32,
    /// Burst of the per-IP quota.
    pub per_ip_burst: NonZeroU32,
    /// How often idle keys are dropped, which bounds the limiter's memory.
    #[serde(with = "humantime_serde")]
    pub prune_interval: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_second: NonZeroU32::new(10).expect("not zero"),
            burst: NonZeroU32::new(20).expect("not zero"),
            per_ip_per_second: NonZeroU32::new(100).expect("not zero"),
            per_ip_burst: NonZeroU32::new(200).expect("not zero"),
            prune_interval: Duration::from_secs(30),
        }
    }
}

static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Who a request is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimitKey {
    Subject(Arc<str>),
    Ip(IpAddr),
}

/// The outcome of counting one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let through; `remaining` more fit right now, all are back after `reset`.
    Allowed { remaining: u32, reset: Duration },
    /// Refused; the next request fits after `retry_after`.
    Limited { retry_after: Duration },
}

/// A keyed GCRA limiter with the numbers the RateLimit headers need.
#[derive(Debug)]
pub struct RateLimiter {
    limiter: DefaultKeyedRateLimiter<LimitKey, StateInformationMiddleware>,
    per_second: NonZeroU32,
    burst: u32,
    replenish_one: Duration,
}

impl RateLimiter {
    pub fn with_quota(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Self {
            limiter: governor::RateLimiter::keyed(quota)
                .with_middleware::<StateInformationMiddleware>(),
            per_second,
            burst: burst.get(),
            replenish_one: quota.replenish_interval(),
        }
    }

    /// Counts one request for `key`.
    pub fn check(&self, key: &LimitKey) -> Decision {
        match self.limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Decision::Allowed {
                    remaining,
                    reset: self.replenish_one * self.burst.saturating_sub(remaining),
                }
            }
            Err(not_until) => Decision::Limited {
                retry_after: not_until.wait_time_from(self.limiter.clock().now()),
            },
        }
    }

    /// The quota it was made with: (per second, burst).
    pub fn quota(&self) -> (NonZeroU32, NonZeroU32) {
        (
            self.per_second,
            NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN),
        )
    }

    /// The quota's burst: what `RateLimit-Limit` advertises.
    pub fn limit(&self) -> u32 {
        self.burst
    }

    /// Keys currently held.
    pub fn tracked_keys(&self) -> usize {
        self.limiter.len()
    }

    /// Drops keys whose state is indistinguishable from a fresh one.
    pub fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Prunes every `every` until the limiter is dropped.
    pub fn spawn_pruner(limiter: &Arc<Self>, every: Duration) {
        let weak: Weak<Self> = Arc::downgrade(limiter);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                match weak.upgrade() {
                    Some(limiter) => limiter.prune(),
                    None => break,
                }
            }
        });
    }

    /// `RateLimit-Limit`, `-Remaining` and `-Reset` of this quota.
    pub(crate) fn write_headers(&self, headers: &mut HeaderMap, remaining: u32, reset: Duration) {
        headers.insert(RATELIMIT_LIMIT.clone(), HeaderValue::from(self.burst));
        headers.insert(RATELIMIT_REMAINING.clone(), HeaderValue::from(remaining));
        let reset_secs = reset.as_secs() + u64::from(reset.subsec_nanos() > 0);
        headers.insert(RATELIMIT_RESET.clone(), HeaderValue::from(reset_secs));
    }

    /// The `429` reply, with every header a client needs to back off.
    pub(crate) fn refusal(&self, retry_after: Duration) -> Response {
        let mut response = ApiError::RateLimited { retry_after }.into_response();
        let headers = response.headers_mut();
        let full = retry_after + self.replenish_one * self.burst.saturating_sub(1);
        self.write_headers(headers, 0, full);
        headers.insert(axum::http::header::RETRY_AFTER, seconds_header(retry_after));
        response
    }
}

/// Each declared route's own quota state, by route and quota, kept across
/// config reloads: a route whose quota did not change keeps counting where
/// it was; a changed quota starts afresh.
#[derive(Debug, Default)]
pub struct RouteLimiters {
    limiters: std::sync::Mutex<std::collections::HashMap<RouteQuota, (Arc<RateLimiter>, u64)>>,
}

/// (route, per second, burst): the key of a route's limiter, which maps to
/// the limiter and the last config generation that used it.
type RouteQuota = (String, u32, u32);

impl RouteLimiters {
    /// The limiter of `route` with this quota for config `generation`,
    /// made (and pruned every `prune_every`) on first use. Call inside the
    /// runtime.
    pub fn get(
        &self,
        route: &str,
        (per_second, burst): (NonZeroU32, NonZeroU32),
        generation: u64,
        prune_every: Duration,
    ) -> Arc<RateLimiter> {
        let key = (route.to_owned(), per_second.get(), burst.get());
        let mut limiters = self
            .limiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = limiters.entry(key).or_insert_with(|| {
            let limiter = Arc::new(RateLimiter::with_quota(per_second, burst));
            RateLimiter::spawn_pruner(&limiter, prune_every);
            (limiter, generation)
        });
        entry.1 = entry.1.max(generation);
        entry.0.clone()
    }

    /// Drops the limiters no config since `generation` uses.
    pub fn retain_since(&self, generation: u64) {
        self.limiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, (_, used)| *used >= generation);
    }
}

/// What the rate-limit middleware needs: both limiters and the metrics
/// that count refusals.
#[derive(Debug, Clone)]
pub struct RateLimits {
    pub per_subject: Arc<RateLimiter>,
    pub per_ip: Arc<RateLimiter>,
    pub metrics: Arc<Metrics>,
}

/// A request let through by its caller's quota: the RateLimit headers
/// its reply gets.
#[derive(Debug)]
pub struct Admitted {
    /// The machine client's key, whose own quota it was counted against.
    api_key: Option<Arc<ApiKey>>,
    per_subject: Arc<RateLimiter>,
    remaining: u32,
    reset: Duration,
}

impl Admitted {
    /// Adds the RateLimit headers, unless a route with its own, narrower
    /// quota has written them.
    pub fn write_headers(&self, response: &mut Response) {
        if response.headers().contains_key(&RATELIMIT_LIMIT) {
            return;
        }
        let limiter = self
            .api_key
            .as_ref()
            .map_or(&*self.per_subject, |key| &key.limiter);
        limiter.write_headers(response.headers_mut(), self.remaining, self.reset);
    }
}

/// Counts the request against its caller's quota (its API key's own, or
/// the BFF's per subject; per IP when unauthenticated): `Err` with the
/// `429` when over.
pub fn admit_caller<'a>(
    limits: &'a RateLimits,
    request: &'a Request,
) -> Result<Admitted, Refused<'a>> {
    let api_key = request
        .extensions()
        .get::<Authenticated>()
        .and_then(|auth| auth.api_key.as_ref());
    let (limiter, key) = match api_key {
        Some(api_key) => (&api_key.limiter, LimitKey::Subject(api_key.name.clone())),
        None => (&*limits.per_subject, key_for(request)),
    };
    match limiter.check(&key) {
        Decision::Allowed { remaining, reset } => Ok(Admitted {
            api_key: api_key.cloned(),
            per_subject: limits.per_subject.clone(),
            remaining,
            reset,
        }),
        Decision::Limited { retry_after } => {
            limits.metrics.rate_limited(Limiter::Subject);
            Err(Refused {
                limiter,
                retry_after,
            })
        }
    }
}

/// A request over a quota: its `429` ([`Refused::into_response`]).
#[derive(Debug)]
pub struct Refused<'a> {
    limiter: &'a RateLimiter,
    retry_after: Duration,
}

impl IntoResponse for Refused<'_> {
    fn into_response(self) -> Response {
        self.limiter.refusal(self.retry_after)
    }
}

/// Counts the request against its client IP, before authentication, so a
/// flood of bad tokens is limited like any other: `Err` with the `429`
/// when over.
pub fn admit_ip<'a>(limits: &'a RateLimits, request: &Request) -> Result<(), Refused<'a>> {
    let limiter = &limits.per_ip;
    match limiter.check(&LimitKey::Ip(client_ip(request))) {
        Decision::Allowed { .. } => Ok(()),
        Decision::Limited { retry_after } => {
            limits.metrics.rate_limited(Limiter::ClientIp);
            Err(Refused {
                limiter,
                retry_after,
            })
        }
    }
}

fn client_ip(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ClientIp>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ClientIp(ip)| *ip)
}

fn key_for(request: &Request) -> LimitKey {
    match request.extensions().get::<Authenticated>() {
        Some(auth) => LimitKey::Subject(auth.claims.subject.clone()),
        None => LimitKey::Ip(client_ip(request)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: u32, burst: u32) -> RateLimiter {
        RateLimiter::with_quota(
            NonZeroU32::new(per_second).expect("nonzero"),
            NonZeroU32::new(burst).expect("nonzero"),
        )
    }

    #[test]
    fn burst_then_limited_with_a_retry_time() {
        let limiter = limiter(1, 3);
        let key = LimitKey::Subject("u1".into());
        let remaining: Vec<_> = (0..3)
            .map(|_| match limiter.check(&key) {
                Decision::Allowed { remaining, .. } => remaining,
                Decision::Limited { .. } => panic!("limited inside the burst"),
            })
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        match limiter.check(&key) {
            Decision::Limited { retry_after } => assert!(retry_after <= Duration::from_secs(1)),
            other => panic!("expected limited, got {other:?}"),
        }
        // Another subject has its own quota.
        assert!(matches!(
            limiter.check(&LimitKey::Subject("u2".into())),
            Decision::Allowed { .. }
        ));
    }

    #[test]
    fn flood_of_distinct_keys_is_pruned_back_to_nothing() {
        let limiter = limiter(1000, 1);
        for i in 0..20_000u32 {
            limiter.check(&LimitKey::Ip(IpAddr::from(i.to_be_bytes())));
        }
        assert_eq!(limiter.tracked_keys(), 20_000);
        std::thread::sleep(Duration::from_millis(20));
        limiter.prune();
        assert_eq!(limiter.tracked_keys(), 0);
    }
}
