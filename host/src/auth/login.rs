//! API login: account id + API token + TOTP code → a short-lived access token; and the
//! lockout and one-use-per-code policy every login (the admin UI's too) goes through.

use std::time::Duration;

use subtle::ConstantTimeEq;

use super::{hash_token, new_secret_token, verify_totp};
use crate::domain::{ApiAccount, Timestamp};
use crate::store::{self, AccessToken, LoginGuard, Store};

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

/// One login attempt against `guard`. While the login is locked it is refused without
/// looking at the factors. Otherwise `verify` gets the last TOTP step accepted and
/// returns the step this attempt used when every factor is right (the same step when no
/// code is needed), `None` when any is wrong. A good attempt clears the failures; the
/// [`MAX_FAILURES`]th bad one in a row locks the login for [`LOCKOUT`].
pub fn attempt(
    guard: &mut LoginGuard,
    now: Timestamp,
    verify: impl FnOnce(u64) -> Option<u64>,
) -> Result<(), LoginError> {
    if let Some(until) = guard.locked_until.filter(|until| *until > now) {
        return Err(LoginError::Locked {
            retry_after: (until.ms() - now.ms()).div_ceil(1000),
        });
    }
    match verify(guard.last_totp_step) {
        Some(step) => {
            *guard = LoginGuard {
                last_totp_step: step,
                failed_logins: 0,
                locked_until: None,
            };
            Ok(())
        }
        None => {
            guard.failed_logins += 1;
            if guard.failed_logins < MAX_FAILURES {
                return Err(LoginError::Invalid);
            }
            guard.failed_logins = 0;
            guard.locked_until = Some(now.after(LOCKOUT));
            Err(LoginError::Locked {
                retry_after: LOCKOUT.as_secs(),
            })
        }
    }
}

fn guard_of(account: &ApiAccount) -> LoginGuard {
    LoginGuard {
        last_totp_step: account.last_totp_step,
        failed_logins: account.failed_logins,
        locked_until: account.locked_until,
    }
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
        let before = guard_of(acc);
        let mut guard = before;
        outcome = attempt(&mut guard, now, |last_step| {
            verify_totp(&acc.totp_secret, code, now.ms(), last_step)
                .filter(|_| token_ok && !acc.disabled)
        });
        acc.last_totp_step = guard.last_totp_step;
        acc.failed_logins = guard.failed_logins;
        acc.locked_until = guard.locked_until;
        guard != before
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_000_000);

    #[test]
    fn a_good_attempt_records_its_step_and_clears_failures() {
        let mut guard = LoginGuard {
            last_totp_step: 7,
            failed_logins: 3,
            locked_until: None,
        };
        let mut seen = None;
        let r = attempt(&mut guard, NOW, |last| {
            seen = Some(last);
            Some(9)
        });
        assert!(r.is_ok());
        assert_eq!(seen, Some(7), "verify is told the last accepted step");
        assert_eq!(guard.last_totp_step, 9);
        assert_eq!(guard.failed_logins, 0);
    }

    #[test]
    fn the_fifth_failure_in_a_row_locks_for_fifteen_minutes() {
        let mut guard = LoginGuard::default();
        for _ in 1..MAX_FAILURES {
            assert!(matches!(
                attempt(&mut guard, NOW, |_| None),
                Err(LoginError::Invalid)
            ));
        }
        assert!(matches!(
            attempt(&mut guard, NOW, |_| None),
            Err(LoginError::Locked { retry_after: 900 })
        ));
        assert_eq!(guard.locked_until, Some(NOW.after(LOCKOUT)));

        // Locked: even right factors are refused, and not looked at.
        let later = Timestamp(NOW.ms() + 60_000);
        let r = attempt(&mut guard, later, |_| unreachable!("factors not checked"));
        assert!(matches!(r, Err(LoginError::Locked { retry_after: 840 })));

        // After the lock the right factors work again.
        let after = NOW.after(LOCKOUT);
        assert!(attempt(&mut guard, after, |last| Some(last + 1)).is_ok());
        assert_eq!(guard.locked_until, None);
    }

    #[test]
    fn a_good_attempt_resets_the_count_towards_the_lock() {
        let mut guard = LoginGuard::default();
        for _ in 1..MAX_FAILURES {
            let _ = attempt(&mut guard, NOW, |_| None);
        }
        assert!(attempt(&mut guard, NOW, Some).is_ok());
        assert!(matches!(
            attempt(&mut guard, NOW, |_| None),
            Err(LoginError::Invalid)
        ));
    }
}
