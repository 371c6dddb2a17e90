//! One instance of an upstream: its address, its circuit breaker, the
//! load it carries, and the innermost layers of a call (breaker,
//! deadline, HTTP, body check).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::{Request, Uri};
use url::Url;

use super::cache::{Freshness, caching_headers};
use super::client::UpstreamClient;
use super::guard::{CallOutcome, CircuitBreaker, CircuitState};
use super::request::{Reply, UpstreamRequest};
use super::{Caller, UpstreamError, UpstreamErrorKind, UpstreamName};

/// The latency an instance is assumed to have before its first reply.
const DEFAULT_COST: Duration = Duration::from_millis(30);

/// How fast an instance's latency estimate forgets: after this long
/// without calls, it has fallen to about a third.
const COST_DECAY: Duration = Duration::from_secs(10);

/// What the calls of one upstream share: its name, its pooled client and
/// how each call is bounded.
#[derive(Debug)]
pub(super) struct CallLimits {
    pub name: UpstreamName,
    pub http: UpstreamClient,
    pub timeout: Duration,
    pub max_response_bytes: usize,
    /// Whether replies' caching headers are kept (the cache is on).
    pub keep_caching: bool,
}

impl CallLimits {
    pub(super) fn error(&self, kind: UpstreamErrorKind) -> UpstreamError {
        UpstreamError::new(self.name.clone(), kind)
    }
}

/// One base URL of an upstream and what is known about it.
#[derive(Debug)]
pub(super) struct Instance {
    /// The base URL's scheme and authority, and its path without the
    /// trailing `/`: a target is appended to that path.
    scheme: Scheme,
    authority: Authority,
    base_path: String,
    /// `scheme://host:port`, as `/readyz` and logs show the instance.
    label: Arc<str>,
    breaker: CircuitBreaker,
    in_flight: AtomicUsize,
    cost: Mutex<Cost>,
    /// Unix milliseconds of the last successful call; 0: none yet.
    last_success: AtomicU64,
}

/// One instance's health, for `/readyz`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceHealth {
    #[serde(serialize_with = "as_str")]
    pub url: Arc<str>,
    pub circuit: CircuitState,
    pub in_flight: usize,
    /// Set aside by outlier detection, for now.
    pub ejected: bool,
    /// When a call last succeeded (RFC 3339), `null` if none has yet.
    pub last_success: Option<String>,
}

fn as_str<S: serde::Serializer>(text: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(text)
}

impl Instance {
    pub(super) fn new(
        name: &UpstreamName,
        base: &Url,
        breaker: super::config::BreakerConfig,
        created: Instant,
    ) -> Self {
        let label: Arc<str> = base[..url::Position::BeforePath].into();
        // A `BaseUrl` is an absolute http(s) URL with a host (config
        // validation), so both parse; `Scheme::HTTP` and a placeholder
        // authority only keep the constructor infallible.
        let scheme = Scheme::try_from(base.scheme()).unwrap_or(Scheme::HTTP);
        let authority =
            Authority::try_from(&base[url::Position::BeforeHost..url::Position::AfterPort])
                .unwrap_or_else(|_| Authority::from_static("invalid.invalid"));
        Self {
            scheme,
            authority,
            base_path: base.path().trim_end_matches('/').to_owned(),
            breaker: CircuitBreaker::new(name.clone(), label.clone(), breaker),
            label,
            in_flight: AtomicUsize::new(0),
            // One creation instant for all: new instances tie, and ties go to
            // the random pick, not to whichever was built first.
            cost: Mutex::new(Cost::new(DEFAULT_COST, created)),
            last_success: AtomicU64::new(0),
        }
    }

    pub(super) fn label(&self) -> &Arc<str> {
        &self.label
    }

    pub(super) fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The balancer's measure of how busy this instance is: its latency
    /// estimate (failures counted as slow) times the calls in flight plus
    /// the one to come, as linkerd's peak-EWMA balancer weighs endpoints.
    pub(super) fn load(&self, now: Instant) -> f64 {
        let calls = self.in_flight.load(Ordering::Relaxed) + 1;
        self.lock_cost().at(now) * calls as f64
    }

    fn lock_cost(&self) -> std::sync::MutexGuard<'_, Cost> {
        self.cost.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn last_success(&self) -> Option<String> {
        match self.last_success.load(Ordering::Relaxed) {
            0 => None,
            millis => Some(
                humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(millis))
                    .to_string(),
            ),
        }
    }

    pub(super) fn health(&self, ejected: bool) -> InstanceHealth {
        InstanceHealth {
            url: self.label.clone(),
            circuit: self.breaker.state(),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            ejected,
            last_success: self.last_success(),
        }
    }

    /// One attempt: fails fast while the circuit is open, never runs past
    /// the request's deadline. A reply the gateway cannot use (a 5xx, a
    /// 2xx whose body fails the request's check) counts against the
    /// instance. Returns whether it failed, for outlier detection.
    pub(super) async fn attempt(
        &self,
        caller: &Caller,
        request: &UpstreamRequest,
        limits: &CallLimits,
    ) -> (Result<Reply<Bytes>, UpstreamError>, Option<CallOutcome>) {
        let Some(admission) = self.breaker.admit() else {
            return (Err(limits.error(UpstreamErrorKind::CircuitOpen)), None);
        };
        let started = Instant::now();
        let timeout = caller.deadline().map_or(limits.timeout, |deadline| {
            limits
                .timeout
                .min(deadline.saturating_duration_since(started))
        });
        if timeout.is_zero() {
            // The request's deadline has passed: nothing is sent.
            drop(admission);
            return (Err(limits.error(UpstreamErrorKind::Timeout(timeout))), None);
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _in_flight = InFlight(&self.in_flight);
        let result = self
            .exchange(caller, request, limits, timeout)
            .await
            .and_then(|mut reply| {
                if reply.status.is_success() {
                    reply.parsed = request.check.judge(&reply.body).map_err(|bad| {
                        let mut error = limits.error(UpstreamErrorKind::BadBody(bad.what));
                        error.cause = Some(bad.cause);
                        error
                    })?;
                }
                Ok(reply)
            });
        let failed = match &result {
            Ok(reply) => reply.status.is_server_error(),
            Err(error) => error.kind.is_service_failure(),
        };
        let outcome = if failed {
            CallOutcome::Failure
        } else {
            CallOutcome::Success
        };
        admission.record(outcome);
        let elapsed = started.elapsed();
        // A failure weighs as a call that took the whole timeout: an
        // instance must not attract calls because it fails fast.
        let cost = if failed {
            elapsed.max(limits.timeout)
        } else {
            elapsed
        };
        self.lock_cost().observe(cost, Instant::now());
        if !failed {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            self.last_success
                .store(u64::try_from(now).unwrap_or(u64::MAX), Ordering::Relaxed);
        }
        (result, Some(outcome))
    }

    /// The URI of `target` on this instance.
    fn uri(&self, target: &str) -> Result<Uri, hyper::http::Error> {
        let path_and_query = if self.base_path.is_empty() {
            PathAndQuery::try_from(target)?
        } else {
            PathAndQuery::try_from(format!("{}{target}", self.base_path))?
        };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }

    /// Sends the request and reads the whole reply within `timeout`.
    async fn exchange(
        &self,
        caller: &Caller,
        outgoing: &UpstreamRequest,
        limits: &CallLimits,
        timeout: Duration,
    ) -> Result<Reply<Bytes>, UpstreamError> {
        let uri = self
            .uri(outgoing.target.as_str())
            .map_err(|e| limits.error(UpstreamErrorKind::Transport).caused_by(e))?;
        // `Bytes` clones share the buffer: a retry copies nothing.
        let mut request = Request::new(Full::new(outgoing.body.clone().unwrap_or_default()));
        *request.method_mut() = outgoing.method.clone();
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        *headers = caller.headers().clone();
        if let Some(key) = &outgoing.idempotency_key {
            headers.insert(IDEMPOTENCY_KEY.clone(), key.clone());
        }
        if outgoing.body.is_some() {
            headers.insert(CONTENT_TYPE, APPLICATION_JSON.clone());
        }
        tokio::time::timeout(timeout, self.round_trip(request, limits))
            .await
            .unwrap_or_else(|_| Err(limits.error(UpstreamErrorKind::Timeout(timeout))))
    }

    /// One request and its whole reply, the body bounded by
    /// `max_response_bytes`.
    async fn round_trip(
        &self,
        request: Request<Full<Bytes>>,
        limits: &CallLimits,
    ) -> Result<Reply<Bytes>, UpstreamError> {
        let response = limits.http.send(request).await.map_err(|e| {
            let kind = if e.is_connect() {
                UpstreamErrorKind::Unreachable
            } else {
                UpstreamErrorKind::Transport
            };
            limits.error(kind).caused_by(e)
        })?;
        let status = response.status();
        let caching = limits
            .keep_caching
            .then(|| caching_headers(response.headers()))
            .flatten();
        let too_large = || limits.error(UpstreamErrorKind::BadBody("reply too large"));
        let declared = response
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|len| len.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limits.max_response_bytes as u64) {
            return Err(too_large());
        }
        let mut incoming = response.into_body();
        // Most replies arrive as one frame: it is kept as it is, not copied.
        let mut first: Option<Bytes> = None;
        let mut rest = BytesMut::new();
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(|e| {
                limits
                    .error(UpstreamErrorKind::BadBody("truncated"))
                    .caused_by(e)
            })?;
            let Ok(chunk) = frame.into_data() else {
                continue; // trailers
            };
            let so_far = first.as_ref().map_or(0, Bytes::len) + rest.len();
            if so_far + chunk.len() > limits.max_response_bytes {
                return Err(too_large());
            }
            match &first {
                None => first = Some(chunk),
                Some(head) => {
                    if rest.is_empty() {
                        rest.reserve(head.len() + chunk.len());
                        rest.extend_from_slice(head);
                    }
                    rest.extend_from_slice(&chunk);
                }
            }
        }
        let body = if rest.is_empty() {
            first.unwrap_or_default()
        } else {
            rest.freeze()
        };
        Ok(Reply {
            status,
            body,
            caching,
            freshness: Freshness::Upstream,
            parsed: None,
        })
    }
}

static IDEMPOTENCY_KEY: hyper::header::HeaderName =
    hyper::header::HeaderName::from_static("idempotency-key");
static APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Counts a call in flight to one instance until dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A peak-sensitive, time-decayed average of an instance's latency: a
/// slower call raises it at once, faster ones and time bring it down.
#[derive(Debug)]
struct Cost {
    nanos: f64,
    at: Instant,
}

impl Cost {
    fn new(initial: Duration, at: Instant) -> Self {
        Self {
            nanos: initial.as_secs_f64() * 1e9,
            at,
        }
    }

    /// The estimate at `now`, decayed since the last call.
    fn at(&self, now: Instant) -> f64 {
        self.nanos * self.decay(now)
    }

    fn decay(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (-elapsed / COST_DECAY.as_secs_f64()).exp()
    }

    fn observe(&mut self, rtt: Duration, now: Instant) {
        let rtt = rtt.as_secs_f64() * 1e9;
        let current = self.at(now);
        self.nanos = if rtt > current {
            rtt
        } else {
            let decay = self.decay(now);
            current * decay + rtt * (1.0 - decay)
        };
        self.at = now;
    }
}

/// A body that is not JSON or not of the expected shape; the decode
/// error (with its line and column) is the cause.
pub(super) fn bad_body(limits: &CallLimits, e: serde_json::Error) -> UpstreamError {
    let what = if e.is_data() {
        "wrong shape"
    } else {
        "not JSON"
    };
    limits.error(UpstreamErrorKind::BadBody(what)).caused_by(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_call_raises_the_cost_at_once_and_time_brings_it_down() {
        let start = Instant::now();
        let mut cost = Cost {
            nanos: 1e6,
            at: start,
        };
        cost.observe(Duration::from_millis(800), start);
        assert!((cost.at(start) - 8e8).abs() < 1.0, "peak taken at once");
        let later = start + COST_DECAY * 3;
        assert!(cost.at(later) < 8e8 * 0.06, "decays: {}", cost.at(later));
        cost.observe(Duration::from_millis(1), later);
        assert!(cost.at(later) < 8e8 * 0.06);
    }
}
