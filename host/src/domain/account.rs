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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Authorizations {
    /// Permissions such as `webhooks.manage`; `*` is every permission.
    #[serde(default)]
    #[schema(schema_with = permission_names)]
    pub permissions: Vec<String>,
    /// Data scope: attribute name → the values the account may see (`*` = any), e.g.
    /// `{"org_unit": ["sales"]}`.
    #[serde(default)]
    pub scopes: BTreeMap<String, Vec<String>>,
}

/// The schema of [`Authorizations::permissions`]: names from [`permissions::KNOWN`].
fn permission_names() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(permissions::KNOWN.iter().copied())),
        )
        .description(Some(
            "Permissions such as `webhooks.manage`; `*` is every permission.",
        ))
        .build()
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

    /// True when the data scope covers something with these attributes: there is at least
    /// one scope entry, and for each one the attribute has one of the entry's values
    /// (`*` = any value; a `*` attribute with a `*` value covers everything). The
    /// `scope-filter` plugin applies the same rule to webhooks.
    pub fn sees(&self, attributes: &BTreeMap<String, String>) -> bool {
        !self.scopes.is_empty()
            && self.scopes.iter().all(|(attribute, values)| {
                let any = values.iter().any(|v| v == "*");
                if attribute == "*" {
                    return any;
                }
                any || attributes
                    .get(attribute)
                    .is_some_and(|value| values.contains(value))
            })
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
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    fn scoped(scopes: &[(&str, &[&str])]) -> Authorizations {
        Authorizations {
            permissions: vec![],
            scopes: scopes
                .iter()
                .map(|(k, vs)| ((*k).into(), vs.iter().map(|v| (*v).into()).collect()))
                .collect(),
        }
    }

    #[test]
    fn scopes_cover_only_matching_attributes() {
        let sales = attrs(&[("org_unit", "sales"), ("country", "nl")]);
        let support = attrs(&[("org_unit", "support")]);
        let a = scoped(&[("org_unit", &["sales"])]);
        assert!(a.sees(&sales));
        assert!(!a.sees(&support));
        assert!(!a.sees(&attrs(&[])), "a missing scoped attribute is denied");
        let both = scoped(&[("org_unit", &["sales", "support"]), ("country", &["nl"])]);
        assert!(both.sees(&sales));
        assert!(!both.sees(&support), "support has no country");
        let any_country = scoped(&[("org_unit", &["support"]), ("country", &["*"])]);
        assert!(
            any_country.sees(&support),
            "`*` covers a missing attribute too"
        );
        assert!(!scoped(&[]).sees(&sales), "no scope sees nothing");
        assert!(Authorizations::super_admin().sees(&support));
        assert!(Authorizations::super_admin().sees(&attrs(&[])));
    }

    #[test]
    fn permissions_and_the_star() {
        let a = Authorizations {
            permissions: vec!["accounts.read".into()],
            scopes: BTreeMap::new(),
        };
        assert!(a.allows("accounts.read"));
        assert!(!a.allows("accounts.write"));
        assert!(Authorizations::super_admin().allows("impersonate"));
    }
}
