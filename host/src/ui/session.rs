//! Admin UI sessions: an opaque random id in an HttpOnly, SameSite=Strict cookie; the
//! store keeps only its SHA-256, with the user, a CSRF token and an expiry, so a restart
//! does not log administrators out. Expired sessions are refused and deleted when seen;
//! the expired-token job purges the rest.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::auth::{Caller, hash_token, new_secret_token};
use crate::domain::Timestamp;
pub use crate::store::UiSession;
use crate::store::{self, Store};

/// How long a login lasts.
pub const TTL: Duration = Duration::from_secs(8 * 3600);

/// The session cookie's name.
pub const COOKIE: &str = "switchyard_session";

/// The login form's double-submit CSRF cookie.
pub const LOGIN_CSRF_COOKIE: &str = "switchyard_login_csrf";

/// Starts a session; returns its id, for the cookie.
pub fn start(
    store: &dyn Store,
    tenant: &str,
    user: &str,
    name: &str,
    now: Timestamp,
) -> Result<String, store::Error> {
    let id = new_secret_token();
    let session = UiSession {
        tenant: tenant.to_owned(),
        user: user.to_owned(),
        name: name.to_owned(),
        csrf: new_secret_token(),
        expires_at: now.after(TTL),
    };
    store.put_ui_session(&hash_token(&id), &session)?;
    Ok(id)
}

/// The live session with that id; an expired one is deleted.
pub fn get(store: &dyn Store, id: &str, now: Timestamp) -> Result<Option<UiSession>, store::Error> {
    let hash = hash_token(id);
    let Some(session) = store.ui_session(&hash)? else {
        return Ok(None);
    };
    if session.expires_at <= now {
        store.delete_ui_session(&hash)?;
        return Ok(None);
    }
    Ok(Some(session))
}

/// Ends a session.
pub fn end(store: &dyn Store, id: &str) -> Result<bool, store::Error> {
    store.delete_ui_session(&hash_token(id))
}

/// A cookie's value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value scoped to the tenant's pages.
pub fn set_cookie(app: &App, tenant: &str, name: &str, value: &str, max_age: u64) -> String {
    let secure = if app.config.public_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{name}={value}; Path=/t/{tenant}/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    )
}

/// True when the two tokens are equal, in constant time.
pub fn same_token(a: &str, b: &str) -> bool {
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The tenant named by a `/t/{tenant}/…` path.
pub fn tenant_of(path: &str) -> Option<&str> {
    path.strip_prefix("/t/")?
        .split('/')
        .next()
        .filter(|t| !t.is_empty())
}

/// A logged-in administrator of the tenant in the path. Without a session the browser is
/// sent to the login page.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The session.
    pub session: UiSession,
    /// The user as a caller of the services, with the user's authorizations.
    pub caller: Caller,
}

impl Admin {
    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.session.tenant
    }

    /// True when the form carries this session's CSRF token.
    pub fn csrf_ok(&self, given: Option<&str>) -> bool {
        same_token(given.unwrap_or(""), &self.session.csrf)
    }
}

impl FromRequestParts<App> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Some(tenant) = tenant_of(parts.uri.path()).map(str::to_owned) else {
            return Err(Redirect::to("/").into_response());
        };
        let login = Redirect::to(&format!("/t/{tenant}/login")).into_response();
        let Some(id) = cookie(&parts.headers, COOKIE) else {
            return Err(login);
        };
        let (id, now) = (id.to_owned(), app.now());
        let session = match app.blocking(move |s| get(s, &id, now)).await {
            Ok(Some(session)) => session,
            Ok(None) => return Err(login),
            Err(e) => {
                tracing::error!(error = %e, "admin UI session lookup failed");
                return Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response());
            }
        };
        if session.tenant != tenant {
            return Err(login);
        }
        let (t, u) = (session.tenant.clone(), session.user.clone());
        let user = app.blocking(move |s| s.user(&t, &u)).await.ok().flatten();
        let Some(user) = user else {
            return Err(login);
        };
        let caller = Caller {
            tenant: tenant.clone(),
            account: user.id.clone(),
            acting_for: None,
            authorizations: user.authorizations,
        };
        Ok(Self { session, caller })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_cookie_only() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; switchyard_session=abc; b=2"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn sessions_are_stored_hashed_expire_and_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::SledStore::open(dir.path()).expect("open");
        let id = start(&store, "acme", "usr_1", "ada", Timestamp(1_000)).expect("start");
        assert!(
            store.ui_session(&id).expect("read").is_none(),
            "the id is not a key"
        );
        let live = get(&store, &id, Timestamp(2_000)).expect("get");
        assert_eq!(live.map(|s| s.user), Some("usr_1".into()));
        assert!(
            get(&store, "other", Timestamp(2_000))
                .expect("get")
                .is_none()
        );

        let expired = Timestamp(1_000).after(TTL);
        assert!(get(&store, &id, expired).expect("get").is_none());
        assert!(
            store.ui_session(&hash_token(&id)).expect("read").is_none(),
            "an expired session is deleted when seen"
        );

        let id = start(&store, "acme", "usr_1", "ada", Timestamp(1_000)).expect("start");
        assert!(end(&store, &id).expect("end"));
        assert!(get(&store, &id, Timestamp(2_000)).expect("get").is_none());
    }

    #[test]
    fn the_purge_forgets_only_expired_sessions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::SledStore::open(dir.path()).expect("open");
        let old = start(&store, "acme", "usr_1", "ada", Timestamp(1_000)).expect("start");
        let new = start(&store, "acme", "usr_1", "ada", Timestamp(5_000)).expect("start");
        let now = Timestamp(1_000).after(TTL);
        assert_eq!(store.purge_expired_ui_sessions(now).expect("purge"), 1);
        assert!(store.ui_session(&hash_token(&old)).expect("read").is_none());
        assert!(get(&store, &new, now).expect("get").is_some());
    }

    #[test]
    fn tokens_compare_exactly_and_never_empty() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("", ""));
        assert_eq!(tenant_of("/t/acme/admin/"), Some("acme"));
        assert_eq!(tenant_of("/x"), None);
    }
}
