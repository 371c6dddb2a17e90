//! Cross-origin access per BFF, from `cors.*`.

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::types::ConfigError;

/// Cross-origin access for browser apps served from other origins.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Exact origins (`https://app.example.com`) allowed to call the BFF;
    /// empty: no CORS headers at all. `*` only without credentials.
    pub allowed_origins: Vec<String>,
    /// Whether browsers may send cookies and credentials cross-origin.
    pub allow_credentials: bool,
    /// How long browsers may cache a preflight answer.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            allow_credentials: false,
            max_age: Duration::from_secs(600),
        }
    }
}

impl CorsConfig {
    /// Exact origins only, and `*` never with credentials.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        for origin in &self.allowed_origins {
            if origin == "*" {
                if self.allow_credentials {
                    return Err(ConfigError::invalid(
                        "cors.allowed_origins",
                        "`*` cannot be combined with cors.allow_credentials; list the exact origins",
                    ));
                }
                continue;
            }
            let exact = Url::parse(origin).ok().is_some_and(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.host().is_some()
                    && url.path() == "/"
                    && url.query().is_none()
                    && !origin.ends_with('/')
            });
            if !exact {
                return Err(ConfigError::invalid(
                    "cors.allowed_origins",
                    format!("`{origin}` is not an exact origin like https://app.example.com"),
                ));
            }
        }
        Ok(())
    }
}

/// The CORS layer, or `None` when no origin is allowed (then browsers keep
/// their same-origin default).
pub fn layer(config: &CorsConfig) -> Option<CorsLayer> {
    if config.allowed_origins.is_empty() {
        return None;
    }
    let origins = if config.allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            config
                .allowed_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_credentials(config.allow_credentials)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("traceparent"),
                HeaderName::from_static("tracestate"),
                // The token handler's CSRF header (`session.oidc`).
                HeaderName::from_static("x-csrf"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("ratelimit-limit"),
                HeaderName::from_static("ratelimit-remaining"),
                HeaderName::from_static("ratelimit-reset"),
                header::RETRY_AFTER,
            ])
            .max_age(config.max_age),
    )
}
