//! bff-shop: the shop's domain, shared by the web and mobile BFFs.
//!
//! The gateway (`bff-core`) knows upstreams only by name; this crate knows
//! what the shop's services are: their typed clients, the dashboard fan-out
//! both BFFs shape, placing an order, and the GraphQL types and resolvers
//! both schemas share (generic over each BFF's own `User`).

/// Typed clients for the user, order and notification services, taken from the registry by name.
pub mod clients;
/// The dashboard fan-out: profile, recent orders and notifications at once.
pub mod dashboard;
/// GraphQL types, resolvers and the per-request user loader both BFFs share.
pub mod graphql;
/// Placing an order: validation, the caller-scoped idempotency key, one send.
pub mod orders;
/// `POST /orders`, mounted unchanged by every BFF.
pub mod rest;

pub use clients::ShopClients;

/// Scope to place orders.
#[derive(Debug)]
pub struct OrdersWrite;

impl bff_core::extract::Scope for OrdersWrite {
    const NAME: &'static str = "orders:write";
}
