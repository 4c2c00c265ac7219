//! Bearer tokens → the caller, bound to one tenant; impersonation by token exchange.

use super::{hash_token, new_secret_token};
use crate::domain::{Authorizations, Timestamp, permissions};
use crate::store::{self, AccessToken, Store};

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
    /// The user the account acts for, when the token came from impersonation.
    pub acting_for: Option<String>,
    /// What the caller may do and see: the user's when impersonating.
    pub authorizations: Authorizations,
}

impl Caller {
    /// True when the caller holds `permission`.
    pub fn may(&self, permission: &str) -> bool {
        self.authorizations.allows(permission)
    }

    /// Who did it, for events and logs: `acc_…`, or `usr_… via acc_…`.
    pub fn actor(&self) -> String {
        match &self.acting_for {
            Some(user) => format!("{user} via {}", self.account),
            None => self.account.clone(),
        }
    }
}

/// Resolves a bearer token: the session it names, unexpired.
pub fn session(store: &dyn Store, now: Timestamp, token: &str) -> Result<AccessToken, AuthError> {
    let hash = hash_token(token);
    let Some(session) = store.access_token(&hash)? else {
        return Err(AuthError::Unauthenticated);
    };
    if session.expires_at <= now {
        store.delete_access_token(&hash)?;
        return Err(AuthError::Unauthenticated);
    }
    Ok(session)
}

/// Resolves a bearer token presented to `tenant`'s API.
pub fn authenticate_bearer(
    store: &dyn Store,
    now: Timestamp,
    tenant: &str,
    token: &str,
) -> Result<Caller, AuthError> {
    let session = session(store, now, token)?;
    if session.tenant != tenant {
        return Err(AuthError::Unauthenticated);
    }
    let account = store
        .api_account(tenant, &session.account)?
        .filter(|a| !a.disabled)
        .ok_or(AuthError::Unauthenticated)?;
    let authorizations = match &session.acting_for {
        None => account.authorizations,
        // Impersonating: the user's authorizations, as long as the account may still
        // impersonate and the user still exists.
        Some(user) => {
            if !account.authorizations.allows(permissions::IMPERSONATE) {
                return Err(AuthError::Unauthenticated);
            }
            store
                .user(tenant, user)?
                .ok_or(AuthError::Unauthenticated)?
                .authorizations
        }
    };
    Ok(Caller {
        tenant: session.tenant,
        account: account.id,
        acting_for: session.acting_for,
        authorizations,
    })
}

/// Why a token exchange was refused (RFC 8693 / RFC 6749 §5.2 error codes).
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The subject token is not a valid API-account token.
    #[error("the subject token is invalid or expired")]
    InvalidGrant,
    /// The account lacks the `impersonate` permission, or may not see the user.
    #[error("{0}")]
    Unauthorized(String),
    /// The requested user does not exist in the token's tenant.
    #[error("no user {0:?} in this tenant")]
    UnknownUser(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Exchanges an API account's own access token for one that acts for `user`.
pub fn exchange(
    store: &dyn Store,
    now: Timestamp,
    ttl: std::time::Duration,
    subject_token: &str,
    user: &str,
) -> Result<(String, AccessToken), ExchangeError> {
    let session = session(store, now, subject_token).map_err(|e| match e {
        AuthError::Store(e) => ExchangeError::Store(e),
        AuthError::Unauthenticated => ExchangeError::InvalidGrant,
    })?;
    if session.acting_for.is_some() {
        return Err(ExchangeError::Unauthorized(
            "an impersonation token cannot be exchanged again".into(),
        ));
    }
    let account = store
        .api_account(&session.tenant, &session.account)?
        .filter(|a| !a.disabled)
        .ok_or(ExchangeError::InvalidGrant)?;
    if !account.authorizations.allows(permissions::IMPERSONATE) {
        return Err(ExchangeError::Unauthorized(format!(
            "API account {} lacks the \"impersonate\" permission",
            account.id
        )));
    }
    let target = store
        .user(&session.tenant, user)?
        .ok_or_else(|| ExchangeError::UnknownUser(user.to_owned()))?;
    if !account.authorizations.sees(&target.attributes) {
        return Err(ExchangeError::Unauthorized(format!(
            "user {user} is outside the data scope of API account {}",
            account.id
        )));
    }
    let token = new_secret_token();
    let issued = AccessToken {
        tenant: session.tenant,
        account: account.id,
        acting_for: Some(target.id),
        issued_at: now,
        // Never outlives the token it was exchanged for.
        expires_at: now.after(ttl).min(session.expires_at),
    };
    store.put_access_token(&hash_token(&token), &issued)?;
    Ok((token, issued))
}
