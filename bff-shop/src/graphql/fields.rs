//! Resolver bodies the BFFs' schemas share: thin calls into compose and
//! upstream functions, the same ones the REST endpoints use.

use std::marker::PhantomData;

use async_graphql::{Context, ID, Object};

use bff_core::auth::Authenticated;
use bff_core::error::ErrorCode;
use bff_core::extract::Scope;
use bff_core::graphql::FieldLimits;
use bff_core::graphql::errors::{GraphQlResultExt, coded};
use bff_core::server::AppState;
use bff_core::upstream::{Fetched, UpstreamErrorKind, segment};

pub use super::context::caller;
use super::context::{data, load_user, prefetch_users, shop};
use super::types::{
    Notification, NotificationConnection, Order, OrderConnection, OrderItemInput, UserNode, UserRef,
};
use crate::OrdersWrite;
use crate::clients::orders::NewOrderLine;

/// What a list field's `first` is when the client leaves it out or null.
pub const DEFAULT_FIRST: i32 = 10;

/// A list field's cost for the complexity limit: its items' cost times how
/// many it may return, so `first: 100` costs a hundred times `first: 1`.
pub fn list_cost(first: Option<i32>, child_complexity: usize) -> usize {
    let items = usize::try_from(first.unwrap_or(DEFAULT_FIRST))
        .unwrap_or(0)
        .max(1);
    items.saturating_mul(child_complexity).saturating_add(1)
}

/// `first` within `1..=max_first`, as the upstream's `limit`.
fn page_size(ctx: &Context<'_>, first: Option<i32>) -> async_graphql::Result<u32> {
    let max = data::<FieldLimits>(ctx)?.max_first;
    u32::try_from(first.unwrap_or(DEFAULT_FIRST))
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            coded(
                ErrorCode::BadRequest,
                format!("`first` must be between 1 and {max}"),
            )
        })
}

/// Orders and notifications are private: only the caller's own are listed.
fn own(ctx: &Context<'_>, user: &UserRef, what: &str) -> async_graphql::Result<()> {
    if caller(ctx)?.user_id() == user.id() {
        Ok(())
    } else {
        Err(coded(
            ErrorCode::Forbidden,
            format!("only your own {what} are visible"),
        ))
    }
}

/// `me`: the caller, without fetching anything until a field needs it.
pub fn me<U: UserNode>(ctx: &Context<'_>) -> async_graphql::Result<U> {
    Ok(U::from_ref(UserRef::by_id(caller(ctx)?.user_id())))
}

/// `user(id:)`: null when there is no such user.
pub async fn user<U: UserNode>(ctx: &Context<'_>, id: &ID) -> async_graphql::Result<Option<U>> {
    if id.is_empty() || id.contains(',') {
        return Ok(None);
    }
    Ok(load_user(ctx, id)
        .await?
        .map(|p| U::from_ref(UserRef::loaded(p))))
}

/// `User.orders(first:, after:)`.
pub async fn orders<U: UserNode>(
    ctx: &Context<'_>,
    user: &UserRef,
    first: Option<i32>,
    after: Option<&str>,
) -> async_graphql::Result<OrderConnection<U>> {
    let limit = page_size(ctx, first)?;
    own(ctx, user, "orders")?;
    let page = shop(ctx)?
        .orders
        .list_for_user(caller(ctx)?, user.id(), limit, after)
        .await
        .map(Fetched::into_value)
        .gql()?;
    let orders: Vec<_> = page.orders.into_iter().take(limit as usize).collect();
    let sellers = if ctx.look_ahead().field("nodes").field("seller").exists() {
        Some(prefetch_users(ctx, orders.iter().map(|o| o.seller_id.clone())).await?)
    } else {
        None
    };
    Ok(OrderConnection {
        nodes: orders
            .into_iter()
            .map(|o| Order::new(o, sellers.clone()))
            .collect(),
        next_cursor: page.next_cursor,
    })
}

/// `User.notifications(first:, unreadOnly:)`.
pub async fn notifications<U: UserNode>(
    ctx: &Context<'_>,
    user: &UserRef,
    first: Option<i32>,
    unread_only: bool,
) -> async_graphql::Result<NotificationConnection<U>> {
    let limit = page_size(ctx, first)?;
    own(ctx, user, "notifications")?;
    let page = shop(ctx)?
        .notifications
        .list_for_user(caller(ctx)?, user.id(), limit, unread_only)
        .await
        .map(Fetched::into_value)
        .gql()?;
    let notifications: Vec<_> = page
        .notifications
        .into_iter()
        .take(limit as usize)
        .collect();
    let actors = if ctx.look_ahead().field("nodes").field("actor").exists() {
        Some(prefetch_users(ctx, notifications.iter().filter_map(|n| n.actor_id.clone())).await?)
    } else {
        None
    };
    Ok(NotificationConnection {
        nodes: notifications
            .into_iter()
            .map(|n| Notification::new(n, actors.clone()))
            .collect(),
        unread_count: page.unread_count,
    })
}

/// An id from the client that becomes an upstream path segment: refused
/// with `bad_request`, before any upstream call, when the identifier rule
/// ([`segment`]) says it could change the path.
fn path_id(id: &str) -> async_graphql::Result<&str> {
    segment::check(id)
        .map(|()| id)
        .map_err(|e| coded(ErrorCode::BadRequest, e.to_string()))
}

/// `order(id:)`: null when it does not exist or is someone else's (the
/// same answer, so ids cannot be probed).
pub async fn order<U: UserNode>(
    ctx: &Context<'_>,
    id: &ID,
) -> async_graphql::Result<Option<Order<U>>> {
    let id = path_id(id)?;
    let caller = caller(ctx)?;
    match shop(ctx)?
        .orders
        .get_own(caller, id)
        .await
        .map(Fetched::into_value)
    {
        Ok(order) => Ok(Some(order.into())),
        Err(e) if matches!(e.kind, UpstreamErrorKind::NotFound) => Ok(None),
        Err(e) => Err(e).gql(),
    }
}

/// `placeOrder` and its rules, for any BFF's `Mutation`.
#[derive(Debug)]
pub struct OrderMutations<U>(PhantomData<fn() -> U>);

impl<U> Default for OrderMutations<U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

#[Object]
impl<U: UserNode> OrderMutations<U> {
    /// Places an order for the caller (scope `orders:write`). Sent once with
    /// `idempotencyKey`, never retried: repeat with the same key to get the
    /// same order after a lost reply.
    async fn place_order(
        &self,
        ctx: &Context<'_>,
        items: Vec<OrderItemInput>,
        idempotency_key: String,
    ) -> async_graphql::Result<Order<U>> {
        if !data::<Authenticated>(ctx)?
            .claims
            .has_scope(OrdersWrite::NAME)
        {
            return Err(coded(
                ErrorCode::Forbidden,
                format!("the token lacks the `{}` scope", OrdersWrite::NAME),
            ));
        }
        let lines = items
            .into_iter()
            .map(|item| NewOrderLine {
                sku: item.sku,
                quantity: i64::from(item.quantity),
            })
            .collect();
        let records = data::<AppState>(ctx)?.idempotency();
        let placed =
            crate::orders::place_order(shop(ctx)?, records, caller(ctx)?, &idempotency_key, lines)
                .await
                .gql()?;
        Ok(placed.order.into())
    }
}

/// `markNotificationRead`, for any BFF's `Mutation`.
#[derive(Debug)]
pub struct NotificationMutations<U>(PhantomData<fn() -> U>);

impl<U> Default for NotificationMutations<U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

#[Object]
impl<U: UserNode> NotificationMutations<U> {
    /// Marks one of the caller's notifications read; idempotent. Another
    /// user's notification is `not_found`, like one that does not exist.
    async fn mark_notification_read(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Notification<U>> {
        let id = path_id(&id)?;
        let caller = caller(ctx)?;
        let client = &shop(ctx)?.notifications;
        let not_found = || coded(ErrorCode::NotFound, "no such notification");
        // The service marks any id it is given, and has no read of one
        // notification: the caller's own list proves ownership first.
        let Some(own) = client.find_own(caller, id).await.gql()? else {
            return Err(not_found());
        };
        if own.read {
            // Already read: nothing to change.
            return Ok(own.into());
        }
        let marked = client.mark_read(caller, id).await.gql()?;
        if marked.user_id != caller.user_id() {
            return Err(not_found());
        }
        Ok(marked.into())
    }
}
