//! `telemetry.*`: logs and trace export.

use serde::{Deserialize, Serialize};

use crate::config::types::{HttpUrl, Ratio};

/// How the BFF reports what it does.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `json` (one object per line, for collectors) or `text` (for people).
    /// Unset: `json` in production, `text` in development.
    pub log_format: Option<LogFormat>,
    /// A `tracing` filter such as `info` or `info,bff_core=debug`;
    /// `RUST_LOG`, when set, wins.
    pub log_level: String,
    /// OTLP/HTTP collector base URL (e.g. `http://otel-collector:4318`);
    /// spans are exported to `<url>/v1/traces` as JSON. Unset: no export.
    pub otlp_endpoint: Option<HttpUrl>,
    /// Share of new traces exported, 0 to 1. A client's sampled flag is
    /// followed for traces it started.
    pub sampling_ratio: Ratio,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: None,
            log_level: "info".to_owned(),
            otlp_endpoint: None,
            sampling_ratio: Ratio::of(1.0),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}
