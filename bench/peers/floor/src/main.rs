//! The floor of the benchmark: what any gateway must at least do for
//! `GET /user-dashboard`, and nothing more. It reads the subject from the
//! token without verifying it, calls the three services concurrently over
//! pooled keep-alive connections, and writes the same merged reply as
//! `bff-web`. No auth, no rate limit, no logging, no metrics, no limits.
//!
//! Usage: `bff-floor <listen> <users-url> <orders-url> <notifications-url>`

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

struct Upstreams {
    client: HttpClient,
    users: String,
    orders: String,
    notifications: String,
}

/// Read from the user service and written back as the profile: the same
/// five fields in the same casing.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct User {
    id: String,
    name: String,
    email: String,
    avatar_url: String,
    tier: String,
}

#[derive(Deserialize)]
struct OrdersPage {
    orders: Vec<Order>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Order {
    id: String,
    status: String,
    total_cents: i64,
    currency: String,
    created_at: String,
    items: Vec<OrderItem>,
}

#[derive(Deserialize)]
struct OrderItem {
    quantity: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotificationsPage {
    notifications: Vec<Notification>,
    unread_count: u64,
}

/// Read from the notification service (other fields ignored) and written
/// back as a dashboard item.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    id: String,
    kind: String,
    title: String,
    read: bool,
    created_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dashboard {
    profile: User,
    recent_orders: Option<Vec<OrderSummary>>,
    notifications: Option<Notifications>,
    degraded: Vec<Degraded>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderSummary {
    id: String,
    status: String,
    total_cents: i64,
    currency: String,
    created_at: String,
    item_count: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Notifications {
    unread_count: u64,
    items: Vec<Notification>,
}

#[derive(Serialize)]
struct Degraded {
    source: &'static str,
    code: &'static str,
}

impl Upstreams {
    async fn get<T: serde::de::DeserializeOwned>(&self, url: String, user: &str) -> Option<T> {
        let request = Request::get(url)
            .header("x-user-id", user)
            .body(Empty::new())
            .ok()?;
        let response = self.client.request(request).await.ok()?;
        if response.status() != StatusCode::OK {
            return None;
        }
        let body = response.into_body().collect().await.ok()?.to_bytes();
        serde_json::from_slice(&body).ok()
    }

    async fn dashboard(&self, user: &str) -> Option<Dashboard> {
        let (profile, orders, notifications) = tokio::join!(
            self.get::<User>(format!("{}/users/{user}", self.users), user),
            self.get::<OrdersPage>(
                format!("{}/users/{user}/orders?limit=10", self.orders),
                user
            ),
            self.get::<NotificationsPage>(
                format!(
                    "{}/users/{user}/notifications?limit=10&unreadOnly=false",
                    self.notifications
                ),
                user
            ),
        );
        let profile = profile?;
        let mut degraded = Vec::new();
        if orders.is_none() {
            degraded.push(Degraded {
                source: "orders",
                code: "upstream_unavailable",
            });
        }
        if notifications.is_none() {
            degraded.push(Degraded {
                source: "notifications",
                code: "upstream_unavailable",
            });
        }
        Some(Dashboard {
            profile,
            recent_orders: orders.map(|page| {
                page.orders
                    .into_iter()
                    .take(10)
                    .map(|o| OrderSummary {
                        item_count: o.items.iter().map(|i| i.quantity).sum(),
                        id: o.id,
                        status: o.status,
                        total_cents: o.total_cents,
                        currency: o.currency,
                        created_at: o.created_at,
                    })
                    .collect()
            }),
            notifications: notifications.map(|page| Notifications {
                unread_count: page.unread_count,
                items: page.notifications.into_iter().take(10).collect(),
            }),
            degraded,
        })
    }
}

/// The token's `sub`, read without verifying the signature.
fn subject(request: &Request<Incoming>) -> Option<String> {
    #[derive(Deserialize)]
    struct Claims {
        sub: String,
    }
    let header = request.headers().get("authorization")?.to_str().ok()?;
    let payload = header.strip_prefix("Bearer ")?.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Claims = serde_json::from_slice(&json).ok()?;
    Some(claims.sub).filter(|s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

fn reply(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn handle(
    upstreams: Arc<Upstreams>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() != "/user-dashboard" {
        return Ok(reply(StatusCode::NOT_FOUND, b"{}".to_vec()));
    }
    let Some(user) = subject(&request) else {
        return Ok(reply(StatusCode::UNAUTHORIZED, b"{}".to_vec()));
    };
    Ok(match upstreams.dashboard(&user).await {
        Some(dashboard) => reply(
            StatusCode::OK,
            serde_json::to_vec(&dashboard).unwrap_or_default(),
        ),
        None => reply(StatusCode::SERVICE_UNAVAILABLE, b"{}".to_vec()),
    })
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, users, orders, notifications] = args.as_slice() else {
        eprintln!("usage: bff-floor <listen> <users-url> <orders-url> <notifications-url>");
        std::process::exit(2);
    };
    let listen: SocketAddr = listen
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build(connector);
    let upstreams = Arc::new(Upstreams {
        client,
        users: users.trim_end_matches('/').to_owned(),
        orders: orders.trim_end_matches('/').to_owned(),
        notifications: notifications.trim_end_matches('/').to_owned(),
    });
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = TcpListener::bind(listen).await?;
            loop {
                let (stream, _) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                let upstreams = upstreams.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        handle(upstreams.clone(), request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
}
