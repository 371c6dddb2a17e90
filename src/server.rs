//! The router, its layer stack, operations endpoints and graceful shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::http::header::{
    AUTHORIZATION, CONTENT_TYPE, COOKIE, PROXY_AUTHORIZATION, STRICT_TRANSPORT_SECURITY,
};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate as _, SizeAbove};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::auth::{ApiKeys, Credentials, JwtVerifier};
use crate::client_ip::TrustedProxies;
use crate::config::{Config, ConfigError, Profile};
use crate::edge::{Edge, edge};
use crate::error::ApiError;
use crate::guard::{Guard, guard};
use crate::header_limits::HeaderLimits;
use crate::idempotency::IdempotencyRecords;
use crate::metrics::Metrics;
use crate::openapi::ApiDocument;
use crate::rate_limit::{RateLimiter, RateLimits, RouteLimiters, WhenSharedStateFails};
use crate::reload::ReloadStatus;
use crate::session::TokenHandler;
use crate::shared_state::SharedState;
use crate::telemetry::access::tag_route;
use crate::upstream::Upstreams;
use crate::upstream::guard::CircuitState;

/// Everything a request may need, built once at start and shared by `Arc`.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    name: &'static str,
    config: Config,
    upstreams: Upstreams,
    credentials: Credentials,
    rate_limits: RateLimits,
    trusted_proxies: TrustedProxies,
    metrics: Arc<Metrics>,
    /// This state's config generation: 1 at start, one more per reload.
    generation: u64,
    /// What every generation shares.
    lasting: Arc<Lasting>,
    /// Set in `--demo` only: serves `GET /demo/token`.
    token_mint: Option<Arc<dyn crate::demo_token::TokenMint>>,
    /// Redis, when configured; made by the first generation (a changed
    /// `shared_state` takes a restart).
    shared_state: SharedState,
    /// Idempotency records, made by the first generation: a reload keeps
    /// every claim and reply.
    idempotency: IdempotencyRecords,
}

/// What outlives a config reload, shared by every generation of the state.
#[derive(Debug, Default)]
struct Lasting {
    draining: AtomicBool,
    reloads: ReloadStatus,
    route_limiters: RouteLimiters,
}

impl AppState {
    /// Builds clients, keys and limiter from a validated config. Must run
    /// inside a Tokio runtime: it starts the limiter's pruning task.
    pub fn new(name: &'static str, config: Config) -> Result<Self, ConfigError> {
        Self::build(name, config, None)
    }

    /// The state for a reloaded `config`, succeeding this one: the same
    /// metrics, draining flag, reload status and route quotas; each
    /// upstream whose settings did not change keeps its endpoint (breakers,
    /// cache, pooled connections), and a quota that did not change keeps
    /// its counts. Keys and API keys are built afresh.
    pub fn succeeding(&self, config: Config) -> Result<Self, ConfigError> {
        Self::build(self.0.name, config, Some(self))
    }

    fn build(
        name: &'static str,
        config: Config,
        previous: Option<&AppState>,
    ) -> Result<Self, ConfigError> {
        let metrics =
            previous.map_or_else(|| Arc::new(Metrics::new(name)), |p| p.0.metrics.clone());
        let upstreams = match previous {
            Some(p) => Upstreams::succeeding(
                &config.upstreams,
                &metrics,
                p.upstreams(),
                &p.config().upstreams,
            )?,
            None => Upstreams::from_config(&config.upstreams, &metrics)?,
        };
        for (upstream, _) in upstreams.health() {
            metrics.prime_upstream(upstream.as_str());
        }
        let shared_state = match previous {
            Some(p) => p.0.shared_state.clone(),
            None => SharedState::connect(&config.shared_state, name, &metrics)?,
        };
        let idempotency = previous.map_or_else(
            || IdempotencyRecords::new(&config.idempotency, &shared_state),
            |p| p.0.idempotency.clone(),
        );
        // Sessions and logins in progress outlive a reload; a changed
        // `session` takes a restart, like `shared_state`.
        let token_handler = match previous {
            Some(p) => p.0.credentials.sessions.clone(),
            None => TokenHandler::from_config(
                &config.session,
                &config.cors.allowed_origins,
                &shared_state,
            )?,
        };
        let verifier = JwtVerifier::from_config(&config.auth)?;
        let api_keys = ApiKeys::from_config(&config.api_keys, &shared_state)?;
        let quota = &config.rate_limit;
        // The previous generation's limiter while its quota is the same
        // (its counts carry over), a new one otherwise.
        let limiter =
            |previous_one: fn(&RateLimits) -> &Arc<RateLimiter>, name: &str, per_second, burst| {
                previous
                    .map(|p| previous_one(&p.0.rate_limits))
                    .filter(|l| l.quota() == (per_second, burst))
                    .cloned()
                    .unwrap_or_else(|| {
                        let limiter = Arc::new(RateLimiter::shared(
                            per_second,
                            burst,
                            name,
                            &shared_state,
                            WhenSharedStateFails::FallBack,
                        ));
                        RateLimiter::spawn_pruner(&limiter, quota.prune_interval);
                        limiter
                    })
            };
        let rate_limiter = limiter(|l| &l.per_subject, "subject", quota.per_second, quota.burst);
        let ip_rate_limiter = limiter(
            |l| &l.per_ip,
            "ip",
            quota.per_ip_per_second,
            quota.per_ip_burst,
        );
        let trusted_proxies = TrustedProxies(config.http.trusted_proxies.clone().into());
        Ok(Self(Arc::new(Inner {
            name,
            config,
            upstreams,
            credentials: Credentials {
                verifier: Arc::new(verifier),
                api_keys: Arc::new(api_keys),
                sessions: token_handler,
            },
            rate_limits: RateLimits {
                per_subject: rate_limiter,
                per_ip: ip_rate_limiter,
                metrics: metrics.clone(),
            },
            trusted_proxies,
            metrics,
            generation: previous.map_or(1, |p| p.0.generation + 1),
            lasting: previous.map_or_else(Arc::default, |p| p.0.lasting.clone()),
            token_mint: previous.and_then(|p| p.0.token_mint.clone()),
            shared_state,
            idempotency,
        })))
    }

    /// This state's config generation: 1 for the config loaded at start.
    pub fn generation(&self) -> u64 {
        self.0.generation
    }

    /// The reload status every generation shares: the generation being
    /// served, the last failed reload.
    pub fn reloads(&self) -> &ReloadStatus {
        &self.0.lasting.reloads
    }

    /// What the replicas share (Redis), when configured.
    pub fn shared_state(&self) -> &SharedState {
        &self.0.shared_state
    }

    /// The idempotency records of `POST` routes that take an
    /// `Idempotency-Key`.
    pub fn idempotency(&self) -> &IdempotencyRecords {
        &self.0.idempotency
    }

    /// The token handler (browser sessions), when `session.oidc` is set.
    pub fn token_handler(&self) -> Option<&Arc<TokenHandler>> {
        self.0.credentials.sessions.as_ref()
    }

    /// Declared routes' own quotas, kept across reloads.
    pub fn route_limiters(&self) -> &RouteLimiters {
        &self.0.lasting.route_limiters
    }

    /// The BFF's name (`bff-web`, `bff-mobile`).
    pub fn name(&self) -> &'static str {
        self.0.name
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// Every configured upstream, by name.
    pub fn upstreams(&self) -> &Upstreams {
        &self.0.upstreams
    }

    pub fn verifier(&self) -> &JwtVerifier {
        &self.0.credentials.verifier
    }

    /// The configured API keys.
    pub fn api_keys(&self) -> &ApiKeys {
        &self.0.credentials.api_keys
    }

    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.0.rate_limits.per_subject
    }

    /// The per-IP limiter counted before authentication.
    pub fn ip_rate_limiter(&self) -> &RateLimiter {
        &self.0.rate_limits.per_ip
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The metrics, shared: for what counts requests after start.
    pub fn metrics_shared(&self) -> Arc<Metrics> {
        self.0.metrics.clone()
    }

    /// From now on `/readyz` fails, so load balancers stop sending traffic
    /// while in-flight requests finish.
    pub fn start_draining(&self) {
        self.0.lasting.draining.store(true, Ordering::Relaxed);
    }

    /// Serves `GET /demo/token` with `mint`: for `--demo` only. Call it
    /// before the state is shared (before the app is built).
    pub fn with_token_mint(mut self, mint: Arc<dyn crate::demo_token::TokenMint>) -> Self {
        Arc::get_mut(&mut self.0)
            .expect("the state is not shared before the app is built")
            .token_mint = Some(mint);
        self
    }

    pub fn is_draining(&self) -> bool {
        self.0.lasting.draining.load(Ordering::Relaxed)
    }
}

// Each middleware takes only the part of the state it needs, derived here,
// so no middleware module depends on `AppState`.

impl FromRef<AppState> for Credentials {
    fn from_ref(state: &AppState) -> Self {
        state.0.credentials.clone()
    }
}

impl FromRef<AppState> for RateLimits {
    fn from_ref(state: &AppState) -> Self {
        state.0.rate_limits.clone()
    }
}

impl FromRef<AppState> for TrustedProxies {
    fn from_ref(state: &AppState) -> Self {
        state.0.trusted_proxies.clone()
    }
}

impl FromRef<AppState> for HeaderLimits {
    fn from_ref(state: &AppState) -> Self {
        let http = &state.config().http;
        Self {
            max_headers: http.max_headers.get(),
            max_header_bytes: http.max_header_bytes.get(),
        }
    }
}

impl FromRef<AppState> for crate::extract::UpstreamDeadline {
    fn from_ref(state: &AppState) -> Self {
        Self(state.config().http.upstream_deadline)
    }
}

impl FromRef<AppState> for Arc<Metrics> {
    fn from_ref(state: &AppState) -> Self {
        state.0.metrics.clone()
    }
}

/// The whole application: operations endpoints, the BFF's authenticated
/// `routes` behind auth and rate limiting, `api` (the routes' OpenAPI
/// document) at `/openapi.json`, and the shared layer stack.
pub fn router(state: AppState, routes: Router<AppState>, api: ApiDocument) -> Router {
    // The client IP is counted, the credential checked, the caller's quota
    // counted, the route run; its `200` GET reply tagged (`304` on a
    // match), marked `no-store` unless it set its own policy.
    let authenticated = routes.route_layer(from_fn_with_state(Guard::from_ref(&state), guard));
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(authenticated)
        .merge(demo_routes(&state))
        .merge(crate::status::routes(&state));
    if let Some(auth_routes) = crate::session::routes::routes(&state) {
        router = router.merge(auth_routes);
    }
    if state.config().http.openapi {
        // No token: the document describes the API and holds no data.
        router = router.route(
            "/openapi.json",
            get(move || std::future::ready(api.response())),
        );
    }
    if state.config().profile == Profile::Development {
        // GraphiQL's own scripts and stylesheet, no token needed.
        router = router.merge(crate::graphql::ide::routes());
    }
    let routed = router
        // Every route's template, for the access log and metrics.
        .route_layer(from_fn(tag_route))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    let development = state.config().profile == Profile::Development;
    // The stack wraps the router once, not each route (`Router::layer`
    // would wrap every route's service and clone that whole boxed stack
    // per request). Outermost first. Keep README's layer inventory in step.
    let stack = ServiceBuilder::new()
        // On an `Accept-Encoding` tie, `br` or `gzip` rather than `zstd`.
        .map_request(crate::encoding::prefer_br_or_gzip_on_ties)
        // A compressed reply's `ETag` is weak: it was computed on the identity body.
        .layer(from_fn(crate::conditional::weaken_when_encoded))
        // Large replies are compressed as the client accepts (zstd, br,
        // gzip); small ones are not worth the CPU.
        .layer(
            CompressionLayer::new().compress_when(
                SizeAbove::new(
                    u16::try_from(state.config().http.compression_min_bytes.get())
                        .unwrap_or(u16::MAX),
                )
                .and(NotForContentType::GRPC)
                .and(NotForContentType::IMAGES)
                .and(NotForContentType::SSE),
            ),
        )
        // Request id and trace context (echoed as X-Request-Id); the span,
        // metrics and access line; the contract's JSON body on every 4xx/5xx
        // below; nosniff; header limits (431) and the client's address.
        .layer(from_fn_with_state(Edge::from_ref(&state), edge))
        // Credentials are redacted from anything that logs headers.
        .layer(SetSensitiveRequestHeadersLayer::new([
            AUTHORIZATION,
            PROXY_AUTHORIZATION,
            COOKIE,
        ]))
        // A panic becomes a 500 with the contract body, not a dropped connection.
        .layer(CatchPanicLayer::new())
        // A whole request, body read included, is bounded: slow clients get 408.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.config().http.request_timeout,
        ))
        // Bodies past the limit are refused (413) before they are buffered.
        .layer(DefaultBodyLimit::max(state.config().http.body_limit.get()))
        // Preflights are answered here, before auth and routing.
        .option_layer(crate::cors::layer(&state.config().cors))
        // Served over TLS: browsers should never try plain HTTP again.
        .option_layer(state.config().tls.cert_path.is_some().then(|| {
            SetResponseHeaderLayer::overriding(
                STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000"),
            )
        }))
        // In development, before auth: the IDE page itself needs no token.
        .option_layer(development.then(|| from_fn(crate::graphql::ide::serve_graphiql)));
    Router::new().fallback_service(stack.service(routed))
}

/// `GET /demo/token`, when a demo attached its mint; no routes otherwise.
fn demo_routes(state: &AppState) -> Router<AppState> {
    match &state.0.token_mint {
        Some(mint) => Router::new().route(
            "/demo/token",
            get(crate::demo_token::issue).with_state(mint.clone()),
        ),
        None => Router::new(),
    }
}

/// `GET /healthz`: the process is alive.
async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: config loaded, listener up, not draining.
async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    if state.is_draining() {
        return Err(ApiError::NotReady("the gateway is shutting down"));
    }
    let upstreams: serde_json::Map<String, serde_json::Value> = state
        .upstreams()
        .health()
        .into_iter()
        .map(|(name, health)| (name.to_string(), serde_json::json!(health)))
        .collect();
    Ok(axum::Json(serde_json::json!({
        "status": "ready",
        "bff": state.name(),
        "config": {
            "generation": state.reloads().active(),
            "lastReloadError": state.reloads().last_error(),
        },
        "upstreams": upstreams,
        "sharedState": state.shared_state().health(),
    })))
}

/// `GET /metrics`: the Prometheus text exposition.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    for (name, health) in state.upstreams().health() {
        state.metrics().set_circuit_state(
            name.as_str(),
            &CircuitState::NAMES,
            health.circuit.as_str(),
        );
    }
    let body = state.metrics().render();
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("this route does not accept that method")
}
