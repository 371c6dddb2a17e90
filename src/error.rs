//! The one place where failures become the contract's JSON error body.
//!
//! Handlers return [`ApiError`]; its `IntoResponse` only records the status,
//! code and message on the response. [`render_error_body`], a middleware just
//! inside the request-context layer, writes the JSON body with the request id,
//! and also gives a contract body to error responses that did not come from
//! an `ApiError` (framework rejections, panics, timeouts). So every error a
//! client sees has the same shape, whoever produced it.

use std::borrow::Cow;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::upstream::{UpstreamError, UpstreamErrorKind};

/// The contract's stable, lower_snake_case error codes, plus the few the
/// contract leaves to us (`method_not_allowed`,
/// `unsupported_media_type`, `conflict`, `request_timeout`,
/// `headers_too_large`, `not_ready`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    UnsupportedMediaType,
    RequestTimeout,
    Conflict,
    PayloadTooLarge,
    HeadersTooLarge,
    RateLimited,
    NotReady,
    /// A quota that must be counted across replicas could not be (Redis
    /// down) and its route fails closed.
    SharedStateUnavailable,
    /// Only in `degraded`: a part served from the cache because its
    /// service failed.
    Stale,
    UpstreamUnavailable,
    UpstreamTimeout,
    UpstreamBadResponse,
    Internal,
}

impl ErrorCode {
    /// Every code, for bounded metric labels.
    pub const ALL: [ErrorCode; 18] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::UnsupportedMediaType,
        Self::RequestTimeout,
        Self::Conflict,
        Self::PayloadTooLarge,
        Self::HeadersTooLarge,
        Self::RateLimited,
        Self::NotReady,
        Self::SharedStateUnavailable,
        Self::Stale,
        Self::UpstreamUnavailable,
        Self::UpstreamTimeout,
        Self::UpstreamBadResponse,
        Self::Internal,
    ];

    /// The code whose text is `code`, if it is one of ours.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// The code as it appears in bodies and `degraded` entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RequestTimeout => "request_timeout",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::HeadersTooLarge => "headers_too_large",
            Self::RateLimited => "rate_limited",
            Self::NotReady => "not_ready",
            Self::SharedStateUnavailable => "shared_state_unavailable",
            Self::Stale => "stale",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::UpstreamBadResponse => "upstream_bad_response",
            Self::Internal => "internal",
        }
    }

    /// The code a bare error status stands for, for error responses that
    /// were not built from an [`ApiError`].
    pub(crate) fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::BAD_REQUEST => Self::BadRequest,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::UNPROCESSABLE_ENTITY => Self::BadRequest,
            StatusCode::UNAUTHORIZED => Self::Unauthorized,
            StatusCode::FORBIDDEN => Self::Forbidden,
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT => Self::RequestTimeout,
            StatusCode::CONFLICT => Self::Conflict,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Self::HeadersTooLarge,
            StatusCode::TOO_MANY_REQUESTS => Self::RateLimited,
            StatusCode::BAD_GATEWAY => Self::UpstreamBadResponse,
            StatusCode::SERVICE_UNAVAILABLE => Self::UpstreamUnavailable,
            StatusCode::GATEWAY_TIMEOUT => Self::UpstreamTimeout,
            s if s.is_client_error() => Self::BadRequest,
            _ => Self::Internal,
        }
    }
}

/// Every failure a handler can report. Messages are written for the client:
/// they never carry secrets, tokens, upstream URLs or internal detail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(Cow<'static, str>),
    /// `token_sent` decides whether `WWW-Authenticate` says `invalid_token`.
    #[error("{message}")]
    Unauthorized {
        token_sent: bool,
        message: &'static str,
    },
    #[error("the token lacks the `{scope}` scope")]
    Forbidden { scope: Cow<'static, str> },
    #[error("{0}")]
    NotFound(Cow<'static, str>),
    #[error("{0}")]
    MethodNotAllowed(&'static str),
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    #[error("{0}")]
    Conflict(Cow<'static, str>),
    #[error("the request body is larger than the limit")]
    PayloadTooLarge,
    #[error("{0}")]
    HeadersTooLarge(String),
    #[error("too many requests; retry after {} s", retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    /// The BFF is draining or not started; a readiness answer.
    #[error("{0}")]
    NotReady(&'static str),
    #[error("this route's quota cannot be counted right now; retry shortly")]
    SharedStateUnavailable,
    /// A cookie-authenticated request without the CSRF header or from
    /// another origin.
    #[error("{0}")]
    CsrfRefused(&'static str),
    /// The identity provider of the token handler cannot be reached.
    #[error("the identity provider cannot be reached; retry shortly")]
    ProviderUnavailable,
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("{0}")]
    Internal(Cow<'static, str>),
}

impl ApiError {
    /// The stable code clients switch on.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Unauthorized { .. } => ErrorCode::Unauthorized,
            Self::Forbidden { .. } => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            Self::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::HeadersTooLarge(_) => ErrorCode::HeadersTooLarge,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::NotReady(_) => ErrorCode::NotReady,
            Self::SharedStateUnavailable => ErrorCode::SharedStateUnavailable,
            Self::CsrfRefused(_) => ErrorCode::Forbidden,
            Self::ProviderUnavailable => ErrorCode::UpstreamUnavailable,
            Self::Upstream(e) => upstream_code(e),
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The HTTP status that goes with [`Self::code`].
    pub fn status(&self) -> StatusCode {
        match self.code() {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::NotReady | ErrorCode::SharedStateUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            // Never an error reply's code; only a `degraded` entry's.
            ErrorCode::Stale => StatusCode::OK,
            ErrorCode::UpstreamUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::UpstreamBadResponse => StatusCode::BAD_GATEWAY,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// How an upstream failure reads to our client. An upstream's 404, 409 and
/// 400 are answers about the client's request, so they keep their meaning;
/// everything else is the gateway's neighbour failing.
fn upstream_code(error: &UpstreamError) -> ErrorCode {
    match error.kind {
        UpstreamErrorKind::Timeout(_) => ErrorCode::UpstreamTimeout,
        UpstreamErrorKind::Unreachable
        | UpstreamErrorKind::Transport
        | UpstreamErrorKind::CircuitOpen
        | UpstreamErrorKind::Overloaded => ErrorCode::UpstreamUnavailable,
        UpstreamErrorKind::Status(s) if s.is_server_error() => ErrorCode::UpstreamUnavailable,
        UpstreamErrorKind::Status(_) | UpstreamErrorKind::BadBody(_) => {
            ErrorCode::UpstreamBadResponse
        }
        UpstreamErrorKind::NotFound => ErrorCode::NotFound,
        UpstreamErrorKind::Conflict => ErrorCode::Conflict,
        UpstreamErrorKind::Rejected | UpstreamErrorKind::UnsafeIdentifier(_) => {
            ErrorCode::BadRequest
        }
    }
}

impl From<&UpstreamError> for ErrorCode {
    fn from(error: &UpstreamError) -> Self {
        upstream_code(error)
    }
}

/// Marks an error response whose body is already final (a GraphQL
/// response), so [`render_error_body`] leaves it alone.
#[derive(Debug, Clone, Copy)]
pub struct FinalBody;

/// What an error response carries until [`render_error_body`] writes it out.
#[derive(Debug, Clone)]
struct PendingErrorBody {
    code: ErrorCode,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status().into_response();
        let headers = response.headers_mut();
        match &self {
            Self::Unauthorized { token_sent, .. } => {
                let challenge = if *token_sent {
                    r#"Bearer error="invalid_token""#
                } else {
                    "Bearer"
                };
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            Self::RateLimited { retry_after } => {
                headers.insert(header::RETRY_AFTER, seconds_header(*retry_after));
            }
            _ => {}
        }
        response.extensions_mut().insert(PendingErrorBody {
            code: self.code(),
            message: self.to_string(),
        });
        response
    }
}

/// Whole seconds, rounded up so a client never retries too early.
pub(crate) fn seconds_header(duration: Duration) -> HeaderValue {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    HeaderValue::from(secs.max(1))
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    code: ErrorCode,
    message: &'a str,
    request_id: &'a str,
}

/// Gives a 4xx/5xx response, whoever made it, the contract's JSON error
/// body with the request's id.
pub fn render_error_body(response: Response, request_id: &HeaderValue) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<FinalBody>().is_some()
    {
        return response;
    }
    let (mut parts, _body) = response.into_parts();
    let pending = parts.extensions.remove::<PendingErrorBody>();
    let (code, message) = match &pending {
        Some(p) => (p.code, p.message.as_str()),
        None => {
            let code = ErrorCode::for_status(status);
            (code, generic_message(status))
        }
    };
    let envelope = ErrorEnvelope {
        error: ErrorBody {
            code,
            message,
            request_id: request_id.to_str().unwrap_or_default(),
        },
    };
    let body = serde_json::to_vec(&envelope).expect("the error envelope holds strings only");
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Messages for errors that reached us without one of our own.
fn generic_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "no such route",
        StatusCode::METHOD_NOT_ALLOWED => "this route does not accept that method",
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is larger than the limit",
        StatusCode::REQUEST_TIMEOUT => "the request took too long to arrive or to serve",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "the request body must be application/json",
        s if s.is_client_error() => "the request is not valid",
        _ => "an internal error occurred",
    }
}
