//! The object types both BFFs share. `User` differs per BFF (mobile has no
//! e-mail), so the types that point at a user are generic over it.

use std::marker::PhantomData;
use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, OutputType, SimpleObject};
use tokio::sync::OnceCell;

use super::context::{self, Prefetched};
use crate::clients::{notifications, orders, users};

/// A user as the resolvers hold it: always its id, its profile once loaded.
#[derive(Debug, Clone)]
pub struct UserRef {
    id: String,
    profile: OnceCell<Arc<users::User>>,
}

impl UserRef {
    /// A user known by id only; the profile is fetched if a field needs it.
    pub fn by_id(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            profile: OnceCell::new(),
        }
    }

    /// A user whose profile is already at hand.
    pub fn loaded(profile: Arc<users::User>) -> Self {
        Self {
            id: profile.id.clone(),
            profile: OnceCell::new_with(Some(profile)),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The profile, fetched once (`GET /users/{id}`) the first time a field
    /// needs it: `me { orders { ... } }` never does, and `name`, `tier` and
    /// `avatarUrl` together cost one call.
    pub async fn profile(&self, ctx: &Context<'_>) -> async_graphql::Result<Arc<users::User>> {
        self.profile
            .get_or_try_init(|| context::fetch_profile(ctx, &self.id))
            .await
            .cloned()
    }
}

/// A BFF's `User` type: built from a [`UserRef`].
pub trait UserNode: OutputType + Send + Sync + 'static {
    fn from_ref(user: UserRef) -> Self;
}

/// An order.
#[derive(Debug)]
pub struct Order<U> {
    order: orders::Order,
    /// The seller, when the page fetched all its sellers at once.
    seller: Option<Prefetched>,
    user: PhantomData<fn() -> U>,
}

impl<U> Order<U> {
    pub(crate) fn new(order: orders::Order, seller: Option<Prefetched>) -> Self {
        Self {
            order,
            seller,
            user: PhantomData,
        }
    }
}

impl<U> From<orders::Order> for Order<U> {
    fn from(order: orders::Order) -> Self {
        Self::new(order, None)
    }
}

#[Object]
impl<U: UserNode> Order<U> {
    async fn id(&self) -> ID {
        ID(self.order.id.clone())
    }

    /// `pending`, `paid`, `shipped`, `delivered` or `cancelled`.
    async fn status(&self) -> &str {
        &self.order.status
    }

    /// The order's total in the currency's minor unit.
    async fn total_cents(&self) -> i64 {
        self.order.total_cents
    }

    /// ISO 4217 code, e.g. `USD`.
    async fn currency(&self) -> &str {
        &self.order.currency
    }

    /// RFC 3339 timestamp.
    async fn created_at(&self) -> &str {
        &self.order.created_at
    }

    async fn items(&self) -> Vec<OrderItem> {
        self.order.items.iter().map(OrderItem::from).collect()
    }

    /// The seller, fetched in one batch with the page's other sellers.
    async fn seller(&self, ctx: &Context<'_>) -> async_graphql::Result<U> {
        let profile = context::user_of(ctx, &self.order.seller_id, self.seller.as_ref())
            .await?
            .ok_or_else(|| {
                bff_core::graphql::errors::coded(
                    bff_core::ErrorCode::UpstreamBadResponse,
                    "the order's seller does not exist",
                )
            })?;
        Ok(U::from_ref(UserRef::loaded(profile)))
    }
}

/// One line of an order.
#[derive(Debug, SimpleObject)]
pub struct OrderItem {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    /// Price of one unit in the currency's minor unit.
    pub unit_price_cents: i64,
}

impl From<&orders::OrderItem> for OrderItem {
    fn from(item: &orders::OrderItem) -> Self {
        Self {
            sku: item.sku.clone(),
            name: item.name.clone(),
            quantity: item.quantity,
            unit_price_cents: item.unit_price_cents,
        }
    }
}

/// A page of orders, newest first.
#[derive(Debug)]
pub struct OrderConnection<U> {
    pub(crate) nodes: Vec<Order<U>>,
    pub(crate) next_cursor: Option<String>,
}

#[Object]
impl<U: UserNode> OrderConnection<U> {
    async fn nodes(&self) -> &[Order<U>] {
        &self.nodes
    }

    /// Pass as `after` for the next page; null on the last page.
    async fn next_cursor(&self) -> Option<&str> {
        self.next_cursor.as_deref()
    }
}

/// An in-app notification.
#[derive(Debug)]
pub struct Notification<U> {
    notification: notifications::Notification,
    /// The actor, when the page fetched all its actors at once.
    actor: Option<Prefetched>,
    user: PhantomData<fn() -> U>,
}

impl<U> Notification<U> {
    pub(crate) fn new(
        notification: notifications::Notification,
        actor: Option<Prefetched>,
    ) -> Self {
        Self {
            notification,
            actor,
            user: PhantomData,
        }
    }
}

impl<U> From<notifications::Notification> for Notification<U> {
    fn from(notification: notifications::Notification) -> Self {
        Self::new(notification, None)
    }
}

#[Object]
impl<U: UserNode> Notification<U> {
    async fn id(&self) -> ID {
        ID(self.notification.id.clone())
    }

    /// `order_update`, `message` or `promo`.
    async fn kind(&self) -> &str {
        &self.notification.kind
    }

    async fn title(&self) -> &str {
        &self.notification.title
    }

    async fn body(&self) -> &str {
        &self.notification.body
    }

    async fn read(&self) -> bool {
        self.notification.read
    }

    /// RFC 3339 timestamp.
    async fn created_at(&self) -> &str {
        &self.notification.created_at
    }

    /// Who caused it; null for system notifications. Batched like `seller`.
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<U>> {
        let Some(actor_id) = &self.notification.actor_id else {
            return Ok(None);
        };
        let profile = context::user_of(ctx, actor_id, self.actor.as_ref()).await?;
        Ok(profile.map(|p| U::from_ref(UserRef::loaded(p))))
    }
}

/// The newest notifications and the unread count.
#[derive(Debug)]
pub struct NotificationConnection<U> {
    pub(crate) nodes: Vec<Notification<U>>,
    pub(crate) unread_count: u64,
}

#[Object]
impl<U: UserNode> NotificationConnection<U> {
    async fn nodes(&self) -> &[Notification<U>] {
        &self.nodes
    }

    /// All unread notifications, not only those in `nodes`.
    async fn unread_count(&self) -> i64 {
        i64::try_from(self.unread_count).unwrap_or(i64::MAX)
    }
}

/// One line of a new order.
#[derive(Debug, InputObject)]
pub struct OrderItemInput {
    pub sku: String,
    pub quantity: i32,
}
