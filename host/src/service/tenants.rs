//! Tenants and their first accounts (`switchyard init`, `/operator/tenants`).

use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use serde::Serialize;

use super::{Error, Result};
use crate::auth::{Credentials, hash_token, new_secret_token};
use crate::config::Config;
use crate::domain::{ApiAccount, Authorizations, Tenant, Timestamp, User, ids};
use crate::store::{self, Store};

/// What `init` prints: the new tenant's super-admin credentials, shown this once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Initialized {
    /// The tenant's name.
    pub tenant: String,
    /// The tenant's API base URL.
    pub base_url: String,
    /// The super-admin API account.
    pub api_account: NewApiAccount,
    /// The super-admin user.
    pub admin_user: NewUser,
}

/// A new API account's id and secrets.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = InitialApiAccount)]
pub struct NewApiAccount {
    /// Its id.
    pub id: String,
    /// The API token.
    pub token: String,
    /// The TOTP secret, base32.
    pub totp_secret: String,
    /// The `otpauth://` URI.
    pub totp_uri: String,
}

/// A new user's login.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = InitialUser)]
pub struct NewUser {
    /// Its id.
    pub id: String,
    /// Its login name.
    pub name: String,
    /// Its password.
    pub password: String,
}

/// Hashes a password with argon2id (PHC string).
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Invalid(format!("cannot hash password: {e}")))
}

/// Creates tenant `name` with a super-admin API account and a super-admin user.
pub fn create(
    store: &dyn Store,
    config: &Config,
    name: &str,
    now: Timestamp,
) -> Result<Initialized> {
    if !Tenant::is_valid_name(name) {
        return Err(Error::Invalid(format!(
            "tenant name {name:?} must be 1 to 63 lowercase letters, digits or '-'"
        )));
    }
    let account_id = ids::new("acc");
    let credentials = Credentials::generate(name, &account_id);
    let account = ApiAccount {
        id: account_id.clone(),
        tenant: name.to_owned(),
        name: "super-admin".into(),
        authorizations: Authorizations::super_admin(),
        token_hash: hash_token(&credentials.token),
        totp_secret: credentials.totp_secret.clone(),
        last_totp_step: 0,
        disabled: false,
        failed_logins: 0,
        locked_until: None,
        created_at: now,
        updated_at: now,
    };
    let password = new_secret_token();
    let user = User {
        id: ids::new("usr"),
        tenant: name.to_owned(),
        name: "admin".into(),
        attributes: Default::default(),
        authorizations: Authorizations::super_admin(),
        password_hash: hash_password(&password)?,
        totp_secret: None,
        created_at: now,
        updated_at: now,
    };
    let tenant = Tenant {
        name: name.to_owned(),
        created_at: now,
    };
    store
        .create_tenant(&tenant, &account, &user)
        .map_err(|e| match e {
            store::Error::Conflict(_) => Error::Conflict(format!("tenant {name:?} already exists")),
            other => other.into(),
        })?;
    Ok(Initialized {
        tenant: name.to_owned(),
        base_url: config.base_url(name),
        api_account: NewApiAccount {
            id: account_id,
            token: credentials.token,
            totp_secret: credentials.totp_secret,
            totp_uri: credentials.totp_uri,
        },
        admin_user: NewUser {
            id: user.id,
            name: user.name,
            password,
        },
    })
}
