//! Upstreams for the benchmark: cheap enough not to be the bottleneck.
//!
//! Each service answers from memory: the first request for a path and
//! query is fetched from the project's demo services (the contract's
//! seeded data), every later one is the same bytes from a map. Each call
//! is counted and can be delayed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bff_testkit::DemoUpstreams;
use bff_testkit::Service;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub const SERVICES: [Service; 3] = [Service::Users, Service::Orders, Service::Notifications];

/// The three benchmark upstreams.
#[derive(Debug)]
pub struct BenchUpstreams {
    addrs: Vec<SocketAddr>,
    states: Vec<Arc<ServiceState>>,
    _demo: DemoUpstreams,
}

#[derive(Debug)]
struct ServiceState {
    source: String,
    calls: AtomicU64,
    delay_micros: AtomicU64,
    replies: RwLock<HashMap<String, (StatusCode, Bytes)>>,
    fetcher: reqwest::Client,
}

impl BenchUpstreams {
    pub async fn start() -> std::io::Result<Self> {
        let demo = DemoUpstreams::start().await?;
        let mut addrs = Vec::new();
        let mut states = Vec::new();
        for service in SERVICES {
            let state = Arc::new(ServiceState {
                source: demo.url(service),
                calls: AtomicU64::new(0),
                delay_micros: AtomicU64::new(0),
                replies: RwLock::default(),
                fetcher: reqwest::Client::new(),
            });
            let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
            addrs.push(listener.local_addr()?);
            tokio::spawn(serve(listener, state.clone()));
            states.push(state);
        }
        Ok(Self {
            addrs,
            states,
            _demo: demo,
        })
    }

    pub fn url(&self, index: usize) -> String {
        format!("http://{}", self.addrs[index])
    }

    pub fn addr(&self, index: usize) -> SocketAddr {
        self.addrs[index]
    }

    /// Calls received by each service so far.
    pub fn calls(&self) -> [u64; 3] {
        [0, 1, 2].map(|i| self.states[i].calls.load(Ordering::Relaxed))
    }

    pub fn set_delays(&self, delays: [Duration; 3]) {
        for (state, delay) in self.states.iter().zip(delays) {
            let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
            state.delay_micros.store(micros, Ordering::Relaxed);
        }
    }
}

async fn serve(listener: TcpListener, state: Arc<ServiceState>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| answer(state.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    state: Arc<ServiceState>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    state.calls.fetch_add(1, Ordering::Relaxed);
    let delay = state.delay_micros.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_micros(delay)).await;
    }
    let key = request
        .uri()
        .path_and_query()
        .map_or_else(String::new, |pq| pq.as_str().to_owned());
    let cached = state
        .replies
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&key)
        .cloned();
    let (status, body) = match cached {
        Some(reply) => reply,
        None => {
            let fetched = fetch(&state, &key, request.headers()).await;
            if fetched.0 == StatusCode::OK {
                state
                    .replies
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(key, fetched.clone());
            }
            fetched
        }
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// The demo service's reply to the same request.
async fn fetch(state: &ServiceState, key: &str, headers: &hyper::HeaderMap) -> (StatusCode, Bytes) {
    let mut request = state.fetcher.get(format!("{}{key}", state.source));
    if let Some(user) = headers.get("x-user-id") {
        request = request.header("x-user-id", user.as_bytes());
    }
    match request.send().await {
        Ok(response) => {
            let status =
                StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, response.bytes().await.unwrap_or_default())
        }
        Err(_) => (StatusCode::BAD_GATEWAY, Bytes::new()),
    }
}
