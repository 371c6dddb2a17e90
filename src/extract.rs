//! Request extractors shared by the BFFs' handlers (JSON body, idempotency key, caller).
//!
//! Each rejects with an [`ApiError`], so a malformed request gets the
//! contract's error body like everything else. Extractors run in argument
//! order, which puts cheap checks (scope, headers) before the body is read.

use std::marker::PhantomData;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::request_context::RequestContext;
use crate::upstream::Caller;

/// A JSON body whose rejections are contract errors (`400`, `413`, and
/// `415` for a body that is not `application/json`).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(
                "the body must be JSON with `Content-Type: application/json`",
            ),
            _ => ApiError::BadRequest(rejection.body_text().into()),
        }
    }
}

/// An OAuth scope a route requires.
pub trait Scope {
    const NAME: &'static str;
}

/// Refuses with `403` unless the token carries scope `S`.
#[derive(Debug)]
pub struct RequireScope<S>(PhantomData<S>);

impl<S: Scope, St: Send + Sync> FromRequestParts<St> for RequireScope<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let auth = Authenticated::from_request_parts(parts, state).await?;
        if auth.claims.has_scope(S::NAME) {
            Ok(Self(PhantomData))
        } else {
            Err(ApiError::Forbidden {
                scope: S::NAME.into(),
            })
        }
    }
}

/// The rule of an idempotency key, as a header or a GraphQL argument: 1 to
/// 255 visible ASCII characters, so it is also a safe header upstream.
pub fn validate_idempotency_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::BadRequest(
            "the idempotency key must be 1 to 255 visible ASCII characters".into(),
        ));
    }
    Ok(())
}

/// The `Idempotency-Key` header: required, 1 to 255 visible ASCII characters.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub String);

impl<St: Send + Sync> FromRequestParts<St> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all("idempotency-key").iter();
        let value = values.next().ok_or(ApiError::BadRequest(
            "the `Idempotency-Key` header is required".into(),
        ))?;
        if values.next().is_some() {
            return Err(ApiError::BadRequest(
                "send one `Idempotency-Key` header, not several".into(),
            ));
        }
        let key = value.to_str().map_err(|_| {
            ApiError::BadRequest("`Idempotency-Key` must be visible ASCII characters".into())
        })?;
        validate_idempotency_key(key)?;
        Ok(Self(key.to_owned()))
    }
}

/// What the [`Caller`] extractor needs from the state:
/// `http.upstream_deadline`.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamDeadline(pub std::time::Duration);

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    UpstreamDeadline: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Authenticated::from_request_parts(parts, state).await?;
        let ctx = parts
            .extensions
            .get::<RequestContext>()
            .ok_or(ApiError::Internal("request context missing".into()))?;
        let UpstreamDeadline(within) = axum::extract::FromRef::from_ref(state);
        let deadline = ctx.received_at() + within;
        Caller::new(ctx, auth.claims.subject.clone(), auth.authorization.clone())
            .map(|caller| caller.with_deadline(deadline))
            .ok_or(ApiError::Internal(
                "subject is not a valid header value".into(),
            ))
    }
}
