//! The authentication middleware and the extractor handlers use.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::HeaderValue;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{AuthError, Claims};
use crate::error::ApiError;
use crate::server::AppState;

/// A verified caller: its claims and the `Authorization` header it sent,
/// which is forwarded upstream unchanged.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub claims: Claims,
    pub authorization: HeaderValue,
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        ApiError::Unauthorized {
            token_sent: error.token_sent(),
            message: error.message(),
        }
    }
}

/// Middleware: refuses the request with `401` unless it carries a valid
/// bearer token; otherwise attaches [`Authenticated`].
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(header) = request.headers().get(AUTHORIZATION) else {
        return ApiError::from(AuthError::Missing).into_response();
    };
    let token = header
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(token) = token else {
        return ApiError::from(AuthError::Missing).into_response();
    };
    match state.verifier().verify(token) {
        Ok(claims) => {
            let authenticated = Authenticated {
                claims,
                authorization: header.clone(),
            };
            request.extensions_mut().insert(authenticated);
            next.run(request).await
        }
        Err(error) => {
            tracing::debug!(%error, "token refused");
            ApiError::from(error).into_response()
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Authenticated>()
            .cloned()
            .ok_or(ApiError::from(AuthError::Missing))
    }
}
