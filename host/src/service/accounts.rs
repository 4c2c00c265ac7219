//! Normal users (`/accounts`): every change emits its topic event with the user as the
//! subject, and a caller sees only the users inside its data scope.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Error, Result, events, input, tenants::hash_password};
use crate::app::App;
use crate::auth::Caller;
use crate::domain::{Authorizations, Subject, Timestamp, User, ids};

/// A user as the API shows it (no password hash, no TOTP secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// `usr_…`
    pub id: String,
    /// Login name.
    pub name: String,
    /// Attributes the data scope refers to.
    pub attributes: BTreeMap<String, String>,
    /// Permissions and data scope.
    pub authorizations: Authorizations,
    /// Whether the user logs in with a TOTP code too.
    pub totp_enrolled: bool,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last changed.
    pub updated_at: Timestamp,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            name: u.name.clone(),
            attributes: u.attributes.clone(),
            authorizations: u.authorizations.clone(),
            totp_enrolled: u.totp_secret.is_some(),
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// A user to create.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name, unique in the tenant.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// Password for the admin UI (at least 12 characters); without one the user cannot
    /// log in until one is set.
    #[serde(default)]
    #[schema(min_length = 12, max_length = 1024)]
    pub password: Option<String>,
    /// Attributes the data scope refers to.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Permissions and data scope.
    #[serde(default, deserialize_with = "input::object")]
    pub authorizations: Authorizations,
}

/// Changes to a user.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// Login name.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    /// New password.
    #[schema(min_length = 12, max_length = 1024)]
    pub password: Option<String>,
    /// Replaces the attributes.
    pub attributes: Option<BTreeMap<String, String>>,
    /// Replaces the authorizations.
    #[serde(default, deserialize_with = "input::optional_object")]
    pub authorizations: Option<Authorizations>,
}

fn subject(user: &User) -> Subject {
    Subject {
        kind: "user".into(),
        id: user.id.clone(),
        attributes: user.attributes.clone(),
    }
}

/// Checks that `authorizations` are well-formed and no wider than the caller's own.
pub fn check_grant(caller: &Caller, authorizations: &Authorizations) -> Result<()> {
    if let Some(unknown) = authorizations.unknown_permission() {
        return Err(Error::Invalid(format!(
            "unknown permission {unknown:?}; known: {:?}",
            crate::domain::permissions::KNOWN
        )));
    }
    if let Some(p) = authorizations.permissions.iter().find(|p| !caller.may(p)) {
        return Err(Error::Forbidden(format!(
            "cannot grant {p:?}, which the caller does not hold itself"
        )));
    }
    Ok(())
}

/// Checks a user's or an API account's name: 1 to 200 characters, not all blank (the
/// schema says the same: `minLength`, `maxLength`, `pattern`).
pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().count() > 200 {
        return Err(Error::Invalid("name must be 1 to 200 characters".into()));
    }
    Ok(())
}

fn check_password(password: &str) -> Result<()> {
    if !(12..=1024).contains(&password.chars().count()) {
        return Err(Error::Invalid(
            "password must be 12 to 1024 characters".into(),
        ));
    }
    Ok(())
}

/// The users the caller may see.
pub async fn list(app: &App, caller: &Caller) -> Result<Vec<UserView>> {
    let tenant = caller.tenant.clone();
    let users = app.blocking(move |s| s.users(&tenant)).await?;
    Ok(users
        .iter()
        .filter(|u| caller.authorizations.sees(&u.attributes))
        .map(UserView::from)
        .collect())
}

/// A user the caller may see; outside its scope it is "not found".
pub async fn get(app: &App, caller: &Caller, id: &str) -> Result<User> {
    let (t, i) = (caller.tenant.clone(), id.to_owned());
    app.blocking(move |s| s.user(&t, &i))
        .await?
        .filter(|u| caller.authorizations.sees(&u.attributes))
        .ok_or_else(|| Error::NotFound(format!("user {id}")))
}

/// Creates a user and emits `Accounts.Create`.
pub async fn create(app: &App, caller: &Caller, new: NewUser) -> Result<UserView> {
    check_name(&new.name)?;
    check_grant(caller, &new.authorizations)?;
    if !caller.authorizations.sees(&new.attributes) {
        return Err(Error::Forbidden(
            "the new user's attributes are outside the caller's data scope".into(),
        ));
    }
    let password = match &new.password {
        Some(p) => {
            check_password(p)?;
            p.clone()
        }
        None => crate::auth::new_secret_token(),
    };
    let now = app.now();
    let user = User {
        id: ids::new("usr"),
        tenant: caller.tenant.clone(),
        name: new.name,
        attributes: new.attributes,
        authorizations: new.authorizations,
        password_hash: hash_password(&password)?,
        totp_secret: None,
        created_at: now,
        updated_at: now,
    };
    let (stored, name) = (user.clone(), user.name.clone());
    let taken = app
        .blocking(move |s| {
            if s.users(&stored.tenant)?.iter().any(|u| u.name == name) {
                return Ok(true);
            }
            s.put_user(&stored).map(|()| false)
        })
        .await?;
    if taken {
        return Err(Error::Conflict(format!(
            "a user named {:?} exists",
            user.name
        )));
    }
    let view = UserView::from(&user);
    events::emit(
        app,
        &caller.tenant,
        &caller.actor(),
        "Accounts.Create",
        subject(&user),
        json(&view),
    )
    .await?;
    Ok(view)
}

/// Changes a user and emits `Accounts.Update`.
pub async fn update(app: &App, caller: &Caller, id: &str, patch: UserPatch) -> Result<UserView> {
    let mut user = get(app, caller, id).await?;
    if let Some(name) = patch.name {
        check_name(&name)?;
        user.name = name;
    }
    if let Some(password) = patch.password {
        check_password(&password)?;
        user.password_hash = hash_password(&password)?;
    }
    if let Some(attributes) = patch.attributes {
        if !caller.authorizations.sees(&attributes) {
            return Err(Error::Forbidden(
                "those attributes are outside the caller's data scope".into(),
            ));
        }
        user.attributes = attributes;
    }
    if let Some(authorizations) = patch.authorizations {
        check_grant(caller, &authorizations)?;
        user.authorizations = authorizations;
    }
    user.updated_at = app.now();
    let stored = user.clone();
    app.blocking(move |s| s.put_user(&stored)).await?;
    let view = UserView::from(&user);
    events::emit(
        app,
        &caller.tenant,
        &caller.actor(),
        "Accounts.Update",
        subject(&user),
        json(&view),
    )
    .await?;
    Ok(view)
}

/// Deletes a user and emits `Accounts.Delete`.
pub async fn delete(app: &App, caller: &Caller, id: &str) -> Result<()> {
    let user = get(app, caller, id).await?;
    let (t, i) = (user.tenant.clone(), user.id.clone());
    app.blocking(move |s| s.delete_user(&t, &i)).await?;
    let view = UserView::from(&user);
    events::emit(
        app,
        &caller.tenant,
        &caller.actor(),
        "Accounts.Delete",
        subject(&user),
        json(&view),
    )
    .await?;
    Ok(())
}

fn json(view: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(view).unwrap_or_default()
}
