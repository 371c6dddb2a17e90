//! Parsed and checked documents, kept by their text: a client sends the
//! same few operations over and over, and parsing one (async-graphql's
//! pest grammar) was a third of a GraphQL request's CPU.
//!
//! Only what depends on the document alone is kept: the syntax tree and
//! the verdict of the document limits. What depends on the request (its
//! variables, the operation it names, the method) is checked every time.
//! A document that does not parse is not kept, so the cache only ever
//! holds documents that passed the size limit and parsed.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::types::ExecutableDocument;
use lru::LruCache;

/// Documents kept. With `graphql.max_document_bytes` at its 8 KiB default
/// that bounds the cache to a few MiB even if every entry is that large;
/// a BFF's clients send far fewer distinct operations.
const KEPT: NonZeroUsize = NonZeroUsize::new(256).expect("not zero");

/// A parsed document and what the document limits said of it.
#[derive(Debug)]
pub(super) struct Checked {
    pub document: ExecutableDocument,
    /// `Err` with the client's message when a limit refuses it.
    pub verdict: Result<(), String>,
}

/// The most recently used documents, by text.
#[derive(Debug)]
pub(super) struct ParsedDocuments(Mutex<LruCache<Arc<str>, Arc<Checked>>>);

impl Default for ParsedDocuments {
    fn default() -> Self {
        Self(Mutex::new(LruCache::new(KEPT)))
    }
}

impl ParsedDocuments {
    /// `text` parsed and judged by `check`, from the cache when it was
    /// seen before; a parse error when it does not parse.
    pub(super) fn get_or_parse(
        &self,
        text: &Arc<str>,
        check: impl FnOnce(&ExecutableDocument) -> Result<(), String>,
    ) -> Result<Arc<Checked>, async_graphql::parser::Error> {
        if let Some(known) = self.lock().get(&**text) {
            return Ok(known.clone());
        }
        // Parsed outside the lock: other requests keep being served.
        let document = async_graphql::parser::parse_query(&**text)?;
        let verdict = check(&document);
        let checked = Arc::new(Checked { document, verdict });
        self.lock().put(text.clone(), checked.clone());
        Ok(checked)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<Arc<str>, Arc<Checked>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_parsed_and_checked_once_and_a_bad_one_is_not_kept() {
        let cache = ParsedDocuments::default();
        let text: Arc<str> = "{ me { id } }".into();
        let mut checks = 0;
        let first = cache
            .get_or_parse(&text, |_| {
                checks += 1;
                Err("too deep".to_owned())
            })
            .expect("parses");
        let again = cache
            .get_or_parse(&text, |_| {
                checks += 1;
                Ok(())
            })
            .expect("parses");
        assert!(Arc::ptr_eq(&first, &again), "the second lookup is a hit");
        assert_eq!(checks, 1);
        assert_eq!(again.verdict, Err("too deep".to_owned()));

        let bad: Arc<str> = "{ me { ".into();
        assert!(cache.get_or_parse(&bad, |_| Ok(())).is_err());
        assert_eq!(
            cache.lock().len(),
            1,
            "a document that does not parse is not kept"
        );
    }
}
