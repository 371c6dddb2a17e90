//! REST handlers that every BFF mounts unchanged (`POST /orders`).

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use bff_core::error::ApiError;
use bff_core::extract::{IdempotencyKey, Json, RequireScope, Scope as _};
use bff_core::openapi::RouteDoc;
use bff_core::server::AppState;
use bff_core::upstream::Caller;
use serde::{Deserialize, Serialize};
use serde_json::json;

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

/// `POST /orders` as its OpenAPI operation.
pub fn routes_doc() -> Vec<RouteDoc> {
    let item = json!({
        "type": "object",
        "required": ["sku", "name", "quantity", "unitPriceCents"],
        "properties": {
            "sku": {"type": "string"}, "name": {"type": "string"},
            "quantity": {"type": "integer"}, "unitPriceCents": {"type": "integer"}
        }
    });
    let order = json!({
        "type": "object",
        "required": ["id", "status", "totalCents", "currency", "createdAt", "itemCount", "items"],
        "properties": {
            "id": {"type": "string"}, "status": {"type": "string"},
            "totalCents": {"type": "integer"}, "currency": {"type": "string"},
            "createdAt": {"type": "string"}, "itemCount": {"type": "integer"},
            "items": {"type": "array", "items": item}
        }
    });
    let body = json!({
        "type": "object",
        "required": ["items"],
        "additionalProperties": false,
        "properties": {"items": {"type": "array", "items": {
            "type": "object",
            "required": ["sku", "quantity"],
            "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer"}}
        }}}
    });
    let placed = |description: &str| {
        json!({
            "description": description,
            "headers": {
                "RateLimit-Limit": {"$ref": "#/components/headers/RateLimit-Limit"},
                "RateLimit-Remaining": {"$ref": "#/components/headers/RateLimit-Remaining"},
                "RateLimit-Reset": {"$ref": "#/components/headers/RateLimit-Reset"}
            },
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PlacedOrder"}}}
        })
    };
    vec![RouteDoc {
        method: "post",
        path: "/orders",
        operation: json!({
            "operationId": "placeOrder",
            "summary": "Places an order once per caller and idempotency key",
            "security": [{"bearer": []}, {"apiKey": []}],
            "x-scopes": [OrdersWrite::NAME],
            "parameters": [{
                "name": "Idempotency-Key", "in": "header", "required": true,
                "description": "1 to 255 visible ASCII characters; the same key replays the same order.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255}
            }],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PlaceOrderBody"}}}},
            "responses": {
                "201": placed("A new order."),
                "200": placed("The order this key already placed (a replay)."),
                "400": {"$ref": "#/components/responses/BadRequest"},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Forbidden"},
                "409": {"$ref": "#/components/responses/Conflict"},
                "413": {"$ref": "#/components/responses/PayloadTooLarge"},
                "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
                "429": {"$ref": "#/components/responses/TooManyRequests"},
                "502": {"$ref": "#/components/responses/BadGateway"},
                "503": {"$ref": "#/components/responses/ServiceUnavailable"},
                "504": {"$ref": "#/components/responses/GatewayTimeout"}
            }
        }),
        schemas: vec![("PlaceOrderBody", body), ("PlacedOrder", order)],
    }]
}

/// `POST /orders` (scope `orders:write`, `Idempotency-Key` required):
/// `201` with the new order, or `200` with the same order when the key
/// was already used for this request.
pub async fn place_order(
    Extension(shop): Extension<ShopClients>,
    State(state): State<AppState>,
    _scope: RequireScope<OrdersWrite>,
    IdempotencyKey(key): IdempotencyKey,
    caller: Caller,
    Json(body): Json<PlaceOrderBody>,
) -> Result<(StatusCode, axum::Json<OrderView>), ApiError> {
    let placed =
        crate::orders::place_order(&shop, state.idempotency(), &caller, &key, body.items).await?;
    let status = if placed.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(placed.order.into())))
}
