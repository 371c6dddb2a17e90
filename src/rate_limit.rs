//! Rate limiting: per subject, and per client IP before authentication,
//! with the RateLimit headers.
//!
//! One GCRA quota per BFF, one state per key. Authenticated routes are
//! counted twice: first against the client IP, before the token is even
//! verified (so floods of bad tokens are limited too), then against the
//! token's subject. In one process the state is `governor`'s: a background
//! task drops keys whose state has returned to "fresh", so a flood of
//! distinct keys costs memory only for as long as those keys are actually
//! limited. With `shared_state.redis_url` the same GCRA runs in Redis
//! ([`crate::shared_state::gcra`]), one quota for all replicas; while Redis
//! does not answer, each replica falls back to its own share of the quota
//! (divided by `shared_state.replicas_hint`), or refuses with `503` where a
//! route chose to fail closed.

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

use crate::auth::{Authenticated, KnownCaller};
use crate::client_ip::ClientIp;
use crate::error::{ApiError, seconds_header};
use crate::metrics::Metrics;
use crate::shared_state::gcra::{SharedQuota, Verdict};
use crate::shared_state::{Redis, SharedState};

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
    Allowed {
        remaining: u32,
        reset: Duration,
        figures: Figures,
    },
    /// Refused; the next request fits after `retry_after`.
    Limited {
        retry_after: Duration,
        figures: Figures,
    },
    /// The shared quota could not be counted and the route fails closed.
    Unavailable,
}

/// The quota a decision was counted against: what the headers state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    /// `RateLimit-Limit`: the burst.
    burst: u32,
    /// How long one request takes to be replenished.
    replenish_one: Duration,
}

impl Figures {
    /// `RateLimit-Limit`, `-Remaining` and `-Reset` of this quota.
    pub(crate) fn write_headers(self, headers: &mut HeaderMap, remaining: u32, reset: Duration) {
        headers.insert(RATELIMIT_LIMIT.clone(), HeaderValue::from(self.burst));
        headers.insert(RATELIMIT_REMAINING.clone(), HeaderValue::from(remaining));
        let reset_secs = reset.as_secs() + u64::from(reset.subsec_nanos() > 0);
        headers.insert(RATELIMIT_RESET.clone(), HeaderValue::from(reset_secs));
    }

    /// The `429` reply, with every header a client needs to back off.
    pub(crate) fn refusal(self, retry_after: Duration) -> Response {
        let mut response = ApiError::RateLimited { retry_after }.into_response();
        let headers = response.headers_mut();
        let full = retry_after + self.replenish_one * self.burst.saturating_sub(1);
        self.write_headers(headers, 0, full);
        headers.insert(axum::http::header::RETRY_AFTER, seconds_header(retry_after));
        response
    }
}

/// A keyed GCRA limiter with the numbers the RateLimit headers need: in
/// this process, or in Redis with this process's share as the fallback.
#[derive(Debug)]
pub struct RateLimiter {
    local: DefaultKeyedRateLimiter<LimitKey, StateInformationMiddleware>,
    local_figures: Figures,
    per_second: NonZeroU32,
    burst: NonZeroU32,
    shared: Option<Shared>,
}

/// A quota counted in Redis.
#[derive(Debug)]
struct Shared {
    redis: Arc<Redis>,
    /// `<prefix>:gcra:<name>:`; the limited key follows.
    key_prefix: String,
    quota: SharedQuota,
    figures: Figures,
    /// Refuse (`503`) rather than fall back when Redis does not answer.
    fail_closed: bool,
}

/// Where a quota is counted, and what happens when Redis does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhenSharedStateFails {
    /// Each replica admits its share of the quota (the default).
    #[default]
    FallBack,
    /// Refuse with `503 shared_state_unavailable`: for a login or a costly
    /// mutation that must never exceed its quota.
    Refuse,
}

impl RateLimiter {
    /// A quota kept in this process only.
    pub fn with_quota(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        Self::counted(
            Quota::per_second(per_second).allow_burst(burst),
            (per_second, burst),
            None,
        )
    }

    /// Counts `local` in this process, and in Redis when `shared` is set.
    fn counted(
        local: Quota,
        (per_second, burst): (NonZeroU32, NonZeroU32),
        shared: Option<Shared>,
    ) -> Self {
        Self {
            local: governor::RateLimiter::keyed(local)
                .with_middleware::<StateInformationMiddleware>(),
            local_figures: Figures {
                burst: local.burst_size().get(),
                replenish_one: local.replenish_interval(),
            },
            per_second,
            burst,
            shared,
        }
    }

    /// A quota counted in the shared state when it has Redis (its keys
    /// named after `name`), with this replica's share of it as the local
    /// fallback; in this process only otherwise.
    pub fn shared(
        per_second: NonZeroU32,
        burst: NonZeroU32,
        name: &str,
        state: &SharedState,
        when_it_fails: WhenSharedStateFails,
    ) -> Self {
        let Some(redis) = state.redis() else {
            return Self::with_quota(per_second, burst);
        };
        let share = redis.replicas_hint().get();
        let interval = Duration::from_secs(1) / per_second.get();
        let local_quota = Quota::with_period(interval * share)
            .unwrap_or_else(|| Quota::per_second(per_second))
            .allow_burst(NonZeroU32::new(burst.get() / share).unwrap_or(NonZeroU32::MIN));
        let mut key_prefix = redis.key("gcra", name);
        key_prefix.push(':');
        let shared = Shared {
            redis: redis.clone(),
            key_prefix,
            quota: SharedQuota {
                interval,
                burst: burst.get(),
            },
            figures: Figures {
                burst: burst.get(),
                replenish_one: interval,
            },
            fail_closed: when_it_fails == WhenSharedStateFails::Refuse,
        };
        Self::counted(local_quota, (per_second, burst), Some(shared))
    }

    /// Counts one request for `key`: in Redis when shared and answering,
    /// in this process otherwise.
    pub async fn check(&self, key: &LimitKey) -> Decision {
        if let Some(shared) = &self.shared {
            match shared.check(key).await {
                Some(decision) => return decision,
                None if shared.fail_closed => return Decision::Unavailable,
                None => {}
            }
        }
        self.check_local(key)
    }

    /// Counts one request for `key` in this process.
    fn check_local(&self, key: &LimitKey) -> Decision {
        let figures = self.local_figures;
        match self.local.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Decision::Allowed {
                    remaining,
                    reset: figures.replenish_one * figures.burst.saturating_sub(remaining),
                    figures,
                }
            }
            Err(not_until) => Decision::Limited {
                retry_after: not_until.wait_time_from(self.local.clock().now()),
                figures,
            },
        }
    }

    /// The quota it was made with: (per second, burst).
    pub fn quota(&self) -> (NonZeroU32, NonZeroU32) {
        (self.per_second, self.burst)
    }

    /// Keys currently held in this process.
    pub fn tracked_keys(&self) -> usize {
        self.local.len()
    }

    /// Drops keys whose state is indistinguishable from a fresh one.
    pub fn prune(&self) {
        self.local.retain_recent();
        self.local.shrink_to_fit();
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
}

impl Shared {
    /// The decision from Redis, or `None` when it did not answer.
    async fn check(&self, key: &LimitKey) -> Option<Decision> {
        let redis_key = self.redis_key(key);
        let verdict = self.redis.gcra(&redis_key, self.quota).await.ok()?;
        Some(self.decision(verdict))
    }

    /// `<prefix>:gcra:<limiter>:s:<subject>` or `...:ip:<address>`.
    fn redis_key(&self, key: &LimitKey) -> String {
        use std::fmt::Write as _;
        let mut redis_key = String::with_capacity(self.key_prefix.len() + 40);
        redis_key.push_str(&self.key_prefix);
        match key {
            LimitKey::Subject(subject) => {
                redis_key.push_str("s:");
                redis_key.push_str(subject);
            }
            LimitKey::Ip(ip) => {
                let _ = write!(redis_key, "ip:{ip}");
            }
        }
        redis_key
    }

    fn decision(&self, verdict: Verdict) -> Decision {
        let figures = self.figures;
        match verdict {
            Verdict::Admitted { remaining, reset } => Decision::Allowed {
                remaining,
                reset,
                figures,
            },
            Verdict::Refused { retry_after } => Decision::Limited {
                retry_after,
                figures,
            },
        }
    }
}

/// Counts one request against `first`, then, if admitted, against
/// `second`: with both quotas in one Redis, in one round trip; otherwise
/// one check after the other. The second decision is `None` when the
/// first refused.
pub async fn check_in_order(
    (first, first_key): (&RateLimiter, &LimitKey),
    (second, second_key): (&RateLimiter, &LimitKey),
) -> (Decision, Option<Decision>) {
    if let (Some(a), Some(b)) = (&first.shared, &second.shared)
        && Arc::ptr_eq(&a.redis, &b.redis)
    {
        let (first_redis_key, second_redis_key) = (a.redis_key(first_key), b.redis_key(second_key));
        let keys = [
            (first_redis_key.as_str(), a.quota),
            (second_redis_key.as_str(), b.quota),
        ];
        if let Ok(verdicts) = a.redis.gcra_in_order(&keys, None).await
            && let Some(verdict) = verdicts.first()
        {
            return (
                a.decision(*verdict),
                verdicts.get(1).map(|verdict| b.decision(*verdict)),
            );
        }
    }
    let decision = first.check(first_key).await;
    if !matches!(decision, Decision::Allowed { .. }) {
        return (decision, None);
    }
    (decision, Some(second.check(second_key).await))
}

/// Each declared route's own quota state, by route and quota, kept across
/// config reloads: a route whose quota did not change keeps counting where
/// it was; a changed quota starts afresh.
#[derive(Debug, Default)]
pub struct RouteLimiters {
    limiters: std::sync::Mutex<std::collections::HashMap<RouteQuota, (Arc<RateLimiter>, u64)>>,
}

/// (route, per second, burst, when Redis fails): the key of a route's
/// limiter, which maps to the limiter and the last config generation that
/// used it.
type RouteQuota = (String, u32, u32, WhenSharedStateFails);

/// A declared route's `[rate_limit]`: a GCRA quota per subject for this
/// route alone.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteQuotaSpec {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
    /// With `shared_state.redis_url`, what happens while Redis does not
    /// answer: `fall-back` (the default) to this replica's share of the
    /// quota, or `refuse` with `503 shared_state_unavailable`.
    #[serde(default)]
    pub when_shared_state_fails: WhenSharedStateFails,
}

impl RouteLimiters {
    /// The limiter of `route` with this quota for config `generation`,
    /// made (and pruned every `prune_every`) on first use, counted in
    /// `shared` when it has Redis. Call inside the runtime.
    pub fn get(
        &self,
        route: &str,
        quota: RouteQuotaSpec,
        shared: &SharedState,
        generation: u64,
        prune_every: Duration,
    ) -> Arc<RateLimiter> {
        let RouteQuotaSpec {
            per_second,
            burst,
            when_shared_state_fails,
        } = quota;
        let key = (
            route.to_owned(),
            per_second.get(),
            burst.get(),
            when_shared_state_fails,
        );
        let mut limiters = self
            .limiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = limiters.entry(key).or_insert_with(|| {
            let limiter = Arc::new(RateLimiter::shared(
                per_second,
                burst,
                &format!("route:{route}"),
                shared,
                when_shared_state_fails,
            ));
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
    figures: Figures,
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
        self.figures
            .write_headers(response.headers_mut(), self.remaining, self.reset);
    }
}

/// Counts the request against its caller's quota (its API key's own, or
/// the BFF's per subject; per IP when unauthenticated): `Err` with the
/// `429` when over. Takes the request's parts, not the request, so that
/// nothing `!Sync` is held while Redis answers.
pub async fn admit_caller(
    limits: &RateLimits,
    auth: Option<&Authenticated>,
    ip: IpAddr,
) -> Result<Admitted, Refused> {
    let (limiter, key) = match auth {
        Some(Authenticated {
            api_key: Some(api_key),
            ..
        }) => (&api_key.limiter, LimitKey::Subject(api_key.name.clone())),
        Some(auth) => (
            &*limits.per_subject,
            LimitKey::Subject(auth.claims.subject.clone()),
        ),
        None => (&*limits.per_subject, LimitKey::Ip(ip)),
    };
    let decision = limiter.check(&key).await;
    Admitted::from_decision(decision).inspect_err(|refused| {
        if matches!(refused, Refused::OverQuota { .. }) {
            limits.metrics.rate_limited(Limiter::Subject);
        }
    })
}

impl Admitted {
    /// `Ok` for an admitting decision, the refusal otherwise.
    pub fn from_decision(decision: Decision) -> Result<Self, Refused> {
        match decision {
            Decision::Allowed {
                remaining,
                reset,
                figures,
            } => Ok(Self {
                figures,
                remaining,
                reset,
            }),
            Decision::Limited {
                retry_after,
                figures,
            } => Err(Refused::OverQuota {
                figures,
                retry_after,
            }),
            Decision::Unavailable => Err(Refused::SharedStateUnavailable),
        }
    }
}

/// Counts the request against its client IP and then its caller's quota,
/// in one Redis round trip when both are there, before the credential is
/// verified (again): for a caller already known ([`KnownCaller`]). The
/// same outcome as [`admit_ip`] then [`admit_caller`] for that caller.
pub async fn admit_ip_and_caller(
    limits: &RateLimits,
    ip: IpAddr,
    caller: &KnownCaller,
) -> Result<Admitted, Refused> {
    let (limiter, key) = match caller {
        KnownCaller::ApiKey(api_key) => (&api_key.limiter, LimitKey::Subject(api_key.name.clone())),
        KnownCaller::Subject(subject) => (&*limits.per_subject, LimitKey::Subject(subject.clone())),
    };
    let (ip_decision, caller_decision) =
        check_in_order((&limits.per_ip, &LimitKey::Ip(ip)), (limiter, &key)).await;
    match caller_decision {
        Some(decision) => Admitted::from_decision(decision).inspect_err(|refused| {
            if matches!(refused, Refused::OverQuota { .. }) {
                limits.metrics.rate_limited(Limiter::Subject);
            }
        }),
        None => {
            limits.metrics.rate_limited(Limiter::ClientIp);
            Err(Admitted::from_decision(ip_decision)
                .err()
                .unwrap_or(Refused::SharedStateUnavailable))
        }
    }
}

/// A request refused by a quota ([`Refused::into_response`]).
#[derive(Debug)]
pub enum Refused {
    /// Over its quota: `429` with the RateLimit headers and `Retry-After`.
    OverQuota {
        figures: Figures,
        retry_after: Duration,
    },
    /// A fail-closed quota that Redis could not count: `503`.
    SharedStateUnavailable,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Self::OverQuota {
                figures,
                retry_after,
            } => figures.refusal(retry_after),
            Self::SharedStateUnavailable => ApiError::SharedStateUnavailable.into_response(),
        }
    }
}

/// Counts the request against its client IP, before authentication, so a
/// flood of bad tokens is limited like any other: `Err` with the `429`
/// when over.
pub async fn admit_ip(limits: &RateLimits, ip: IpAddr) -> Result<(), Refused> {
    let decision = limits.per_ip.check(&LimitKey::Ip(ip)).await;
    match Admitted::from_decision(decision) {
        Ok(_) => Ok(()),
        Err(refused) => {
            limits.metrics.rate_limited(Limiter::ClientIp);
            Err(refused)
        }
    }
}

/// The client's address as [`crate::client_ip`] resolved it.
pub fn client_ip(request: &Request) -> IpAddr {
    client_ip_of(request.extensions())
}

/// [`client_ip`] from a request's extensions.
pub fn client_ip_of(extensions: &axum::http::Extensions) -> IpAddr {
    extensions
        .get::<ClientIp>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ClientIp(ip)| *ip)
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
            .map(|_| match limiter.check_local(&key) {
                Decision::Allowed { remaining, .. } => remaining,
                other => panic!("refused inside the burst: {other:?}"),
            })
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        match limiter.check_local(&key) {
            Decision::Limited { retry_after, .. } => assert!(retry_after <= Duration::from_secs(1)),
            other => panic!("expected limited, got {other:?}"),
        }
        // Another subject has its own quota.
        assert!(matches!(
            limiter.check_local(&LimitKey::Subject("u2".into())),
            Decision::Allowed { .. }
        ));
    }

    #[test]
    fn flood_of_distinct_keys_is_pruned_back_to_nothing() {
        let limiter = limiter(1000, 1);
        for i in 0..20_000u32 {
            limiter.check_local(&LimitKey::Ip(IpAddr::from(i.to_be_bytes())));
        }
        assert_eq!(limiter.tracked_keys(), 20_000);
        std::thread::sleep(Duration::from_millis(20));
        limiter.prune();
        assert_eq!(limiter.tracked_keys(), 0);
    }
}
