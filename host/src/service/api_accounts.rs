//! API accounts (`/api-accounts`): managed like users; their secrets are shown once, at
//! creation and on rotation, and only hashes (token) are kept.

use serde::{Deserialize, Serialize};

use super::accounts::{check_grant, check_name};
use super::{Error, Result, events, input};
use crate::app::App;
use crate::auth::{Caller, Credentials, hash_token, new_secret_token, totp_uri};
use crate::domain::{ApiAccount, Authorizations, Subject, Timestamp, ids};

/// An API account as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiAccountView {
    /// `acc_…`
    pub id: String,
    /// A name for people.
    pub name: String,
    /// Permissions and data scope.
    pub authorizations: Authorizations,
    /// A disabled account cannot log in and receives no webhooks.
    pub disabled: bool,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last changed.
    pub updated_at: Timestamp,
}

impl From<&ApiAccount> for ApiAccountView {
    fn from(a: &ApiAccount) -> Self {
        Self {
            id: a.id.clone(),
            name: a.name.clone(),
            authorizations: a.authorizations.clone(),
            disabled: a.disabled,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// A new API account with its secrets, shown this once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Created {
    /// The account.
    #[serde(flatten)]
    pub account: ApiAccountView,
    /// The API token.
    pub token: String,
    /// The TOTP secret, base32.
    pub totp_secret: String,
    /// The `otpauth://` URI of the TOTP secret.
    pub totp_uri: String,
}

/// New secrets after a rotation, shown this once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Rotated {
    /// The account id.
    pub id: String,
    /// The new API token, after `rotate-token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The new TOTP secret, after `rotate-totp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp_secret: Option<String>,
    /// Its `otpauth://` URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp_uri: Option<String>,
}

/// An API account to create.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiAccount {
    /// A name for people.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// Permissions and data scope.
    #[serde(default, deserialize_with = "input::object")]
    pub authorizations: Authorizations,
}

/// Changes to an API account.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiAccountPatch {
    /// A name for people.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    /// Replaces the authorizations.
    #[serde(default, deserialize_with = "input::optional_object")]
    pub authorizations: Option<Authorizations>,
    /// Disables or re-enables it.
    pub disabled: Option<bool>,
}

fn subject(account: &ApiAccount) -> Subject {
    Subject {
        kind: "api-account".into(),
        id: account.id.clone(),
        attributes: Default::default(),
    }
}

async fn emit(app: &App, caller: &Caller, topic: &str, account: &ApiAccount) -> Result<()> {
    let view = serde_json::to_value(ApiAccountView::from(account)).unwrap_or_default();
    events::emit(
        app,
        &caller.tenant,
        &caller.actor(),
        topic,
        subject(account),
        view,
    )
    .await
}

/// The tenant's API accounts.
pub async fn list(app: &App, caller: &Caller) -> Result<Vec<ApiAccountView>> {
    let tenant = caller.tenant.clone();
    let all = app.blocking(move |s| s.api_accounts(&tenant)).await?;
    Ok(all.iter().map(ApiAccountView::from).collect())
}

/// One API account.
pub async fn get(app: &App, caller: &Caller, id: &str) -> Result<ApiAccount> {
    let (t, i) = (caller.tenant.clone(), id.to_owned());
    app.blocking(move |s| s.api_account(&t, &i))
        .await?
        .ok_or_else(|| Error::NotFound(format!("API account {id}")))
}

/// Creates an API account with a fresh token and TOTP secret; emits `ApiAccounts.Create`.
pub async fn create(app: &App, caller: &Caller, new: NewApiAccount) -> Result<Created> {
    check_name(&new.name)?;
    check_grant(caller, &new.authorizations)?;
    let id = ids::new("acc");
    let credentials = Credentials::generate(&caller.tenant, &id);
    let now = app.now();
    let account = ApiAccount {
        id,
        tenant: caller.tenant.clone(),
        name: new.name,
        authorizations: new.authorizations,
        token_hash: hash_token(&credentials.token),
        totp_secret: credentials.totp_secret.clone(),
        last_totp_step: 0,
        disabled: false,
        failed_logins: 0,
        locked_until: None,
        created_at: now,
        updated_at: now,
    };
    let stored = account.clone();
    app.blocking(move |s| s.put_api_account(&stored)).await?;
    emit(app, caller, "ApiAccounts.Create", &account).await?;
    Ok(Created {
        account: ApiAccountView::from(&account),
        token: credentials.token,
        totp_secret: credentials.totp_secret,
        totp_uri: credentials.totp_uri,
    })
}

async fn change(
    app: &App,
    caller: &Caller,
    id: &str,
    mut edit: impl FnMut(&mut ApiAccount) + Send + 'static,
) -> Result<ApiAccount> {
    let (t, i) = (caller.tenant.clone(), id.to_owned());
    let now = app.now();
    let account = app
        .blocking(move |s| {
            s.update_api_account(&t, &i, &mut |a| {
                edit(a);
                a.updated_at = now;
                true
            })
        })
        .await?
        .ok_or_else(|| Error::NotFound(format!("API account {id}")))?;
    emit(app, caller, "ApiAccounts.Update", &account).await?;
    Ok(account)
}

/// Changes name, authorizations or the disabled flag; emits `ApiAccounts.Update`.
pub async fn update(
    app: &App,
    caller: &Caller,
    id: &str,
    patch: ApiAccountPatch,
) -> Result<ApiAccountView> {
    get(app, caller, id).await?;
    if let Some(name) = &patch.name {
        check_name(name)?;
    }
    if let Some(authorizations) = &patch.authorizations {
        check_grant(caller, authorizations)?;
    }
    if patch.disabled == Some(true) && id == caller.account {
        return Err(Error::Conflict(
            "an API account cannot disable itself".into(),
        ));
    }
    let account = change(app, caller, id, move |a| {
        if let Some(name) = &patch.name {
            a.name.clone_from(name);
        }
        if let Some(authorizations) = &patch.authorizations {
            a.authorizations = authorizations.clone();
        }
        if let Some(disabled) = patch.disabled {
            a.disabled = disabled;
        }
    })
    .await?;
    Ok(ApiAccountView::from(&account))
}

/// A new API token; the old one and every session it opened stop working.
pub async fn rotate_token(app: &App, caller: &Caller, id: &str) -> Result<Rotated> {
    get(app, caller, id).await?;
    let token = new_secret_token();
    let hash = hash_token(&token);
    let account = change(app, caller, id, move |a| a.token_hash.clone_from(&hash)).await?;
    let (t, i) = (account.tenant.clone(), account.id.clone());
    app.blocking(move |s| s.revoke_sessions(&t, &i)).await?;
    Ok(Rotated {
        id: account.id,
        token: Some(token),
        totp_secret: None,
        totp_uri: None,
    })
}

/// A new TOTP secret; codes of the old one stop working.
pub async fn rotate_totp(app: &App, caller: &Caller, id: &str) -> Result<Rotated> {
    get(app, caller, id).await?;
    let secret = crate::auth::new_totp_secret();
    let stored = secret.clone();
    let account = change(app, caller, id, move |a| {
        a.totp_secret.clone_from(&stored);
        a.last_totp_step = 0;
    })
    .await?;
    Ok(Rotated {
        totp_uri: Some(totp_uri(&secret, &account.tenant, &account.id)),
        id: account.id,
        token: None,
        totp_secret: Some(secret),
    })
}

/// Deletes an API account and its sessions; emits `ApiAccounts.Delete`.
pub async fn delete(app: &App, caller: &Caller, id: &str) -> Result<()> {
    let account = get(app, caller, id).await?;
    if account.id == caller.account {
        return Err(Error::Conflict(
            "an API account cannot delete itself".into(),
        ));
    }
    let (t, i) = (account.tenant.clone(), account.id.clone());
    app.blocking(move |s| s.delete_api_account(&t, &i)).await?;
    emit(app, caller, "ApiAccounts.Delete", &account).await
}
