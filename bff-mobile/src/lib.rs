//! bff-mobile: the mobile team's Backend-for-Frontend.
//!
//! This crate holds only what is the mobile app's own: which routes exist and
//! the shape of each reply. Auth, rate limiting, upstream calls, fan-out
//! and errors come from `bff-core`.

/// `GET /user-dashboard` shaped for the mobile app.
pub mod dashboard;
/// The mobile app's GraphQL schema and trusted operations.
pub mod graphql;

use axum::Router;
use axum::routing::{get, post};
use bff_core::AppState;
use bff_core::graphql::GraphQlEndpoint;
use bff_core::run::BffSpec;

/// This BFF's defaults: the lowest configuration layer.
pub const DEFAULT_CONFIG: &str = include_str!("../bff-mobile.toml");

/// Everything `main` needs to start this BFF.
pub const SPEC: BffSpec = BffSpec {
    name: "bff-mobile",
    default_config: DEFAULT_CONFIG,
    app,
    demo_path: "/user-dashboard",
    schema_sdl: graphql::sdl,
};

/// The whole application, ready to serve: tests call this too.
pub fn app(state: AppState) -> Router {
    let routes = routes(&state);
    bff_core::server::router(state, routes)
}

/// The mobile app's authenticated, rate-limited routes.
fn routes(state: &AppState) -> Router<AppState> {
    let graphql = GraphQlEndpoint::new(
        graphql::schema(state.config()),
        graphql::TRUSTED_OPERATIONS,
        state.config(),
    );
    Router::new()
        .route("/user-dashboard", get(dashboard::user_dashboard))
        .route("/orders", post(bff_core::rest::place_order))
        .route("/graphql", graphql.into_route())
}
