//! Typed clients for the shop's three services, each over one named
//! upstream of the gateway's registry.

pub mod notifications;
pub mod orders;
pub mod users;

use bff_core::config::ConfigError;
use bff_core::upstream::Upstreams;

pub use notifications::NotificationsClient;
pub use orders::OrdersClient;
pub use users::UsersClient;

/// The shop's three typed clients, resolved from the registry by name.
#[derive(Debug, Clone)]
pub struct ShopClients {
    pub users: UsersClient,
    pub orders: OrdersClient,
    pub notifications: NotificationsClient,
}

impl ShopClients {
    /// Takes `users`, `orders` and `notifications` from the registry; an
    /// error names the first one the config lacks.
    pub fn from_registry(upstreams: &Upstreams) -> Result<Self, ConfigError> {
        Ok(Self {
            users: UsersClient::new(upstreams.endpoint("users")?),
            orders: OrdersClient::new(upstreams.endpoint("orders")?),
            notifications: NotificationsClient::new(upstreams.endpoint("notifications")?),
        })
    }
}
