//! GraphQL: the types, resolvers, limits and HTTP handling both BFFs share.
//!
//! A BFF supplies its own `User` type (implementing [`types::UserNode`]) and
//! its `Query`/`Mutation` merged from per-screen objects; everything else is
//! here. Resolvers call the same compose and upstream functions as the REST
//! endpoints, and each request gets its own [`loader::Users`] so sellers
//! and actors are batched and nothing is shared between requests.

pub mod documents;
pub mod errors;
pub mod fields;
pub mod http;
pub mod ide;
pub mod limits;
pub mod loader;
pub mod nulls;
pub mod schema;
pub mod types;

pub use documents::document_hash;
pub use fields::{NotificationMutations, OrderMutations};
pub use http::GraphQlEndpoint;
pub use schema::{BffSchema, build_schema, check_sdl};
pub use types::{UserNode, UserRef};
