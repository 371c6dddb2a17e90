//! The three demo services, each following its OpenAPI contract.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use bff_shop::clients::notifications::{Notification, NotificationsPage};
use bff_shop::clients::orders::{Order, OrderItem, OrdersPage, PlaceOrderRequest};
use bff_shop::clients::users::{MAX_IDS_PER_CALL, User, UsersPage};

use crate::data;

/// Idempotency keys remembered by the demo order service.
const IDEMPOTENCY_LIMIT: usize = 100_000;

/// The demo services' data: read-mostly users, mutable orders and notifications.
#[derive(Debug)]
pub struct Store {
    users: HashMap<String, User>,
    orders: Mutex<OrderBook>,
    notifications: Mutex<Vec<Notification>>,
}

#[derive(Debug)]
struct OrderBook {
    /// Newest first.
    orders: Vec<Order>,
    /// Idempotency key → (the request it was used for, the order it made).
    placed: HashMap<String, (String, String)>,
    next_id: u64,
}

impl Store {
    pub fn seeded() -> Self {
        Self {
            users: data::users()
                .into_iter()
                .map(|u| (u.id.clone(), u))
                .collect(),
            orders: Mutex::new(OrderBook {
                orders: data::orders(),
                placed: HashMap::new(),
                next_id: 90_000,
            }),
            notifications: Mutex::new(data::notifications()),
        }
    }

    /// Notifications the service holds for `user_id`, newest first.
    pub fn notifications_of(&self, user_id: &str) -> Vec<Notification> {
        self.notifications
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|n| n.user_id == user_id)
            .cloned()
            .collect()
    }

    /// Orders the service holds for `user_id` (tests count created orders).
    pub fn orders_of(&self, user_id: &str) -> Vec<Order> {
        let book = self.orders.lock().unwrap_or_else(PoisonError::into_inner);
        book.orders
            .iter()
            .filter(|o| o.user_id == user_id)
            .cloned()
            .collect()
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// Parses the optional `limit` (1..=100, default 20) the list endpoints
/// share; `None` when it is out of range.
fn limit(query: &HashMap<String, String>) -> Option<usize> {
    match query.get("limit") {
        None => Some(20),
        Some(raw) => raw.parse::<usize>().ok().filter(|n| (1..=100).contains(n)),
    }
}

fn bad_limit() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "bad_request",
        "limit must be 1 to 100",
    )
}

pub fn users_router(store: Arc<Store>) -> Router {
    Router::new()
        .route("/users", get(get_users_by_ids))
        .route("/users/{id}", get(get_user))
        .with_state(store)
}

async fn get_user(State(store): State<Arc<Store>>, Path(id): Path<String>) -> Response {
    match store.users.get(&id) {
        Some(user) => Json(user).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "no such user"),
    }
}

async fn get_users_by_ids(
    State(store): State<Arc<Store>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let ids: Vec<&str> = query
        .get("ids")
        .map(|ids| ids.split(',').filter(|id| !id.is_empty()).collect())
        .unwrap_or_default();
    if ids.is_empty() || ids.len() > MAX_IDS_PER_CALL {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "ids must name 1 to 100 users",
        );
    }
    let users = ids
        .iter()
        .filter_map(|id| store.users.get(*id).cloned())
        .collect();
    Json(UsersPage { users }).into_response()
}

pub fn orders_router(store: Arc<Store>) -> Router {
    Router::new()
        .route("/users/{user_id}/orders", get(list_user_orders))
        .route("/orders/{id}", get(get_order))
        .route("/orders", post(place_order))
        .with_state(store)
}

async fn list_user_orders(
    State(store): State<Arc<Store>>,
    Path(user_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(limit) = limit(&query) else {
        return bad_limit();
    };
    // The cursor is the offset of the next page.
    let offset = match query.get("cursor").map(|c| c.parse::<usize>()) {
        None => 0,
        Some(Ok(offset)) => offset,
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "bad_request", "invalid cursor"),
    };
    let all = store.orders_of(&user_id);
    let orders: Vec<Order> = all.iter().skip(offset).take(limit).cloned().collect();
    let next = offset + orders.len();
    let next_cursor = (next < all.len()).then(|| next.to_string());
    Json(OrdersPage {
        orders,
        next_cursor,
    })
    .into_response()
}

async fn get_order(State(store): State<Arc<Store>>, Path(id): Path<String>) -> Response {
    let book = store.orders.lock().unwrap_or_else(PoisonError::into_inner);
    match book.orders.iter().find(|o| o.id == id) {
        Some(order) => Json(order).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "no such order"),
    }
}

async fn place_order(
    State(store): State<Arc<Store>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|k| k.to_str().ok())
        .filter(|k| (1..=255).contains(&k.len()))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Idempotency-Key is required",
        );
    };
    let Ok(request) = serde_json::from_str::<PlaceOrderRequest>(&body) else {
        return error(StatusCode::BAD_REQUEST, "bad_request", "invalid body");
    };
    if request.items.is_empty() || request.items.iter().any(|i| i.quantity < 1) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "items must be non-empty with quantity >= 1",
        );
    }
    let mut items = Vec::with_capacity(request.items.len());
    for line in &request.items {
        let Some((name, unit_price_cents)) = crate::data::product(&line.sku) else {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("no product with sku {}", line.sku),
            );
        };
        items.push(OrderItem {
            sku: line.sku.clone(),
            name: name.to_owned(),
            quantity: line.quantity,
            unit_price_cents,
        });
    }
    // Same key and same body is a replay; same key and another body a conflict.
    let fingerprint = serde_json::to_string(&request).unwrap_or_default();
    let mut book = store.orders.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((seen, order_id)) = book.placed.get(key) {
        if *seen != fingerprint {
            return error(
                StatusCode::CONFLICT,
                "conflict",
                "key reused with a different body",
            );
        }
        return match book.orders.iter().find(|o| &o.id == order_id) {
            Some(order) => (StatusCode::OK, Json(order)).into_response(),
            None => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "order lost"),
        };
    }
    if book.placed.len() >= IDEMPOTENCY_LIMIT {
        book.placed.clear();
    }
    book.next_id += 1;
    let order = Order {
        id: format!("o{}", book.next_id),
        user_id: request.user_id.clone(),
        seller_id: "u2".to_owned(),
        status: "pending".to_owned(),
        total_cents: items.iter().map(|i| i.quantity * i.unit_price_cents).sum(),
        currency: "USD".to_owned(),
        created_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        items,
    };
    book.placed
        .insert(key.to_owned(), (fingerprint, order.id.clone()));
    book.orders.insert(0, order.clone());
    (StatusCode::CREATED, Json(order)).into_response()
}

pub fn notifications_router(store: Arc<Store>) -> Router {
    Router::new()
        .route(
            "/users/{user_id}/notifications",
            get(list_user_notifications),
        )
        .route("/notifications/{id}/read", post(mark_read))
        .with_state(store)
}

async fn list_user_notifications(
    State(store): State<Arc<Store>>,
    Path(user_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(limit) = limit(&query) else {
        return bad_limit();
    };
    let unread_only = query.get("unreadOnly").is_some_and(|v| v == "true");
    let all = store
        .notifications
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let mine: Vec<&Notification> = all.iter().filter(|n| n.user_id == user_id).collect();
    let unread_count = mine.iter().filter(|n| !n.read).count() as u64;
    let notifications = mine
        .into_iter()
        .filter(|n| !unread_only || !n.read)
        .take(limit)
        .cloned()
        .collect();
    Json(NotificationsPage {
        notifications,
        unread_count,
    })
    .into_response()
}

async fn mark_read(State(store): State<Arc<Store>>, Path(id): Path<String>) -> Response {
    let mut all = store
        .notifications
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    match all.iter_mut().find(|n| n.id == id) {
        Some(notification) => {
            notification.read = true;
            Json(notification.clone()).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "not_found", "no such notification"),
    }
}
