//! GraphQL mechanics every BFF shares: building the schema with its
//! limits, persisted and trusted documents, coded errors, the spec's null
//! propagation, GraphQL over HTTP and the development IDE. Types and
//! resolvers belong to the domain (`bff-shop`) and the BFF crates; each
//! request can be given its own data (loaders) through
//! [`GraphQlEndpoint::with_request_data`].

pub mod config;
pub mod documents;
pub mod errors;
pub mod http;
pub mod ide;
pub mod limits;
pub mod nulls;
mod parsed;
pub mod schema;

pub use documents::document_hash;
pub use http::GraphQlEndpoint;
pub use schema::{BffSchema, FieldLimits, build_schema, check_sdl};
