//! A declared endpoint as an axum route: scopes, the route's own quota,
//! the request's values for the templates, the run, and the reply's
//! headers (`Cache-Control`, `Server-Timing`, deprecation).

use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams, Request};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LINK};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use jaq_json::{Map, Val};

use super::execute::{RequestValues, run};
use super::expr::text;
use super::plan::{DeclaredEndpoint, ServedEndpoint};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::metrics::{Limiter, Metrics};
use crate::rate_limit::{Admitted, LimitKey, Refused};
use crate::request_context::RequestContext;
use crate::server_timing::annotate;
use crate::upstream::Caller;

static DEPRECATION: HeaderName = HeaderName::from_static("deprecation");
static SUNSET: HeaderName = HeaderName::from_static("sunset");

/// The route serving `served`.
pub fn method_router<S: Clone + Send + Sync + 'static>(
    served: Arc<ServedEndpoint>,
    metrics: Arc<Metrics>,
) -> MethodRouter<S> {
    get(move |request: Request| {
        let served = served.clone();
        let metrics = metrics.clone();
        async move {
            let mut response = serve(&served, &metrics, request).await;
            let endpoint = &served.plan;
            if let Some(deprecation) = &endpoint.deprecation {
                metrics.deprecated_call(&endpoint.route);
                let headers = response.headers_mut();
                headers.insert(DEPRECATION.clone(), deprecation.deprecation.clone());
                headers.insert(SUNSET.clone(), deprecation.sunset.clone());
                if let Some(link) = &deprecation.link {
                    headers.insert(LINK, link.clone());
                }
            }
            response
        }
    })
}

async fn serve(served: &ServedEndpoint, metrics: &Metrics, request: Request) -> Response {
    let endpoint = &*served.plan;
    let (mut parts, _body) = request.into_parts();
    // Taken first: it needs the parts mutably; the rest only borrows them.
    let path = RawPathParams::from_request_parts(&mut parts, &())
        .await
        .ok();
    let Some(auth) = parts.extensions.get::<Authenticated>() else {
        return ApiError::Internal("a declared route without authentication".into())
            .into_response();
    };
    if let Some(missing) = endpoint.scopes.iter().find(|s| !auth.claims.has_scope(s)) {
        return ApiError::Forbidden {
            scope: missing.clone().into(),
        }
        .into_response();
    }
    let Some(ctx) = parts.extensions.get::<RequestContext>() else {
        return ApiError::Internal("request context missing".into()).into_response();
    };
    let admitted = match &served.limiter {
        Some(limiter) => {
            let decision = limiter
                .check(&LimitKey::Subject(auth.claims.subject.clone()))
                .await;
            match Admitted::from_decision(decision) {
                Ok(admitted) => Some(admitted),
                Err(refused) => {
                    if matches!(refused, Refused::OverQuota { .. }) {
                        metrics.rate_limited(Limiter::Subject);
                    }
                    return refused.into_response();
                }
            }
        }
        None => None,
    };
    let Some(caller) = Caller::new(ctx, auth.claims.subject.clone(), auth.authorization.clone())
    else {
        return ApiError::Internal("subject is not a valid header value".into()).into_response();
    };
    let caller = caller.with_deadline(ctx.received_at() + served.timeout);
    let values = RequestValues {
        auth: auth_value(auth),
        path: object(path.iter().flat_map(|params| params.iter())),
        query: query_value(endpoint, parts.uri.query()),
        headers: object(endpoint.headers.iter().filter_map(|name| {
            let value = parts.headers.get(name)?.to_str().ok()?;
            Some((name.as_str(), value))
        })),
    };
    let ran = run(served, &caller, &values).await;
    let mut response = match ran.result {
        Ok(body) => {
            let mut response = (
                [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                body,
            )
                .into_response();
            if let Some(cache) = &endpoint.cache_control {
                response.headers_mut().insert(CACHE_CONTROL, cache.clone());
            }
            response
        }
        Err(error) => error.into_response(),
    };
    annotate(&mut response, &ran.timings, &ran.degraded);
    if let Some(admitted) = admitted {
        admitted.write_headers(&mut response);
    }
    response
}

/// `$auth`: `{sub, scopes}`.
fn auth_value(auth: &Authenticated) -> Val {
    let mut fields = Map::default();
    fields.insert(text("sub"), text(&auth.claims.subject));
    let scopes: Val = auth
        .claims
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(text)
        .collect();
    fields.insert(text("scopes"), scopes);
    Val::obj(fields)
}

/// `$query`: the declared parameters the client sent, the first of each.
fn query_value(endpoint: &DeclaredEndpoint, query: Option<&str>) -> Val {
    let Some(query) = query else {
        return Val::obj(Map::default());
    };
    let mut fields = Map::default();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if endpoint.query_params.iter().any(|p| *p == name) {
            let key = text(&name);
            if !fields.contains_key(&key) {
                fields.insert(key, text(&value));
            }
        }
    }
    Val::obj(fields)
}

fn object<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Val {
    Val::obj(pairs.map(|(k, v)| (text(k), text(v))).collect())
}
