//! Who is calling and may they: API tokens, TOTP, login, access tokens.

mod credentials;
mod login;
mod session;

pub use credentials::{Credentials, hash_token, new_secret_token, totp_uri, verify_totp};
pub use login::{LoginError, Session, login};
pub use session::{AuthError, Caller, authenticate_bearer};
