//! Which documents a BFF executes: trusted operations by hash, Apollo's
//! automatic persisted queries, or any document.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use lru::LruCache;
use sha2::{Digest, Sha256};

use super::config::{DocumentPolicy, GraphQlConfig};
use crate::config::types::Profile;

/// The hex SHA-256 of a document's exact text: its persisted id.
pub fn document_hash(document: &str) -> String {
    Sha256::digest(document.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A persisted id as it is looked up: without a `sha256:` prefix, in
/// lowercase.
pub fn normalize_hash(hash: &str) -> String {
    hash.strip_prefix("sha256:")
        .unwrap_or(hash)
        .to_ascii_lowercase()
}

/// Why a request's document could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// Apollo's signal to re-send the hash with the query text.
    #[error("PersistedQueryNotFound")]
    PersistedQueryNotFound,
    #[error("the query does not match its sha256Hash")]
    HashMismatch,
    #[error(
        "only this app's trusted operations are accepted; send a known extensions.persistedQuery.sha256Hash or documentId"
    )]
    NotTrusted,
    #[error("the request has no query and no persisted document id")]
    Missing,
}

/// What a request says about its document.
#[derive(Debug, Default)]
pub struct DocumentRequest<'a> {
    /// The `query` parameter.
    pub query: Option<&'a str>,
    /// `extensions.persistedQuery.sha256Hash`, `documentId` or `id`.
    pub hash: Option<&'a str>,
}

/// The documents this BFF accepts. Built once at start.
#[derive(Debug)]
pub struct Documents {
    trusted: HashMap<String, Arc<str>>,
    trusted_only: bool,
    automatic: Option<Mutex<LruCache<String, Arc<str>>>>,
}

impl Documents {
    /// `trusted` are the BFF's own operations. Only trusted documents run
    /// when the policy says so and the profile is production; automatic
    /// persisted queries work where any document is allowed.
    pub fn new(trusted: &[&str], config: &GraphQlConfig, profile: Profile) -> Self {
        let trusted_only =
            config.documents == DocumentPolicy::Trusted && profile == Profile::Production;
        let automatic = (config.documents == DocumentPolicy::Any)
            .then_some(Some(config.apq_cache_entries))
            .flatten()
            .map(|capacity| Mutex::new(LruCache::new(capacity)));
        Self {
            trusted: trusted
                .iter()
                .map(|doc| (document_hash(doc), Arc::from(*doc)))
                .collect(),
            trusted_only,
            automatic,
        }
    }

    /// Whether a document sent with its hash is kept for later requests
    /// by hash alone (Apollo's automatic persisted queries), rather than
    /// being one of the trusted operations.
    pub fn keeps_automatic(&self, hash: &str) -> bool {
        self.automatic.is_some() && !self.trusted.contains_key(hash)
    }

    /// Keeps `document`, found elsewhere (another replica registered it),
    /// under `hash` in this process.
    pub fn remember(&self, hash: String, document: Arc<str>) {
        if let Some(cache) = &self.automatic {
            cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .put(hash, document);
        }
    }

    /// The document text to execute.
    pub fn resolve(&self, request: &DocumentRequest<'_>) -> Result<Arc<str>, DocumentError> {
        let hash = request.hash.map(normalize_hash);
        match (request.query, hash) {
            (Some(query), Some(hash)) => {
                if document_hash(query) != hash {
                    return Err(DocumentError::HashMismatch);
                }
                if let Some(known) = self.trusted.get(&hash) {
                    return Ok(known.clone());
                }
                if self.trusted_only {
                    return Err(DocumentError::NotTrusted);
                }
                let query: Arc<str> = Arc::from(query);
                if let Some(cache) = &self.automatic {
                    cache
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .put(hash, query.clone());
                }
                Ok(query)
            }
            (None, Some(hash)) => {
                if let Some(known) = self.trusted.get(&hash) {
                    return Ok(known.clone());
                }
                if self.trusted_only {
                    return Err(DocumentError::NotTrusted);
                }
                self.automatic
                    .as_ref()
                    .and_then(|cache| {
                        cache
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .get(&hash)
                            .cloned()
                    })
                    .ok_or(DocumentError::PersistedQueryNotFound)
            }
            (Some(query), None) => {
                if self.trusted_only {
                    return self
                        .trusted
                        .get(&document_hash(query))
                        .cloned()
                        .ok_or(DocumentError::NotTrusted);
                }
                Ok(Arc::from(query))
            }
            (None, None) => Err(DocumentError::Missing),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &str = "query Dashboard { me { id } }";

    fn docs(policy: DocumentPolicy, profile: Profile) -> Documents {
        let config = GraphQlConfig {
            documents: policy,
            apq_cache_entries: std::num::NonZeroUsize::new(2).expect("not zero"),
            ..GraphQlConfig::default()
        };
        Documents::new(&[KNOWN], &config, profile)
    }

    fn request<'a>(query: Option<&'a str>, hash: Option<&'a str>) -> DocumentRequest<'a> {
        DocumentRequest { query, hash }
    }

    #[test]
    fn trusted_only_accepts_known_documents_by_hash_or_text() {
        let docs = docs(DocumentPolicy::Trusted, Profile::Production);
        let hash = document_hash(KNOWN);
        assert_eq!(
            docs.resolve(&request(None, Some(&hash))).as_deref(),
            Ok(KNOWN)
        );
        let prefixed = format!("sha256:{hash}");
        assert_eq!(
            docs.resolve(&request(None, Some(&prefixed))).as_deref(),
            Ok(KNOWN)
        );
        assert_eq!(
            docs.resolve(&request(Some(KNOWN), None)).as_deref(),
            Ok(KNOWN)
        );
        assert_eq!(
            docs.resolve(&request(Some("{ me { id } }"), None)),
            Err(DocumentError::NotTrusted)
        );
        let other = document_hash("{ x }");
        assert_eq!(
            docs.resolve(&request(Some("{ x }"), Some(&other))),
            Err(DocumentError::NotTrusted)
        );
    }

    #[test]
    fn trusted_policy_in_development_accepts_any_document() {
        let docs = docs(DocumentPolicy::Trusted, Profile::Development);
        assert_eq!(
            docs.resolve(&request(Some("{ x }"), None)).as_deref(),
            Ok("{ x }")
        );
    }

    #[test]
    fn automatic_persisted_queries_register_then_use_and_stay_bounded() {
        let docs = docs(DocumentPolicy::Any, Profile::Production);
        let (a, b, c) = ("{ a }", "{ b }", "{ c }");
        let hash_a = document_hash(a);
        assert_eq!(
            docs.resolve(&request(None, Some(&hash_a))),
            Err(DocumentError::PersistedQueryNotFound)
        );
        assert_eq!(
            docs.resolve(&request(Some(a), Some(&hash_a))).as_deref(),
            Ok(a)
        );
        assert_eq!(
            docs.resolve(&request(None, Some(&hash_a))).as_deref(),
            Ok(a)
        );
        assert_eq!(
            docs.resolve(&request(Some(b), Some(&hash_a))),
            Err(DocumentError::HashMismatch)
        );
        // Capacity 2: registering b and c evicts a.
        docs.resolve(&request(Some(b), Some(&document_hash(b))))
            .expect("registers");
        docs.resolve(&request(Some(c), Some(&document_hash(c))))
            .expect("registers");
        assert_eq!(
            docs.resolve(&request(None, Some(&hash_a))),
            Err(DocumentError::PersistedQueryNotFound)
        );
    }
}
