//! GraphiQL for the development profile, on `GET /graphql` for browsers.

use std::sync::OnceLock;

use axum::extract::Request;
use axum::http::Method;
use axum::http::header::ACCEPT;
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

/// Middleware (development only): a browser asking `/graphql` for HTML gets
/// GraphiQL; API clients pass through to auth and the endpoint. Paste the
/// demo token into GraphiQL's headers as `{"Authorization": "Bearer ..."}`.
pub async fn serve_graphiql(request: Request, next: Next) -> Response {
    let wants_html = request
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if request.method() == Method::GET && request.uri().path() == "/graphql" && wants_html {
        static PAGE: OnceLock<String> = OnceLock::new();
        let page = PAGE.get_or_init(|| {
            async_graphql::http::GraphiQLSource::build()
                .endpoint("/graphql")
                .title("BFF GraphiQL")
                .finish()
        });
        return Html(page.as_str()).into_response();
    }
    next.run(request).await
}
