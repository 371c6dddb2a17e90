//! One span, one access log line and the HTTP metrics of every request.
//!
//! The route is the matched template (`/items/{id}`), never the raw path,
//! and the caller appears only as a hash of its subject: neither a flood
//! of distinct paths nor a token can reach the logs or the metrics. A
//! composed reply's degraded parts are in its line (`degraded`).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest as _, Sha256};

use crate::metrics::{InFlight, Metrics};
use crate::metrics::{UNMATCHED_ROUTE, method_label};
use crate::request_context::RequestContext;

/// A reply's degraded parts, as its access line shows them
/// (`pricing:upstream_timeout,accounts:stale`): one line per request
/// says what degraded, instead of a WARN line per failed part.
#[derive(Debug, Clone)]
pub struct DegradedParts(pub Arc<str>);

/// The route template that answered, carried out on the reply.
#[derive(Debug, Clone)]
pub struct RouteTemplate(Arc<str>);

/// A short, stable hash of the caller's subject: enough to follow one
/// caller through the logs, not enough to name them.
#[derive(Debug, Clone)]
pub struct SubjectHash(pub Arc<str>);

impl SubjectHash {
    pub fn of(subject: &str) -> Self {
        let digest = Sha256::digest(subject.as_bytes());
        let mut hex = String::with_capacity(16);
        for byte in &digest[..8] {
            use std::fmt::Write as _;
            let _ = write!(hex, "{byte:02x}");
        }
        Self(hex.into())
    }
}

/// Route layer: copies the matched template onto the reply, where
/// [`Observed`] (which starts before routing) can read it.
pub async fn tag_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| RouteTemplate(path.as_str().into()));
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// One request being observed: its span, its clock, its count in flight.
#[derive(Debug)]
pub struct Observed {
    started: Instant,
    method: &'static str,
    span: tracing::Span,
    /// Counted in flight until answered.
    in_flight: InFlight,
}

impl Observed {
    /// The request's span opens and it counts as in flight.
    pub fn start(metrics: &Metrics, request: &Request, ctx: &RequestContext) -> Self {
        let method = method_label(request.method());
        let span = tracing::info_span!(
            "request",
            method,
            route = tracing::field::Empty,
            request_id = ctx.request_id().to_str().unwrap_or_default(),
            trace_id = ctx.trace().trace_id(),
        );
        Self {
            started: Instant::now(),
            method,
            span,
            in_flight: metrics.in_flight(),
        }
    }

    /// What the request's work runs in.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Once answered: its metrics, its access log line and its exported
    /// span's name, route and status.
    pub fn finish(self, metrics: &Metrics, response: &Response, ctx: &RequestContext) {
        let Self {
            started,
            method,
            span,
            in_flight,
        } = self;
        // No longer in flight once answered, before the line is written.
        drop(in_flight);
        let elapsed = started.elapsed();
        let route = response
            .extensions()
            .get::<RouteTemplate>()
            .map_or(UNMATCHED_ROUTE, |r| &r.0);
        let status = response.status().as_u16();
        metrics.observe_request(route, method, status, elapsed);
        let subject = response
            .extensions()
            .get::<SubjectHash>()
            .map_or("", |s| &s.0);
        let degraded = response
            .extensions()
            .get::<DegradedParts>()
            .map_or("", |d| &d.0);
        for part in degraded.split(',').filter(|p| !p.is_empty()) {
            metrics.observe_degraded(part.split_once(':').map_or(part, |(source, _)| source));
        }
        let request_id = ctx.request_id().to_str().unwrap_or_default();
        span.record("route", route);
        span.in_scope(|| {
            tracing::info!(
                target: "bff::access",
                method,
                route,
                status,
                duration_ms = duration_ms(elapsed),
                request_id,
                subject,
                degraded,
                "request"
            );
        });
        ctx.trace().with_exported(|span| {
            span.rename(format!("{method} {route}"));
            span.set("http.route", route.to_owned());
            span.set("http.response.status_code", i64::from(status));
            span.set("bff.request_id", request_id.to_owned());
            if status >= 500 {
                span.fail("server error");
            }
        });
    }
}

/// Milliseconds rounded to 10 µs: `duration_ms=0.31`, not
/// `0.30999999999999994`. The metrics' histogram keeps full precision.
fn duration_ms(elapsed: std::time::Duration) -> f64 {
    (elapsed.as_secs_f64() * 100_000.0).round() / 100.0
}
