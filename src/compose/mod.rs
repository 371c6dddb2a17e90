//! Composition: concurrent fan-out over upstream clients with a partial-failure policy.
//!
//! Compose functions know upstream clients and nothing about HTTP servers,
//! so REST handlers and GraphQL resolvers call the same ones. A part is
//! either required (its failure fails the reply) or optional (its failure
//! becomes `None` plus a [`Degraded`] entry).

pub mod dashboard;
pub mod orders;

use serde::Serialize;

use crate::error::ErrorCode;
use crate::upstream::{Service, UpstreamError};

/// An optional part that failed: which source, with which contract code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Degraded {
    pub source: Service,
    pub code: ErrorCode,
}

/// Applies the optional-part policy: keeps the value, or records the
/// failure in `degraded` and yields `None`.
pub fn optional<T>(part: Result<T, UpstreamError>, degraded: &mut Vec<Degraded>) -> Option<T> {
    match part {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::warn!(service = %error.service, %error, "optional part degraded");
            degraded.push(Degraded {
                source: error.service,
                code: ErrorCode::from(&error),
            });
            None
        }
    }
}
