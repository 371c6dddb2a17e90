//! Upstreams: a registry of configured services by name, and the call
//! mechanics every typed client builds on.
//!
//! Each upstream has one pooled [`UpstreamClient`] (built once at start)
//! and one or more instances; every call goes through [`Endpoint`], whose
//! call path ([`Endpoint`]'s `call`, one layer per module: observe, cache,
//! coalesce, retry (hedges too), balance, instance) bounds it, propagates
//! the caller's identity and turns every failure into an
//! [`UpstreamError`] that says which upstream failed and how.

mod balance;
pub mod cache;
mod caller;
mod client;
mod coalesce;
pub mod config;
pub mod contract;
mod endpoint;
pub mod guard;
mod instance;
mod observe;
mod request;
mod retry;
pub mod segment;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::StatusCode;

pub use cache::{Fetched, Freshness};
pub use caller::Caller;
pub use client::UpstreamClient;
pub use endpoint::Endpoint;
pub use instance::InstanceHealth;
pub use request::{BadReply, BodyCheck, Outcome, Parsed, Reply, Target, UpstreamRequest, shape_of};

use crate::config::types::ConfigError;
use crate::metrics::Metrics;
use config::UpstreamsConfig;

/// An upstream's name, as configured (`upstreams.<name>`). It labels
/// metrics, `/readyz`, `Server-Timing`, logs and `degraded` entries, and
/// is cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UpstreamName(Arc<str>);

impl serde::Serialize for UpstreamName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Ordered and hashed as its text, so maps by name take a `&str`.
impl std::borrow::Borrow<str> for UpstreamName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl UpstreamName {
    pub fn new(name: &str) -> Self {
        Self(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UpstreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How one upstream call (or composed part) went, for `Server-Timing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTiming {
    pub source: UpstreamName,
    pub duration: Duration,
    /// `ok`, `timeout`, `open-circuit`, `overloaded`, `unavailable`, ...
    pub outcome: &'static str,
}

/// One failed upstream call: which upstream, what went wrong in the terms
/// a caller decides on, and the underlying cause (the transport error, the
/// decode error and its position), as pingora's errors carry theirs.
///
/// `Display` is the client-safe part ("inventory is unavailable"): it becomes
/// the contract's error message. The cause is the error's `source()`, for
/// logs only ([`UpstreamError::chain`]): it may hold upstream addresses.
#[derive(Debug, Clone)]
pub struct UpstreamError {
    pub upstream: UpstreamName,
    pub kind: UpstreamErrorKind,
    /// Shared, so a coalesced call's error reaches every waiter whole.
    pub cause: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.upstream, self.kind)
    }
}

impl std::error::Error for UpstreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|cause| cause as &(dyn std::error::Error + 'static))
    }
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
    pub(crate) fn new(upstream: UpstreamName, kind: UpstreamErrorKind) -> Self {
        Self {
            upstream,
            kind,
            cause: None,
        }
    }

    /// The same error, caused by `cause`.
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Arc::new(cause));
        self
    }

    /// The error and every cause under it, for logs:
    /// `inventory is unreachable: error sending request ...: connection refused`.
    pub fn chain(&self) -> String {
        use std::error::Error as _;
        let mut text = self.to_string();
        let mut cause = self.source();
        while let Some(error) = cause {
            text.push_str(": ");
            text.push_str(&error.to_string());
            cause = error.source();
        }
        text
    }
}

/// Every configured upstream, by name: built once at start from
/// `upstreams.*`. Routes take the endpoints they call by name
/// ([`Self::endpoint`]); a name nothing takes is reported at start.
#[derive(Debug, Clone)]
pub struct Upstreams {
    endpoints: Arc<BTreeMap<UpstreamName, Endpoint>>,
    /// Names some route took, to warn about the rest once the app is built.
    taken: Arc<Mutex<BTreeSet<UpstreamName>>>,
}

/// The endpoint of upstream `name` as `config` sets it up: its pooled
/// HTTP client, its instances, its layers.
fn build_endpoint(
    config: &UpstreamsConfig,
    name: &str,
    metrics: &Arc<Metrics>,
) -> Result<Endpoint, ConfigError> {
    let bases = config.bases(name);
    if bases.is_empty() {
        return Err(ConfigError::Invalid {
            key: format!("upstreams.{name}.url"),
            message: "is required".to_owned(),
        });
    }
    let settings = config.resolve(name);
    let http = UpstreamClient::new(&settings).map_err(|e| ConfigError::Invalid {
        key: format!("upstreams.{name}"),
        message: format!("cannot build the HTTP client: {e}"),
    })?;
    Ok(Endpoint::new(
        UpstreamName::new(name),
        http,
        &bases,
        metrics.clone(),
        settings,
    ))
}

/// One upstream's health, for `/readyz`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamHealth {
    /// `open` only when every instance in service is; `closed` while one is.
    pub circuit: guard::CircuitState,
    pub in_flight: usize,
    /// When a call last succeeded (RFC 3339), `null` if none has yet.
    pub last_success: Option<String>,
    /// Each instance, in the configured order.
    pub instances: Vec<InstanceHealth>,
}

impl Upstreams {
    /// Builds one endpoint (and one pooled HTTP client) per configured
    /// upstream, each with its settings merged from `all`. Every call is
    /// observed in `metrics`.
    pub fn from_config(
        config: &UpstreamsConfig,
        metrics: &Arc<Metrics>,
    ) -> Result<Self, ConfigError> {
        Self::build(config, metrics, None)
    }

    /// As [`Self::from_config`] after a config reload: an upstream whose
    /// instances and settings are what `previous` (built from
    /// `previous_config`) has keeps its endpoint, so its breakers, cache,
    /// outlier state and pooled connections carry over; a changed one is
    /// built afresh.
    pub fn succeeding(
        config: &UpstreamsConfig,
        metrics: &Arc<Metrics>,
        previous: &Upstreams,
        previous_config: &UpstreamsConfig,
    ) -> Result<Self, ConfigError> {
        Self::build(config, metrics, Some((previous, previous_config)))
    }

    fn build(
        config: &UpstreamsConfig,
        metrics: &Arc<Metrics>,
        previous: Option<(&Upstreams, &UpstreamsConfig)>,
    ) -> Result<Self, ConfigError> {
        let settings = |config: &UpstreamsConfig, name: &str| {
            serde_json::to_value((config.bases(name), config.resolve(name))).ok()
        };
        let mut endpoints = BTreeMap::new();
        for (name, _) in config.named() {
            let kept = previous.and_then(|(upstreams, previous_config)| {
                upstreams
                    .endpoints
                    .get(name)
                    .filter(|_| settings(config, name) == settings(previous_config, name))
            });
            let endpoint = match kept {
                Some(endpoint) => endpoint.clone(),
                None => build_endpoint(config, name, metrics)?,
            };
            endpoints.insert(UpstreamName::new(name), endpoint);
        }
        Ok(Self {
            endpoints: Arc::new(endpoints),
            taken: Arc::default(),
        })
    }

    /// The endpoint of upstream `name`, for a route that calls it; an
    /// error naming the missing key when the config lacks it.
    pub fn endpoint(&self, name: &str) -> Result<Endpoint, ConfigError> {
        let (name, endpoint) =
            self.endpoints
                .get_key_value(name)
                .ok_or_else(|| ConfigError::Invalid {
                    key: format!("upstreams.{name}.url"),
                    message: "is required: a route of this BFF calls it".to_owned(),
                })?;
        self.taken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.clone());
        Ok(endpoint.clone())
    }

    /// Configured upstreams no route took: worth a warning at start.
    pub fn untaken(&self) -> Vec<UpstreamName> {
        let taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        self.endpoints
            .keys()
            .filter(|name| !taken.contains(*name))
            .cloned()
            .collect()
    }

    /// Each upstream's circuit state and calls in flight, by name.
    pub fn health(&self) -> Vec<(UpstreamName, UpstreamHealth)> {
        self.endpoints
            .iter()
            .map(|(name, endpoint)| (name.clone(), endpoint.health()))
            .collect()
    }
}
