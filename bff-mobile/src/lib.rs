//! bff-mobile: the mobile team's Backend-for-Frontend.
//!
//! This crate holds only what is the mobile app's own: which routes exist and
//! the shape of each reply. Auth, rate limiting, upstream calls, fan-out
//! and errors come from `bff-core`.

pub mod graphql;

use axum::routing::post;
use axum::{Extension, Router};
use bff_core::AppState;
use bff_core::config::{ConfigError, EndpointsConfig};
use bff_core::declared::Declared;
use bff_core::graphql::GraphQlEndpoint;
use bff_core::openapi::ApiDocument;
use bff_core::run::BffSpec;
use bff_shop::ShopClients;

/// The declared endpoints (`endpoints/*.toml`), embedded at build time;
/// `endpoints.dir` serves a directory's instead.
pub const ENDPOINTS: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/endpoints.rs"));

/// This BFF's defaults: the lowest configuration layer.
pub const DEFAULT_CONFIG: &str = include_str!("../bff-mobile.toml");

/// Everything `main` needs to start this BFF.
pub const SPEC: BffSpec = BffSpec {
    name: "bff-mobile",
    default_config: DEFAULT_CONFIG,
    app,
    openapi,
    demo_path: "/user-dashboard",
    schema_sdl: graphql::sdl,
    #[cfg(feature = "demo")]
    demo: Some(bff_testkit::demo::start),
    #[cfg(not(feature = "demo"))]
    demo: None,
};

/// The whole application, ready to serve: tests call this too.
/// An error when the config lacks an upstream its routes call.
pub fn app(state: AppState) -> Result<Router, ConfigError> {
    if state.config().session.oidc.is_some() {
        return Err(ConfigError::invalid(
            "session.oidc",
            "is for the web BFF: native apps run their own OAuth flow and send bearer tokens",
        ));
    }
    let declared = bff_shop::declared(&state.config().endpoints, ENDPOINTS)?;
    let routes = routes(&state, &declared)?;
    let document = bff_shop::api_document("bff-mobile", env!("CARGO_PKG_VERSION"), &declared);
    Ok(bff_core::server::router(state, routes, document))
}

/// This BFF's OpenAPI document for the endpoint files `config` names
/// (committed as `openapi/bff-mobile.json`, `bff-mobile --print-openapi`).
pub fn openapi(config: &EndpointsConfig) -> Result<ApiDocument, ConfigError> {
    let declared = bff_shop::declared(config, ENDPOINTS)?;
    Ok(bff_shop::api_document(
        "bff-mobile",
        env!("CARGO_PKG_VERSION"),
        &declared,
    ))
}

/// The mobile app's authenticated, rate-limited routes.
fn routes(state: &AppState, declared: &Declared) -> Result<Router<AppState>, ConfigError> {
    let shop = ShopClients::from_registry(state.upstreams())?;
    let graphql = GraphQlEndpoint::new(
        graphql::schema(state.config()),
        graphql::TRUSTED_OPERATIONS,
        state.config(),
    )
    .with_request_data(bff_shop::graphql::request_data(shop.clone()));
    // The declared screens, then the Rust handlers: the same layers wrap both.
    Ok(declared
        .routes(state)?
        .route("/orders", post(bff_shop::rest::place_order))
        .route("/graphql", graphql.into_route())
        // The shop's clients, for the handlers that call its services.
        .layer(Extension(shop)))
}
