//! The GraphQL types and resolvers both BFFs share, generic over each
//! BFF's own `User` (implementing [`types::UserNode`]), and the
//! per-request user loader that batches sellers and actors. Imports run
//! one way: `fields` → `types` → `context` → `loader`.

mod context;
pub mod fields;
pub mod loader;
pub mod types;

pub use fields::{NotificationMutations, OrderMutations};
pub use types::{UserNode, UserRef};

use crate::ShopClients;

/// Gives each GraphQL request the shop's clients and its own user loader:
/// pass to `GraphQlEndpoint::with_request_data`.
pub fn request_data(
    shop: ShopClients,
) -> impl Fn(async_graphql::Request, &bff_core::upstream::Caller) -> async_graphql::Request
+ Send
+ Sync
+ 'static {
    move |request, caller| {
        let loader = loader::users_loader(shop.users.clone(), caller.clone());
        request.data(shop.clone()).data(loader)
    }
}
