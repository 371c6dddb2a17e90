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

/// Scope to place orders.
#[derive(Debug)]
pub struct OrdersWrite;

impl bff_core::extract::Scope for OrdersWrite {
    const NAME: &'static str = "orders:write";
}
