//! bff-web: the web team's Backend-for-Frontend.
//!
//! This crate holds only what is the web app's own: which routes exist and
//! the shape of each reply. Auth, rate limiting, upstream calls, fan-out
//! and errors come from `bff-core`.

/// `GET /user-dashboard` shaped for the web app.
pub mod dashboard;

use axum::Router;
use axum::routing::{get, post};
use bff_core::AppState;
use bff_core::run::BffSpec;

/// This BFF's defaults: the lowest configuration layer.
pub const DEFAULT_CONFIG: &str = include_str!("../bff-web.toml");

/// Everything `main` needs to start this BFF.
pub const SPEC: BffSpec = BffSpec {
    name: "bff-web",
    default_config: DEFAULT_CONFIG,
    app,
    demo_path: "/user-dashboard",
};

/// The whole application, ready to serve: tests call this too.
pub fn app(state: AppState) -> Router {
    bff_core::server::router(state, routes())
}

/// The web app's authenticated, rate-limited routes.
fn routes() -> Router<AppState> {
    Router::new()
        .route("/user-dashboard", get(dashboard::user_dashboard))
        .route("/orders", post(bff_core::rest::place_order))
}
