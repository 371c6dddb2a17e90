//! Request header limits (`431`) and the one framing rule hyper leaves to
//! us: exactly one `Host` (`400`).

use axum::extract::Request;
use axum::http::Version;
use axum::http::header::HOST;

use crate::error::ApiError;

/// What [`check`] needs: `http.max_headers` and
/// `http.max_header_bytes`.
#[derive(Debug, Clone, Copy)]
pub struct HeaderLimits {
    pub max_headers: usize,
    pub max_header_bytes: usize,
}

/// Refuses requests with more headers, or more header bytes, than
/// `http.max_headers` / `http.max_header_bytes` allow (`431`), and an
/// HTTP/1.1 request without exactly one `Host` (`400`).
pub fn check(http: &HeaderLimits, request: &Request) -> Result<(), ApiError> {
    let headers = request.headers();
    if headers.len() > http.max_headers {
        return Err(ApiError::HeadersTooLarge(format!(
            "the request has more than {} headers",
            http.max_headers
        )));
    }
    // Name, value and the ": " and CRLF around them, as on the wire.
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if bytes > http.max_header_bytes {
        return Err(ApiError::HeadersTooLarge(format!(
            "the request headers are larger than {} bytes",
            http.max_header_bytes
        )));
    }
    // RFC 9112 §3.2: an HTTP/1.1 request without `Host`, or any request
    // with two, is refused: a proxy and the gateway could disagree on
    // which host it is for.
    let hosts = headers.get_all(HOST).iter().count();
    if hosts > 1 || (hosts == 0 && request.version() == Version::HTTP_11) {
        return Err(ApiError::BadRequest(
            "an HTTP/1.1 request needs exactly one `Host` header".into(),
        ));
    }
    Ok(())
}
