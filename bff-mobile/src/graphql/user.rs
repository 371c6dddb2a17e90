//! The mobile app's `User`: a lean profile, no e-mail.

use async_graphql::{Context, ID, Object, Result};
use bff_shop::graphql::fields;
use bff_shop::graphql::types::{NotificationConnection, OrderConnection};
use bff_shop::graphql::{UserNode, UserRef};

/// A user of the shop.
#[derive(Debug)]
pub struct User(UserRef);

impl UserNode for User {
    fn from_ref(user: UserRef) -> Self {
        Self(user)
    }
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id().to_owned())
    }

    async fn name(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.0.profile(ctx).await?.name.clone())
    }

    async fn avatar_url(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.0.profile(ctx).await?.avatar_url.clone())
    }

    /// `free`, `plus` or `pro`.
    async fn tier(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.0.profile(ctx).await?.tier.clone())
    }

    /// The user's orders, newest first. Only the caller's own are visible.
    #[graphql(complexity = "fields::list_cost(first, child_complexity)")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: Option<i32>,
        after: Option<String>,
    ) -> Result<OrderConnection<User>> {
        fields::orders(ctx, &self.0, first, after.as_deref()).await
    }

    /// The user's notifications, newest first. Only the caller's own are visible.
    #[graphql(complexity = "fields::list_cost(first, child_complexity)")]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: Option<i32>,
        #[graphql(default_with = "Some(false)")] unread_only: Option<bool>,
    ) -> Result<NotificationConnection<User>> {
        fields::notifications(ctx, &self.0, first, unread_only.unwrap_or(false)).await
    }
}
