//! GraphiQL for the development profile: the page on `GET /graphql` for
//! browsers, and its scripts and stylesheet on `/graphiql/*`, all served
//! from the binary.
//!
//! GraphiQL 3 and React 18 are vendored from their npm packages
//! (`vendor/graphiql/`, refreshed by `scripts/vendor-graphiql`, with their
//! licences) and embedded gzipped, so the IDE works offline and behind a
//! strict proxy: the page's Content-Security-Policy lets it load and
//! connect to nothing but this BFF.

use std::io::Read as _;

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::server::AppState;

/// The page: the vendored scripts, then `init.js`, which renders GraphiQL.
const PAGE: &str = include_str!("page.html");

/// Only this BFF: scripts, styles (GraphiQL injects some inline), fonts
/// and images (inlined as `data:`), and the fetches to `/graphql`.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     font-src 'self' data:; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One file under `/graphiql/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: Body,
}

enum Body {
    /// A vendored file, stored gzipped.
    Gzipped(&'static [u8]),
    /// Ours, as is.
    Plain(&'static str),
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

const ASSETS: [Asset; 5] = [
    Asset {
        name: "graphiql.min.js",
        content_type: JAVASCRIPT,
        body: Body::Gzipped(include_bytes!(
            "../../../vendor/graphiql/graphiql.min.js.gz"
        )),
    },
    Asset {
        name: "graphiql.min.css",
        content_type: "text/css; charset=utf-8",
        body: Body::Gzipped(include_bytes!(
            "../../../vendor/graphiql/graphiql.min.css.gz"
        )),
    },
    Asset {
        name: "react.production.min.js",
        content_type: JAVASCRIPT,
        body: Body::Gzipped(include_bytes!(
            "../../../vendor/graphiql/react.production.min.js.gz"
        )),
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: JAVASCRIPT,
        body: Body::Gzipped(include_bytes!(
            "../../../vendor/graphiql/react-dom.production.min.js.gz"
        )),
    },
    Asset {
        name: "init.js",
        content_type: JAVASCRIPT,
        body: Body::Plain(include_str!("init.js")),
    },
];

/// Middleware (development only): a browser asking `/graphql` for HTML gets
/// the GraphiQL page; API clients pass through to auth and the endpoint.
pub async fn serve_graphiql(request: Request, next: Next) -> Response {
    let wants_html = request
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if request.method() == Method::GET && request.uri().path() == "/graphql" && wants_html {
        return (
            [
                (
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (
                    CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(PAGE_POLICY),
                ),
                (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            PAGE,
        )
            .into_response();
    }
    next.run(request).await
}

/// `GET /graphiql/{file}`: the page's scripts and stylesheet (development
/// only, unauthenticated like the page).
pub fn routes() -> Router<AppState> {
    Router::new().route("/graphiql/{file}", get(asset))
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let content_type = HeaderValue::from_static(asset.content_type);
    let cache = (
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    match asset.body {
        Body::Plain(text) => ([(CONTENT_TYPE, content_type), cache], text).into_response(),
        Body::Gzipped(bytes) if crate::encoding::accepts(&headers, "gzip") => (
            [
                (CONTENT_TYPE, content_type),
                (CONTENT_ENCODING, HeaderValue::from_static("gzip")),
                (VARY, HeaderValue::from_static("accept-encoding")),
                cache,
            ],
            bytes,
        )
            .into_response(),
        Body::Gzipped(bytes) => {
            // Every browser accepts gzip; a script or proxy that does not
            // gets the file inflated.
            let mut inflated = Vec::with_capacity(bytes.len() * 5);
            match flate2::read::GzDecoder::new(bytes).read_to_end(&mut inflated) {
                Ok(_) => ([(CONTENT_TYPE, content_type), cache], inflated).into_response(),
                Err(error) => {
                    tracing::error!(%error, file, "vendored GraphiQL asset is not gzip");
                    StatusCode::INTERNAL_SERVER_ERROR.into_response()
                }
            }
        }
    }
}
