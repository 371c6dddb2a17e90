//! The `Server-Timing` header of composed replies: one entry per upstream
//! part, with its duration and outcome, visible in browser dev tools.

use std::fmt::Write as _;

use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::compose::{Composed, Degraded, PartTiming, degraded_parts};
use crate::error::ApiError;

static SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// `accounts;dur=12.3;desc="ok", inventory;dur=800.0;desc="timeout"`.
pub fn header_value(timings: &[PartTiming]) -> Option<HeaderValue> {
    let mut value = String::with_capacity(timings.len() * 40);
    for (i, timing) in timings.iter().enumerate() {
        if i > 0 {
            value.push_str(", ");
        }
        let millis = timing.duration.as_secs_f64() * 1000.0;
        let _ = write!(
            value,
            "{};dur={millis:.1};desc=\"{}\"",
            timing.source, timing.outcome
        );
    }
    HeaderValue::try_from(value).ok()
}

impl<T> Composed<T> {
    /// The reply: `shape` of the result, or the result's error as the
    /// contract's error body; `Server-Timing` either way.
    pub fn respond<R: IntoResponse>(self, shape: impl FnOnce(T) -> R) -> Response {
        let mut response = match self.result {
            Ok(value) => shape(value).into_response(),
            Err(error) => ApiError::from(error).into_response(),
        };
        annotate(&mut response, &self.timings, &self.degraded);
        response
    }
}

/// A composed reply's `Server-Timing`, and its degraded parts for the
/// access log line.
pub fn annotate(response: &mut Response, timings: &[PartTiming], degraded: &[Degraded]) {
    if let Some(value) = header_value(timings) {
        response.headers_mut().insert(SERVER_TIMING.clone(), value);
    }
    if let Some(parts) = degraded_parts(degraded) {
        response.extensions_mut().insert(parts);
    }
}
