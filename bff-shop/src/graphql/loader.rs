//! The per-request user loader: every `seller` and `actor` of one GraphQL
//! request is fetched with one `GET /users?ids=` per batch of 100.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};

use bff_core::upstream::{Caller, UpstreamError};

use crate::clients::UsersClient;
use crate::clients::users::{MAX_IDS_PER_CALL, User};

/// Loads users by id for one caller. Built per request, so neither the
/// caller's identity nor the cache is ever shared between requests.
#[derive(Debug)]
pub struct UserLoader {
    users: UsersClient,
    caller: Caller,
}

impl Loader<String> for UserLoader {
    type Value = Arc<User>;
    type Error = UpstreamError;

    /// One `GET /users?ids=` per 100 ids, concurrently. The DataLoader
    /// hands over every key pending at once (its `max_batch_size` only
    /// triggers an early dispatch), so the service's limit is kept here.
    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Arc<User>>, UpstreamError> {
        let calls = keys.chunks(MAX_IDS_PER_CALL).map(|chunk| {
            let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
            async move { self.users.get_batch(&self.caller, &ids).await }
        });
        let mut found = HashMap::with_capacity(keys.len());
        for users in futures_util::future::try_join_all(calls).await? {
            found.extend(users.into_iter().map(|u| (u.id.clone(), Arc::new(u))));
        }
        Ok(found)
    }
}

/// The loader type resolvers find in the request's data.
pub type Users = DataLoader<UserLoader, HashMapCache>;

/// A fresh loader for one request, batching at the service's limit.
pub fn users_loader(users: UsersClient, caller: Caller) -> Users {
    DataLoader::with_cache(
        UserLoader { users, caller },
        tokio::spawn,
        HashMapCache::default(),
    )
    .max_batch_size(MAX_IDS_PER_CALL)
}
