//! Who an upstream call is made for, as headers every service receives.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use hyper::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

use super::CallTiming;
use crate::request_context::{
    RequestContext, TRACEPARENT, TRACESTATE, TraceContext, X_REQUEST_ID, traceparent,
};
use crate::telemetry::otel::OtelSpan;

static X_USER_ID: HeaderName = HeaderName::from_static("x-user-id");

/// The authenticated caller of one BFF request. Built once per request; its
/// headers (`X-Request-Id`, `traceparent`, `tracestate`, `X-User-Id`,
/// `Authorization`) go on every upstream call made for it.
#[derive(Debug, Clone)]
pub struct Caller {
    user_id: Arc<str>,
    headers: HeaderMap,
    trace: TraceContext,
    deadline: Option<Instant>,
    timings: Option<Arc<Mutex<Vec<CallTiming>>>>,
}

impl Caller {
    /// `user_id` must already be a valid header value (the auth layer
    /// guarantees this for token subjects); `None` if it is not.
    /// `authorization` is the caller's own; API-key callers have none.
    pub fn new(
        ctx: &RequestContext,
        user_id: Arc<str>,
        authorization: Option<HeaderValue>,
    ) -> Option<Self> {
        let mut headers = HeaderMap::with_capacity(5);
        headers.insert(X_REQUEST_ID.clone(), ctx.request_id().clone());
        headers.insert(TRACEPARENT.clone(), ctx.trace().traceparent());
        if let Some(state) = ctx.trace().tracestate() {
            headers.insert(TRACESTATE.clone(), state.clone());
        }
        headers.insert(X_USER_ID.clone(), HeaderValue::from_str(&user_id).ok()?);
        if let Some(authorization) = authorization {
            headers.insert(AUTHORIZATION, authorization);
        }
        Some(Self {
            user_id,
            headers,
            trace: ctx.trace().clone(),
            deadline: None,
            timings: None,
        })
    }

    /// Every upstream call made for this caller must finish by `deadline`:
    /// each call's timeout shrinks to the time left.
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Records every upstream call made for this caller from now on
    /// (service, duration, outcome), for `Server-Timing`.
    pub fn recording_timings(mut self) -> Self {
        self.timings = Some(Arc::default());
        self
    }

    /// The calls recorded so far, in the order they finished.
    pub fn timings(&self) -> Vec<CallTiming> {
        self.timings
            .as_ref()
            .map(|t| t.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .unwrap_or_default()
    }

    pub(crate) fn record(&self, timing: CallTiming) {
        if let Some(timings) = &self.timings {
            timings
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(timing);
        }
    }

    /// When trace export is on: a client span for one upstream call, and
    /// this caller with that span as the `traceparent` parent.
    pub(crate) fn start_exported_call(&self, name: &str) -> Option<(OtelSpan, Caller)> {
        let span = OtelSpan::client(name, self.trace.ids())?;
        let mut caller = self.clone();
        caller
            .headers
            .insert(TRACEPARENT.clone(), traceparent(span.ids()));
        Some((span, caller))
    }

    /// The authenticated subject, used as the user id upstream.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The subject, shared.
    pub(crate) fn user_id_shared(&self) -> Arc<str> {
        self.user_id.clone()
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}
