//! Request header limits (`431`) and the one framing rule hyper leaves to
//! us: exactly one `Host` (`400`).

use axum::extract::{Request, State};
use axum::http::Version;
use axum::http::header::HOST;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// What [`enforce_header_limits`] needs: `http.max_headers` and
/// `http.max_header_bytes`.
#[derive(Debug, Clone, Copy)]
pub struct HeaderLimits {
    pub max_headers: usize,
    pub max_header_bytes: usize,
}

/// Middleware: refuses requests with more headers, or more header bytes,
/// than `http.max_headers` / `http.max_header_bytes` allow.
pub async fn enforce_header_limits(
    State(http): State<HeaderLimits>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    if headers.len() > http.max_headers {
        return ApiError::HeadersTooLarge(format!(
            "the request has more than {} headers",
            http.max_headers
        ))
        .into_response();
    }
    // Name, value and the ": " and CRLF around them, as on the wire.
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if bytes > http.max_header_bytes {
        return ApiError::HeadersTooLarge(format!(
            "the request headers are larger than {} bytes",
            http.max_header_bytes
        ))
        .into_response();
    }
    // RFC 9112 §3.2: an HTTP/1.1 request without `Host`, or any request
    // with two, is refused: a proxy and the gateway could disagree on
    // which host it is for.
    let hosts = headers.get_all(HOST).iter().count();
    if hosts > 1 || (hosts == 0 && request.version() == Version::HTTP_11) {
        return ApiError::BadRequest("an HTTP/1.1 request needs exactly one `Host` header".into())
            .into_response();
    }
    next.run(request).await
}
