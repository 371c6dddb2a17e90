//! `GET /status`: a live page a person reads during an incident, and
//! `GET /status.json`, the document it refreshes itself from every few
//! seconds (also for scripts). Exposed like `/readyz` (no token, not rate
//! limited); `http.status_page = false` removes both.
//!
//! The page is one self-contained HTML file (no CDN, no framework: a few
//! lines of plain JavaScript render the JSON), light or dark as the
//! browser prefers.

use axum::Router;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};

use crate::server::AppState;

const PAGE: &str = include_str!("status.html");

/// The page loads nothing and connects only to this BFF.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `/status` and `/status.json`, when `http.status_page` is on.
pub fn routes(state: &AppState) -> Router<AppState> {
    if !state.config().http.status_page {
        return Router::new();
    }
    Router::new()
        .route("/status", get(page))
        .route("/status.json", get(document))
}

async fn page() -> impl IntoResponse {
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_POLICY),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        PAGE,
    )
}

/// The status document (its shape is documented in the README).
async fn document(State(state): State<AppState>) -> impl IntoResponse {
    let health = state.upstreams().health();
    let metrics = state.metrics();
    let (recent_upstreams, routes) = metrics.recent(health.iter().map(|(name, _)| name.as_str()));
    let upstreams: serde_json::Map<String, Value> = health
        .into_iter()
        .map(|(name, health)| {
            let mut entry = json!(health);
            entry["recent"] = json!(recent_upstreams.get(name.as_str()));
            (name.to_string(), entry)
        })
        .collect();
    let (subject, client_ip) = metrics.rate_limit_rejections();
    (
        [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(json!({
            "bff": state.name(),
            "version": env!("CARGO_PKG_VERSION"),
            "configGeneration": state.reloads().active(),
            "lastReloadError": state.reloads().last_error(),
            "profile": state.config().profile,
            "ready": !state.is_draining(),
            "sharedState": state.shared_state().health(),
            "windowSeconds": crate::recent::WINDOW.as_secs(),
            "upstreams": upstreams,
            "routes": routes,
            "rateLimitRejections": {"subject": subject, "clientIp": client_ip},
            "degraded": metrics.degraded_counts(),
        })),
    )
}
