//! Client for the notification service (`notification-service.yaml`).

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use bff_core::upstream::{
    Caller, Endpoint, Fetched, UpstreamError, UpstreamErrorKind, UpstreamName, UpstreamRequest,
    shape_of,
};

/// The service's `Notification`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: String,
    pub user_id: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub actor_id: Option<String>,
    pub read: bool,
    pub created_at: String,
}

/// A user's newest notifications and their unread count.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationsPage {
    pub notifications: Vec<Notification>,
    pub unread_count: u64,
}

/// The most notifications one list call returns (the service's limit).
pub const OWNERSHIP_PAGE: u32 = 100;

#[derive(Debug, Clone)]
pub struct NotificationsClient {
    endpoint: Endpoint,
}

impl NotificationsClient {
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

    /// `GET /users/{userId}/notifications?limit=&unreadOnly=`.
    pub async fn list_for_user(
        &self,
        caller: &Caller,
        user_id: &str,
        limit: u32,
        unread_only: bool,
    ) -> Result<Fetched<NotificationsPage>, UpstreamError> {
        let limit = limit.clamp(1, 100).to_string();
        let unread = if unread_only { "true" } else { "false" };
        let target = self.endpoint.target(
            &["users", user_id, "notifications"],
            &[("limit", &limit), ("unreadOnly", unread)],
        )?;
        self.endpoint.get_json(caller, target).await
    }

    /// The caller's own notification `id`, found in their newest
    /// [`OWNERSHIP_PAGE`] notifications or, past those, their newest
    /// [`OWNERSHIP_PAGE`] unread ones; `None` when it is not theirs (or
    /// does not exist). This is the ownership check before
    /// [`Self::mark_read`], which the service would run for anyone's id:
    /// one call, two for a user with more notifications than a page.
    pub async fn find_own(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<Option<Notification>, UpstreamError> {
        for unread_only in [false, true] {
            let page = self
                .list_for_user(caller, caller.user_id(), OWNERSHIP_PAGE, unread_only)
                .await?
                .value;
            let seen_all = page.notifications.len() < OWNERSHIP_PAGE as usize;
            let found = page
                .notifications
                .into_iter()
                .find(|n| n.id == id && n.user_id == caller.user_id());
            if found.is_some() || seen_all {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// `POST /notifications/{id}/read`; idempotent per the service contract.
    pub async fn mark_read(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<Notification, UpstreamError> {
        let target = self.endpoint.target(&["notifications", id, "read"], &[])?;
        let reply = self
            .endpoint
            .send(
                caller,
                UpstreamRequest::post(target).expecting(shape_of::<Notification>),
            )
            .await?;
        match reply.status {
            StatusCode::OK => self.endpoint.decode(&reply.body),
            StatusCode::NOT_FOUND => Err(self.endpoint.error(UpstreamErrorKind::NotFound)),
            other => Err(self.endpoint.error(UpstreamErrorKind::Status(other))),
        }
    }
}
