//! The web app's GraphQL schema: the contract's full schema.
//!
//! `Query` is merged from one object per screen; types other than `User`
//! come from `bff_core::graphql`.

mod screens;
mod user;

use async_graphql::MergedObject;
use bff_core::config::Config;
use bff_core::graphql::{BffSchema, build_schema};
use bff_shop::graphql::{NotificationMutations, OrderMutations};

pub use user::User;

/// Everything the web app can ask for.
#[derive(Debug, Default, MergedObject)]
pub struct Query(
    screens::ProfileScreen,
    screens::UserScreen,
    screens::OrderScreen,
);

/// Everything the web app can change.
#[derive(Debug, Default, MergedObject)]
pub struct Mutation(OrderMutations<User>, NotificationMutations<User>);

/// The web schema type.
pub type WebSchema = BffSchema<Query, Mutation>;

/// The schema with this BFF's limits and profile applied; built once.
pub fn schema(config: &Config) -> WebSchema {
    build_schema(
        Query::default(),
        Mutation::default(),
        &config.graphql,
        config.profile,
    )
}

/// The SDL committed as `schema/web.graphql` (`bff-web --print-schema`).
pub fn sdl() -> String {
    schema(&Config::default()).sdl()
}
