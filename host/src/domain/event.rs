use serde::{Deserialize, Serialize};

use super::Timestamp;

/// Who or what an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// The kind of subject, e.g. `user`.
    pub kind: String,
    /// Its id.
    pub id: String,
    /// Attributes that authorization filters look at, e.g. `{"org_unit": "sales"}`.
    #[serde(default)]
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// One published event.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// `evt_…`
    pub id: String,
    /// The tenant it belongs to.
    pub tenant: String,
    /// Its topic, e.g. `Accounts.Update`.
    pub topic: String,
    /// Who or what it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    /// The payload as published.
    pub payload: serde_json::Value,
    /// When it was published.
    pub occurred_at: Timestamp,
    /// The account that published it (or caused it).
    pub published_by: String,
}
