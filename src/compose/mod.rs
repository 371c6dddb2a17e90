//! Composition: concurrent fan-out over upstream clients with a partial-failure policy.
//!
//! Compose functions know upstream clients and nothing about HTTP servers,
//! so REST handlers and GraphQL resolvers call the same ones. A part is
//! either required (its failure fails the reply) or optional (its failure
//! becomes `None` plus a [`Degraded`] entry).

use std::future::Future;
use std::time::Instant;

use serde::Serialize;

use crate::error::ErrorCode;
use crate::telemetry::access::DegradedParts;
use crate::upstream::{Fetched, Freshness, UpstreamError, UpstreamName};

/// How one upstream part of a composed reply went, for `Server-Timing`.
pub use crate::upstream::CallTiming as PartTiming;

/// A composed result and the timing of every part, whether it succeeded
/// or not: a failed reply shows which part failed and how.
#[derive(Debug)]
pub struct Composed<T> {
    pub result: Result<T, UpstreamError>,
    pub timings: Vec<PartTiming>,
    /// The parts that degraded (also in the reply's body), for the access
    /// log line.
    pub degraded: Vec<Degraded>,
}

/// The degraded parts for the access log line, `None` when nothing
/// degraded.
pub fn degraded_parts(degraded: &[Degraded]) -> Option<DegradedParts> {
    if degraded.is_empty() {
        return None;
    }
    let text: Vec<String> = degraded
        .iter()
        .map(|d| format!("{}:{}", d.source, d.code.as_str()))
        .collect();
    Some(DegradedParts(text.join(",").into()))
}

/// Runs one part, timing it and naming its outcome.
pub async fn timed<T>(
    source: &UpstreamName,
    part: impl Future<Output = Result<Fetched<T>, UpstreamError>>,
) -> (Result<Fetched<T>, UpstreamError>, PartTiming) {
    let started = Instant::now();
    let result = part.await;
    let outcome = match &result {
        Ok(fetched) => fetched.freshness.outcome(),
        Err(error) => error.kind.outcome(),
    };
    let timing = PartTiming {
        source: source.clone(),
        duration: started.elapsed(),
        outcome,
    };
    (result, timing)
}

/// An optional part that failed (or was served stale): which source, with
/// which contract code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Degraded {
    pub source: UpstreamName,
    pub code: ErrorCode,
}

/// The required-part policy: its failure fails the reply; a stale value is
/// served and recorded in `degraded`.
pub fn required<T>(
    source: &UpstreamName,
    part: Result<Fetched<T>, UpstreamError>,
    degraded: &mut Vec<Degraded>,
) -> Result<T, UpstreamError> {
    let fetched = part?;
    if fetched.freshness == Freshness::Stale {
        degraded.push(Degraded {
            source: source.clone(),
            code: ErrorCode::Stale,
        });
    }
    Ok(fetched.value)
}

/// The optional-part policy: keeps the value (recording a stale one), or
/// records the failure in `degraded` and yields `None`.
pub fn optional<T>(
    source: &UpstreamName,
    part: Result<Fetched<T>, UpstreamError>,
    degraded: &mut Vec<Degraded>,
) -> Option<T> {
    match part {
        Ok(fetched) => {
            if fetched.freshness == Freshness::Stale {
                degraded.push(Degraded {
                    source: source.clone(),
                    code: ErrorCode::Stale,
                });
            }
            Some(fetched.value)
        }
        Err(error) => {
            // Reported once per request in its access line
            // (`DegradedParts`), not as a log line of its own: a failing
            // service must not turn every request into a WARN.
            tracing::debug!(upstream = %error.upstream, %error, "optional part degraded");
            degraded.push(Degraded {
                source: error.upstream.clone(),
                code: ErrorCode::from(&error),
            });
            None
        }
    }
}
