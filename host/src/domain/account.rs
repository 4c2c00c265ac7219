use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// The permissions an account can hold. `*` holds them all.
pub mod permissions {
    /// Read normal user accounts.
    pub const ACCOUNTS_READ: &str = "accounts.read";
    /// Create, change and delete normal user accounts.
    pub const ACCOUNTS_WRITE: &str = "accounts.write";
    /// Manage API accounts.
    pub const API_ACCOUNTS_MANAGE: &str = "api-accounts.manage";
    /// Manage webhook receivers and read the webhook log.
    pub const WEBHOOKS_MANAGE: &str = "webhooks.manage";
    /// Publish events into the router.
    pub const EVENTS_PUBLISH: &str = "events.publish";
    /// Upload and remove the tenant's plugins.
    pub const PLUGINS_MANAGE: &str = "plugins.manage";
    /// Act on behalf of a user (RFC 8693 token exchange).
    pub const IMPERSONATE: &str = "impersonate";
    /// Every permission.
    pub const ALL: &str = "*";

    /// Every named permission, for validation and the admin UI.
    pub const KNOWN: &[&str] = &[
        ACCOUNTS_READ,
        ACCOUNTS_WRITE,
        API_ACCOUNTS_MANAGE,
        WEBHOOKS_MANAGE,
        EVENTS_PUBLISH,
        PLUGINS_MANAGE,
        IMPERSONATE,
        ALL,
    ];
}

/// What an account may do (permissions) and which data it may see (scopes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorizations {
    /// Permissions such as `webhooks.manage`; `*` is every permission.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Data scope: attribute name → the values the account may see (`*` = any), e.g.
    /// `{"org_unit": ["sales"]}`.
    #[serde(default)]
    pub scopes: BTreeMap<String, Vec<String>>,
}

impl Authorizations {
    /// Everything: every permission and every value of every attribute.
    pub fn super_admin() -> Self {
        Self {
            permissions: vec![permissions::ALL.to_owned()],
            scopes: BTreeMap::from([("*".to_owned(), vec!["*".to_owned()])]),
        }
    }

    /// True when these authorizations include `permission`.
    pub fn allows(&self, permission: &str) -> bool {
        self.permissions
            .iter()
            .any(|p| p == permission || p == permissions::ALL)
    }

    /// The first permission that is not a known one, if any.
    pub fn unknown_permission(&self) -> Option<&str> {
        self.permissions
            .iter()
            .map(String::as_str)
            .find(|p| !permissions::KNOWN.contains(p))
    }
}

/// An account for an external application: logs in with token + TOTP, API only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiAccount {
    /// `acc_…`
    pub id: String,
    /// The tenant it belongs to.
    pub tenant: String,
    /// A name for people.
    pub name: String,
    /// What it may do and see.
    pub authorizations: Authorizations,
    /// SHA-256 of the API token, hex.
    pub token_hash: String,
    /// The TOTP secret, base32.
    pub totp_secret: String,
    /// The last TOTP time step accepted, so that a code works once.
    #[serde(default)]
    pub last_totp_step: u64,
    /// A disabled account cannot log in and receives no webhooks.
    #[serde(default)]
    pub disabled: bool,
    /// Failed logins since the last good one.
    #[serde(default)]
    pub failed_logins: u32,
    /// Logins are refused until then after too many failures.
    #[serde(default)]
    pub locked_until: Option<Timestamp>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last changed.
    pub updated_at: Timestamp,
}

/// A normal user of the business application.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// `usr_…`
    pub id: String,
    /// The tenant it belongs to.
    pub tenant: String,
    /// Login name.
    pub name: String,
    /// Attributes the data scope refers to, e.g. `{"org_unit": "sales"}`.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// What the user may do and see.
    pub authorizations: Authorizations,
    /// Password hash (PHC string).
    pub password_hash: String,
    /// The TOTP secret, base32, when enrolled.
    #[serde(default)]
    pub totp_secret: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last changed.
    pub updated_at: Timestamp,
}
