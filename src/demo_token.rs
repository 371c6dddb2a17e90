//! `GET /demo/token?sub=&scope=`: a fresh development token for any demo
//! user and scope, so a frontend developer can try another user, or see a
//! `403` with a token that lacks a scope. Served only by a BFF started
//! with `--demo` (its [`TokenMint`] is attached to the state); without it
//! the route does not exist and answers `404` like any unknown path.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use crate::auth::is_valid_subject;
use crate::error::ApiError;

/// Signs development tokens that this BFF accepts.
pub trait TokenMint: Send + Sync + std::fmt::Debug {
    /// A token for `sub` with `scope` (space-separated), and its lifetime
    /// in seconds.
    fn mint(&self, sub: &str, scope: &str) -> (String, u64);
    /// The subject and scope a token gets when the request names none.
    fn defaults(&self) -> (&str, &str);
}

/// The query: both optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    sub: Option<String>,
    scope: Option<String>,
}

/// The reply, shaped like an OAuth token response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedToken {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    sub: String,
    scope: String,
}

/// A scope word: what OAuth allows (RFC 6749 §3.3) minus the quote and
/// backslash, at most 64 characters.
fn is_scope_token(word: &str) -> bool {
    !word.is_empty()
        && word.len() <= 64
        && word
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

pub async fn issue(
    State(mint): State<Arc<dyn TokenMint>>,
    query: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<IssuedToken>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text().into()))?;
    let (default_sub, default_scope) = mint.defaults();
    let sub = query.sub.unwrap_or_else(|| default_sub.to_owned());
    if !is_valid_subject(&sub) {
        return Err(ApiError::BadRequest(
            "`sub` must be 1 to 128 visible ASCII characters, one path segment".into(),
        ));
    }
    let scope = query.scope.unwrap_or_else(|| default_scope.to_owned());
    if scope.len() > 512
        || !scope
            .split(' ')
            .filter(|w| !w.is_empty())
            .all(is_scope_token)
    {
        return Err(ApiError::BadRequest(
            "`scope` must be space-separated words of visible ASCII characters".into(),
        ));
    }
    let scope = scope.split_whitespace().collect::<Vec<_>>().join(" ");
    let (access_token, expires_in) = mint.mint(&sub, &scope);
    Ok(Json(IssuedToken {
        access_token,
        token_type: "Bearer",
        expires_in,
        sub,
        scope,
    }))
}
