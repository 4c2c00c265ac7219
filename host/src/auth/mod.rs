//! Who is calling and may they: API tokens, TOTP, login, access tokens.

mod credentials;
mod login;
mod session;

pub use credentials::{
    Credentials, hash_token, new_secret_token, new_totp_secret, totp_uri, verify_totp,
};
pub use login::{LOCKOUT, LoginError, MAX_FAILURES, Session, attempt, login};
pub use session::{AuthError, Bearers, Caller, ExchangeError, exchange, session};
