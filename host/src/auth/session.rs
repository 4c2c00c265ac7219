//! Bearer tokens → the calling account, bound to one tenant.

use super::hash_token;
use crate::domain::{Authorizations, Timestamp};
use crate::store::{self, Store};

/// Why a bearer token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No, an unknown, an expired or another tenant's token.
    #[error("missing, invalid or expired access token")]
    Unauthenticated,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Who is calling, with what authorizations.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The tenant of the token.
    pub tenant: String,
    /// The API account that holds the token.
    pub account: String,
    /// What the caller may do and see.
    pub authorizations: Authorizations,
}

impl Caller {
    /// True when the caller holds `permission`.
    pub fn may(&self, permission: &str) -> bool {
        self.authorizations.allows(permission)
    }
}

/// Resolves a bearer token presented to `tenant`'s API.
pub fn authenticate_bearer(
    store: &dyn Store,
    now: Timestamp,
    tenant: &str,
    token: &str,
) -> Result<Caller, AuthError> {
    let hash = hash_token(token);
    let Some(session) = store.access_token(&hash)? else {
        return Err(AuthError::Unauthenticated);
    };
    if session.expires_at <= now {
        store.delete_access_token(&hash)?;
        return Err(AuthError::Unauthenticated);
    }
    if session.tenant != tenant {
        return Err(AuthError::Unauthenticated);
    }
    let account = store
        .api_account(tenant, &session.account)?
        .filter(|a| !a.disabled)
        .ok_or(AuthError::Unauthenticated)?;
    Ok(Caller {
        tenant: session.tenant,
        account: account.id,
        authorizations: account.authorizations,
    })
}
