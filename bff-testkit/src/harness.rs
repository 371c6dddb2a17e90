//! The test harness: each test gets its own BFF (any [`BffSpec`]) on
//! `127.0.0.1:0` in front of its own demo upstreams, which it can make
//! misbehave and inspect, and a client with one helper per endpoint.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bff_core::AppState;
use bff_core::config::{BaseUrl, Config, ConfigSources, Secret};
use bff_core::run::BffSpec;

use crate::{DemoUpstreams, Fault, Service};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// The HS256 secret every test app trusts unless told otherwise.
pub const SECRET: &str = "tests-only-secret-of-at-least-32-bytes!";

/// A running BFF, its upstreams, and a client for both.
#[derive(Debug)]
pub struct TestApp {
    pub base: String,
    pub upstreams: DemoUpstreams,
    pub http: reqwest::Client,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// What [`TestApp::builder`] starts: a BFF and config layered over its defaults.
#[derive(Debug)]
pub struct TestAppBuilder {
    spec: BffSpec,
    toml: String,
    hs256: bool,
    more_instances: Vec<(Service, Vec<BaseUrl>)>,
    demo_tokens: bool,
    port: u16,
}

impl TestAppBuilder {
    /// Extra TOML layered over the BFF's defaults.
    pub fn config(mut self, toml: &str) -> Self {
        self.toml.push_str(toml);
        self.toml.push('\n');
        self
    }

    /// Runs `service` as several instances: the demo one first, then
    /// `others` (`upstreams.<service>.instances`).
    pub fn instances(mut self, service: Service, others: &[&str]) -> Self {
        let others = others
            .iter()
            .map(|url| BaseUrl::parse(url).expect("an instance URL"))
            .collect();
        self.more_instances.push((service, others));
        self
    }

    /// Serves `GET /demo/token` as `--demo` does, signing with the test
    /// secret.
    pub fn demo_tokens(mut self) -> Self {
        self.demo_tokens = true;
        self
    }

    /// Serves these endpoint files (name, text) instead of the BFF's own,
    /// from a fresh directory (`endpoints.dir`).
    pub fn endpoints(self, files: &[(&str, &str)]) -> Self {
        let dir = endpoint_dir(files);
        let dir = serde_json::to_string(&dir.display().to_string()).expect("a path is a string");
        self.config(&format!("[endpoints]\ndir = {dir}"))
    }

    /// Listens on this loopback port instead of one the kernel picks: for
    /// a config that must name the BFF's own URL (an OAuth redirect).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Do not add the test HS256 secret (the TOML sets a public key).
    pub fn without_hs256(mut self) -> Self {
        self.hs256 = false;
        self
    }

    pub async fn spawn(self) -> TestApp {
        let spec = self.spec;
        let upstreams = DemoUpstreams::start().await.expect("demo upstreams start");
        let mut config = Config::load_unvalidated(&ConfigSources {
            defaults_toml: spec.default_config,
            file: None,
            env: false,
            overrides_toml: Some(&self.toml),
        })
        .expect("test config loads");
        if self.hs256 {
            config.auth.hs256_secret = Some(Secret::new(SECRET));
        }
        upstreams.point_config_at_self(&mut config);
        for (service, others) in self.more_instances {
            let entry = config.upstreams.entry(service.as_str());
            let demo = entry.url.take().expect("the demo instance's URL");
            entry.instances = Some(std::iter::once(demo).chain(others).collect());
        }
        config.validate().expect("test config is valid");
        let mut state = AppState::new(spec.name, config).expect("state builds");
        if self.demo_tokens {
            state = state.with_token_mint(crate::demo::token_mint(SECRET));
        }
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let app = (spec.app)(state.clone()).expect("the app builds");
        let http = state.config().http.clone();
        let tls = bff_core::tls::acceptor(&state.config().tls).expect("TLS files load");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = tokio::spawn(async move {
            bff_core::listener::serve(listener, app, &http, tls, async {
                let _ = rx.await;
            })
            .await
        });
        TestApp {
            base: format!("{scheme}://{addr}"),
            upstreams,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            state,
            shutdown: Some(tx),
            server: Some(server),
        }
    }
}

/// A fresh directory holding `files` (name, text), for `endpoints.dir`.
pub fn endpoint_dir(files: &[(&str, &str)]) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // One directory per call: tests run concurrently.
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("bff-endpoints-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("an endpoint file is written");
    }
    dir
}

impl TestApp {
    /// A BFF to start, `bff_web::SPEC` or anything that names one.
    pub fn builder(bff: impl Into<BffSpec>) -> TestAppBuilder {
        TestAppBuilder {
            spec: bff.into(),
            toml: String::new(),
            hs256: true,
            more_instances: Vec::new(),
            demo_tokens: false,
            port: 0,
        }
    }

    pub async fn spawn(bff: impl Into<BffSpec>) -> Self {
        Self::builder(bff).spawn().await
    }

    pub fn addr(&self) -> &str {
        self.base
            .trim_start_matches("http://")
            .trim_start_matches("https://")
    }

    /// A valid HS256 token for `sub` with `scope`.
    pub fn token(&self, sub: &str, scope: &str) -> String {
        sign_hs256(
            SECRET,
            &json!({"sub": sub, "scope": scope, "exp": now() + 3600}),
        )
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn dashboard(&self, token: &str) -> reqwest::Response {
        self.get("/user-dashboard", Some(token)).await
    }

    pub async fn place_order(
        &self,
        token: &str,
        key: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/orders", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.expect("request sent")
    }

    /// `POST /graphql` asking for `application/graphql-response+json`.
    pub async fn graphql(
        &self,
        token: &str,
        body: &Value,
    ) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
        self.graphql_accepting(token, "application/graphql-response+json", body)
            .await
    }

    pub async fn graphql_accepting(
        &self,
        token: &str,
        accept: &str,
        body: &Value,
    ) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
        let response = self
            .http
            .post(format!("{}/graphql", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", accept)
            .body(body.to_string())
            .send()
            .await
            .expect("request sent");
        json_body(response).await
    }

    /// Requests `service` received whose path and query start with `prefix`.
    pub fn requests_to(&self, service: Service, prefix: &str) -> Vec<String> {
        self.upstreams
            .control()
            .requests(service)
            .into_iter()
            .map(|r| r.target)
            .filter(|t| t.starts_with(prefix))
            .collect()
    }

    pub fn fault(&self, service: Service, fault: Fault) {
        self.upstreams.control().set_fault(service, fault);
    }

    pub fn calls(&self, service: Service) -> usize {
        self.upstreams.control().calls(service)
    }

    pub fn total_calls(&self) -> usize {
        [Service::Users, Service::Orders, Service::Notifications]
            .into_iter()
            .map(|s| self.calls(s))
            .sum()
    }

    /// Stops accepting connections and waits for in-flight requests.
    pub async fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran");
        }
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

pub fn sign_hs256(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("token signs")
}

/// Status, headers and JSON body of a response.
pub async fn json_body(
    response: reqwest::Response,
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body read");
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "body is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, headers, body)
}

/// Asserts the contract's error body with `code`, and returns the message.
pub fn assert_error_body(body: &Value, code: &str) -> String {
    let error = &body["error"];
    assert_eq!(error["code"], code, "error body: {body}");
    assert!(
        error["requestId"].as_str().is_some_and(|id| !id.is_empty()),
        "requestId missing: {body}"
    );
    let keys: Vec<&str> = error
        .as_object()
        .expect("error object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 3, "unexpected error keys: {body}");
    error["message"].as_str().expect("message").to_owned()
}

/// The sorted keys of a JSON object.
pub fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// Sends raw bytes on a fresh connection and returns what the server
/// answered before closing (or `timeout`).
pub async fn raw_http(addr: &str, request: &[u8], timeout: Duration) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    exchange(&mut stream, request, timeout).await
}

/// Whether the server closes `stream` within `within`: a read returns end
/// of stream or an error, rather than data or nothing.
pub async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    matches!(
        tokio::time::timeout(within, stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Sends raw bytes on an open connection and returns the one reply the
/// server sent (up to its `Content-Length`), or what came before it closed
/// or `timeout` passed. The connection stays open for the next request.
pub async fn exchange(stream: &mut TcpStream, request: &[u8], timeout: Duration) -> String {
    stream.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                if response_complete(&out) {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn response_complete(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.parse::<usize>().ok());
    length.is_some_and(|n| body.len() >= n)
}
