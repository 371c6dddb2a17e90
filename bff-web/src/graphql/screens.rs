//! One query object per screen of the web app.

use async_graphql::{Context, ID, Object, Result};
use bff_shop::graphql::fields;
use bff_shop::graphql::types::Order;

use super::User;

/// The signed-in user's own screens.
#[derive(Debug, Default)]
pub struct ProfileScreen;

#[Object]
impl ProfileScreen {
    /// The caller. Fields that need the profile fetch it; `orders` and
    /// `notifications` need only the caller's id.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        fields::me(ctx)
    }
}

/// Another user's public profile.
#[derive(Debug, Default)]
pub struct UserScreen;

#[Object]
impl UserScreen {
    /// A user by id; null when there is none.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        fields::user(ctx, &id).await
    }
}

/// The order detail screen.
#[derive(Debug, Default)]
pub struct OrderScreen;

#[Object]
impl OrderScreen {
    /// One of the caller's orders; null when it does not exist or is not theirs.
    async fn order(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Order<User>>> {
        fields::order(ctx, &id).await
    }
}
