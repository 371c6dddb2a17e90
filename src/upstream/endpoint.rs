//! One upstream's base URL and bounds, and the call mechanics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::Instrument as _;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt as _;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use std::sync::Arc;

use super::cache::{Fetched, Freshness, ReplyCache, caching_headers};
use super::coalesce::{CallKey, Coalescer};
use super::config::{RetryConfig, UpstreamSettings};
use super::guard::{Bulkhead, CallOutcome, CircuitBreaker, RetryBudget};
use super::{CallTiming, Caller, UpstreamError, UpstreamErrorKind, UpstreamHealth, UpstreamName};
use crate::metrics::Metrics;

/// Judges a 2xx reply's body before the call counts as a success.
pub type BodyCheck = fn(&[u8]) -> Result<(), serde_json::Error>;

/// A [`BodyCheck`]: the body decodes as `T`.
pub fn shape_of<T: DeserializeOwned>(body: &[u8]) -> Result<(), serde_json::Error> {
    serde_json::from_slice::<T>(body).map(drop)
}

fn decode_failure(error: &serde_json::Error) -> &'static str {
    if error.is_data() {
        "wrong shape"
    } else {
        "not JSON"
    }
}

/// One upstream request, as every layer below the cache sees it.
#[derive(Debug)]
struct Outgoing<'a> {
    method: Method,
    url: Url,
    json_body: Option<Bytes>,
    idempotency_key: Option<&'a str>,
    check: BodyCheck,
}

impl Outgoing<'static> {
    fn get(url: Url, check: BodyCheck) -> Self {
        Self {
            method: Method::GET,
            url,
            json_body: None,
            idempotency_key: None,
            check,
        }
    }
}

/// A reply's status with its decoded body.
#[derive(Debug, Clone)]
pub struct Reply<T> {
    pub status: StatusCode,
    pub body: T,
    /// The reply's caching headers, when it has `Cache-Control` or
    /// `Expires` and the cache is on.
    pub caching: Option<reqwest::header::HeaderMap>,
}

/// Where one service lives and how each call to it is bounded.
#[derive(Debug, Clone)]
pub struct Endpoint {
    name: UpstreamName,
    /// The exported span's name, `call <name>`, built once.
    span_name: Arc<str>,
    http: reqwest::Client,
    base: Url,
    timeout: Duration,
    max_response_bytes: usize,
    breaker: Arc<CircuitBreaker>,
    bulkhead: Arc<Bulkhead>,
    retry: RetryConfig,
    budget: Arc<RetryBudget>,
    coalescer: Arc<Coalescer>,
    cache: Arc<ReplyCache>,
    hedge_after: Option<Duration>,
    metrics: Arc<Metrics>,
    /// Unix milliseconds of the last successful call; 0: none yet.
    last_success: Arc<AtomicU64>,
}

impl Endpoint {
    pub fn new(
        name: UpstreamName,
        http: reqwest::Client,
        base: Url,
        metrics: Arc<Metrics>,
        limits: UpstreamSettings,
    ) -> Self {
        Self {
            span_name: format!("call {name}").into(),
            breaker: Arc::new(CircuitBreaker::new(name.clone(), limits.breaker)),
            name,
            http,
            base,
            metrics,
            last_success: Arc::default(),
            timeout: limits.timeout,
            max_response_bytes: limits.max_response_bytes,
            bulkhead: Arc::new(Bulkhead::new(limits.max_in_flight)),
            budget: Arc::new(RetryBudget::new(
                limits.retry.budget_ratio,
                limits.retry.budget_floor,
                limits.retry.budget_window,
            )),
            retry: limits.retry,
            coalescer: Arc::new(Coalescer::default()),
            cache: Arc::new(ReplyCache::new(
                limits.cache_max_bytes,
                limits.stale_if_error,
            )),
            hedge_after: limits.hedge_after,
        }
    }

    /// The upstream's configured name.
    pub fn name(&self) -> &UpstreamName {
        &self.name
    }

    /// The circuit state and calls in flight, for `/readyz`.
    pub fn health(&self) -> UpstreamHealth {
        let last_success = match self.last_success.load(Ordering::Relaxed) {
            0 => None,
            millis => Some(
                humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(millis))
                    .to_string(),
            ),
        };
        UpstreamHealth {
            circuit: self.breaker.state(),
            in_flight: self.bulkhead.in_flight(),
            last_success,
        }
    }

    /// The base URL with `segments` appended, each percent-encoded, so an id
    /// like `a/b` stays one path segment; a segment that could be
    /// normalised into another path (`..`, `%2e%2e`, ...) is refused and
    /// nothing is sent.
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, UpstreamError> {
        for segment in segments {
            super::segment::check(segment)
                .map_err(|e| self.error(UpstreamErrorKind::UnsafeIdentifier(e)))?;
        }
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| self.error(UpstreamErrorKind::Transport))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// GET, expecting 200 with a JSON body of type `T`. A 404 is `NotFound`.
    /// Served from the cache while fresh; coalesced with an identical call
    /// in flight; when the service fails, a stale cached reply if one is
    /// within the stale-if-error window.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        caller: &Caller,
        url: Url,
    ) -> Result<Fetched<T>, UpstreamError> {
        self.get_json_if(caller, url, |_| true).await
    }

    /// [`Self::get_json`], where a reply that fails `visible` (another
    /// user's object) is `NotFound`: reported as such everywhere, metrics
    /// and `Server-Timing` included, so it reads exactly like an id that
    /// does not exist.
    pub async fn get_json_if<T: DeserializeOwned>(
        &self,
        caller: &Caller,
        url: Url,
        visible: impl FnOnce(&T) -> bool,
    ) -> Result<Fetched<T>, UpstreamError> {
        self.observed(
            caller,
            &Method::GET,
            async |caller| {
                let fetched = self.get_json_unobserved(caller, url).await?;
                if visible(&fetched.value) {
                    Ok(fetched)
                } else {
                    Err(self.error(UpstreamErrorKind::NotFound))
                }
            },
            |fetched| fetched.freshness.outcome(),
        )
        .await
    }

    async fn get_json_unobserved<T: DeserializeOwned>(
        &self,
        caller: &Caller,
        url: Url,
    ) -> Result<Fetched<T>, UpstreamError> {
        let user = caller.user_id();
        let url_key = url.as_str().to_owned();
        let result = match self.cache.fresh(&url_key, user, caller.headers()) {
            Some(body) => self.decode(&body).map(|value| Fetched {
                value,
                freshness: Freshness::CacheHit,
            }),
            None => self.fetch_json(caller, url, &url_key).await,
        };
        match result {
            Err(error) if error.kind.is_service_failure() || error.kind.is_refused() => {
                match self.cache.stale(&url_key, user, caller.headers()) {
                    Some(body) => self.decode(&body).map(|value| Fetched {
                        value,
                        freshness: Freshness::Stale,
                    }),
                    None => Err(error),
                }
            }
            other => other,
        }
    }

    /// The coalesced call behind [`Self::get_json`]; keeps what the
    /// service's `Cache-Control` allows.
    async fn fetch_json<T: DeserializeOwned>(
        &self,
        caller: &Caller,
        url: Url,
        url_key: &str,
    ) -> Result<Fetched<T>, UpstreamError> {
        let key = CallKey {
            url: url_key.to_owned(),
            user_id: caller.user_id().to_owned(),
            authorization: caller
                .headers()
                .get(reqwest::header::AUTHORIZATION)
                .map(|v| Bytes::copy_from_slice(v.as_bytes())),
        };
        // Boxed here, once: the coalescer shares it, and the caller's
        // future holds a pointer instead of the whole call's state.
        let call = {
            let endpoint = self.clone();
            let caller = caller.clone();
            let request = Outgoing::get(url, shape_of::<T>);
            async move { endpoint.hedged_get(&caller, request).await }.boxed()
        };
        let reply = self.coalescer.run(key, call).await?;
        match reply.status {
            StatusCode::OK => {
                let value = self.decode(&reply.body)?;
                if let Some(caching) = &reply.caching {
                    self.cache.store(
                        url_key,
                        caller.user_id(),
                        caller.headers(),
                        caching,
                        reply.body,
                    );
                }
                Ok(Fetched {
                    value,
                    freshness: Freshness::Upstream,
                })
            }
            StatusCode::NOT_FOUND => Err(self.error(UpstreamErrorKind::NotFound)),
            // An answer about the client's request (a bad cursor): it
            // keeps its meaning, `bad_request`.
            StatusCode::BAD_REQUEST => Err(self.error(UpstreamErrorKind::Rejected)),
            other => Err(self.error(UpstreamErrorKind::Status(other))),
        }
    }

    /// A GET, with a second request when the first is still unanswered
    /// after `hedge_after` and the retry budget allows one. The first good
    /// answer wins; the other request is dropped, which cancels it.
    async fn hedged_get(
        &self,
        caller: &Caller,
        request: Outgoing<'_>,
    ) -> Result<Reply<Bytes>, UpstreamError> {
        // `send_with_retries`, not `send`: a GET is observed once in
        // `get_json`, and the smaller future keeps every call's state small.
        let Some(hedge_after) = self.hedge_after else {
            return self.send_with_retries(caller, &request).await;
        };
        let first = self.send_with_retries(caller, &request);
        tokio::pin!(first);
        tokio::select! {
            result = &mut first => return result,
            () = tokio::time::sleep(hedge_after) => {}
        }
        if !self.budget.try_spend() {
            return first.await;
        }
        // Not a new call for the budget: it already paid for this one.
        let second = self.send_with_retries(caller, &request);
        tokio::pin!(second);
        let good = |r: &Result<Reply<Bytes>, UpstreamError>| {
            r.as_ref()
                .is_ok_and(|reply| !reply.status.is_server_error())
        };
        tokio::select! {
            result = &mut first => if good(&result) { result } else { second.await },
            result = &mut second => if good(&result) { result } else { first.await },
        }
    }

    /// Sends a request and reads its whole (bounded) body; a 2xx body
    /// must pass `check` (the reply's expected shape), else it is a bad
    /// reply and counts against the service like a 5xx. Retried as
    /// [`RetryConfig`] says: GETs after a broken connection or a
    /// 502/503/504, a POST only when its connection was never established
    /// (so it cannot have been handled), within the request's deadline and
    /// the upstream's retry budget.
    pub async fn send(
        &self,
        caller: &Caller,
        method: Method,
        url: Url,
        json_body: Option<Bytes>,
        idempotency_key: Option<&str>,
        check: BodyCheck,
    ) -> Result<Reply<Bytes>, UpstreamError> {
        let request = Outgoing {
            method,
            url,
            json_body,
            idempotency_key,
            check,
        };
        // GETs are observed in `get_json`, once per caller, not per
        // coalesced or hedged request.
        if request.method == Method::GET {
            return self.send_with_retries(caller, &request).await;
        }
        let method = request.method.clone();
        self.observed(
            caller,
            &method,
            async |caller| self.send_with_retries(caller, &request).await,
            |_| "ok",
        )
        .await
    }

    /// Runs one call made for `caller` inside its trace spans, then records
    /// its outcome everywhere it is reported: the span, the metrics and
    /// the caller's `Server-Timing`.
    async fn observed<R>(
        &self,
        caller: &Caller,
        method: &Method,
        call: impl AsyncFnOnce(&Caller) -> Result<R, UpstreamError>,
        ok_outcome: impl FnOnce(&R) -> &'static str,
    ) -> Result<R, UpstreamError> {
        // Debug level: at `info` the access line per request is enough, and
        // a span per call would cost a formatted field set every time.
        let span = tracing::debug_span!(
            "upstream",
            upstream = self.name.as_str(),
            %method,
            outcome = tracing::field::Empty,
        );
        let exported = caller.start_exported_call(&self.span_name);
        let (mut exported_span, caller) = match exported {
            Some((span, traced)) => (Some(span), std::borrow::Cow::Owned(traced)),
            None => (None, std::borrow::Cow::Borrowed(caller)),
        };
        let started = std::time::Instant::now();
        let result = call(&caller).instrument(span.clone()).await;
        let elapsed = started.elapsed();
        let outcome = match &result {
            Ok(reply) => ok_outcome(reply),
            Err(error) => error.kind.outcome(),
        };
        span.record("outcome", outcome);
        if let Err(error) = &result {
            // Why, cause included, inside the call's span: debug level, as
            // the access line already names each degraded part's code.
            span.in_scope(|| {
                tracing::debug!(
                    outcome,
                    error = %error.chain(),
                    "upstream call failed"
                );
            });
        }
        if let Some(exported) = &mut exported_span {
            exported.set("bff.upstream", self.name.to_string());
            exported.set("http.request.method", method.as_str().to_owned());
            exported.set("bff.outcome", outcome);
            if result.is_err() {
                exported.fail(outcome);
            }
        }
        self.metrics
            .observe_upstream(self.name.as_str(), outcome, elapsed);
        caller.record(CallTiming {
            source: self.name.clone(),
            duration: elapsed,
            outcome,
        });
        result
    }

    async fn send_with_retries(
        &self,
        caller: &Caller,
        request: &Outgoing<'_>,
    ) -> Result<Reply<Bytes>, UpstreamError> {
        self.budget.record_call();
        let mut retries = 0;
        loop {
            let result = self.attempt(caller, request).await;
            if retries >= self.retry.max_retries || !self.may_retry(&request.method, &result) {
                return result;
            }
            // Full jitter: a random wait up to the doubled backoff.
            let backoff = self
                .retry
                .backoff
                .saturating_mul(1 << retries.min(16))
                .mul_f64(rand::random::<f64>());
            let deadline_allows = caller
                .deadline()
                .is_none_or(|deadline| std::time::Instant::now() + backoff < deadline);
            if !deadline_allows || !self.budget.try_spend() {
                return result;
            }
            retries += 1;
            tokio::time::sleep(backoff).await;
        }
    }

    /// Whether a failed attempt may be sent again.
    fn may_retry(&self, method: &Method, result: &Result<Reply<Bytes>, UpstreamError>) -> bool {
        let idempotent = *method == Method::GET;
        match result {
            Ok(reply) => idempotent && matches!(reply.status.as_u16(), 502..=504),
            Err(error) => match error.kind {
                // Never sent: safe for any method.
                UpstreamErrorKind::Unreachable => true,
                UpstreamErrorKind::Transport => idempotent,
                // A reply of any status is `Ok` here (handled above).
                _ => false,
            },
        }
    }

    /// One attempt: fails fast while the circuit is open or the bulkhead
    /// is full, and never runs past the request's deadline. A reply the
    /// gateway cannot use (a 5xx, a 2xx whose body fails the request's
    /// check) counts against the service for the breaker and readiness.
    async fn attempt(
        &self,
        caller: &Caller,
        request: &Outgoing<'_>,
    ) -> Result<Reply<Bytes>, UpstreamError> {
        let admission = self
            .breaker
            .admit()
            .ok_or_else(|| self.error(UpstreamErrorKind::CircuitOpen))?;
        let _slot = self
            .bulkhead
            .try_enter()
            .ok_or_else(|| self.error(UpstreamErrorKind::Overloaded))?;
        let now = std::time::Instant::now();
        let timeout = caller.deadline().map_or(self.timeout, |deadline| {
            self.timeout.min(deadline.saturating_duration_since(now))
        });
        if timeout.is_zero() {
            // The request's deadline has passed: nothing is sent.
            drop(admission);
            return Err(self.error(UpstreamErrorKind::Timeout(timeout)));
        }
        let result = self
            .exchange(caller, request, timeout)
            .await
            .and_then(|reply| {
                if reply.status.is_success() {
                    (request.check)(&reply.body).map_err(|e| self.bad_body(e))?;
                }
                Ok(reply)
            });
        let failed = match &result {
            Ok(reply) => reply.status.is_server_error(),
            Err(error) => error.kind.is_service_failure(),
        };
        admission.record(if failed {
            CallOutcome::Failure
        } else {
            CallOutcome::Success
        });
        if !failed {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            self.last_success
                .store(u64::try_from(now).unwrap_or(u64::MAX), Ordering::Relaxed);
        }
        result
    }

    async fn exchange(
        &self,
        caller: &Caller,
        outgoing: &Outgoing<'_>,
        timeout: Duration,
    ) -> Result<Reply<Bytes>, UpstreamError> {
        let mut request = self
            .http
            .request(outgoing.method.clone(), outgoing.url.clone())
            .headers(caller.headers().clone())
            .timeout(timeout);
        if let Some(key) = outgoing.idempotency_key {
            request = request.header("idempotency-key", key);
        }
        if let Some(body) = &outgoing.json_body {
            // `Bytes` clones share the buffer: a retry copies nothing.
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| self.classify(e, timeout))?;
        let status = response.status();
        let caching = self
            .cache
            .is_on()
            .then(|| caching_headers(response.headers()))
            .flatten();
        if response
            .content_length()
            .is_some_and(|len| len > self.max_response_bytes as u64)
        {
            return Err(self.error(UpstreamErrorKind::BadBody("reply too large")));
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.classify_body(e, timeout))?
        {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(self.error(UpstreamErrorKind::BadBody("reply too large")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status,
            body: body.freeze(),
            caching,
        })
    }

    /// Decodes a JSON body into the service's typed reply.
    pub fn decode<T: DeserializeOwned>(&self, body: &[u8]) -> Result<T, UpstreamError> {
        serde_json::from_slice(body).map_err(|e| self.bad_body(e))
    }

    /// Serializes a request body.
    pub fn encode<T: Serialize>(&self, body: &T) -> Bytes {
        Bytes::from(
            serde_json::to_vec(body)
                .expect("request bodies are plain structs of strings and numbers"),
        )
    }

    pub fn error(&self, kind: UpstreamErrorKind) -> UpstreamError {
        UpstreamError::new(self.name.clone(), kind)
    }

    /// A body that is not JSON or not of the expected shape; the decode
    /// error (with its line and column) is the cause.
    fn bad_body(&self, e: serde_json::Error) -> UpstreamError {
        self.error(UpstreamErrorKind::BadBody(decode_failure(&e)))
            .caused_by(e)
    }

    fn classify(&self, e: reqwest::Error, timeout: Duration) -> UpstreamError {
        let kind = if e.is_timeout() {
            UpstreamErrorKind::Timeout(timeout)
        } else if e.is_connect() {
            UpstreamErrorKind::Unreachable
        } else {
            UpstreamErrorKind::Transport
        };
        self.error(kind).caused_by(e)
    }

    fn classify_body(&self, e: reqwest::Error, timeout: Duration) -> UpstreamError {
        let kind = if e.is_timeout() {
            UpstreamErrorKind::Timeout(timeout)
        } else {
            UpstreamErrorKind::BadBody("truncated")
        };
        self.error(kind).caused_by(e)
    }
}
