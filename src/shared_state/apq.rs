//! Automatic persisted queries shared by the replicas: a document
//! registered on one is found on the others. Each replica's own LRU stays
//! the first level; Redis is asked only on a local miss.
//!
//! Bounded in time (`shared_state.apq_ttl`, renewed when a client registers
//! the document again) and in size (only documents within
//! `graphql.max_document_bytes` are stored). A document read back is
//! checked against its hash, so a tampered Redis cannot run another one.

use super::Redis;
use crate::graphql::documents::document_hash;

impl Redis {
    /// The document registered under `hash` (lowercase hex SHA-256), if
    /// any replica registered it and Redis answers.
    pub async fn find_document(&self, hash: &str) -> Option<String> {
        let key = self.key("apq", hash);
        let document: Option<String> = self
            .query("apq lookup", redis::cmd("GET").arg(&key))
            .await
            .ok()?;
        document.filter(|document| document_hash(document) == hash)
    }

    /// Registers `document` under `hash` for every replica.
    pub async fn register_document(&self, hash: &str, document: &str) {
        let key = self.key("apq", hash);
        let ttl = u64::try_from(self.apq_ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let _: Result<(), _> = self
            .query(
                "apq register",
                redis::cmd("SET").arg(&key).arg(document).arg("PX").arg(ttl),
            )
            .await;
    }
}
