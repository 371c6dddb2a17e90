//! bff-shop: the shop's domain, shared by the web and mobile BFFs.
//!
//! The gateway (`bff-core`) knows upstreams only by name; this crate knows
//! what the shop's services are: their typed clients, their OpenAPI files,
//! placing an order, and the GraphQL types and resolvers
//! both schemas share (generic over each BFF's own `User`).

pub mod clients;
pub mod graphql;
pub mod orders;
pub mod rest;

pub use clients::ShopClients;

/// The shop's services' OpenAPI files, by the upstream name the BFFs call
/// them under: declared endpoints are checked against them at load, and
/// their calls' replies judged by them.
pub const CONTRACTS: &[(&str, &str)] = &[
    ("users", include_str!("../../contracts/user-service.yaml")),
    ("orders", include_str!("../../contracts/order-service.yaml")),
    (
        "notifications",
        include_str!("../../contracts/notification-service.yaml"),
    ),
];

/// A BFF's declared endpoints (`embedded`, or `config.dir`'s), each call
/// checked against the shop's [`CONTRACTS`].
pub fn declared(
    config: &bff_core::config::EndpointsConfig,
    embedded: &[(&str, &str)],
) -> Result<bff_core::declared::Declared, bff_core::config::ConfigError> {
    bff_core::declared::Declared::load(config, embedded, CONTRACTS)
}

/// A shop BFF's OpenAPI document: its `declared` endpoints, `POST /orders`
/// and GraphQL on `/graphql`.
pub fn api_document(
    bff: &str,
    version: &str,
    declared: &bff_core::declared::Declared,
) -> bff_core::openapi::ApiDocument {
    let mut rust_routes = rest::routes_doc();
    rust_routes.extend(bff_core::openapi::graphql_routes("/graphql"));
    bff_core::openapi::ApiDocument::new(bff, version, declared, &rust_routes)
}

/// Scope to place orders.
#[derive(Debug)]
pub struct OrdersWrite;

impl bff_core::extract::Scope for OrdersWrite {
    const NAME: &'static str = "orders:write";
}
