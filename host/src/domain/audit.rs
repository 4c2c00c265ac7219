use serde::{Deserialize, Serialize};

use super::Timestamp;

/// One action taken on someone's behalf: "user X via API account Y did Z".
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// `aud_…`
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// When.
    pub at: Timestamp,
    /// The API account that acted.
    pub api_account: String,
    /// The user it acted for.
    pub on_behalf_of: String,
    /// What it did, e.g. `POST /t/acme/v1/receivers`.
    pub action: String,
}
