//! Client for the order service (`order-service.yaml`).

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use bff_core::upstream::{
    Caller, Endpoint, Fetched, UpstreamError, UpstreamErrorKind, UpstreamName, UpstreamRequest,
    shape_of,
};

/// The service's `Order`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: String,
    pub user_id: String,
    pub seller_id: String,
    pub status: String,
    pub total_cents: i64,
    pub currency: String,
    pub created_at: String,
    pub items: Vec<OrderItem>,
}

impl Order {
    /// The sum of the items' quantities.
    pub fn item_count(&self) -> i64 {
        self.items.iter().map(|item| item.quantity).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

/// One page of a user's orders, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrdersPage {
    pub orders: Vec<Order>,
    pub next_cursor: Option<String>,
}

/// A line of a new order, as the client sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewOrderLine {
    pub sku: String,
    pub quantity: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaceOrderRequest {
    pub user_id: String,
    pub items: Vec<NewOrderLine>,
}

/// A placed order, and whether this call created it (`201`) or replayed an
/// earlier call with the same key (`200`).
#[derive(Debug, Clone)]
pub struct PlacedOrder {
    pub order: Order,
    pub created: bool,
}

#[derive(Debug, Clone)]
pub struct OrdersClient {
    endpoint: Endpoint,
}

impl OrdersClient {
    pub fn new(endpoint: Endpoint) -> Self {
        Self { endpoint }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The upstream's configured name, for `degraded` and `Server-Timing`.
    pub fn name(&self) -> &UpstreamName {
        self.endpoint.name()
    }

    /// `GET /users/{userId}/orders?limit=&cursor=`.
    pub async fn list_for_user(
        &self,
        caller: &Caller,
        user_id: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Fetched<OrdersPage>, UpstreamError> {
        let limit = limit.clamp(1, 100).to_string();
        let mut query = vec![("limit", limit.as_str())];
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor));
        }
        let target = self
            .endpoint
            .target(&["users", user_id, "orders"], &query)?;
        self.endpoint.get_json(caller, target).await
    }

    /// `GET /orders/{id}`, when it is the caller's: another user's order
    /// is `NotFound`, exactly like one that does not exist.
    pub async fn get_own(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<Fetched<Order>, UpstreamError> {
        let target = self.endpoint.target(&["orders", id], &[])?;
        self.endpoint
            .get_json_if(caller, target, |order: &Order| {
                order.user_id == caller.user_id()
            })
            .await
    }

    /// `POST /orders` with the client's idempotency key. Sent again only
    /// when the connection was never established (so the order cannot have
    /// been placed); after any other failure the client, who knows the
    /// key, retries and gets the same order.
    pub async fn place(
        &self,
        caller: &Caller,
        idempotency_key: &str,
        items: Vec<NewOrderLine>,
    ) -> Result<PlacedOrder, UpstreamError> {
        let target = self.endpoint.target(&["orders"], &[])?;
        // Checked by the handler (`validate_idempotency_key`): a header value.
        let key = reqwest::header::HeaderValue::from_str(idempotency_key).map_err(|e| {
            self.endpoint
                .error(UpstreamErrorKind::Rejected)
                .caused_by(e)
        })?;
        let body = self.endpoint.encode(&PlaceOrderRequest {
            user_id: caller.user_id().to_owned(),
            items,
        });
        let reply = self
            .endpoint
            .send(
                caller,
                UpstreamRequest::post(target)
                    .json(body)
                    .idempotency_key(key)
                    .expecting(shape_of::<Order>),
            )
            .await?;
        let created = match reply.status {
            StatusCode::CREATED => true,
            StatusCode::OK => false,
            StatusCode::BAD_REQUEST => {
                return Err(self.endpoint.error(UpstreamErrorKind::Rejected));
            }
            StatusCode::CONFLICT => return Err(self.endpoint.error(UpstreamErrorKind::Conflict)),
            other => return Err(self.endpoint.error(UpstreamErrorKind::Status(other))),
        };
        Ok(PlacedOrder {
            order: self.endpoint.decode(&reply.body)?,
            created,
        })
    }
}
