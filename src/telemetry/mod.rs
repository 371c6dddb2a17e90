//! What the BFF reports about itself: log lines, the per-request span and
//! access log, and optional trace export.

pub mod access;
pub mod config;
pub mod otel;

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use config::{LogFormat, TelemetryConfig};

/// Installs the process's log subscriber: JSON lines or readable text, on
/// stderr, filtered by `RUST_LOG` when set, else by `telemetry.log_level`.
pub fn init_logging(config: &TelemetryConfig, format: LogFormat) -> Result<(), String> {
    let filter = match EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(_) => EnvFilter::try_new(&config.log_level)
            .map_err(|e| format!("config key `telemetry.log_level`: {e}"))?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    installed.map_err(|e| format!("cannot install the log subscriber: {e}"))
}
