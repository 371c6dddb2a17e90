//! JWT authentication: key pinning, claim validation, the `Authenticated` extractor.
//!
//! [`JwtVerifier`] is built once from config. [`authenticate`], run by
//! the authenticated routes' guard (`crate::guard`), puts [`Authenticated`]
//! in the request's extensions, where handlers (and the rate limiter, which
//! keys by subject) find it.

mod api_keys;
pub mod config;
mod jwks;
mod middleware;
mod verifier;

pub use api_keys::{ApiKey, ApiKeys};
pub use middleware::{Authenticated, Credentials, KnownCaller, authenticate, with_subject_hash};
pub use verifier::{AuthError, Claims, JwtVerifier, is_valid_subject};
