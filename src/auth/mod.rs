//! JWT authentication: key pinning, claim validation, the `Authenticated` extractor.
//!
//! [`JwtVerifier`] is built once from config. The [`authenticate`]
//! middleware guards every authenticated route and puts [`Authenticated`]
//! in the request's extensions, where handlers (and the rate limiter, which
//! keys by subject) find it.

mod api_keys;
pub mod config;
mod jwks;
mod middleware;
mod verifier;

pub use api_keys::{ApiKey, ApiKeys};
pub use middleware::{Authenticated, Credentials, authenticate};
pub use verifier::{AuthError, Claims, JwtVerifier, is_valid_subject};
