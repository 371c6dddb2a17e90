//! Prometheus metrics: one registry per BFF instance, served at `/metrics`.
//!
//! Every label has a bounded set of values: route templates (never raw
//! paths), methods, status classes, services, outcomes, error codes, and
//! GraphQL operation names up to [`MAX_OPERATION_NAMES`] (then `other`).
//! A flood of distinct paths, users or operation names cannot grow a
//! scrape. The registry is per instance, not global, so two BFFs in one
//! process (as in the tests) count separately.

use std::collections::{BTreeMap, HashSet};

use crate::recent::{Recent, Summary};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Distinct GraphQL operation names given their own label value.
pub const MAX_OPERATION_NAMES: usize = 64;

/// Request latency buckets (seconds): a BFF answers in milliseconds.
const REQUEST_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The label a request gets when no route matched (404s, early refusals).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The BFF's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    in_flight: IntGauge,
    upstream_calls: HistogramVec,
    circuit_state: IntGaugeVec,
    rate_limited: IntCounterVec,
    graphql_operations: IntCounterVec,
    graphql_errors: IntCounterVec,
    deprecated_calls: IntCounterVec,
    config_reloads: IntCounterVec,
    shared_state_degraded: IntGauge,
    operation_names: Mutex<HashSet<Box<str>>>,
    /// The last minute per upstream and per route, for `/status`.
    recent_upstreams: Recent,
    recent_routes: Recent,
    /// Degraded replies by the source that failed, since start.
    degraded: Mutex<BTreeMap<Box<str>, u64>>,
}

/// Which quota refused a request.
#[derive(Debug, Clone, Copy)]
pub enum Limiter {
    /// The per-subject (or per-API-key) quota.
    Subject,
    /// The per-client-IP quota counted before authentication.
    ClientIp,
}

impl Limiter {
    /// The `limiter` label value.
    fn label(self) -> &'static str {
        match self {
            Self::Subject => "subject",
            Self::ClientIp => "client_ip",
        }
    }
}

impl Metrics {
    /// Registers every metric, labelled `bff="<name>"`.
    pub fn new(bff: &str) -> Self {
        let labels = std::iter::once(("bff".to_owned(), bff.to_owned())).collect();
        let registry = Registry::new_custom(None, Some(labels))
            .expect("`bff` is a valid label name, set once");
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests answered, by route template, method and status class.",
            ),
            &["route", "method", "status"],
        );
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from a request's arrival to its reply's headers.",
            )
            .buckets(REQUEST_BUCKETS.to_vec()),
            &["route", "method"],
        );
        let in_flight = IntGauge::new("http_requests_in_flight", "Requests being handled now.");
        let upstream_calls = HistogramVec::new(
            HistogramOpts::new(
                "bff_upstream_call_duration_seconds",
                "Upstream calls made for requests, by service and outcome \
                 (ok, cache-hit, stale, timeout, error, open-circuit, ...).",
            )
            .buckets(REQUEST_BUCKETS.to_vec()),
            &["service", "outcome"],
        );
        let circuit_state = IntGaugeVec::new(
            Opts::new(
                "bff_upstream_circuit_state",
                "1 for each upstream's current circuit state (closed, open, half-open).",
            ),
            &["service", "state"],
        );
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "bff_rate_limit_rejections_total",
                "Requests refused with 429, by the quota that refused them.",
            ),
            &["limiter"],
        );
        let graphql_operations = IntCounterVec::new(
            Opts::new(
                "bff_graphql_operations_total",
                "GraphQL operations executed, by operation name and outcome (ok, error).",
            ),
            &["operation", "outcome"],
        );
        let graphql_errors = IntCounterVec::new(
            Opts::new(
                "bff_graphql_errors_total",
                "Errors in GraphQL replies, by error code.",
            ),
            &["code"],
        );
        let deprecated_calls = IntCounterVec::new(
            Opts::new(
                "bff_deprecated_route_calls_total",
                "Calls to routes declared deprecated, by route: when it stays at zero, \
                 the last app version calling it is gone.",
            ),
            &["route"],
        );
        let config_reloads = IntCounterVec::new(
            Opts::new(
                "bff_config_reloads_total",
                "Configuration reloads (SIGHUP or a watched file), by result (ok, error).",
            ),
            &["result"],
        );
        let metrics = Self {
            registry,
            requests: requests.expect("static metric options are valid"),
            request_duration: request_duration.expect("static metric options are valid"),
            in_flight: in_flight.expect("static metric options are valid"),
            upstream_calls: upstream_calls.expect("static metric options are valid"),
            circuit_state: circuit_state.expect("static metric options are valid"),
            rate_limited: rate_limited.expect("static metric options are valid"),
            graphql_operations: graphql_operations.expect("static metric options are valid"),
            graphql_errors: graphql_errors.expect("static metric options are valid"),
            deprecated_calls: deprecated_calls.expect("static metric options are valid"),
            config_reloads: config_reloads.expect("static metric options are valid"),
            shared_state_degraded: IntGauge::new(
                "bff_shared_state_degraded",
                "1 while Redis (shared_state.redis_url) fails or is slow and \
                 in-process limits and records answer instead; 0 otherwise.",
            )
            .expect("static metric options are valid"),
            operation_names: Mutex::default(),
            recent_upstreams: Recent::default(),
            recent_routes: Recent::default(),
            degraded: Mutex::default(),
        };
        metrics.register_all();
        metrics.prime();
        metrics
    }

    /// Creates the zero-valued series every BFF has, so that each family
    /// the README lists is on the first scrape (a dashboard's `rate()`
    /// and an alert on `absent()` work before the first event).
    fn prime(&self) {
        self.requests.with_label_values(&["/metrics", "GET", "2xx"]);
        self.request_duration
            .with_label_values(&["/metrics", "GET"]);
        for limiter in [Limiter::Subject, Limiter::ClientIp] {
            self.rate_limited.with_label_values(&[limiter.label()]);
        }
        for outcome in ["ok", "error"] {
            self.graphql_operations
                .with_label_values(&["anonymous", outcome]);
        }
        for code in crate::error::ErrorCode::ALL {
            self.graphql_errors.with_label_values(&[code.as_str()]);
        }
        self.graphql_errors
            .with_label_values(&[crate::graphql::errors::PERSISTED_QUERY_NOT_FOUND_LABEL]);
        for result in ["ok", "error"] {
            self.config_reloads.with_label_values(&[result]);
        }
    }

    /// Whether the shared state is degraded (see [`crate::shared_state`]).
    pub fn set_shared_state_degraded(&self, degraded: bool) {
        self.shared_state_degraded.set(i64::from(degraded));
    }

    /// One configuration reload: applied, or refused.
    pub fn config_reloaded(&self, applied: bool) {
        let result = if applied { "ok" } else { "error" };
        self.config_reloads.with_label_values(&[result]).inc();
    }

    /// Creates `upstream`'s zero-valued call series (outcome `ok`), so a
    /// configured upstream that has not been called yet is on a scrape.
    pub fn prime_upstream(&self, upstream: &str) {
        self.upstream_calls.with_label_values(&[upstream, "ok"]);
    }

    fn register_all(&self) {
        let collectors: [Box<dyn prometheus::core::Collector>; 11] = [
            Box::new(self.requests.clone()),
            Box::new(self.request_duration.clone()),
            Box::new(self.in_flight.clone()),
            Box::new(self.upstream_calls.clone()),
            Box::new(self.circuit_state.clone()),
            Box::new(self.rate_limited.clone()),
            Box::new(self.graphql_operations.clone()),
            Box::new(self.graphql_errors.clone()),
            Box::new(self.deprecated_calls.clone()),
            Box::new(self.config_reloads.clone()),
            Box::new(self.shared_state_degraded.clone()),
        ];
        for collector in collectors {
            if let Err(error) = self.registry.register(collector) {
                tracing::error!(%error, "metric not registered");
            }
        }
        #[cfg(target_os = "linux")]
        {
            let process = prometheus::process_collector::ProcessCollector::for_self();
            if let Err(error) = self.registry.register(Box::new(process)) {
                tracing::error!(%error, "process metrics not registered");
            }
        }
    }

    /// One answered request.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[route, method, status_class(status)])
            .inc();
        self.request_duration
            .with_label_values(&[route, method])
            .observe(elapsed.as_secs_f64());
        self.recent_routes.record(route, elapsed, status >= 500);
    }

    /// A reply served with `source` degraded.
    pub fn observe_degraded(&self, source: &str) {
        let mut degraded = self.degraded.lock().unwrap_or_else(PoisonError::into_inner);
        match degraded.get_mut(source) {
            Some(count) => *count += 1,
            None => {
                degraded.insert(source.into(), 1);
            }
        }
    }

    /// Degraded replies by source, since start.
    pub fn degraded_counts(&self) -> BTreeMap<String, u64> {
        let degraded = self.degraded.lock().unwrap_or_else(PoisonError::into_inner);
        degraded.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    /// The last minute of each upstream (`configured` ones included when
    /// not called yet) and of each route.
    pub fn recent<'a>(
        &self,
        configured: impl IntoIterator<Item = &'a str>,
    ) -> (BTreeMap<String, Summary>, BTreeMap<String, Summary>) {
        (
            self.recent_upstreams.summaries(configured),
            self.recent_routes.summaries([]),
        )
    }

    /// Requests refused with `429` since start: (per subject, per IP).
    pub fn rate_limit_rejections(&self) -> (u64, u64) {
        (
            self.rate_limited
                .with_label_values(&[Limiter::Subject.label()])
                .get(),
            self.rate_limited
                .with_label_values(&[Limiter::ClientIp.label()])
                .get(),
        )
    }

    /// Counts a request as in flight until the guard is dropped.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// One upstream call (or cache answer) made for a request.
    pub fn observe_upstream(&self, upstream: &str, outcome: &'static str, elapsed: Duration) {
        self.upstream_calls
            .with_label_values(&[upstream, outcome])
            .observe(elapsed.as_secs_f64());
        // A cache hit is a success; stale, timeouts, errors and refusals
        // (open circuit, overloaded) are what a person looking for the
        // failing service wants to see.
        let failed = !matches!(outcome, "ok" | "cache-hit");
        self.recent_upstreams.record(upstream, elapsed, failed);
    }

    /// Creates a deprecated route's zero-valued series, so it is on a
    /// scrape before its first call.
    pub fn prime_deprecated(&self, route: &str) {
        self.deprecated_calls.with_label_values(&[route]);
    }

    /// One call to a deprecated route (a route template: bounded).
    pub fn deprecated_call(&self, route: &str) {
        self.deprecated_calls.with_label_values(&[route]).inc();
    }

    pub fn rate_limited(&self, limiter: Limiter) {
        self.rate_limited
            .with_label_values(&[limiter.label()])
            .inc();
    }

    /// One executed GraphQL operation and the codes of its errors.
    pub fn observe_graphql(&self, operation: Option<&str>, error_codes: &[&str]) {
        let operation = self.operation_label(operation);
        let outcome = if error_codes.is_empty() {
            "ok"
        } else {
            "error"
        };
        self.graphql_operations
            .with_label_values(&[operation.as_ref(), outcome])
            .inc();
        for code in error_codes {
            self.graphql_errors.with_label_values(&[code]).inc();
        }
    }

    /// The operation's name while fewer than [`MAX_OPERATION_NAMES`] have
    /// been seen; `other` after that, and for anything that is not a
    /// GraphQL name of at most 64 characters; `anonymous` without a name.
    fn operation_label<'a>(&self, operation: Option<&'a str>) -> std::borrow::Cow<'a, str> {
        let Some(name) = operation.filter(|n| !n.is_empty()) else {
            return "anonymous".into();
        };
        if !is_graphql_name(name) {
            return "other".into();
        }
        let mut names = self
            .operation_names
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if names.contains(name) {
            return name.into();
        }
        if names.len() < MAX_OPERATION_NAMES {
            names.insert(name.into());
            return name.into();
        }
        "other".into()
    }

    /// Sets `upstream`'s circuit gauge: 1 for its `current` state, 0 for
    /// each other of `states`.
    pub fn set_circuit_state(&self, upstream: &str, states: &[&str], current: &str) {
        for state in states {
            self.circuit_state
                .with_label_values(&[upstream, state])
                .set(i64::from(*state == current));
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::with_capacity(16 * 1024);
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(%error, "metrics not encoded");
        }
        String::from_utf8(out).expect("the Prometheus text format is UTF-8")
    }
}

/// Decrements the in-flight gauge when the request is done (or dropped).
#[derive(Debug)]
pub struct InFlight(IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// `[_A-Za-z][_0-9A-Za-z]*`, at most 64 characters.
fn is_graphql_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 64
        && bytes
            .next()
            .is_some_and(|b| b == b'_' || b.is_ascii_alphabetic())
        && bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric())
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// A method as a bounded label: the standard ones, else `other`.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_bounded() {
        let metrics = Metrics::new("test");
        for i in 0..1000 {
            metrics.observe_graphql(Some(&format!("Op{i}")), &[]);
        }
        let text = metrics.render();
        let series = text
            .lines()
            .filter(|l| l.starts_with("bff_graphql_operations_total{"))
            // The primed `anonymous` series are there from the start.
            .filter(|l| !l.contains("operation=\"anonymous\""))
            .count();
        assert_eq!(series, MAX_OPERATION_NAMES + 1, "{text}");
        assert!(text.contains("operation=\"other\""));
    }

    #[test]
    fn only_graphql_names_become_labels() {
        let metrics = Metrics::new("test");
        let long = "A".repeat(65);
        for name in ["bad name", "1up", "\"}", long.as_str()] {
            metrics.observe_graphql(Some(name), &[]);
        }
        metrics.observe_graphql(Some("Good_1"), &[]);
        let text = metrics.render();
        let labels: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("bff_graphql_operations_total{"))
            // The primed `anonymous` series are there from the start.
            .filter(|l| !l.contains("operation=\"anonymous\""))
            .collect();
        assert_eq!(labels.len(), 2, "{text}");
        assert!(text.contains("operation=\"Good_1\""), "{text}");
    }
}
