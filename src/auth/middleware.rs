//! The authentication middleware and the extractor handlers use.

use axum::extract::{FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

use super::{ApiKey, AuthError, Claims};
use crate::error::ApiError;
use crate::telemetry::access::SubjectHash;

/// A verified caller: its claims, the `Authorization` header it sent
/// (forwarded upstream unchanged), or the API key it used.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub claims: Claims,
    /// The caller's bearer credentials; `None` for API-key callers.
    pub authorization: Option<HeaderValue>,
    /// The machine client's key, when it came in with one.
    pub api_key: Option<Arc<ApiKey>>,
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        ApiError::Unauthorized {
            token_sent: error.token_sent(),
            message: error.message(),
        }
    }
}

/// What [`authenticate`] needs: the token verifier and the API keys,
/// shared.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub verifier: Arc<super::JwtVerifier>,
    pub api_keys: Arc<super::ApiKeys>,
    /// Browser sessions (`session.oidc`), when configured.
    pub sessions: Option<Arc<crate::session::TokenHandler>>,
}

/// A caller recognised without verifying anything: its API key, or the
/// subject of a bearer token verified before.
#[derive(Debug, Clone)]
pub enum KnownCaller {
    ApiKey(Arc<ApiKey>),
    Subject(Arc<str>),
}

impl KnownCaller {
    /// The subject it acts as.
    pub fn subject(&self) -> &str {
        match self {
            Self::ApiKey(key) => &key.claims.subject,
            Self::Subject(subject) => subject,
        }
    }
}

impl Credentials {
    /// Who sent the request, when that is known cheaply: its API key
    /// (found by hash), or a bearer token verified before and still in its
    /// time window. A hint that lets both quotas be counted in one round
    /// trip before [`authenticate`] runs; [`authenticate`] still decides.
    pub fn known_caller(&self, headers: &HeaderMap) -> Option<KnownCaller> {
        if let Some(presented) = headers.get(self.api_keys.header()) {
            return self
                .api_keys
                .find(presented.as_bytes())
                .map(KnownCaller::ApiKey);
        }
        let token = bearer_token(headers.get(AUTHORIZATION)?)?;
        self.verifier.known_subject(token).map(KnownCaller::Subject)
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(header: &HeaderValue) -> Option<&str> {
    header
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// Checks the request's credential (an API key or a bearer token) and
/// attaches [`Authenticated`]; the caller's subject, for the access log.
/// `Err` with the `400` or `401` otherwise.
pub async fn authenticate(
    credentials: &Credentials,
    request: &mut Request,
) -> Result<Arc<str>, Response> {
    let api_keys = &credentials.api_keys;
    one_credential(request.headers(), api_keys.header()).map_err(IntoResponse::into_response)?;
    if let Some(presented) = request.headers().get(api_keys.header()) {
        let Some(key) = api_keys.find(presented.as_bytes()) else {
            return Err(ApiError::from(AuthError::InvalidApiKey).into_response());
        };
        let subject = key.claims.subject.clone();
        let authenticated = Authenticated {
            claims: key.claims.clone(),
            authorization: None,
            api_key: Some(key),
        };
        request.extensions_mut().insert(authenticated);
        return Ok(subject);
    }
    let Some(header) = request.headers().get(AUTHORIZATION) else {
        return authenticate_session(credentials, request).await;
    };
    let Some(token) = bearer_token(header) else {
        return Err(ApiError::from(AuthError::Missing).into_response());
    };
    match credentials.verifier.verify(token).await {
        Ok(claims) => {
            let subject = claims.subject.clone();
            let authenticated = Authenticated {
                claims,
                authorization: Some(header.clone()),
                api_key: None,
            };
            request.extensions_mut().insert(authenticated);
            Ok(subject)
        }
        Err(error) => {
            tracing::debug!(%error, "token refused");
            Err(ApiError::from(error).into_response())
        }
    }
}

/// A request without a bearer token or an API key: its session cookie,
/// when the token handler is configured, with the CSRF rules; the cookie
/// is taken off the request, so nothing after this (a declared endpoint's
/// `headers`, an upstream call) can pass it on.
async fn authenticate_session(
    credentials: &Credentials,
    request: &mut Request,
) -> Result<Arc<str>, Response> {
    let Some(sessions) = &credentials.sessions else {
        return Err(ApiError::from(AuthError::Missing).into_response());
    };
    let found = sessions
        .authenticate(request.method(), request.headers())
        .await
        .map_err(IntoResponse::into_response)?;
    let Some((claims, authorization)) = found else {
        return Err(ApiError::from(AuthError::Missing).into_response());
    };
    request.headers_mut().remove(COOKIE);
    let subject = claims.subject.clone();
    request.extensions_mut().insert(Authenticated {
        claims,
        authorization: Some(authorization),
        api_key: None,
    });
    Ok(subject)
}

/// One credential per request: two `Authorization` headers, two API-key
/// headers, or an API key beside a bearer token are refused (`400`), so no
/// layer (or upstream) can pick a different one than the gateway verified.
fn one_credential(headers: &HeaderMap, api_key_header: &HeaderName) -> Result<(), ApiError> {
    let authorizations = headers.get_all(AUTHORIZATION).iter().count();
    let api_keys = headers.get_all(api_key_header).iter().count();
    if authorizations > 1 || api_keys > 1 {
        return Err(ApiError::BadRequest(
            "send one credential: the request has the same credential header twice".into(),
        ));
    }
    if authorizations == 1 && api_keys == 1 {
        return Err(ApiError::BadRequest(
            "send one credential: either an API key or a bearer token, not both".into(),
        ));
    }
    Ok(())
}

/// Marks the reply with who asked, hashed, for the access log.
pub fn with_subject_hash(mut response: Response, subject: &str) -> Response {
    response.extensions_mut().insert(SubjectHash::of(subject));
    response
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
