//! Typed clients for the user, order and notification services.
//!
//! All three share one pooled `reqwest::Client` (built once at start), and
//! every call goes through [`endpoint::Endpoint`], which bounds it (timeout,
//! body size), propagates the caller's identity and turns every failure into
//! an [`UpstreamError`] that says which service failed and how.

pub mod cache;
mod caller;
mod coalesce;
mod endpoint;
pub mod guard;
pub mod notifications;
pub mod orders;
pub mod segment;
pub mod users;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;

pub use cache::{Fetched, Freshness};
pub use caller::Caller;
pub use endpoint::{BodyCheck, Endpoint, EndpointLimits, shape_of};
pub use notifications::NotificationsClient;
pub use orders::OrdersClient;
pub use users::UsersClient;

use crate::config::{ConfigError, UpstreamsConfig};
use crate::metrics::Metrics;

/// The upstream services a BFF composes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Users,
    Orders,
    Notifications,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Orders => "orders",
            Self::Notifications => "notifications",
        }
    }
}

impl Service {
    /// The exported span name of a call to this service.
    pub fn span_name(self) -> &'static str {
        match self {
            Self::Users => "call users",
            Self::Orders => "call orders",
            Self::Notifications => "call notifications",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one upstream call (or composed part) went, for `Server-Timing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTiming {
    pub source: Service,
    pub duration: Duration,
    /// `ok`, `timeout`, `open-circuit`, `overloaded`, `unavailable`, ...
    pub outcome: &'static str,
}

/// One failed upstream call: which service, and what went wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{service} {kind}")]
pub struct UpstreamError {
    pub service: Service,
    pub kind: UpstreamErrorKind,
}

/// What went wrong, in the terms a caller decides on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamErrorKind {
    /// No complete reply within the call's timeout.
    #[error("did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// No connection could be made: the request was never sent.
    #[error("is unreachable")]
    Unreachable,
    /// The connection broke before a reply started.
    #[error("is unavailable")]
    Transport,
    /// A status the call does not expect (5xx, or a 4xx that means our bug).
    #[error("answered with status {}", .0.as_u16())]
    Status(StatusCode),
    /// The reply was too large, truncated, not JSON, or the wrong shape.
    #[error("sent a reply the gateway could not use ({0})")]
    BadBody(&'static str),
    /// The entity asked for does not exist.
    #[error("has no such entity")]
    NotFound,
    /// The request conflicts with an earlier one (idempotency key reuse).
    #[error("refused the request: the idempotency key was already used for a different request")]
    Conflict,
    /// The service refused the request as invalid.
    #[error("refused the request as invalid")]
    Rejected,
    /// Not attempted: the circuit is open after repeated failures.
    #[error("is failing; calls are paused (circuit open)")]
    CircuitOpen,
    /// Not attempted: too many calls to the service are in flight.
    #[error("has too many calls in flight")]
    Overloaded,
    /// Not attempted: an identifier would have changed the upstream path
    /// (see [`segment`]).
    #[error("was not called: {0}")]
    UnsafeIdentifier(segment::UnsafeSegment),
}

impl UpstreamErrorKind {
    /// Whether this counts against the service's health (the breaker):
    /// an answer about the client's request does not.
    pub fn is_service_failure(&self) -> bool {
        match self {
            Self::Timeout(_) | Self::Unreachable | Self::Transport | Self::BadBody(_) => true,
            Self::Status(status) => status.is_server_error(),
            Self::NotFound
            | Self::Conflict
            | Self::Rejected
            | Self::CircuitOpen
            | Self::Overloaded
            | Self::UnsafeIdentifier(_) => false,
        }
    }

    /// Not attempted: the gateway held the call back (open circuit, full
    /// bulkhead).
    pub fn is_refused(&self) -> bool {
        matches!(self, Self::CircuitOpen | Self::Overloaded)
    }

    /// A short name for logs and `Server-Timing`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Unreachable => "unreachable",
            Self::Transport => "unavailable",
            Self::Status(_) => "error",
            Self::BadBody(_) => "bad-response",
            Self::NotFound => "not-found",
            Self::Conflict => "conflict",
            Self::Rejected => "rejected",
            Self::CircuitOpen => "open-circuit",
            Self::Overloaded => "overloaded",
            Self::UnsafeIdentifier(_) => "unsafe-identifier",
        }
    }
}

impl UpstreamError {
    pub(crate) fn new(service: Service, kind: UpstreamErrorKind) -> Self {
        Self { service, kind }
    }
}

/// The three typed clients, sharing one connection pool.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub users: UsersClient,
    pub orders: OrdersClient,
    pub notifications: NotificationsClient,
}

/// One upstream's health, for `/readyz`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamHealth {
    pub circuit: guard::CircuitState,
    pub in_flight: usize,
    /// When a call last succeeded (RFC 3339), `null` if none has yet.
    pub last_success: Option<String>,
}

impl Upstreams {
    /// Each upstream's circuit state and calls in flight.
    pub fn health(&self) -> [(Service, UpstreamHealth); 3] {
        [
            (Service::Users, self.users.endpoint().health()),
            (Service::Orders, self.orders.endpoint().health()),
            (
                Service::Notifications,
                self.notifications.endpoint().health(),
            ),
        ]
    }

    /// Builds the shared pooled client and the three typed clients once.
    /// Every call is observed in `metrics`.
    pub fn from_config(
        config: &UpstreamsConfig,
        metrics: &Arc<Metrics>,
    ) -> Result<Self, ConfigError> {
        let http = reqwest::Client::builder()
            // An upstream redirect is a misconfiguration; following it could
            // send the caller's Authorization header somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            // Upstreams are internal services, reached directly.
            .no_proxy()
            .connect_timeout(config.all.connect_timeout)
            .pool_max_idle_per_host(config.all.pool_max_idle_per_host)
            .pool_idle_timeout(config.all.pool_idle_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ConfigError::Invalid {
                key: "upstreams".to_owned(),
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        let endpoint = |service: Service, name: &str| {
            let named = match service {
                Service::Users => &config.users,
                Service::Orders => &config.orders,
                Service::Notifications => &config.notifications,
            };
            let base = named.url.clone().ok_or_else(|| ConfigError::Invalid {
                key: format!("upstreams.{name}.url"),
                message: "is required".to_owned(),
            })?;
            Ok::<_, ConfigError>(Endpoint::new(
                service,
                http.clone(),
                base,
                metrics.clone(),
                EndpointLimits {
                    timeout: named.timeout.unwrap_or(config.all.timeout),
                    max_response_bytes: named
                        .max_response_bytes
                        .unwrap_or(config.all.max_response_bytes),
                    max_in_flight: named.max_in_flight.unwrap_or(config.all.max_in_flight),
                    breaker: named
                        .breaker
                        .clone()
                        .unwrap_or_else(|| config.all.breaker.clone()),
                    retry: named
                        .retry
                        .clone()
                        .unwrap_or_else(|| config.all.retry.clone()),
                    cache_max_bytes: named.cache_max_bytes.unwrap_or(config.all.cache_max_bytes),
                    stale_if_error: named.stale_if_error.unwrap_or(config.all.stale_if_error),
                    hedge_after: named.hedge_after.or(config.all.hedge_after),
                },
            ))
        };
        Ok(Self {
            users: UsersClient::new(endpoint(Service::Users, "users")?),
            orders: OrdersClient::new(endpoint(Service::Orders, "orders")?),
            notifications: NotificationsClient::new(endpoint(
                Service::Notifications,
                "notifications",
            )?),
        })
    }
}
