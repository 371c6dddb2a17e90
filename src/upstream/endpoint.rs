//! One upstream service's base URL and bounds, and the call mechanics.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use std::sync::Arc;

use super::guard::{Bulkhead, CallOutcome, CircuitBreaker};
use super::{Caller, Service, UpstreamError, UpstreamErrorKind, UpstreamHealth};
use crate::config::BreakerConfig;

/// A reply's status with its decoded body.
#[derive(Debug)]
pub struct Reply<T> {
    pub status: StatusCode,
    pub body: T,
}

/// How each call to one service is bounded.
#[derive(Debug, Clone)]
pub struct EndpointLimits {
    /// Total time for one call, body included.
    pub timeout: Duration,
    /// Largest reply body accepted.
    pub max_response_bytes: usize,
    /// Most calls in flight at once (bulkhead).
    pub max_in_flight: usize,
    /// When to stop calling for a while.
    pub breaker: BreakerConfig,
}

/// Where one service lives and how each call to it is bounded.
#[derive(Debug, Clone)]
pub struct Endpoint {
    service: Service,
    http: reqwest::Client,
    base: Url,
    timeout: Duration,
    max_response_bytes: usize,
    breaker: Arc<CircuitBreaker>,
    bulkhead: Arc<Bulkhead>,
}

impl Endpoint {
    pub fn new(service: Service, http: reqwest::Client, base: Url, limits: EndpointLimits) -> Self {
        Self {
            service,
            http,
            base,
            timeout: limits.timeout,
            max_response_bytes: limits.max_response_bytes,
            breaker: Arc::new(CircuitBreaker::new(service, limits.breaker)),
            bulkhead: Arc::new(Bulkhead::new(limits.max_in_flight)),
        }
    }

    pub fn service(&self) -> Service {
        self.service
    }

    /// The circuit state and calls in flight, for `/readyz`.
    pub fn health(&self) -> UpstreamHealth {
        UpstreamHealth {
            circuit: self.breaker.state(),
            in_flight: self.bulkhead.in_flight(),
        }
    }

    /// The base URL with `segments` appended, each percent-encoded, so an id
    /// like `../admin` stays one path segment.
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, UpstreamError> {
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
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        caller: &Caller,
        url: Url,
    ) -> Result<T, UpstreamError> {
        let reply = self.send(caller, Method::GET, url, None, None).await?;
        match reply.status {
            StatusCode::OK => self.decode(&reply.body),
            StatusCode::NOT_FOUND => Err(self.error(UpstreamErrorKind::NotFound)),
            other => Err(self.error(UpstreamErrorKind::Status(other))),
        }
    }

    /// Sends one request, never retried, and reads its whole (bounded)
    /// body; fails fast while the circuit is open or the bulkhead is full.
    pub async fn send(
        &self,
        caller: &Caller,
        method: Method,
        url: Url,
        json_body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
    ) -> Result<Reply<Bytes>, UpstreamError> {
        let admission = self
            .breaker
            .admit()
            .ok_or_else(|| self.error(UpstreamErrorKind::CircuitOpen))?;
        let _slot = self
            .bulkhead
            .try_enter()
            .ok_or_else(|| self.error(UpstreamErrorKind::Overloaded))?;
        let result = self
            .exchange(caller, method, url, json_body, idempotency_key)
            .await;
        let failed = match &result {
            Ok(reply) => reply.status.is_server_error(),
            Err(error) => error.kind.is_service_failure(),
        };
        admission.record(if failed {
            CallOutcome::Failure
        } else {
            CallOutcome::Success
        });
        result
    }

    async fn exchange(
        &self,
        caller: &Caller,
        method: Method,
        url: Url,
        json_body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
    ) -> Result<Reply<Bytes>, UpstreamError> {
        let mut request = self
            .http
            .request(method, url)
            .headers(caller.headers().clone())
            .timeout(self.timeout);
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        if let Some(body) = json_body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let mut response = request.send().await.map_err(|e| self.classify(&e))?;
        let status = response.status();
        if response
            .content_length()
            .is_some_and(|len| len > self.max_response_bytes as u64)
        {
            return Err(self.error(UpstreamErrorKind::BadBody("reply too large")));
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify_body(&e))? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(self.error(UpstreamErrorKind::BadBody("reply too large")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status,
            body: body.freeze(),
        })
    }

    /// Decodes a JSON body into the service's typed reply.
    pub fn decode<T: DeserializeOwned>(&self, body: &[u8]) -> Result<T, UpstreamError> {
        serde_json::from_slice(body).map_err(|e| {
            let reason = if e.is_data() {
                "wrong shape"
            } else {
                "not JSON"
            };
            self.error(UpstreamErrorKind::BadBody(reason))
        })
    }

    /// Serializes a request body; our own types always serialize.
    pub fn encode<T: Serialize>(&self, body: &T) -> Vec<u8> {
        serde_json::to_vec(body).unwrap_or_default()
    }

    pub fn error(&self, kind: UpstreamErrorKind) -> UpstreamError {
        UpstreamError::new(self.service, kind)
    }

    fn classify(&self, e: &reqwest::Error) -> UpstreamError {
        if e.is_timeout() {
            self.error(UpstreamErrorKind::Timeout(self.timeout))
        } else {
            self.error(UpstreamErrorKind::Transport)
        }
    }

    fn classify_body(&self, e: &reqwest::Error) -> UpstreamError {
        if e.is_timeout() {
            self.error(UpstreamErrorKind::Timeout(self.timeout))
        } else {
            self.error(UpstreamErrorKind::BadBody("truncated"))
        }
    }
}
