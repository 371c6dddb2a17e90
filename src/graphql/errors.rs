//! GraphQL errors carry the contract's code in `extensions.code`.
//!
//! async-graphql turns anything `Display` into an error without a code, so
//! resolvers map failures through [`GraphQlResultExt::gql`] instead of `?`.

use async_graphql::{ErrorExtensions, ServerError};

use crate::error::{ApiError, ErrorCode};

/// A resolver error with the contract's `code`.
pub fn coded(code: ErrorCode, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code.as_str()))
}

/// A request-level error (before execution) with the contract's `code`.
pub fn request_error(code: ErrorCode, message: impl Into<String>) -> ServerError {
    let mut error = ServerError::new(message, None);
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code.as_str());
    error
}

/// `extensions.code` of a persisted-query miss: the one code that is not
/// lower_snake_case, because Apollo's clients match this exact text (with
/// the message `PersistedQueryNotFound`) to re-send the query.
pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";

/// The metric label of [`PERSISTED_QUERY_NOT_FOUND`], in the labels' case.
pub const PERSISTED_QUERY_NOT_FOUND_LABEL: &str = "persisted_query_not_found";

/// The request error a client's APQ link retries on: Apollo Server's
/// message and code.
pub fn persisted_query_not_found() -> ServerError {
    let mut error = ServerError::new("PersistedQueryNotFound", None);
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", PERSISTED_QUERY_NOT_FOUND);
    error
}

/// The bounded metric label of an error's `extensions.code`: ours, the
/// persisted-query miss, or `internal` for anything else.
pub fn metric_label(code: &str) -> &'static str {
    match code {
        PERSISTED_QUERY_NOT_FOUND => PERSISTED_QUERY_NOT_FOUND_LABEL,
        code => ErrorCode::from_code(code)
            .unwrap_or(ErrorCode::Internal)
            .as_str(),
    }
}

/// `.gql()` on any result whose error is (or converts into) an [`ApiError`].
pub trait GraphQlResultExt<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T, E: Into<ApiError>> GraphQlResultExt<T> for Result<T, E> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| {
            let error: ApiError = e.into();
            coded(error.code(), error.to_string())
        })
    }
}

/// Gives every error that has no code one: `bad_request` for errors raised
/// before execution (parse, validation, limits), `internal` otherwise.
pub fn ensure_codes(errors: &mut [ServerError], before_execution: bool) {
    let fallback = if before_execution {
        ErrorCode::BadRequest
    } else {
        ErrorCode::Internal
    };
    for error in errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", fallback.as_str());
        }
    }
}
