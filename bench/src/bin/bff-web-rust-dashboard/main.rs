//! The benchmark's comparator: bff-web with its `GET /user-dashboard` in
//! Rust (typed clients, `tokio::join!`, `Serialize` structs) instead of
//! declared, every other route and layer the same, so `bench/run` can
//! measure what declaring the dashboard costs.

mod fan_out;
mod shape;

use axum::routing::{get, post};
use axum::{Extension, Router};
use bff_core::AppState;
use bff_core::config::{ConfigError, EndpointsConfig};
use bff_core::graphql::GraphQlEndpoint;
use bff_core::openapi::ApiDocument;
use bff_core::run::BffSpec;
use bff_shop::ShopClients;

/// The allocator bff-web runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SPEC: BffSpec = BffSpec {
    name: "bff-web",
    default_config: bff_web::DEFAULT_CONFIG,
    app,
    openapi,
    demo_path: "/user-dashboard",
    schema_sdl: bff_web::graphql::sdl,
    demo: None,
};

fn app(state: AppState) -> Result<Router, ConfigError> {
    let shop = ShopClients::from_registry(state.upstreams())?;
    let graphql = GraphQlEndpoint::new(
        bff_web::graphql::schema(state.config()),
        &[],
        state.config(),
    )
    .with_request_data(bff_shop::graphql::request_data(shop.clone()));
    let routes = Router::new()
        .route("/user-dashboard", get(shape::user_dashboard))
        .route("/orders", post(bff_shop::rest::place_order))
        .route("/graphql", graphql.into_route())
        .layer(Extension(shop));
    let document = openapi(&state.config().endpoints)?;
    Ok(bff_core::server::router(state, routes, document))
}

fn openapi(endpoints: &EndpointsConfig) -> Result<ApiDocument, ConfigError> {
    bff_web::openapi(endpoints)
}

fn main() -> std::process::ExitCode {
    bff_core::run::main(SPEC)
}
