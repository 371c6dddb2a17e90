//! `/auth/login`, `/auth/callback`, `/auth/logout` and `/auth/user`: the
//! token handler's endpoints for the web app.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::TokenHandler;
use super::cookie::{self, SameSite};
use crate::auth::{AuthError, Claims, is_valid_subject};
use crate::error::ApiError;
use crate::rate_limit::{RateLimits, admit_ip, client_ip_of};
use crate::server::AppState;

/// How long the login cookie lives: the time a user has at the provider.
const LOGIN_COOKIE_SECONDS: u64 = 600;

/// What every `/auth/*` handler needs.
#[derive(Debug, Clone)]
struct Auth {
    handler: Arc<TokenHandler>,
    limits: RateLimits,
}

/// The four routes, when the token handler is configured.
pub fn routes(state: &AppState) -> Option<Router<AppState>> {
    let handler = state.token_handler()?.clone();
    let auth = Auth {
        handler,
        limits: axum::extract::FromRef::from_ref(state),
    };
    Some(
        Router::new()
            .route("/auth/login", get(login))
            .route("/auth/callback", get(callback))
            .route("/auth/logout", post(logout))
            .route("/auth/user", get(user))
            .with_state(auth),
    )
}

/// `no-store` on every reply: none of them may be cached anywhere.
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The per-IP quota, as every other route counts it.
async fn admitted(auth: &Auth, request: &Parts) -> Result<(), Response> {
    admit_ip(&auth.limits, client_ip_of(&request.extensions))
        .await
        .map_err(IntoResponse::into_response)
}

/// The per-IP quota, then the CSRF rules of a request by cookie.
async fn admitted_from_the_app(auth: &Auth, request: &Parts) -> Result<(), Response> {
    admitted(auth, request).await?;
    auth.handler
        .check_csrf(&request.method, &request.headers)
        .map_err(|refused| no_store(refused.into_response()))
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    #[serde(rename = "returnTo")]
    return_to: Option<String>,
}

/// A path on this origin, and nothing that a browser would read as
/// another origin (`//host`, `/\host`, a scheme, control characters).
fn same_origin_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.contains('\\')
        && path.bytes().all(|b| b.is_ascii_graphic())
}

/// `GET /auth/login?returnTo=/path`: to the provider, with PKCE, state and
/// nonce kept server-side behind the login cookie.
async fn login(State(auth): State<Auth>, request: Parts) -> Response {
    if let Err(refused) = admitted(&auth, &request).await {
        return refused;
    }
    let Ok(Query(query)) = Query::<LoginQuery>::try_from_uri(&request.uri) else {
        return ApiError::BadRequest("the query string is not valid".into()).into_response();
    };
    let return_to = query.return_to.unwrap_or_else(|| "/".to_owned());
    if !same_origin_path(&return_to) {
        return no_store(
            ApiError::BadRequest("`returnTo` must be a path on this site, like `/orders`".into())
                .into_response(),
        );
    }
    let handler = &auth.handler;
    let started = match handler.provider.login().await {
        Ok(started) => started,
        Err(error) => {
            tracing::warn!(%error, "login not started");
            return no_store(ApiError::ProviderUnavailable.into_response());
        }
    };
    let id = handler
        .sessions
        .start_login(
            started.state,
            started.nonce,
            started.pkce_verifier,
            return_to,
        )
        .await;
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(started.url.as_str()) {
        headers.insert(LOCATION, location);
    }
    headers.insert(
        SET_COOKIE,
        cookie::set(
            &handler.login_cookie_name,
            &id,
            SameSite::Lax,
            Some(LOGIN_COOKIE_SECONDS),
        ),
    );
    no_store(response)
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /auth/callback`: the code exchanged, the ID token checked, a new
/// session; a small page continues to `returnTo` (a same-site navigation,
/// so the strict session cookie goes with it).
async fn callback(State(auth): State<Auth>, request: Parts) -> Response {
    if let Err(refused) = admitted(&auth, &request).await {
        return refused;
    }
    let handler = &auth.handler;
    let refuse = |message: &'static str| {
        let mut response = ApiError::BadRequest(message.into()).into_response();
        response.headers_mut().append(
            SET_COOKIE,
            cookie::set(&handler.login_cookie_name, "", SameSite::Lax, Some(0)),
        );
        no_store(response)
    };
    let query = Query::<CallbackQuery>::try_from_uri(&request.uri).map(|Query(q)| q);
    let Ok(query) = query else {
        return refuse("the callback's query string is not valid");
    };
    // Taken once: a replayed callback finds no login.
    let login = cookie::find(&request.headers, &handler.login_cookie_name)
        .map(|id| handler.sessions.take_login(id));
    let login = match login {
        Some(taking) => taking.await,
        None => None,
    };
    let Some(login) = login else {
        return refuse("no login in progress in this browser; start again at /auth/login");
    };
    if query.error.is_some() {
        return refuse("the identity provider refused the login");
    }
    let (Some(code), Some(state)) = (query.code, query.state) else {
        return refuse("the callback has no code or no state");
    };
    if !constant_time_eq(state.as_bytes(), login.state.as_bytes()) {
        return refuse("the callback's state is not this login's");
    }
    let logged_in = match handler
        .provider
        .finish_login(code, login.pkce_verifier, &login.nonce)
        .await
    {
        Ok(logged_in) => logged_in,
        Err(error) => {
            tracing::warn!(%error, "login not finished");
            return refuse("the login could not be finished with the identity provider");
        }
    };
    if !is_valid_subject(&logged_in.subject) {
        return refuse("the identity provider's subject is not usable here");
    }
    // A session that came along (a fixation attempt, or an old login) ends.
    if let Some(old) = cookie::find(&request.headers, &handler.cookie_name) {
        handler.sessions.remove(old).await;
    }
    let claims = Claims {
        subject: logged_in.subject.as_str().into(),
        scope: logged_in
            .tokens
            .scope
            .clone()
            .unwrap_or_default()
            .into_boxed_str(),
    };
    let id = handler
        .sessions
        .create(
            &claims,
            logged_in.claims,
            logged_in.id_token,
            logged_in.tokens,
        )
        .await;
    let page = continue_page(&login.return_to);
    let mut response = (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        page,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.append(
        SET_COOKIE,
        cookie::set(&handler.cookie_name, &id, SameSite::Strict, None),
    );
    headers.append(
        SET_COOKIE,
        cookie::set(&handler.login_cookie_name, "", SameSite::Lax, Some(0)),
    );
    no_store(response)
}

/// The page that continues to `return_to` from this origin.
fn continue_page(return_to: &str) -> String {
    // `return_to` is a checked path of visible ASCII; escape what HTML
    // would read.
    let escaped = return_to
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<!doctype html><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url={escaped}\">\
         <title>Signed in</title><a href=\"{escaped}\">Continue</a>"
    )
}

/// `POST /auth/logout` (cookie, `X-CSRF`, same origin): the session ends,
/// its refresh token is revoked, and the reply names the provider's
/// end-session URL for the app to navigate to.
async fn logout(State(auth): State<Auth>, request: Parts) -> Response {
    if let Err(refused) = admitted_from_the_app(&auth, &request).await {
        return refused;
    }
    let handler = &auth.handler;
    let ended = match cookie::find(&request.headers, &handler.cookie_name) {
        Some(id) => handler.sessions.remove(id).await,
        None => None,
    };
    let logout_url = match ended {
        Some(session) => {
            if let Some(refresh) = session.refresh_token() {
                handler.provider.revoke(&refresh).await;
            }
            handler.provider.end_session_url(&session.id_token()).await
        }
        None => None,
    };
    let mut response =
        axum::Json(serde_json::json!({"logoutUrl": logout_url.map(String::from)})).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        cookie::set(&handler.cookie_name, "", SameSite::Strict, Some(0)),
    );
    no_store(response)
}

/// `GET /auth/user` (cookie, `X-CSRF`): who is logged in, and until when.
async fn user(State(auth): State<Auth>, request: Parts) -> Response {
    if let Err(refused) = admitted_from_the_app(&auth, &request).await {
        return refused;
    }
    let handler = &auth.handler;
    let session = match cookie::find(&request.headers, &handler.cookie_name) {
        Some(id) => handler.sessions.find(id).await,
        None => None,
    };
    let Some(session) = session else {
        return no_store(ApiError::from(AuthError::Missing).into_response());
    };
    no_store(
        axum::Json(serde_json::json!({
            "sub": &*session.claims.subject,
            "scope": &*session.claims.scope,
            "claims": session.user(),
            "sessionExpiresAt": session.expires_at(),
        }))
        .into_response(),
    )
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_origin_are_return_targets() {
        for good in ["/", "/orders", "/orders?id=1#top", "/a/b"] {
            assert!(same_origin_path(good), "{good}");
        }
        for bad in [
            "",
            "orders",
            "//evil.example",
            "/\\evil.example",
            "/ok\\..\\x",
            "https://evil.example/",
            "/a b",
            "/a\tb",
            "javascript:alert(1)",
        ] {
            assert!(!same_origin_path(bad), "{bad}");
        }
    }
}
