use serde::{Deserialize, Serialize};

use super::Timestamp;

/// A tenant: one customer organization with its own base URL and data.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tenant {
    /// Its name, the `{tenant}` in URLs.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
}

impl Tenant {
    /// True when `name` may name a tenant: it appears in URLs and store keys.
    pub fn is_valid_name(name: &str) -> bool {
        (1..=63).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
    }
}
