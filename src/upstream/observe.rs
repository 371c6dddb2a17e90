//! The outermost layer of every upstream call: its trace spans, its
//! metrics and the caller's `Server-Timing` entry, whatever the method.
//!
//! A GET is observed once per caller, not per coalesced, hedged or retried
//! request below it: what a caller waited for is what it is told about.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use hyper::Method;
use tracing::Instrument as _;

use super::request::Outcome;
use super::{CallTiming, Caller, UpstreamError, UpstreamName};
use crate::metrics::Metrics;

/// Where one upstream's calls are reported.
#[derive(Debug)]
pub(super) struct Observation {
    name: UpstreamName,
    /// The exported span's name, `call <name>`, built once.
    span_name: Arc<str>,
    metrics: Arc<Metrics>,
}

impl Observation {
    pub(super) fn new(name: UpstreamName, metrics: Arc<Metrics>) -> Self {
        Self {
            span_name: format!("call {name}").into(),
            name,
            metrics,
        }
    }

    /// Runs one call made for `caller` inside its trace spans, then
    /// records its outcome everywhere it is reported: the span, the
    /// metrics and the caller's `Server-Timing`.
    pub(super) async fn around<R: Outcome>(
        &self,
        caller: &Caller,
        method: &Method,
        call: impl AsyncFnOnce(&Caller) -> Result<R, UpstreamError>,
    ) -> Result<R, UpstreamError> {
        // Debug level: at `info` the access line per request is enough, and
        // a span per call would cost a formatted field set every time.
        let span = tracing::debug_span!(
            "upstream",
            upstream = self.name.as_str(),
            %method,
            outcome = tracing::field::Empty,
        );
        let exported = caller.start_exported_call(&self.span_name);
        let (mut exported_span, caller) = match exported {
            Some((span, traced)) => (Some(span), Cow::Owned(traced)),
            None => (None, Cow::Borrowed(caller)),
        };
        let started = Instant::now();
        let result = call(&caller).instrument(span.clone()).await;
        let elapsed = started.elapsed();
        let outcome = match &result {
            Ok(reply) => reply.outcome(),
            Err(error) => error.kind.outcome(),
        };
        span.record("outcome", outcome);
        if let Err(error) = &result {
            // Why, cause included, inside the call's span: debug level, as
            // the access line already names each degraded part's code.
            span.in_scope(|| {
                tracing::debug!(outcome, error = %error.chain(), "upstream call failed");
            });
        }
        if let Some(exported) = &mut exported_span {
            exported.set("bff.upstream", self.name.to_string());
            exported.set("http.request.method", method.as_str().to_owned());
            exported.set("bff.outcome", outcome);
            if result.is_err() {
                exported.fail(outcome);
            }
        }
        self.metrics
            .observe_upstream(self.name.as_str(), outcome, elapsed);
        caller.record(CallTiming {
            source: self.name.clone(),
            duration: elapsed,
            outcome,
        });
        result
    }
}
