//! bff-shop: the shop's domain, shared by the web and mobile BFFs.
//!
//! The gateway (`bff-core`) knows upstreams only by name; this crate knows
//! what the shop's services are: their typed clients, the dashboard fan-out
//! both BFFs shape, placing an order, and the GraphQL types and resolvers
//! both schemas share (generic over each BFF's own `User`).

pub mod clients;
pub mod dashboard;
pub mod graphql;
pub mod orders;
pub mod rest;

pub use clients::ShopClients;

/// Scope to place orders.
#[derive(Debug)]
pub struct OrdersWrite;

impl bff_core::extract::Scope for OrdersWrite {
    const NAME: &'static str = "orders:write";
}
