//! bff-core: the gateway every Backend-for-Frontend runs on, knowing no shop.
//!
//! It knows HTTP, auth, limits, upstreams by name, composition and GraphQL
//! mechanics. A domain crate (`bff-shop`) holds typed clients and shared
//! GraphQL types; a BFF crate holds its routes, reply shapes and defaults.
//! Everything that authenticates, limits, calls upstreams, composes replies
//! or renders errors lives here, so every team gets the same guarantees
//! without copying code.

/// JWT authentication: key pinning, claim validation, the `Authenticated` extractor.
pub mod auth;
/// Command-line flags shared by every BFF binary.
pub mod cli;
/// The client's address: the socket peer, or what trusted proxies forwarded for.
pub mod client_ip;
/// Composition: concurrent fan-out over upstream clients with a partial-failure policy.
pub mod compose;
/// Conditional GETs: `ETag` of a composed reply, `304` on `If-None-Match`.
pub mod conditional;
/// Typed configuration: TOML file, environment overrides, validation at start.
pub mod config;
/// Cross-origin access per BFF.
pub mod cors;
/// `GET /demo/token`, served only in `--demo`.
pub mod demo_token;
/// Reply compression preference: `br` or `gzip` over `zstd` on a tie.
pub mod encoding;
/// The one place where failures become the contract's JSON error body.
pub mod error;
/// Request extractors shared by the BFFs' handlers (JSON body, idempotency key, caller).
pub mod extract;
/// GraphQL mechanics: limits, persisted documents, null propagation, GraphQL over HTTP.
pub mod graphql;
/// Request header count and size limits (`431`).
pub mod header_limits;
/// Accepting connections with connection-level limits and graceful shutdown.
pub mod listener;
/// Prometheus metrics with bounded labels, served at `/metrics`.
pub mod metrics;
/// Per-subject (or per-IP) rate limiting with `governor` and the RateLimit headers.
pub mod rate_limit;
/// Request id and W3C trace context: kept from the client or started here.
pub mod request_context;
/// Starting a BFF binary: flags, config, the demo hook, serving until a signal.
pub mod run;
/// The router, its layer stack, operations endpoints and graceful shutdown.
pub mod server;
/// The `Server-Timing` header of composed replies.
pub mod server_timing;
/// Logs, the per-request span and access log, optional OTLP trace export.
pub mod telemetry;
/// TLS termination with rustls, HTTP/2 offered by ALPN.
pub mod tls;
/// Upstreams by name and every call's mechanics (cache, retries, breaker, ...).
pub mod upstream;

pub use error::{ApiError, ErrorCode};
pub use server::AppState;
