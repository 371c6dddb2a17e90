//! The mobile app's GraphQL schema: the contract's lean subset (no e-mail,
//! no `user(id:)`), and in production only the app's trusted operations.

mod operations;
mod screens;
mod user;

use async_graphql::MergedObject;
use bff_core::config::Config;
use bff_core::graphql::{BffSchema, build_schema};
use bff_shop::graphql::{NotificationMutations, OrderMutations};

pub use operations::TRUSTED_OPERATIONS;
pub use user::User;

/// Everything the mobile app can ask for.
#[derive(Debug, Default, MergedObject)]
pub struct Query(screens::ProfileScreen, screens::OrderScreen);

/// Everything the mobile app can change.
#[derive(Debug, Default, MergedObject)]
pub struct Mutation(OrderMutations<User>, NotificationMutations<User>);

/// The mobile schema type.
pub type MobileSchema = BffSchema<Query, Mutation>;

/// The schema with this BFF's limits and profile applied; built once.
pub fn schema(config: &Config) -> MobileSchema {
    build_schema(
        Query::default(),
        Mutation::default(),
        &config.graphql,
        config.profile,
    )
}

/// The SDL committed as `schema/mobile.graphql` (`bff-mobile --print-schema`).
pub fn sdl() -> String {
    schema(&Config::default()).sdl()
}
