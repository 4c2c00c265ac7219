//! Bearer tokens → the caller, bound to one tenant; impersonation by token exchange.

use std::collections::HashMap;
use std::sync::Mutex;

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

/// The caller a bearer token stands for, and when the token expires.
fn resolve(
    store: &dyn Store,
    now: Timestamp,
    tenant: &str,
    token: &str,
) -> Result<(Caller, Timestamp), AuthError> {
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
    let caller = Caller {
        tenant: session.tenant,
        account: account.id,
        acting_for: session.acting_for,
        authorizations,
    };
    Ok((caller, session.expires_at))
}

/// Bearer tokens resolved before, kept while no API account, user or access token was
/// written since ([`Store::directory_version`]) and until each token expires. Every API
/// request presents one; resolving it reads the token and the account (and the user)
/// from the store.
#[derive(Debug, Default)]
pub struct Bearers {
    known: Mutex<Known>,
}

#[derive(Debug, Default)]
struct Known {
    /// The directory version they were resolved at.
    version: u64,
    /// By the token's hash: the caller and when the token expires.
    callers: HashMap<String, (Caller, Timestamp)>,
}

/// Tokens kept at most; a full set starts over.
const KNOWN_TOKENS: usize = 4096;

impl Bearers {
    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves a bearer token presented to `tenant`'s API: the caller of an unexpired
    /// token of that tenant whose API account is enabled (when impersonating, one that
    /// may, with the user's authorizations).
    pub fn authenticate(
        &self,
        store: &dyn Store,
        now: Timestamp,
        tenant: &str,
        token: &str,
    ) -> Result<Caller, AuthError> {
        let hash = hash_token(token);
        // Taken before the reads below: a write during them changes it.
        let version = store.directory_version();
        {
            let known = self.known();
            if known.version == version
                && let Some((caller, expires_at)) = known.callers.get(&hash)
                && *expires_at > now
                && caller.tenant == tenant
            {
                return Ok(caller.clone());
            }
        }
        let (caller, expires_at) = resolve(store, now, tenant, token)?;
        let mut known = self.known();
        if version > known.version || known.callers.len() >= KNOWN_TOKENS {
            known.callers.clear();
            known.version = known.version.max(version);
        }
        if version == known.version {
            known.callers.insert(hash, (caller.clone(), expires_at));
        }
        Ok(caller)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::service::tenants;
    use crate::store::SledStore;

    const NOW: Timestamp = Timestamp(1_000_000);

    fn refused(r: Result<Caller, AuthError>) -> bool {
        matches!(r, Err(AuthError::Unauthenticated))
    }

    #[test]
    fn a_kept_bearer_goes_with_any_change_to_what_it_was_read_from() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path()).expect("open");
        let made = tenants::create(&store, &Config::default(), "t", NOW).expect("tenant");
        let account = made.api_account.id;
        let token = new_secret_token();
        let issued = AccessToken {
            tenant: "t".into(),
            account: account.clone(),
            acting_for: None,
            issued_at: NOW,
            expires_at: Timestamp(NOW.ms() + 60_000),
        };
        store
            .put_access_token(&hash_token(&token), &issued)
            .expect("token");
        let bearers = Bearers::default();
        for _ in 0..2 {
            let caller = bearers
                .authenticate(&store, NOW, "t", &token)
                .expect("caller");
            assert_eq!(caller.account, account);
            assert!(caller.may(permissions::EVENTS_PUBLISH));
        }
        assert!(
            refused(bearers.authenticate(&store, NOW, "u", &token)),
            "another tenant"
        );

        let set_disabled = |disabled: bool| {
            store
                .update_api_account("t", &account, &mut |a| {
                    a.disabled = disabled;
                    true
                })
                .expect("update");
        };
        set_disabled(true);
        assert!(
            refused(bearers.authenticate(&store, NOW, "t", &token)),
            "disabled"
        );
        set_disabled(false);
        store
            .update_api_account("t", &account, &mut |a| {
                a.authorizations.permissions = vec![permissions::ACCOUNTS_READ.into()];
                true
            })
            .expect("update");
        let caller = bearers
            .authenticate(&store, NOW, "t", &token)
            .expect("caller");
        assert!(!caller.may(permissions::EVENTS_PUBLISH), "narrowed");
        assert!(
            refused(bearers.authenticate(&store, issued.expires_at, "t", &token)),
            "expired"
        );
        let other = new_secret_token();
        store
            .put_access_token(&hash_token(&other), &issued)
            .expect("token");
        bearers
            .authenticate(&store, NOW, "t", &other)
            .expect("caller");

        store
            .delete_access_token(&hash_token(&other))
            .expect("revoke");
        assert!(
            refused(bearers.authenticate(&store, NOW, "t", &other)),
            "revoked"
        );
    }
}
