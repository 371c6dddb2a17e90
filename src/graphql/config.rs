//! `graphql.*`: which documents run, and the limits checked before one
//! does.

use std::num::{NonZeroU32, NonZeroUsize};

use serde::{Deserialize, Serialize};

use crate::config::types::{ByteSize, positive_bytes};

/// Which GraphQL documents a BFF executes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentPolicy {
    /// Any document, plus Apollo's automatic persisted queries.
    #[default]
    Any,
    /// In production only the BFF's own trusted operations, by hash or id.
    Trusted,
}

/// Limits checked before a GraphQL document runs, so an abusive document
/// costs no upstream call.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphQlConfig {
    /// Which documents are executed.
    pub documents: DocumentPolicy,
    /// Largest document in bytes.
    #[serde(with = "positive_bytes")]
    pub max_document_bytes: ByteSize,
    /// Most lexical tokens in a document, counted before parsing.
    pub max_tokens: NonZeroUsize,
    /// Deepest selection nesting.
    pub max_depth: NonZeroUsize,
    /// Highest cost: one per field, list fields multiplied by `first`.
    pub max_complexity: NonZeroUsize,
    /// Most aliased fields in a document.
    pub max_aliases: usize,
    /// Most directives on one field.
    pub max_directives: usize,
    /// Deepest recursion the parser and validator may reach.
    pub max_recursive_depth: NonZeroUsize,
    /// Largest `first` a list field accepts.
    pub max_first: NonZeroU32,
    /// Automatic persisted queries remembered (least recently used dropped).
    pub apq_cache_entries: NonZeroUsize,
}

impl Default for GraphQlConfig {
    fn default() -> Self {
        Self {
            documents: DocumentPolicy::Any,
            max_document_bytes: ByteSize::kib(8),
            max_tokens: NonZeroUsize::new(1_000).expect("not zero"),
            max_depth: NonZeroUsize::new(10).expect("not zero"),
            max_complexity: NonZeroUsize::new(2_000).expect("not zero"),
            max_aliases: 15,
            max_directives: 4,
            max_recursive_depth: NonZeroUsize::new(32).expect("not zero"),
            max_first: NonZeroU32::new(100).expect("not zero"),
            apq_cache_entries: NonZeroUsize::new(1_000).expect("not zero"),
        }
    }
}
