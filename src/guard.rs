//! The authenticated routes' guard, as one route layer: the per-IP quota,
//! authentication, the caller's quota, conditional GETs and
//! `Cache-Control: no-store`, in that order.
//!
//! One layer rather than five: each `from_fn` layer boxes the rest of the
//! stack and a future per request, and these five always run together.
//! Each step's rules stay in its own module (`rate_limit`, `auth`,
//! `conditional`); this only orders them.

use axum::extract::{FromRef, Request, State};
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{Authenticated, Credentials, authenticate, with_subject_hash};
use crate::conditional::Conditional;
use crate::rate_limit::{RateLimits, admit_caller, admit_ip, admit_ip_and_caller, client_ip};
use crate::server::AppState;

/// What the guard needs, taken from the state once.
#[derive(Debug, Clone)]
pub struct Guard {
    limits: RateLimits,
    credentials: Credentials,
}

impl FromRef<AppState> for Guard {
    fn from_ref(state: &AppState) -> Self {
        Self {
            limits: RateLimits::from_ref(state),
            credentials: Credentials::from_ref(state),
        }
    }
}

/// Route layer: refuses what the quotas or the credentials refuse (no
/// upstream is called), otherwise runs the route and finishes its reply.
///
/// The per-IP quota is counted before the credential is verified, so a
/// flood of bad tokens is limited too. A caller already known (an API key,
/// a token verified before) has both quotas counted at once, in one round
/// trip when they are in Redis; anyone else has the per-IP quota counted
/// first and the caller's after verification.
pub async fn guard(State(guard): State<Guard>, mut request: Request, next: Next) -> Response {
    let ip = client_ip(&request);
    let known = guard.credentials.known_caller(request.headers());
    let counted = match &known {
        Some(caller) => admit_ip_and_caller(&guard.limits, ip, caller)
            .await
            .map(Some),
        None => admit_ip(&guard.limits, ip).await.map(|()| None),
    };
    let response = match counted {
        Err(refused) => match &known {
            Some(caller) => with_subject_hash(refused.into_response(), caller.subject()),
            None => refused.into_response(),
        },
        Ok(counted) => match authenticate(&guard.credentials, &mut request).await {
            Err(refused) => refused,
            Ok(subject) => {
                let admitted = match counted {
                    Some(admitted) => Ok(admitted),
                    None => {
                        admit_caller(
                            &guard.limits,
                            request.extensions().get::<Authenticated>(),
                            ip,
                        )
                        .await
                    }
                };
                let response = match admitted {
                    Err(refused) => refused.into_response(),
                    Ok(admitted) => {
                        let conditional = Conditional::of(&request);
                        let reply = next.run(request).await;
                        let mut response = conditional.tag_and_match(reply).await;
                        admitted.write_headers(&mut response);
                        response
                    }
                };
                with_subject_hash(response, &subject)
            }
        },
    };
    no_store_unless_set(response)
}

/// Replies on these routes hold a caller's data: `no-store` unless the
/// route set its own policy.
fn no_store_unless_set(mut response: Response) -> Response {
    response
        .headers_mut()
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
