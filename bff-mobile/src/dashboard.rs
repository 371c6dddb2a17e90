//! `GET /user-dashboard` for the mobile app: lean profile (no e-mail), the
//! 3 newest orders, and only the unread count of notifications.

use axum::Extension;
use axum::Json;
use axum::response::Response;
use bff_core::compose::Degraded;
use bff_core::upstream::Caller;
use bff_shop::ShopClients;
use bff_shop::clients::orders::Order;
use bff_shop::clients::users::User;
use bff_shop::dashboard::{Dashboard, DashboardWanted, dashboard};
use serde::Serialize;

/// One notification is the smallest page; only its count is used.
const WANTED: DashboardWanted = DashboardWanted {
    orders: 3,
    notifications: 1,
};

/// The mobile dashboard, as in the contract.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MobileDashboard {
    pub profile: Profile,
    pub recent_orders: Option<Vec<OrderSummary>>,
    pub unread_count: Option<u64>,
    pub degraded: Vec<Degraded>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub id: String,
    pub name: String,
    pub avatar_url: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSummary {
    pub id: String,
    pub status: String,
    pub total_cents: i64,
}

/// `GET /user-dashboard`, with `Server-Timing` for each upstream part.
pub async fn user_dashboard(Extension(shop): Extension<ShopClients>, caller: Caller) -> Response {
    dashboard(&shop, &caller, WANTED)
        .await
        .respond(|d| Json(MobileDashboard::from(d)))
}

impl From<Dashboard> for MobileDashboard {
    fn from(d: Dashboard) -> Self {
        Self {
            profile: d.profile.into(),
            recent_orders: d
                .recent_orders
                .map(|orders| orders.into_iter().map(Into::into).collect()),
            unread_count: d.notifications.map(|page| page.unread_count),
            degraded: d.degraded,
        }
    }
}

impl From<User> for Profile {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            name: u.name,
            avatar_url: u.avatar_url,
        }
    }
}

impl From<Order> for OrderSummary {
    fn from(o: Order) -> Self {
        Self {
            id: o.id,
            status: o.status,
            total_cents: o.total_cents,
        }
    }
}
