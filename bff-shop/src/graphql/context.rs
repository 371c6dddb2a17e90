//! What every shared resolver takes from the request's context (the
//! caller, the shop's clients, the user loader) and the user lookups the
//! object types make. The types and the field resolvers both build on it;
//! it knows neither, so the graph of these modules has no cycle.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_graphql::Context;

use bff_core::error::ErrorCode;
use bff_core::graphql::errors::{GraphQlResultExt, coded};
use bff_core::upstream::{Caller, Fetched, UpstreamError};

use super::loader::Users;
use crate::ShopClients;
use crate::clients::users::User;

pub(super) fn data<'a, T: Send + Sync + 'static>(
    ctx: &Context<'a>,
) -> async_graphql::Result<&'a T> {
    ctx.data::<T>()
        .map_err(|_| coded(ErrorCode::Internal, "the request context is incomplete"))
}

/// The caller whose identity every upstream call carries.
pub fn caller<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Caller> {
    data::<Caller>(ctx)
}

/// The shop's clients, given to every request (see [`super::request_data`]).
pub(super) fn shop<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a ShopClients> {
    data::<ShopClients>(ctx)
}

/// Loads a user through the request's batched loader.
pub async fn load_user(ctx: &Context<'_>, id: &str) -> async_graphql::Result<Option<Arc<User>>> {
    data::<Users>(ctx)?.load_one(id.to_owned()).await.gql()
}

/// Fetches one profile directly (`GET /users/{id}`).
pub async fn fetch_profile(ctx: &Context<'_>, id: &str) -> async_graphql::Result<Arc<User>> {
    let user = shop(ctx)?
        .users
        .get(caller(ctx)?, id)
        .await
        .map(Fetched::into_value)
        .gql()?;
    Ok(Arc::new(user))
}

/// A page's users fetched together, or the one failure they share.
pub type Prefetched = Result<Arc<HashMap<String, Arc<User>>>, UpstreamError>;

/// Loads every user a page points at in one `load_many` (split only at the
/// service's 100-id limit), so batching does not depend on how quickly the
/// per-item resolvers happen to run, and a failure is not retried per item.
pub(super) async fn prefetch_users(
    ctx: &Context<'_>,
    ids: impl Iterator<Item = String>,
) -> async_graphql::Result<Prefetched> {
    let ids: HashSet<String> = ids.collect();
    Ok(data::<Users>(ctx)?.load_many(ids).await.map(Arc::new))
}

/// A user from a page's prefetch when there is one, else from the loader.
pub async fn user_of(
    ctx: &Context<'_>,
    id: &str,
    prefetched: Option<&Prefetched>,
) -> async_graphql::Result<Option<Arc<User>>> {
    match prefetched {
        Some(Ok(users)) => Ok(users.get(id).cloned()),
        Some(Err(error)) => Err(error.clone()).gql(),
        None => load_user(ctx, id).await,
    }
}
