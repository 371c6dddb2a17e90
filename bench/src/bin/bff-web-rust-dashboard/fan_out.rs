//! The dashboard fan-out in Rust, as the BFFs had it before their
//! dashboards were declared: profile, recent orders and notifications at
//! once over the shop's typed clients.

use bff_core::compose::{Composed, Degraded, optional, required, timed};
use bff_core::upstream::Caller;

use bff_shop::ShopClients;
use bff_shop::clients::notifications::NotificationsPage;
use bff_shop::clients::orders::Order;
use bff_shop::clients::users::User;

/// How much of each part a BFF wants.
#[derive(Debug, Clone, Copy)]
pub struct DashboardWanted {
    /// Newest orders to fetch.
    pub orders: u32,
    /// Newest notifications to fetch (the unread count comes regardless).
    pub notifications: u32,
}

/// The caller's dashboard, before a BFF shapes it.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Required: without it there is no dashboard.
    pub profile: User,
    /// Optional: `None` when the order service failed.
    pub recent_orders: Option<Vec<Order>>,
    /// Optional: `None` when the notification service failed.
    pub notifications: Option<NotificationsPage>,
    /// The optional parts that failed, in source order.
    pub degraded: Vec<Degraded>,
}

/// Fetches the three parts concurrently: the reply costs the slowest call,
/// not the sum. The profile is required, orders and notifications optional.
pub async fn dashboard(
    upstreams: &ShopClients,
    caller: &Caller,
    wanted: DashboardWanted,
) -> Composed<Dashboard> {
    let user_id = caller.user_id();
    let ((profile, profile_timing), (orders, orders_timing), (notifications, notifications_timing)) = tokio::join!(
        timed(upstreams.users.name(), upstreams.users.get(caller, user_id)),
        timed(
            upstreams.orders.name(),
            upstreams
                .orders
                .list_for_user(caller, user_id, wanted.orders, None)
        ),
        timed(
            upstreams.notifications.name(),
            upstreams
                .notifications
                .list_for_user(caller, user_id, wanted.notifications, false)
        ),
    );
    let timings = vec![profile_timing, orders_timing, notifications_timing];
    let mut degraded = Vec::new();
    let result = required(upstreams.users.name(), profile, &mut degraded).map(|profile| {
        let recent_orders =
            optional(upstreams.orders.name(), orders, &mut degraded).map(|mut page| {
                page.orders.truncate(wanted.orders as usize);
                page.orders
            });
        let notifications = optional(upstreams.notifications.name(), notifications, &mut degraded)
            .map(|mut page| {
                page.notifications.truncate(wanted.notifications as usize);
                page
            });
        Dashboard {
            profile,
            recent_orders,
            notifications,
            degraded,
        }
    });
    let degraded = result
        .as_ref()
        .map(|d| d.degraded.clone())
        .unwrap_or_default();
    Composed {
        result,
        timings,
        degraded,
    }
}
