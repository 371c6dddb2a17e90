//! What the gateway does around every request, as one layer: the
//! request's context (request id, trace context), its observation (span,
//! metrics, access log line), the contract's error body on every 4xx/5xx,
//! `X-Content-Type-Options: nosniff`, the header limits and the client's
//! address, in that order.
//!
//! One layer rather than six: each `from_fn` layer boxes the rest of the
//! stack and a future per request, and these always run together. Each
//! step's rules stay in its own module; this only orders them.

use std::sync::Arc;

use axum::extract::{FromRef, Request, State};
use axum::http::HeaderValue;
use axum::http::header::X_CONTENT_TYPE_OPTIONS;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument as _;

use crate::client_ip::TrustedProxies;
use crate::error::render_error_body;
use crate::header_limits::HeaderLimits;
use crate::metrics::Metrics;
use crate::request_context::X_REQUEST_ID;
use crate::server::AppState;
use crate::telemetry::access::Observed;

/// What the edge needs, taken from the state once.
#[derive(Debug, Clone)]
pub struct Edge {
    metrics: Arc<Metrics>,
    header_limits: HeaderLimits,
    proxies: TrustedProxies,
}

impl FromRef<AppState> for Edge {
    fn from_ref(state: &AppState) -> Self {
        Self {
            metrics: Arc::<Metrics>::from_ref(state),
            header_limits: HeaderLimits::from_ref(state),
            proxies: TrustedProxies::from_ref(state),
        }
    }
}

/// Layer: runs the request inside its context and span, and finishes
/// whatever answers it (a refusal here or any reply from below).
pub async fn edge(State(edge): State<Edge>, mut request: Request, next: Next) -> Response {
    let ctx = crate::request_context::attach(&mut request);
    let observed = Observed::start(&edge.metrics, &request, &ctx);
    let mut response = async {
        let response = match crate::header_limits::check(&edge.header_limits, &request) {
            Err(refused) => refused.into_response(),
            Ok(()) => {
                crate::client_ip::attach(&edge.proxies, &mut request);
                next.run(request).await
            }
        };
        let mut response = render_error_body(response, ctx.request_id());
        // Browsers must not guess a reply's type.
        response
            .headers_mut()
            .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        response
    }
    .instrument(observed.span().clone())
    .await;
    observed.finish(&edge.metrics, &response, &ctx);
    response
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), ctx.request_id().clone());
    response
}
