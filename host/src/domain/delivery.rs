use serde::{Deserialize, Serialize};

use super::Timestamp;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt.
    Pending,
    /// A receiver answered 2xx.
    Delivered,
    /// An attempt failed; another is scheduled.
    Retrying,
    /// Every attempt failed, or it can no longer be sent.
    Failed,
    /// The receiver's API account may not see the event: not sent.
    Unauthorized,
    /// The receiver answered 410 Gone and was unsubscribed.
    Gone,
}

impl DeliveryStatus {
    /// True when nothing more will happen to the delivery on its own.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Retrying)
    }

    /// Parses the wire name (`pending`, `delivered`, …).
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

/// One attempt to send a delivery.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    /// When it started.
    pub at: Timestamp,
    /// The HTTP status the receiver answered, if it answered.
    pub status_code: Option<u16>,
    /// How long it took.
    pub duration_ms: u64,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

/// One webhook: an event for one receiver, with every attempt to send it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    /// `dlv_…`, sent as `Webhook-Id` on every attempt.
    pub id: String,
    /// The tenant it belongs to.
    pub tenant: String,
    /// The receiver id.
    pub receiver: String,
    /// The event id.
    pub event: String,
    /// The event's topic.
    pub topic: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// The status code of the last answer, if any.
    pub status_code: Option<u16>,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
    /// When the next attempt is due, while one is.
    pub next_attempt_at: Option<Timestamp>,
    /// The body sent (the payload transform's output).
    pub request_body: String,
    /// Its media type.
    pub content_type: String,
    /// Why it ended without an attempt or why the last one failed, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// True once retention removed the body; the row and its attempts stay.
    #[serde(default)]
    pub body_pruned: bool,
    /// True when the body is the event's payload, byte for byte (what the `json`
    /// transform makes): the store keeps it once, with the event, and not again with each
    /// of its deliveries.
    #[serde(skip)]
    pub body_is_payload: bool,
}
