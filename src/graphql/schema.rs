//! Building a BFF's schema once, with its limits and profile applied.

use async_graphql::{EmptySubscription, ObjectType, Schema};

use super::config::GraphQlConfig;
use crate::config::types::Profile;

/// Per-schema limits resolvers enforce themselves, in the schema's data.
#[derive(Debug, Clone, Copy)]
pub struct FieldLimits {
    /// Largest `first` a list field accepts.
    pub max_first: u32,
}

/// The schema of a BFF: its `Query` and `Mutation`, no subscriptions.
pub type BffSchema<Q, M> = Schema<Q, M, EmptySubscription>;

/// Builds the schema with depth, complexity, directive and recursion limits
/// (checked during validation, before any resolver runs). In production,
/// introspection and "did you mean" suggestions are off.
pub fn build_schema<Q, M>(
    query: Q,
    mutation: M,
    config: &GraphQlConfig,
    profile: Profile,
) -> BffSchema<Q, M>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
{
    let builder = Schema::build(query, mutation, EmptySubscription)
        .limit_depth(config.max_depth.get())
        .limit_complexity(config.max_complexity.get())
        .limit_directives(config.max_directives)
        .limit_recursive_depth(config.max_recursive_depth.get())
        .data(FieldLimits {
            max_first: config.max_first.get(),
        });
    match profile {
        Profile::Production => builder
            .disable_introspection()
            .disable_suggestions()
            .finish(),
        Profile::Development => builder.finish(),
    }
}

/// How deep an introspection-only query may nest: graphql-js's standard
/// query needs 13 levels, tools that ask for more `ofType` levels a few more.
pub const INTROSPECTION_MAX_DEPTH: usize = 32;

/// The development profile's twin of a schema for introspection-only
/// queries: the same types, without the depth and complexity limits meant
/// for data queries (no resolver runs, so nothing they protect is at stake),
/// still bounded in depth, recursion and directives.
pub fn introspection_schema<Q, M>(config: &GraphQlConfig) -> BffSchema<Q, M>
where
    Q: ObjectType + Default + 'static,
    M: ObjectType + Default + 'static,
{
    Schema::build(Q::default(), M::default(), EmptySubscription)
        .limit_depth(INTROSPECTION_MAX_DEPTH)
        .limit_directives(config.max_directives)
        .limit_recursive_depth(config.max_recursive_depth.get())
        .finish()
}

/// Compares the code's SDL with the committed file. On drift, the error
/// names the first differing line and the command that regenerates it.
pub fn check_sdl(actual: &str, committed: &str, regenerate: &str) -> Result<(), String> {
    crate::drift::check("the committed SDL", actual, committed, regenerate)
}
