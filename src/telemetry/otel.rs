//! Optional OpenTelemetry export: a server span per request and a client
//! span per upstream call, sent to an OTLP/HTTP collector.
//!
//! Off unless `telemetry.otlp_endpoint` is set. The ids are OpenTelemetry's
//! own, and the request's [`TraceContext`](crate::request_context::TraceContext)
//! adopts them, so the `traceparent` an upstream receives names exactly the
//! exported span that called it. Spans are batched and exported on the
//! SDK's own thread, never on a request's task.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use url::Url;

static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Flushes and stops the exporter when dropped. Drop it outside the async
/// runtime: the exporter's HTTP client is a blocking one.
#[derive(Debug)]
pub struct ExportGuard(SdkTracerProvider);

impl Drop for ExportGuard {
    fn drop(&mut self) {
        if let Err(error) = self.0.shutdown_with_timeout(Duration::from_secs(5)) {
            eprintln!("trace export did not shut down cleanly: {error}");
        }
    }
}

/// Starts exporting to `<endpoint>/v1/traces` (OTLP/HTTP, JSON). New
/// traces are sampled at `ratio`; a client's sampled flag is followed.
pub fn install(service_name: &str, endpoint: &Url, ratio: f64) -> Result<ExportGuard, String> {
    let mut traces = endpoint.clone();
    traces
        .path_segments_mut()
        .map_err(|()| "telemetry.otlp_endpoint cannot be a base URL".to_owned())?
        .pop_if_empty()
        .extend(["v1", "traces"]);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(traces.as_str())
        .with_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("config key `telemetry.otlp_endpoint`: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            ratio,
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build();
    let tracer = provider.tracer(service_name.to_owned());
    TRACER
        .set(tracer)
        .map_err(|_| "trace export is already installed".to_owned())?;
    Ok(ExportGuard(provider))
}

/// An exported span; ends (and is queued for export) when dropped.
#[derive(Debug)]
pub struct OtelSpan(opentelemetry_sdk::trace::Span);

/// The ids of a started span, to continue the trace with.
#[derive(Debug, Clone, Copy)]
pub struct SpanIds {
    pub trace_id: u128,
    pub span_id: u64,
    pub sampled: bool,
}

impl OtelSpan {
    /// The request's server span, child of the client's span when it sent
    /// a `traceparent`. `None` when export is off.
    pub fn server(name: &str, parent: Option<(u128, u64, u8)>) -> Option<Self> {
        let tracer = TRACER.get()?;
        let cx = match parent {
            Some((trace_id, span_id, flags)) => {
                Context::new().with_remote_span_context(SpanContext::new(
                    TraceId::from(trace_id),
                    SpanId::from(span_id),
                    TraceFlags::new(flags),
                    true,
                    TraceState::default(),
                ))
            }
            None => Context::new(),
        };
        let span = tracer
            .span_builder(name.to_owned())
            .with_kind(SpanKind::Server)
            .start_with_context(tracer, &cx);
        Some(Self(span))
    }

    /// A client span for one upstream call, child of the request's span.
    pub fn client(name: &str, parent: SpanIds) -> Option<Self> {
        let tracer = TRACER.get()?;
        let flags = if parent.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let cx = Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(parent.trace_id),
            SpanId::from(parent.span_id),
            flags,
            false,
            TraceState::default(),
        ));
        let span = tracer
            .span_builder(name.to_owned())
            .with_kind(SpanKind::Client)
            .start_with_context(tracer, &cx);
        Some(Self(span))
    }

    pub fn ids(&self) -> SpanIds {
        let cx = self.0.span_context();
        SpanIds {
            trace_id: u128::from_be_bytes(cx.trace_id().to_bytes()),
            span_id: u64::from_be_bytes(cx.span_id().to_bytes()),
            sampled: cx.is_sampled(),
        }
    }

    pub fn set(&mut self, key: &'static str, value: impl Into<opentelemetry::Value>) {
        self.0.set_attribute(KeyValue::new(key, value));
    }

    pub fn rename(&mut self, name: String) {
        self.0.update_name(name);
    }

    /// Marks the span failed, with a short reason.
    pub fn fail(&mut self, reason: &'static str) {
        self.0.set_status(Status::error(reason));
    }
}
