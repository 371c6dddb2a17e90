//! bff-core: the gateway every Backend-for-Frontend runs on, knowing no shop.
//!
//! It knows HTTP, auth, limits, upstreams by name, composition and GraphQL
//! mechanics. A domain crate (`bff-shop`) holds typed clients and shared
//! GraphQL types; a BFF crate holds its routes, reply shapes and defaults.
//! Everything that authenticates, limits, calls upstreams, composes replies
//! or renders errors lives here, so every team gets the same guarantees
//! without copying code.

pub mod auth;
pub mod cli;
pub mod client_ip;
pub mod compose;
pub mod conditional;
pub mod config;
pub mod cors;
pub mod declared;
pub mod demo_token;
pub mod drift;
pub mod edge;
pub mod encoding;
pub mod error;
pub mod extract;
pub mod graphql;
pub mod guard;
pub mod header_limits;
pub mod idempotency;
pub mod listener;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod recent;
pub mod reload;
pub mod request_context;
pub mod run;
pub mod server;
pub mod server_timing;
pub mod session;
pub mod shared_state;
pub mod status;
pub mod telemetry;
pub mod tls;
pub mod upstream;

pub use error::{ApiError, ErrorCode};
pub use server::AppState;
