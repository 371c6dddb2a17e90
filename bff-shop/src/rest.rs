//! REST handlers that every BFF mounts unchanged (`POST /orders`).

use axum::Extension;
use axum::http::StatusCode;
use bff_core::error::ApiError;
use bff_core::extract::{IdempotencyKey, Json, RequireScope};
use bff_core::upstream::Caller;
use serde::{Deserialize, Serialize};

use crate::clients::orders::{NewOrderLine, Order, OrderItem};
use crate::{OrdersWrite, ShopClients};

/// `POST /orders` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderBody {
    pub items: Vec<NewOrderLine>,
}

/// The order as the apps see it: no internal user or seller ids.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub id: String,
    pub status: String,
    pub total_cents: i64,
    pub currency: String,
    pub created_at: String,
    pub item_count: i64,
    pub items: Vec<OrderItem>,
}

impl From<Order> for OrderView {
    fn from(order: Order) -> Self {
        Self {
            item_count: order.item_count(),
            id: order.id,
            status: order.status,
            total_cents: order.total_cents,
            currency: order.currency,
            created_at: order.created_at,
            items: order.items,
        }
    }
}

/// `POST /orders` (scope `orders:write`, `Idempotency-Key` required):
/// `201` with the new order, or `200` with the same order when the key
/// was already used for this request.
pub async fn place_order(
    Extension(shop): Extension<ShopClients>,
    _scope: RequireScope<OrdersWrite>,
    IdempotencyKey(key): IdempotencyKey,
    caller: Caller,
    Json(body): Json<PlaceOrderBody>,
) -> Result<(StatusCode, axum::Json<OrderView>), ApiError> {
    let placed = crate::orders::place_order(&shop, &caller, &key, body.items).await?;
    let status = if placed.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(placed.order.into())))
}
