//! API login: account id + API token + TOTP code → a short-lived access token.

use std::time::Duration;

use subtle::ConstantTimeEq;

use super::{hash_token, new_secret_token, verify_totp};
use crate::domain::Timestamp;
use crate::store::{self, AccessToken, Store};

/// Failures in a row that lock an account.
pub const MAX_FAILURES: u32 = 5;
/// How long a locked account stays locked.
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);

/// Why a login was refused. Deliberately silent about which factor was wrong.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown account, wrong token, wrong or reused code, or a disabled account.
    #[error("invalid credentials")]
    Invalid,
    /// Too many failures: the account is locked for a while.
    #[error("too many failed logins; try again later")]
    Locked {
        /// Seconds until the lock ends.
        retry_after: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct Session {
    /// The bearer token.
    pub access_token: String,
    /// Seconds it lives.
    pub expires_in: u64,
    /// The tenant it is bound to.
    pub tenant: String,
}

/// Checks the three factors and issues an access token.
pub fn login(
    store: &dyn Store,
    now: Timestamp,
    ttl: Duration,
    account_id: &str,
    token: &str,
    code: &str,
) -> Result<Session, LoginError> {
    let Some(account) = store.find_api_account(account_id)? else {
        return Err(LoginError::Invalid);
    };
    let token_ok: bool = hash_token(token)
        .as_bytes()
        .ct_eq(account.token_hash.as_bytes())
        .into();

    let mut outcome = Err(LoginError::Invalid);
    store.update_api_account(&account.tenant, &account.id, &mut |acc| {
        if let Some(until) = acc.locked_until.filter(|until| *until > now) {
            outcome = Err(LoginError::Locked {
                retry_after: (until.ms() - now.ms()).div_ceil(1000),
            });
            return false;
        }
        let step = verify_totp(&acc.totp_secret, code, now.ms(), acc.last_totp_step);
        match step {
            Some(step) if token_ok && !acc.disabled => {
                acc.last_totp_step = step;
                acc.failed_logins = 0;
                acc.locked_until = None;
                outcome = Ok(());
            }
            _ => {
                acc.failed_logins += 1;
                if acc.failed_logins >= MAX_FAILURES {
                    acc.failed_logins = 0;
                    acc.locked_until = Some(now.after(LOCKOUT));
                    outcome = Err(LoginError::Locked {
                        retry_after: LOCKOUT.as_secs(),
                    });
                } else {
                    outcome = Err(LoginError::Invalid);
                }
            }
        }
        true
    })?;
    outcome?;

    let access_token = new_secret_token();
    store.put_access_token(
        &hash_token(&access_token),
        &AccessToken {
            tenant: account.tenant.clone(),
            account: account.id.clone(),
            acting_for: None,
            issued_at: now,
            expires_at: now.after(ttl),
        },
    )?;
    Ok(Session {
        access_token,
        expires_in: ttl.as_secs(),
        tenant: account.tenant,
    })
}
