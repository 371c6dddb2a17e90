//! Request id and W3C trace context: kept from the client or started here.
//!
//! The middleware runs first on every request, so everything after it (the
//! error renderer, the trace span, upstream calls) can read one
//! [`RequestContext`] from the request's extensions.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::telemetry::otel::{OtelSpan, SpanIds};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Longest client-supplied request id we keep.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Identity of one request as it travels through the BFF and upstream.
#[derive(Debug, Clone)]
pub struct RequestContext {
    request_id: HeaderValue,
    trace: TraceContext,
    received_at: std::time::Instant,
}

impl RequestContext {
    /// Reads the client's headers, keeping what is sane and starting the rest.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let request_id = headers
            .get(&X_REQUEST_ID)
            .filter(|v| is_sane_request_id(v.as_bytes()))
            .cloned()
            .unwrap_or_else(generate_request_id);
        Self {
            request_id,
            trace: TraceContext::from_headers(headers),
            received_at: std::time::Instant::now(),
        }
    }

    pub fn request_id(&self) -> &HeaderValue {
        &self.request_id
    }

    pub fn trace(&self) -> &TraceContext {
        &self.trace
    }

    /// When the request arrived: the start of its upstream deadline.
    pub fn received_at(&self) -> std::time::Instant {
        self.received_at
    }
}

/// 1 to 128 visible ASCII characters: safe to log and to send on.
fn is_sane_request_id(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes.iter().all(|b| b.is_ascii_graphic())
}

fn generate_request_id() -> HeaderValue {
    let id: u128 = rand::random();
    HeaderValue::try_from(format!("{id:032x}")).expect("hex digits are a valid header value")
}

/// W3C Trace Context: the trace this request belongs to and the BFF's own
/// span in it, which is the parent of every upstream call it makes.
#[derive(Debug, Clone)]
pub struct TraceContext {
    trace_id: u128,
    span_id: u64,
    flags: u8,
    tracestate: Option<HeaderValue>,
    /// The client's span, when it sent a valid `traceparent`.
    client_span_id: Option<u64>,
    /// The exported server span, when trace export is on. Shared by every
    /// clone of the request's context; it ends when the last one is gone.
    exported: Option<Arc<Mutex<OtelSpan>>>,
}

impl TraceContext {
    /// Continues the client's trace when its `traceparent` is valid; starts
    /// a new sampled one otherwise. The BFF always gets a fresh span id.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let continued = headers
            .get(&TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent);
        let span_id = nonzero_random_u64();
        match continued {
            Some((trace_id, client_span_id, flags)) => Self {
                trace_id,
                span_id,
                flags,
                tracestate: valid_tracestate(headers),
                client_span_id: Some(client_span_id),
                exported: None,
            },
            None => Self {
                trace_id: nonzero_random_u128(),
                span_id,
                flags: 0x01,
                tracestate: None,
                client_span_id: None,
                exported: None,
            },
        }
    }

    /// When trace export is on, starts the request's server span and
    /// adopts its ids (and its sampling decision) as the BFF's own.
    fn start_export(&mut self, name: &str) {
        let parent = self
            .client_span_id
            .map(|client| (self.trace_id, client, self.flags));
        let Some(span) = OtelSpan::server(name, parent) else {
            return;
        };
        let ids = span.ids();
        self.trace_id = ids.trace_id;
        self.span_id = ids.span_id;
        self.flags = u8::from(ids.sampled);
        self.exported = Some(Arc::new(Mutex::new(span)));
    }

    /// Runs `f` on the exported server span, if there is one.
    pub fn with_exported(&self, f: impl FnOnce(&mut OtelSpan)) {
        if let Some(span) = &self.exported {
            f(&mut span.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }

    /// The BFF's span in this trace, as the parent of an upstream call.
    pub fn ids(&self) -> SpanIds {
        SpanIds {
            trace_id: self.trace_id,
            span_id: self.span_id,
            sampled: self.flags & 0x01 == 0x01,
        }
    }

    /// The 32-hex-digit trace id.
    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The `traceparent` to send upstream: same trace, the BFF's span as parent.
    pub fn traceparent(&self) -> HeaderValue {
        traceparent(self.ids())
    }

    pub fn tracestate(&self) -> Option<&HeaderValue> {
        self.tracestate.as_ref()
    }
}

/// Most list members a `tracestate` may have (W3C Trace Context §3.3.1).
const MAX_TRACESTATE_MEMBERS: usize = 32;
/// Longest `tracestate` sent on (the spec's size every vendor must accept).
const MAX_TRACESTATE_LEN: usize = 512;

/// The client's `tracestate` (several fields joined by commas, as the
/// spec says), when it is well-formed and within the limits: at most 32
/// list members with unique keys, at most 512 characters. Otherwise none
/// is forwarded; the trace itself still continues.
fn valid_tracestate(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut fields = headers.get_all(&TRACESTATE).iter();
    let first = fields.next()?;
    let joined;
    let value = match fields.next() {
        None => first.to_str().ok()?,
        Some(second) => {
            let mut all = vec![first.to_str().ok()?, second.to_str().ok()?];
            for field in fields {
                all.push(field.to_str().ok()?);
            }
            joined = all.join(",");
            &joined
        }
    };
    if value.len() > MAX_TRACESTATE_LEN {
        return None;
    }
    let mut keys: Vec<&str> = Vec::new();
    for member in value.split(',') {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            // Empty list members are allowed and ignored.
            continue;
        }
        let (key, member_value) = member.split_once('=')?;
        if !is_tracestate_key(key) || !is_tracestate_value(member_value) || keys.contains(&key) {
            return None;
        }
        keys.push(key);
        if keys.len() > MAX_TRACESTATE_MEMBERS {
            return None;
        }
    }
    if keys.is_empty() {
        return None;
    }
    HeaderValue::from_str(value).ok()
}

/// `simple-key` or `tenant-id@system-id`.
fn is_tracestate_key(key: &str) -> bool {
    let rest = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-*/".contains(&c);
    let part = |s: &str, max: usize, first_digit_ok: bool| {
        let bytes = s.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= max
            && (bytes[0].is_ascii_lowercase() || (first_digit_ok && bytes[0].is_ascii_digit()))
            && bytes[1..].iter().all(|&c| rest(c))
    };
    match key.split_once('@') {
        None => part(key, 256, false),
        Some((tenant, system)) => part(tenant, 241, true) && part(system, 14, false),
    }
}

/// Up to 256 printable ASCII characters other than `,` and `=`, not
/// ending in a space.
fn is_tracestate_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 256
        && bytes.last().is_some_and(|&c| c != b' ')
        && bytes
            .iter()
            .all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
}

/// A `traceparent` naming `span` as the parent.
pub fn traceparent(span: SpanIds) -> HeaderValue {
    let mut s = String::with_capacity(55);
    let _ = write!(
        s,
        "00-{:032x}-{:016x}-{:02x}",
        span.trace_id,
        span.span_id,
        u8::from(span.sampled)
    );
    HeaderValue::try_from(s).expect("a traceparent is hex digits and dashes")
}

/// Parses `00-<32 hex>-<16 hex>-<2 hex>` (later versions: the same prefix);
/// all-zero ids and version `ff` are invalid per the spec.
fn parse_traceparent(value: &str) -> Option<(u128, u64, u8)> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let parent = parts.next()?;
    let flags = parts.next()?;
    let lower_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !lower_hex(version, 2)
        || version == "ff"
        || !lower_hex(trace, 32)
        || !lower_hex(parent, 16)
        || !lower_hex(flags, 2)
    {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok()?;
    let parent_id = u64::from_str_radix(parent, 16).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    (trace_id != 0 && parent_id != 0).then_some((trace_id, parent_id, flags))
}

fn nonzero_random_u128() -> u128 {
    rand::random::<u128>().max(1)
}

fn nonzero_random_u64() -> u64 {
    rand::random::<u64>().max(1)
}

/// Starts the request's context (its request id kept or made, its trace
/// continued or started, and the exported server span) and attaches it;
/// the same context for the caller, which echoes `X-Request-Id`.
pub fn attach(request: &mut Request) -> RequestContext {
    let mut ctx = RequestContext::from_headers(request.headers());
    ctx.trace.start_export(request.method().as_str());
    request.extensions_mut().insert(ctx.clone());
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).expect("valid header"));
        }
        map
    }

    #[test]
    fn sane_request_id_is_kept_and_bad_one_replaced() {
        let ctx = RequestContext::from_headers(&headers(&[("x-request-id", "abc-123")]));
        assert_eq!(ctx.request_id(), "abc-123");
        let long = "a".repeat(129);
        let ctx = RequestContext::from_headers(&headers(&[("x-request-id", &long)]));
        assert_eq!(ctx.request_id().len(), 32);
        let ctx = RequestContext::from_headers(&headers(&[("x-request-id", "has space")]));
        assert_ne!(ctx.request_id(), "has space");
    }

    #[test]
    fn valid_traceparent_is_continued_with_a_new_parent() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx = TraceContext::from_headers(&headers(&[
            ("traceparent", incoming),
            ("tracestate", "k=v"),
        ]));
        let out = ctx.traceparent();
        let out = out.to_str().expect("ascii");
        assert!(
            out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{out}"
        );
        assert!(!out.contains("00f067aa0ba902b7"), "{out}");
        assert!(out.ends_with("-01"));
        assert_eq!(ctx.tracestate().map(|v| v.as_bytes()), Some(&b"k=v"[..]));
    }

    #[test]
    fn tracestate_is_forwarded_only_when_valid_and_bounded() {
        let parent = (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        let state_of = |value: &str| {
            TraceContext::from_headers(&headers(&[parent, ("tracestate", value)]))
                .tracestate()
                .map(|v| v.to_str().expect("ascii").to_owned())
        };
        assert_eq!(
            state_of("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE").as_deref(),
            Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        );
        assert!(state_of("tenant1@vendor=x , ,b=2").is_some());
        let members: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert!(state_of(&members.join(",")).is_none(), "33 members");
        assert!(state_of(&members[..32].join(",")).is_some(), "32 members");
        assert!(
            state_of(&format!("k={}", "v".repeat(600))).is_none(),
            "over 512 characters"
        );
        for bad in ["Upper=1", "k", "k=", "k=a=b", "1k=v", "k=v,k=w", "k=a b="] {
            assert!(state_of(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn invalid_traceparents_start_a_new_trace() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "garbage",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
        let ctx = TraceContext::from_headers(&HeaderMap::new());
        assert_eq!(ctx.traceparent().len(), 55);
    }
}
