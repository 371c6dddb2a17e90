//! `GET /user-dashboard` for the web app in Rust: the reply shape as
//! `Serialize` structs, as bff-web had it before its dashboard was
//! declared.

use crate::fan_out::{Dashboard, DashboardWanted, dashboard};
use axum::Extension;
use axum::Json;
use axum::response::Response;
use bff_core::compose::Degraded;
use bff_core::upstream::Caller;
use bff_shop::ShopClients;
use bff_shop::clients::notifications::{Notification, NotificationsPage};
use bff_shop::clients::orders::Order;
use bff_shop::clients::users::User;
use serde::Serialize;

const WANTED: DashboardWanted = DashboardWanted {
    orders: 10,
    notifications: 10,
};

/// The web dashboard, as in the contract.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebDashboard {
    pub profile: Profile,
    pub recent_orders: Option<Vec<OrderSummary>>,
    pub notifications: Option<Notifications>,
    pub degraded: Vec<Degraded>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub id: String,
    pub name: String,
    pub email: String,
    pub avatar_url: String,
    pub tier: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSummary {
    pub id: String,
    pub status: String,
    pub total_cents: i64,
    pub currency: String,
    pub created_at: String,
    pub item_count: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notifications {
    pub unread_count: u64,
    pub items: Vec<NotificationItem>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationItem {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub read: bool,
    pub created_at: String,
}

/// `GET /user-dashboard`, with `Server-Timing` for each upstream part.
pub async fn user_dashboard(Extension(shop): Extension<ShopClients>, caller: Caller) -> Response {
    dashboard(&shop, &caller, WANTED)
        .await
        .respond(|d| Json(WebDashboard::from(d)))
}

impl From<Dashboard> for WebDashboard {
    fn from(d: Dashboard) -> Self {
        Self {
            profile: d.profile.into(),
            recent_orders: d
                .recent_orders
                .map(|orders| orders.into_iter().map(Into::into).collect()),
            notifications: d.notifications.map(Into::into),
            degraded: d.degraded,
        }
    }
}

impl From<User> for Profile {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            name: u.name,
            email: u.email,
            avatar_url: u.avatar_url,
            tier: u.tier,
        }
    }
}

impl From<Order> for OrderSummary {
    fn from(o: Order) -> Self {
        Self {
            item_count: o.item_count(),
            id: o.id,
            status: o.status,
            total_cents: o.total_cents,
            currency: o.currency,
            created_at: o.created_at,
        }
    }
}

impl From<NotificationsPage> for Notifications {
    fn from(page: NotificationsPage) -> Self {
        Self {
            unread_count: page.unread_count,
            items: page.notifications.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Notification> for NotificationItem {
    fn from(n: Notification) -> Self {
        Self {
            id: n.id,
            kind: n.kind,
            title: n.title,
            read: n.read,
            created_at: n.created_at,
        }
    }
}
