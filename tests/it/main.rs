//! The gateway's black-box tests, one test binary: each module starts the
//! real router on `127.0.0.1:0` in front of real HTTP upstreams (the demo
//! services) and checks what a client or an operator would notice.

mod support;

mod apollo_client;
mod attacks;
mod auth;
mod browser;
mod conditional;
mod config_docs;
mod declared;
mod deploy;
mod doc_links;
mod graphql;
mod graphql_http_audit;
mod http;
mod http_limits;
mod observability;
mod openapi;
mod orders;
mod propagation;
mod rate_limit;
mod resilience;
mod schema;
mod shared_state;
pub mod token_handler;
