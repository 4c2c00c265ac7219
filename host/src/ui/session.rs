//! Admin UI sessions: an opaque random id in an HttpOnly, SameSite=Strict cookie; the
//! host keeps only its SHA-256, with the user, a CSRF token and an expiry.
//!
//! Sessions live in memory: a restart logs administrators out, which is the safe side.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::auth::{Caller, hash_token, new_secret_token};
use crate::domain::Timestamp;

/// How long a login lasts.
pub const TTL: Duration = Duration::from_secs(8 * 3600);

/// The session cookie's name.
pub const COOKIE: &str = "switchyard_session";

/// The login form's double-submit CSRF cookie.
pub const LOGIN_CSRF_COOKIE: &str = "switchyard_login_csrf";

/// One logged-in user.
#[derive(Debug, Clone)]
pub struct UiSession {
    /// The tenant it is bound to.
    pub tenant: String,
    /// The user's id.
    pub user: String,
    /// The user's login name.
    pub name: String,
    /// The token every form of this session carries.
    pub csrf: String,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// The sessions, by the SHA-256 of their id.
#[derive(Debug, Default)]
pub struct Sessions {
    by_hash: Mutex<HashMap<String, UiSession>>,
}

impl Sessions {
    /// Starts a session; returns its id, for the cookie.
    pub fn start(&self, tenant: &str, user: &str, name: &str, now: Timestamp) -> String {
        let id = new_secret_token();
        let session = UiSession {
            tenant: tenant.to_owned(),
            user: user.to_owned(),
            name: name.to_owned(),
            csrf: new_secret_token(),
            expires_at: now.after(TTL),
        };
        let mut map = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.expires_at > now);
        map.insert(hash_token(&id), session);
        id
    }

    /// The live session with that id.
    pub fn get(&self, id: &str, now: Timestamp) -> Option<UiSession> {
        let map = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&hash_token(id))
            .filter(|s| s.expires_at > now)
            .cloned()
    }

    /// Ends a session.
    pub fn end(&self, id: &str) {
        let mut map = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&hash_token(id));
    }
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
    let secure = if app.config.public_url.starts_with("https://") {
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
        let Some(session) = app.ui_sessions.get(id, app.now()) else {
            return Err(login);
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
    fn sessions_expire_and_end() {
        let sessions = Sessions::default();
        let id = sessions.start("acme", "usr_1", "ada", Timestamp(1_000));
        assert!(sessions.get(&id, Timestamp(2_000)).is_some());
        assert!(sessions.get("other", Timestamp(2_000)).is_none());
        assert!(sessions.get(&id, Timestamp(1_000).after(TTL)).is_none());
        sessions.end(&id);
        assert!(sessions.get(&id, Timestamp(2_000)).is_none());
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
