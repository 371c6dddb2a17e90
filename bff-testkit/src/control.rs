//! Switchable faults and call recording for the demo services.
//!
//! Tests (and anyone poking at `--demo`) flip a service's [`Fault`] and read
//! back what the service saw: how many calls, with which headers, and how
//! many were in flight at once across all three services.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::Service;

/// Requests kept per service for inspection.
const RECORDED_LIMIT: usize = 512;

/// What a service does to each request until changed.
#[derive(Debug, Clone, Default)]
pub struct Fault {
    /// Wait this long before answering.
    pub delay: Duration,
    /// With `delay`: only calls 1, 1 + n, 1 + 2n, ... are delayed (one slow
    /// replica in n).
    pub delay_every: Option<u32>,
    /// Answer with this status (and a contract error body) instead.
    pub status: Option<StatusCode>,
    /// With `status`: answer it for this many calls only, then recover.
    pub status_for_calls: Option<u32>,
    /// Answer 200 with a body that is not valid JSON (cut off mid-object).
    pub malformed_body: bool,
    /// Answer 200 with valid JSON of the wrong shape.
    pub wrong_shape_body: bool,
    /// Not a fault: every list in a reply object comes in reverse order
    /// (a batch lookup's order is unspecified).
    pub reversed_lists: bool,
    /// Never answer: hold the request until the client gives up.
    pub hang: bool,
    /// Handle the request (an order is placed), then break the connection
    /// mid-reply: the client never learns the outcome.
    pub break_after_handling: bool,
    /// Send the reply's body this slowly: one 16-byte piece per interval.
    pub slow_body: Option<Duration>,
    /// Reply 200 with a body that never ends.
    pub endless_body: bool,
    /// Not a fault: the `Cache-Control` the service puts on its replies.
    pub cache_control: Option<&'static str>,
    /// Not a fault: the `Age` (seconds) on its replies, as when a cache
    /// in front of the service already held them that long.
    pub age: Option<u32>,
    /// Apply only to requests whose path and query start with this
    /// (`/users?` is the batch lookup); all requests when `None`.
    pub target_prefix: Option<String>,
}

impl Fault {
    fn applies_to(&self, target: &str) -> bool {
        self.target_prefix
            .as_deref()
            .is_none_or(|prefix| target.starts_with(prefix))
    }
}

/// Each way an optional part can fail, and the code it must be reported with.
pub fn optional_failures() -> [(Fault, &'static str); 3] {
    [
        (
            Fault {
                status: Some(StatusCode::SERVICE_UNAVAILABLE),
                ..Fault::default()
            },
            "upstream_unavailable",
        ),
        (
            Fault {
                delay: Duration::from_secs(3),
                ..Fault::default()
            },
            "upstream_timeout",
        ),
        (
            Fault {
                malformed_body: true,
                ..Fault::default()
            },
            "upstream_bad_response",
        ),
    ]
}

/// One request as a service received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: Method,
    /// Path and query.
    pub target: String,
    pub headers: HeaderMap,
}

#[derive(Debug, Default)]
struct ServiceState {
    fault: Mutex<Fault>,
    calls: AtomicUsize,
    recorded: Mutex<VecDeque<RecordedRequest>>,
}

/// The control panel of the three demo services.
#[derive(Debug, Default)]
pub struct Control {
    users: ServiceState,
    orders: ServiceState,
    notifications: ServiceState,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Control {
    fn state(&self, service: Service) -> &ServiceState {
        match service {
            Service::Users => &self.users,
            Service::Orders => &self.orders,
            Service::Notifications => &self.notifications,
        }
    }

    pub fn set_fault(&self, service: Service, fault: Fault) {
        *self
            .state(service)
            .fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = fault;
    }

    /// Calls the service received since start.
    pub fn calls(&self, service: Service) -> usize {
        self.state(service).calls.load(Ordering::SeqCst)
    }

    /// The most recent requests the service received, oldest first.
    pub fn requests(&self, service: Service) -> Vec<RecordedRequest> {
        let recorded = self
            .state(service)
            .recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        recorded.iter().cloned().collect()
    }

    /// Requests in flight now, across all three services.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests in flight at once, across all three services.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// Records the request; returns the fault that applies to it.
    fn record(&self, service: Service, request: &Request) -> Fault {
        let state = self.state(service);
        let number = state.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let target = request
            .uri()
            .path_and_query()
            .map(ToString::to_string)
            .unwrap_or_default();
        let fault = {
            let mut current = state.fault.lock().unwrap_or_else(PoisonError::into_inner);
            if current.applies_to(&target) {
                let mut fault = current.clone();
                let delayed = current
                    .delay_every
                    .filter(|n| *n > 0)
                    .is_none_or(|every| (number - 1).is_multiple_of(every as usize));
                if !delayed {
                    fault.delay = Duration::ZERO;
                }
                match current.status_for_calls {
                    Some(0) => fault.status = None,
                    Some(left) => current.status_for_calls = Some(left - 1),
                    None => {}
                }
                fault
            } else {
                Fault::default()
            }
        };
        let mut recorded = state
            .recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if recorded.len() == RECORDED_LIMIT {
            recorded.pop_front();
        }
        recorded.push_back(RecordedRequest {
            method: request.method().clone(),
            target,
            headers: request.headers().clone(),
        });
        fault
    }
}

/// Decrements the in-flight gauge however the request ends (even cancelled).
struct InFlight<'a>(&'a Control);

impl<'a> InFlight<'a> {
    fn enter(control: &'a Control) -> Self {
        let now = control.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        control.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(control)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Middleware on each demo service: records the call, then applies its fault.
pub async fn apply_faults(
    State((control, service)): State<(Arc<Control>, Service)>,
    request: Request,
    next: Next,
) -> Response {
    let fault = control.record(service, &request);
    let _in_flight = InFlight::enter(&control);
    if !fault.delay.is_zero() {
        tokio::time::sleep(fault.delay).await;
    }
    if fault.hang {
        std::future::pending::<()>().await;
    }
    if fault.endless_body {
        let chunk = Bytes::from_static(b"[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,");
        let endless =
            futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
        return (
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(endless),
        )
            .into_response();
    }
    if let Some(status) = fault.status {
        let body = serde_json::json!({"error": {"code": "injected", "message": "injected fault"}});
        return (status, axum::Json(body)).into_response();
    }
    let mut response = next.run(request).await;
    if let Some(cache_control) = fault.cache_control {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        );
    }
    if let Some(age) = fault.age {
        response
            .headers_mut()
            .insert(header::AGE, HeaderValue::from(age));
    }
    if fault.break_after_handling || fault.slow_body.is_some() {
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        return Response::from_parts(parts, broken_or_slow(body, fault.slow_body));
    }
    if fault.reversed_lists && response.status() == StatusCode::OK {
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        let mut value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if let Some(fields) = value.as_object_mut() {
            for field in fields.values_mut() {
                if let Some(list) = field.as_array_mut() {
                    list.reverse();
                }
            }
        }
        let mut parts = parts;
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::from(value.to_string()));
    }
    if fault.malformed_body || fault.wrong_shape_body {
        let (mut parts, _) = response.into_parts();
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        let body = if fault.malformed_body {
            r#"{"orders": [{"id": "o1", "#
        } else {
            r#"{"unexpected": [1, 2, 3]}"#
        };
        return Response::from_parts(parts, Body::from(body));
    }
    response
}

/// The reply body sent slowly (16 bytes per `every`), or, without `every`,
/// cut off halfway: the connection breaks before the reply is complete.
fn broken_or_slow(body: Bytes, every: Option<Duration>) -> Body {
    let pieces: Vec<Bytes> = match every {
        Some(_) => body.chunks(16).map(Bytes::copy_from_slice).collect(),
        None => vec![body.slice(..body.len() / 2)],
    };
    let state = (pieces.into_iter(), every, every.is_none());
    let stream =
        futures_util::stream::unfold(state, |(mut pieces, every, break_after)| async move {
            match pieces.next() {
                Some(piece) => {
                    if let Some(every) = every {
                        tokio::time::sleep(every).await;
                    }
                    Some((Ok(piece), (pieces, every, break_after)))
                }
                None if break_after => Some((
                    Err(std::io::Error::other("injected broken connection")),
                    (pieces, every, false),
                )),
                None => None,
            }
        });
    Body::from_stream(stream)
}
