//! The load generator: one HTTP/1.1 keep-alive connection per virtual
//! user, each with its own token. Closed loop (saturation) or a fixed
//! arrival rate, where latency counts from when a request was due, so a
//! stalled target cannot hide its queue (coordinated omission).
//! Every reply is checked; a wrong one makes the run void.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::IgnoredAny;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Seeded users in the demo data (`u1`..`u150`).
const USERS: usize = 150;

/// The GraphQL operation every GraphQL run sends.
pub const GRAPHQL_QUERY: &str = "{ me { orders(first: 10) { nodes { id seller { name } } } } }";

/// What one request asks for.
#[derive(Debug, Clone)]
pub enum Workload {
    /// `GET /user-dashboard`.
    Dashboard,
    /// `POST /graphql` with `query`.
    GraphQl { query: String },
    /// The gateway's fan-out done by the client itself: GETs of every
    /// `(upstream, path)` at once, done when the last answers. The
    /// baseline for latency a gateway adds (`{user}` in a path is the
    /// virtual user's id).
    FanOut { calls: Vec<(SocketAddr, String)> },
}

impl Workload {
    /// As `--workload` names it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Dashboard => "dashboard",
            Self::GraphQl { .. } => "graphql",
            Self::FanOut { .. } => "fan-out",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub target: SocketAddr,
    pub workload: Workload,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Requests per second; `None`: closed loop, as fast as replies come.
    pub rate: Option<f64>,
}

/// What a run measured, over its measured window only.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    pub ok: u64,
    /// Transport failures and non-200 replies.
    pub errors: u64,
    /// 200 replies whose body was not what the request asked for.
    pub invalid: u64,
    pub first_problem: Option<String>,
    /// Latencies of good replies, microseconds, sorted.
    pub latencies: Vec<u32>,
    pub window: Duration,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }

    /// The `q` quantile (0..1) in microseconds.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = (q * (self.latencies.len() - 1) as f64).round() as usize;
        f64::from(self.latencies[rank])
    }

    pub fn is_void(&self) -> bool {
        self.errors > 0 || self.invalid > 0 || self.ok == 0
    }
}

/// The user and token of virtual user `vu`: tokens are distinct per
/// virtual user even when users repeat.
pub fn identity(vu: usize, secret: &str) -> (String, String) {
    let user = format!("u{}", vu % USERS + 1);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 24 * 3600;
    let claims =
        serde_json::json!({"sub": user, "scope": "", "exp": exp, "jti": format!("vu-{vu}")});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default();
    (user, token)
}

struct Shared {
    spec: LoadSpec,
    start: Instant,
    measure_from: Instant,
    end: Instant,
    next: AtomicU64,
}

/// Runs `spec` to its end and returns what was measured.
pub async fn run(spec: LoadSpec, secret: &str) -> LoadResult {
    let start = Instant::now();
    let shared = Arc::new(Shared {
        measure_from: start + spec.warmup,
        end: start + spec.warmup + spec.duration,
        start,
        next: AtomicU64::new(0),
        spec,
    });
    let mut tasks = Vec::new();
    for vu in 0..shared.spec.connections {
        let (user, token) = identity(vu, secret);
        if let Workload::FanOut { calls } = &shared.spec.workload {
            tasks.push(tokio::spawn(fan_out_user(
                shared.clone(),
                calls.clone(),
                user,
            )));
        } else {
            tasks.push(tokio::spawn(virtual_user(shared.clone(), user, token)));
        }
    }
    let mut total = LoadResult {
        window: shared.spec.duration,
        ..LoadResult::default()
    };
    for task in tasks {
        let Ok(result) = task.await else {
            total.errors += 1;
            continue;
        };
        total.ok += result.ok;
        total.errors += result.errors;
        total.invalid += result.invalid;
        if total.first_problem.is_none() {
            total.first_problem = result.first_problem;
        }
        total.latencies.extend(result.latencies);
    }
    total.latencies.sort_unstable();
    total
}

async fn connect(addr: SocketAddr) -> Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(connection);
    Some(sender)
}

/// When the next request is due; `None` once the run is over.
async fn next_due(shared: &Shared) -> Option<Instant> {
    match shared.spec.rate {
        Some(rate) => {
            let k = shared.next.fetch_add(1, Ordering::Relaxed);
            let due = shared.start + Duration::from_secs_f64(k as f64 / rate);
            if due >= shared.end {
                return None;
            }
            tokio::time::sleep_until(due).await;
            Some(due)
        }
        None => Some(Instant::now()).filter(|now| *now < shared.end),
    }
}

/// A client doing the fan-out itself, one connection per upstream.
async fn fan_out_user(
    shared: Arc<Shared>,
    calls: Vec<(SocketAddr, String)>,
    user: String,
) -> LoadResult {
    let mut result = LoadResult::default();
    let mut senders = Vec::new();
    for (addr, _) in &calls {
        match connect(*addr).await {
            Some(sender) => senders.push(sender),
            None => {
                result.errors += 1;
                result.first_problem = Some("cannot connect".into());
                return result;
            }
        }
    }
    while let Some(due) = next_due(&shared).await {
        let requests = senders.iter_mut().zip(&calls).map(|(sender, (_, path))| {
            let request = Request::get(path.replace("{user}", &user))
                .header("host", "bench")
                .header("x-user-id", &user)
                .body(Full::new(Bytes::new()));
            async move {
                let request = request.map_err(|e| e.to_string())?;
                sender.ready().await.map_err(|e| e.to_string())?;
                let response = sender
                    .send_request(request)
                    .await
                    .map_err(|e| e.to_string())?;
                let status = response.status();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?;
                let body = body.to_bytes();
                if status != StatusCode::OK || serde_json::from_slice::<IgnoredAny>(&body).is_err()
                {
                    return Err(format!("{status}"));
                }
                Ok(())
            }
        });
        let replies = futures_util::future::join_all(requests).await;
        let done = Instant::now();
        if due < shared.measure_from || done > shared.end {
            continue;
        }
        match replies.into_iter().find_map(Result::err) {
            None => {
                result.ok += 1;
                let micros = done.duration_since(due).as_micros();
                result
                    .latencies
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
            }
            Some(problem) => {
                result.errors += 1;
                result.first_problem.get_or_insert(problem);
            }
        }
    }
    result
}

async fn virtual_user(shared: Arc<Shared>, user: String, token: String) -> LoadResult {
    let spec = &shared.spec;
    let mut result = LoadResult::default();
    let problem = |result: &mut LoadResult, what: String| {
        if result.first_problem.is_none() {
            result.first_problem = Some(what);
        }
    };
    let Some(mut sender) = connect(spec.target).await else {
        result.errors += 1;
        problem(&mut result, "cannot connect".into());
        return result;
    };
    let authorization = format!("Bearer {token}");
    let body = match &spec.workload {
        Workload::GraphQl { query } => {
            Bytes::from(serde_json::json!({ "query": query }).to_string())
        }
        _ => Bytes::new(),
    };
    while let Some(due) = next_due(&shared).await {
        let request = match &spec.workload {
            Workload::Dashboard => Request::builder()
                .method(Method::GET)
                .uri("/user-dashboard")
                .header("host", "bench")
                .header("authorization", &authorization)
                .body(Full::new(Bytes::new())),
            Workload::GraphQl { .. } => Request::builder()
                .method(Method::POST)
                .uri("/graphql")
                .header("host", "bench")
                .header("authorization", &authorization)
                .header("content-type", "application/json")
                .header(
                    "accept",
                    "application/graphql-response+json, application/json",
                )
                .body(Full::new(body.clone())),
            Workload::FanOut { .. } => break,
        };
        let Ok(request) = request else {
            result.errors += 1;
            break;
        };
        let measured = due >= shared.measure_from;
        if sender.ready().await.is_err() {
            match connect(spec.target).await {
                Some(fresh) => sender = fresh,
                None => {
                    result.errors += 1;
                    problem(&mut result, "connection lost".into());
                    break;
                }
            }
        }
        let reply = match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status();
                match response.into_body().collect().await {
                    Ok(body) => Ok((status, body.to_bytes())),
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        let done = Instant::now();
        if !measured || done > shared.end {
            if let Err(e) = reply {
                // Outside the window, a broken connection is still a problem.
                result.errors += 1;
                problem(&mut result, e);
            }
            continue;
        }
        match reply {
            Ok((StatusCode::OK, body)) => match check(&spec.workload, &user, &body) {
                Ok(()) => {
                    result.ok += 1;
                    let micros = done.duration_since(due).as_micros();
                    result
                        .latencies
                        .push(u32::try_from(micros).unwrap_or(u32::MAX));
                }
                Err(why) => {
                    result.invalid += 1;
                    problem(&mut result, why);
                }
            },
            Ok((status, body)) => {
                result.errors += 1;
                problem(
                    &mut result,
                    format!(
                        "{status}: {}",
                        String::from_utf8_lossy(&body[..body.len().min(200)])
                    ),
                );
            }
            Err(e) => {
                result.errors += 1;
                problem(&mut result, e);
            }
        }
    }
    result
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DashboardReply<'a> {
    #[serde(borrow)]
    profile: ProfileReply<'a>,
    recent_orders: Option<Vec<IgnoredAny>>,
    notifications: Option<NotificationsReply>,
    degraded: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct ProfileReply<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotificationsReply {
    unread_count: u64,
    items: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct GraphQlReply<'a> {
    #[serde(borrow)]
    data: Option<GraphQlData<'a>>,
    errors: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct GraphQlData<'a> {
    #[serde(borrow)]
    me: Me<'a>,
}

#[derive(Deserialize)]
struct Me<'a> {
    #[serde(borrow)]
    orders: Connection<'a>,
}

#[derive(Deserialize)]
struct Connection<'a> {
    #[serde(borrow)]
    nodes: Vec<OrderNode<'a>>,
}

#[derive(Deserialize)]
struct OrderNode<'a> {
    id: &'a str,
    #[serde(borrow)]
    seller: Seller<'a>,
}

#[derive(Deserialize)]
struct Seller<'a> {
    name: &'a str,
}

/// Whether a 200 reply is the one `user` asked for.
fn check(workload: &Workload, user: &str, body: &[u8]) -> Result<(), String> {
    let excerpt = || String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    match workload {
        Workload::Dashboard => {
            let reply: DashboardReply<'_> =
                serde_json::from_slice(body).map_err(|e| format!("{e}: {}", excerpt()))?;
            let complete = reply.profile.id == user
                && !reply.profile.name.is_empty()
                && reply.recent_orders.is_some_and(|o| o.len() <= 10)
                && reply
                    .notifications
                    .is_some_and(|n| n.items.len() <= 10 && n.unread_count <= 100)
                && reply.degraded.is_empty();
            if complete {
                Ok(())
            } else {
                Err(format!("wrong dashboard: {}", excerpt()))
            }
        }
        Workload::GraphQl { .. } => {
            let reply: GraphQlReply<'_> =
                serde_json::from_slice(body).map_err(|e| format!("{e}: {}", excerpt()))?;
            let good = reply.errors.is_none()
                && reply.data.is_some_and(|d| {
                    d.me.orders.nodes.len() <= 10
                        && d.me
                            .orders
                            .nodes
                            .iter()
                            .all(|o| !o.id.is_empty() && !o.seller.name.is_empty())
                });
            if good {
                Ok(())
            } else {
                Err(format!("wrong GraphQL reply: {}", excerpt()))
            }
        }
        Workload::FanOut { .. } => Ok(()),
    }
}
