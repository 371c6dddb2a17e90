//! Client for the user service (`user-service.yaml`).

use serde::{Deserialize, Serialize};

use bff_core::upstream::{Caller, Endpoint, Fetched, UpstreamError, UpstreamName};

/// The service's `User`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub avatar_url: String,
    pub tier: String,
    pub created_at: String,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct UsersPage {
    pub users: Vec<User>,
}

/// The service's limit on ids per batch call.
pub const MAX_IDS_PER_CALL: usize = 100;

#[derive(Debug, Clone)]
pub struct UsersClient {
    endpoint: Endpoint,
}

impl UsersClient {
    pub fn new(endpoint: Endpoint) -> Self {
        Self { endpoint }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The upstream's configured name, for `degraded` and `Server-Timing`.
    pub fn name(&self) -> &UpstreamName {
        self.endpoint.name()
    }

    /// `GET /users/{id}`.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Fetched<User>, UpstreamError> {
        let target = self.endpoint.target(&["users", id], &[])?;
        self.endpoint.get_json(caller, target).await
    }

    /// `GET /users?ids=` for at most [`MAX_IDS_PER_CALL`] ids; unknown ids
    /// are simply absent from the reply.
    pub async fn get_batch(
        &self,
        caller: &Caller,
        ids: &[&str],
    ) -> Result<Vec<User>, UpstreamError> {
        let joined = ids.join(",");
        let target = self.endpoint.target(&["users"], &[("ids", &joined)])?;
        let page: Fetched<UsersPage> = self.endpoint.get_json(caller, target).await?;
        Ok(page.value.users)
    }
}
