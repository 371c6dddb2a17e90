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
